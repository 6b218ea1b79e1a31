"""How secrets reach processes: files on Docker (the container's config names only their paths),
Secret references on Kubernetes (a pod spec carries no secret value)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pgfleet.components.platform.docker import SECRET_MODE, SECRETS_DIR
from tests.support.mocks import Registered
from tests.support.program import ROOT, TEST_SECRETS, Run, run_stack, stack_config

CONFIGS = ["Pulumi.dev.yaml", "Pulumi.prod.yaml", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.yaml"))]
DOCKER_CONFIGS = [c for c in CONFIGS if stack_config(c).get("platform", "docker") == "docker"]
KUBERNETES_CONFIGS = [c for c in CONFIGS if stack_config(c).get("platform") == "kubernetes"]
CONTAINER = "docker:index/container:Container"
#: Every generated secret in the mocks looks like this (tests/unit/test_invariants.py).
GENERATED = re.compile(r"mock-[\w-]+-x{8}|secret-id-[\w-]+")
#: What `docker inspect` shows of a container: none of it may hold a secret, even one marked secret.
CONFIG_INPUTS = ("envs", "command", "entrypoints", "labels", "healthcheck", "hostname", "name")
#: What a Docker container of these stacks takes as a secret file (<NAME>_FILE in its env).
SECRET_NAMES = {"POSTGRES_PASSWORD", "PGPASSWORD", "DATA_SOURCE_PASS", "PGBACKREST_REPO1_CIPHER_PASS",
                "PGFLEET_DUMP_PASSPHRASE", "PGBACKREST_REPO1_S3_KEY", "PGBACKREST_REPO1_S3_KEY_SECRET",
                "ROOT_ACCESS_KEY", "ROOT_SECRET_KEY", "BAO_DEV_ROOT_TOKEN_ID", "VAULT_DEV_ROOT_TOKEN_ID"}


def _run(path: str) -> Run:
    return run_stack(stack_config(path), TEST_SECRETS, stack=Path(path).stem.replace(".", "-"))


def _strings(value: object):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


@pytest.fixture(scope="module", params=DOCKER_CONFIGS)
def docker_run(request: pytest.FixtureRequest) -> tuple[str, Run]:
    return request.param, _run(request.param)


@pytest.fixture(scope="module", params=KUBERNETES_CONFIGS)
def kubernetes_run(request: pytest.FixtureRequest) -> tuple[str, Run]:
    return request.param, _run(request.param)


def test_no_docker_container_config_holds_a_secret(docker_run: tuple[str, Run]) -> None:
    _, outcome = docker_run
    containers = outcome.mocks.of_type(CONTAINER)
    assert containers
    for container in containers:
        for key in CONFIG_INPUTS:
            leaks = [text for text in _strings(container.inputs.get(key)) if GENERATED.search(text)]
            assert not leaks, f"{container.urn}: {key} holds a secret"
        env = dict(e.split("=", 1) for e in container.inputs.get("envs") or [])
        assert not SECRET_NAMES & set(env), f"{container.urn}: a secret as an env value"


def test_docker_secrets_are_uploaded_files_named_by_path(docker_run: tuple[str, Run]) -> None:
    _, outcome = docker_run
    delivered: set[str] = set()
    for container in outcome.mocks.of_type(CONTAINER):
        env = dict(e.split("=", 1) for e in container.inputs.get("envs") or [])
        uploads = {u["file"]: (i, u) for i, u in enumerate(container.inputs.get("uploads") or [])}
        for key, path in env.items():
            if not path.startswith(f"{SECRETS_DIR}/"):
                continue
            assert key == f"{path.rsplit('/', 1)[1]}_FILE", f"{container.urn}: {key}={path}"
            index, upload = uploads[path]
            assert upload["permissions"] == SECRET_MODE, f"{container.urn}: {path} mode"
            assert container.is_secret(f"uploads[{index}].content") or container.is_secret("uploads")
            delivered.add(path.rsplit("/", 1)[1])
    # the check above had something to check: every server's password came this way
    assert "POSTGRES_PASSWORD" in delivered


def _pod_containers(resource: Registered) -> list[dict[str, Any]]:
    spec = resource.inputs.get("spec") or {}
    if resource.typ == "kubernetes:batch/v1:CronJob":
        spec = spec["jobTemplate"]["spec"]
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def test_kubernetes_pod_specs_carry_secret_references_only(kubernetes_run: tuple[str, Run]) -> None:
    _, outcome = kubernetes_run
    secrets = outcome.mocks.of_type("kubernetes:core/v1:Secret")
    # the names a Secret holds: a pod's env entry of that name must reference it, never hold a value
    secret_keys = {key for s in secrets for key in (s.inputs.get("stringData") or {})}
    assert {"POSTGRES_PASSWORD", "PGPASSWORD", "PGBACKREST_REPO1_CIPHER_PASS"} <= secret_keys
    referenced = 0
    workloads = [r for r in outcome.mocks.registered if r.typ in (
        "kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:CronJob", "kubernetes:batch/v1:Job")]
    assert workloads
    for workload in workloads:
        for container in _pod_containers(workload):
            for entry in container.get("env") or []:
                if entry["name"] in secret_keys:
                    assert "value" not in entry, f"{workload.urn}: {entry['name']} has a literal value"
                    assert entry["valueFrom"]["secretKeyRef"]["key"] == entry["name"]
                    referenced += 1
                else:
                    assert not GENERATED.search(str(entry.get("value", ""))), f"{workload.urn}: {entry['name']}"
            leaks = [t for t in _strings({k: v for k, v in container.items() if k != "env"}) if GENERATED.search(t)]
            assert not leaks, f"{workload.urn}: {leaks}"
    assert referenced > 0
