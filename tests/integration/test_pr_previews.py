"""Pull request previews as CI runs them (scripts/ci/preview.sh runs the same command): a dev
stack deployed with its state in a bucket of the project's own S3 store (versitygw, over TLS
with a certificate of its own: a DIY `s3://` backend), then its config changed as three pull
requests would. `pgfleet-preview` must show the new service as creates, the connection limit as
an update in place, and the database rename as a replace that loses data and fails the check
unless the PR carries the override; and a second run must leave the one PR comment as it was."""
from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pgfleet.policies import PACK_DIR
from pgfleet.operations.docker_engine import wait_healthy
from tests.support.engine import engine_env, program_work_dir
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
}, PREFIX, port_offset=11400)


@dataclass
class Project:
    """A git checkout of the project with one stack whose state is in the S3 bucket."""
    work: Path
    env: dict[str, str]
    base: str = ""

    @property
    def stack_file(self) -> Path:
        return self.work / f"Pulumi.{STACK}.yaml"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.work), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    def pulumi(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pulumi", *args, "--stack", STACK, "--non-interactive"], cwd=self.work, env=self.env,
                              capture_output=True, text=True, timeout=900, check=True)

    def commit(self, change: Callable[[dict[str, Any]], None], message: str) -> None:
        """Change the stack's config and commit it, as a pull request's branch would."""
        document = yaml.safe_load(self.stack_file.read_text())
        config = copy.deepcopy(CONFIG)
        change(config)
        document["config"] = {f"{PROJECT}:{k}": v for k, v in config.items()}
        self.stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
        self.git("commit", "-qam", message)

    def ci(self, job: str, base: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """A CI job's script (scripts/ci/JOB.sh BASE) on this checkout."""
        return subprocess.run(["bash", str(ROOT / "scripts" / "ci" / f"{job}.sh"), base], cwd=ROOT,
                              env={**self.env, "PGFLEET_PROJECT_DIR": str(self.work), **(env or {})},
                              capture_output=True, text=True, timeout=1800, check=False)

    def preview(self, change: Callable[[dict[str, Any]], None], env: dict[str, str] | None = None) -> tuple[int, str]:
        """The pull request job's report for a branch that makes this config change."""
        self.commit(change, "a pull request's change")
        try:
            done = self.ci("preview", self.base, env)
        finally:
            self.git("reset", "-q", "--hard", self.base)
        assert done.returncode in (0, 1), done.stderr[-3000:]
        assert (self.work / "preview-report.md").read_text() == done.stdout
        return done.returncode, done.stdout


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
        wait_healthy(STORE, 60)
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
    work = program_work_dir(tmp_path_factory.mktemp("checkout"))
    (work / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(
        {"config": {f"{PROJECT}:{k}": v for k, v in CONFIG.items()}}, sort_keys=False))
    live = Project(work, {**os.environ, **state_backend})
    live.git("init", "-q", "-b", "main")
    live.git("config", "user.email", "ci@pgfleet.test")
    live.git("config", "user.name", "pgfleet CI")
    live.pulumi("stack", "init")  # writes the stack's encryptionsalt, committed as README says
    live.git("add", ".")
    live.git("commit", "-qm", "the stack")
    live.base = live.git("rev-parse", "HEAD")
    try:
        live.pulumi("up", "--yes", "--skip-preview", "--policy-pack", str(PACK_DIR))
        yield live
    finally:
        live.pulumi("destroy", "--yes")
        live.pulumi("stack", "rm", "--yes")


def test_the_state_is_in_the_bucket(project: Project) -> None:
    stored = subprocess.run(["docker", "exec", STORE, "find", f"/var/lib/versitygw/{BUCKET}", "-name", f"{STACK}.json"],
                            capture_output=True, text=True, check=True).stdout
    assert f"/.pulumi/stacks/{PROJECT}/{STACK}.json" in stored, stored
    assert not (project.work / ".pulumi").exists()


def test_adding_a_service_lists_its_resources_as_creates(project: Project) -> None:
    code, report = project.preview(lambda c: c["services"].append({"name": "invoices"}))
    assert code == 0, report
    header = next(line for line in report.splitlines() if line.startswith("## Stack"))
    assert "to create" in header and "update" not in header and "replace" not in header, header
    section = report.split("### service invoices")[1].split("###")[0]
    assert "| create | `invoices` | `pgfleet:postgres:IsolatedDatabase` |" in section, report
    assert "`postgresql:index/database:Database`" in section and "`vault:" in section, section
    assert "Loses data" not in report and "Not mergeable" not in report


def limit_orders(config: dict[str, Any]) -> None:
    config["services"][0]["connection_limit"] = 15


def test_a_connection_limit_is_an_update_in_place(project: Project) -> None:
    code, report = project.preview(limit_orders)
    assert code == 0, report
    assert "## Stack `pr`: 2 to update\n" in report, report  # the service's app and read-only roles
    section = report.split("### service orders")[1]
    for role in ("orders-app", "orders-readonly"):
        assert f"| update | `{role}` | `postgresql:index/role:Role` | `connectionLimit` |" in section, report


def test_a_database_rename_is_a_flagged_replace_and_one_comment_stays_the_same(
        project: Project, tmp_path: Path) -> None:
    def rename(config: dict[str, Any]) -> None:
        config["services"][1]["database"] = "billing_v2"

    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": PR}}))
    with fake_github() as github:
        pr_env = {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_TOKEN": TOKEN,
                  "GITHUB_EVENT_PATH": str(event)}
        code, report = project.preview(rename, pr_env)
        assert code == 1, report
        # The database itself is renamed in place; its schema, which holds the service's tables,
        # is replaced (dropped and made anew): that is the data loss, flagged above the changes.
        losses = report.split("**Loses data**")[1].split("\n\n")[0]
        assert "replace of schema `billing-schema` in service billing (because `database` changed)" in losses, report
        assert "| update | `billing-database` | `postgresql:index/database:Database` | `name` |" in report
        assert report.index("Loses data") < report.index("### service billing")
        assert "- pr: replace of schema billing-schema loses data" in report
        assert project.preview(rename, pr_env) == (1, report)
        assert [c["body"] for c in github.comments] == [report]

        code, allowed = project.preview(rename, {**pr_env, "PGFLEET_ALLOW_DATA_LOSS": "true"})
        assert code == 0 and "allowed by the override" in allowed
        assert [c["body"] for c in github.comments] == [allowed]


def test_the_merged_change_is_applied_by_the_deploy_job(project: Project) -> None:
    project.commit(limit_orders, "merge: orders' connection limit")
    try:
        done = project.ci("up", project.base)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"== pulumi up --stack {STACK}" in done.stdout and "pgfleet@v0.1.0" in done.stdout, done.stdout
        assert project.ci("up", project.git("rev-parse", "HEAD")).stdout.strip().endswith("touches no stack")
        project.pulumi("preview", "--expect-no-changes")
    finally:
        project.git("reset", "-q", "--hard", project.base)
