"""Pull request previews as CI runs them (scripts/ci/preview.sh runs the same command): a dev
stack deployed with its state in a bucket of the project's own S3 store (versitygw, over TLS
with a certificate of its own: a DIY `s3://` backend), then its config changed as three pull
requests would. `pgfleet-preview` must show the new service as creates, the connection limit as
an update in place, and the database rename as a replace that loses data and fails the check
unless the PR carries the override; and a second run must leave the one PR comment as it was."""
from __future__ import annotations

import copy
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies import PACK_DIR
from tests.support.engine import engine_env
from tests.support.fake_github import PR, REPOSITORY, TOKEN, fake_github
from tests.support.live import isolated, sweep_leftovers
from tests.support.program import PROJECT, ROOT

PREFIX = "pgfleet-pr-"
STACK = "pr"
STORE, STORE_PORT, STORE_IMAGE, BUCKET = f"{PREFIX}state-s3", 11995, "pgfleet/versitygw:1.8", "pgfleet-state"
CONFIG = isolated({
    "platform": "docker",
    "servers": [{"name": "main", "port": 5432, "metrics": {"enabled": False}}],
    "services": [{"name": "orders"}, {"name": "billing"}],
    "backup": {"enabled": False},
}, PREFIX, port_offset=11300)


@dataclass
class Project:
    """A checkout of the project with one stack whose state is in the S3 bucket."""
    work: Path
    env: dict[str, str]

    @property
    def stack_file(self) -> Path:
        return self.work / f"Pulumi.{STACK}.yaml"

    def pulumi(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pulumi", *args, "--stack", STACK, "--non-interactive"], cwd=self.work, env=self.env,
                              capture_output=True, text=True, timeout=900, check=True)

    def preview(self, change: Callable[[dict[str, Any]], None], *flags: str,
                env: dict[str, str] | None = None) -> tuple[int, str]:
        """`pgfleet-preview` of the stack with its config changed as a pull request would."""
        original = self.stack_file.read_text()
        document = yaml.safe_load(original)
        config = copy.deepcopy(CONFIG)
        change(config)
        document["config"] = {f"{PROJECT}:{k}": v for k, v in config.items()}
        self.stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
        report = self.work / "report.md"
        try:
            done = subprocess.run([sys.executable, "-m", "operations.preview", "--cwd", str(self.work),
                                   "--stack", STACK, "--output", str(report), *flags],
                                  cwd=ROOT, env={**self.env, **(env or {})}, capture_output=True, text=True,
                                  timeout=900, check=False)
        finally:
            self.stack_file.write_text(original)
        assert done.returncode in (0, 1), done.stderr[-3000:]
        assert report.read_text() == done.stdout
        return done.returncode, done.stdout


def wait_healthy(container: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", container],
                               capture_output=True, text=True, check=False).stdout.strip()
        if state == "healthy":
            return
        time.sleep(1)
    raise AssertionError(f"{container} not healthy after {timeout_s}s")


@pytest.fixture(scope="module")
def state_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The engine's environment for state in a bucket of the S3 store, as a CI job's secrets give it."""
    for leftover in sweep_leftovers(PREFIX):
        print(f"removed leftover {leftover}")
    access, secret = "pgfleet-ci", secrets.token_urlsafe(24)
    subprocess.run(["docker", "run", "-d", "--name", STORE, "-p", f"127.0.0.1:{STORE_PORT}:7070",
                    "-e", f"ROOT_ACCESS_KEY={access}", "-e", f"ROOT_SECRET_KEY={secret}", "-e", f"S3_BUCKET={BUCKET}",
                    STORE_IMAGE], capture_output=True, text=True, check=True)
    try:
        wait_healthy(STORE)
        tmp = tmp_path_factory.mktemp("state")
        subprocess.run(["docker", "cp", f"{STORE}:/etc/versitygw/tls/cert.pem", str(tmp / "store-ca.pem")],
                       capture_output=True, check=True)
        yield {**engine_env(tmp),
               "PULUMI_BACKEND_URL": f"s3://{BUCKET}?endpoint=https://127.0.0.1:{STORE_PORT}"
                                     f"&use_path_style=true&region=us-east-1",
               "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_CA_BUNDLE": str(tmp / "store-ca.pem")}
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", STORE], capture_output=True, check=False)


@pytest.fixture(scope="module")
def project(state_backend: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    work = tmp_path_factory.mktemp("checkout")
    settings = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    (work / "Pulumi.yaml").write_text(yaml.safe_dump({**settings, "main": os.path.relpath(ROOT, work)}))
    (work / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(
        {"config": {f"{PROJECT}:{k}": v for k, v in CONFIG.items()}}, sort_keys=False))
    live = Project(work, {**os.environ, **state_backend})
    live.pulumi("stack", "init")
    try:
        live.pulumi("up", "--yes", "--skip-preview", "--policy-pack", str(PACK_DIR))
        yield live
    finally:
        live.pulumi("destroy", "--yes")
        live.pulumi("stack", "rm", "--yes")


def test_the_state_is_in_the_bucket(project: Project) -> None:
    listed = project.pulumi("stack", "ls", "--json").stdout
    assert f'"name": "{STACK}"' in listed and "s3://" in project.env["PULUMI_BACKEND_URL"]
    assert (project.pulumi("stack", "output", "--json").stdout.count("[secret]") > 0)


def test_adding_a_service_lists_its_resources_as_creates(project: Project) -> None:
    code, report = project.preview(lambda c: c["services"].append({"name": "invoices"}))
    assert code == 0, report
    header = next(line for line in report.splitlines() if line.startswith("## Stack"))
    assert "to create" in header and "update" not in header and "replace" not in header, header
    section = report.split("### service invoices")[1].split("###")[0]
    assert "| create | `invoices` | `pgfleet:postgres:IsolatedDatabase` |" in section, report
    assert "`postgresql:index/database:Database`" in section and "`vault:" in section, section
    assert "Loses data" not in report and "Not mergeable" not in report


def test_a_connection_limit_is_an_update_in_place(project: Project) -> None:
    def limit(config: dict[str, Any]) -> None:
        config["services"][0]["connection_limit"] = 7

    code, report = project.preview(limit)
    assert code == 0, report
    assert "## Stack `pr`: 1 to update\n" in report, report
    section = report.split("### service orders")[1]
    assert "| update |" in section and "`postgresql:index/role:Role`" in section and "`connectionLimit`" in section


def test_a_database_rename_is_a_flagged_replace_and_one_comment_stays_the_same(project: Project) -> None:
    def rename(config: dict[str, Any]) -> None:
        config["services"][1]["database"] = "billing_v2"

    with fake_github() as github:
        pr_env = {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_TOKEN": TOKEN}
        code, report = project.preview(rename, "--comment", "--pr", str(PR), env=pr_env)
        assert code == 1, report
        losses = report.split("**Loses data**")[1].split("\n\n")[0]
        assert "replace of database `billing-db` in service billing (because `name` changed)" in losses, report
        assert report.index("Loses data") < report.index("### service billing")
        assert "- pr: replace of database billing-db loses data" in report
        again = project.preview(rename, "--comment", "--pr", str(PR), env=pr_env)
        assert again == (1, report)
        assert [c["body"] for c in github.comments] == [report]

        code, allowed = project.preview(rename, "--allow-data-loss", "--comment", "--pr", str(PR), env=pr_env)
        assert code == 0 and "allowed by the override" in allowed
        assert [c["body"] for c in github.comments] == [allowed]
