"""Policy: what must hold for every shipped config, whatever it says."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.mocks import Registered
from tests.support.program import ROOT, TEST_SECRETS, Run, run_stack, stack_config

CONFIGS = ["Pulumi.dev.yaml", "Pulumi.prod.yaml", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.yaml"))]
# Every generated secret in the mocks looks like this; none may appear outside a secret input.
GENERATED = re.compile(r"mock-[\w-]+-x{8}|secret-id-[\w-]+")
SECRET_INPUTS = re.compile(r"^(password|token|secretId|dataJson|stringData|\w*Password)$")


@pytest.fixture(scope="module", params=CONFIGS)
def deployed(request: pytest.FixtureRequest) -> tuple[str, Run]:
    path = request.param
    return path, run_stack(stack_config(path), TEST_SECRETS, stack=Path(path).stem.replace(".", "-"))


def _strings(value: object, path: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def test_no_generated_secret_in_a_plain_input(deployed: tuple[str, Run]) -> None:
    _, outcome = deployed
    leaks = [
        (r.urn, path) for r in outcome.mocks.registered for path, text in _strings(r.inputs)
        if GENERATED.search(text) and not r.is_secret(path)
    ]
    assert not leaks


def test_every_password_like_input_is_secret(deployed: tuple[str, Run]) -> None:
    _, outcome = deployed
    for resource in outcome.mocks.registered:
        for key in resource.inputs:
            if SECRET_INPUTS.search(key) and resource.inputs[key]:
                assert resource.is_secret(key), f"{resource.urn}: {key} is not secret"


def test_no_docker_port_beyond_loopback(deployed: tuple[str, Run]) -> None:
    _, outcome = deployed
    for container in outcome.mocks.of_type("docker:index/container:Container"):
        for port in container.inputs.get("ports") or []:
            assert port["ip"] in ("127.0.0.1", "::1"), f"{container.urn} publishes on {port['ip']}"


KUBERNETES_CONFIGS = [c for c in CONFIGS if stack_config(c).get("platform") == "kubernetes"]


@pytest.mark.parametrize("path", KUBERNETES_CONFIGS)
def test_prod_data_is_protected(path: str) -> None:
    outcome = run_stack(stack_config(path), TEST_SECRETS, stack="k8s")
    claims = [s for s in outcome.mocks.of_type("kubernetes:apps/v1:StatefulSet") if s.inputs["spec"].get("volumeClaimTemplates")]
    assert claims, "a Kubernetes stack with no data volume is not what this checks"
    for statefulset in claims:
        assert statefulset.protect, f"{statefulset.urn} holds data and is not protected"
    for claim in outcome.mocks.of_type("kubernetes:core/v1:PersistentVolumeClaim"):
        assert claim.protect and claim.retain_on_delete
    databases = outcome.mocks.of_type("postgresql:index/database:Database")
    assert databases and all(d.protect for d in databases), "dropping a database loses its data"


def test_every_resource_belongs_to_a_component_or_the_stack(deployed: tuple[str, Run]) -> None:
    _, outcome = deployed
    component_urns = {r.urn for r in outcome.mocks.components()}
    for resource in outcome.mocks.registered:
        parent_type = resource.parent.split("::")[-2] if resource.parent else ""
        assert resource.parent in component_urns or parent_type.endswith("pulumi:pulumi:Stack"), resource.urn


def _component_children_names(outcome: Run, component: Registered) -> list[str]:
    return [child.name for child in outcome.mocks.children_of(component.urn)]


def test_component_children_are_named_from_the_component(deployed: tuple[str, Run]) -> None:
    _, outcome = deployed
    for component in outcome.mocks.components():
        base = component.name
        for name in _component_children_names(outcome, component):
            assert name.startswith(base.replace("_", "-")) or name.startswith(base), f"{name} under {component.urn}"
