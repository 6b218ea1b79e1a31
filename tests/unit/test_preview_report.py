"""pgfleet-preview's report from pulumi's JSON digest and event log, the stacks a change touches,
and the PR comment it keeps up to date (against a local stand-in of GitHub's comments API: the
real one is not reachable here). The live previews are tests/integration/test_pr_previews.py."""
import json
from typing import Any

import pytest

from pgfleet.operations.preview import digest, touched
from pgfleet.operations.preview.github import GitHubError, PullRequest
from pgfleet.operations.preview.report import MARKER, blocking, changes, render
from tests.support.fake_github import PR, REPOSITORY, TOKEN, fake_github

STACK = "urn:pulumi:dev::pgfleet::pulumi:pulumi:Stack::pgfleet-dev"


def urn(chain: str, name: str) -> str:
    return f"urn:pulumi:dev::pgfleet::{chain}::{name}"


ORDERS = urn("pgfleet:postgres:IsolatedDatabase", "orders")
SHARED = urn("pgfleet:postgres:SharedServer", "shared")


def step(op: str, urn_: str, parent: str | None, **diff: list[str]) -> dict[str, Any]:
    state = {"type": urn_.split("::")[2].rsplit("$", 1)[-1], "parent": parent}
    return {"op": op, "urn": urn_, "newState" if op != "delete" else "oldState": state, **diff}


DIGEST = {"steps": [
    step("same", STACK, None),
    step("same", ORDERS, STACK),
    step("same", SHARED, STACK),
    step("create", urn("pgfleet:postgres:IsolatedDatabase$postgresql:index/role:Role", "orders-reader"), ORDERS),
    step("update", urn("pgfleet:postgres:IsolatedDatabase$postgresql:index/role:Role", "orders-app"), ORDERS,
         diffReasons=["connectionLimit"]),
    step("replace", urn("pgfleet:postgres:IsolatedDatabase$postgresql:index/database:Database", "orders-db"), ORDERS,
         replaceReasons=["name"]),
    step("create-replacement", urn("pgfleet:postgres:IsolatedDatabase$postgresql:index/database:Database",
                                   "orders-db"), ORDERS, replaceReasons=["name"]),
    step("delete", urn("pgfleet:postgres:SharedServer$docker:index/volume:Volume", "shared-wal"), SHARED),
    step("create", urn("vault:index/mount:Mount", "dev-kv"), STACK),
], "changeSummary": {"create": 2, "update": 1, "replace": 1, "delete": 1, "same": 3}}
VIOLATION = {"policyEvent": {"policyName": "docker-ports-on-loopback", "policyPackName": "pgfleet",
                             "enforcementLevel": "mandatory", "message": "ports[0] is published on 0.0.0.0",
                             "resourceUrn": urn("docker:index/container:Container", "shared-primary")}}


def test_changes_are_grouped_by_service_and_server_with_replacements_folded() -> None:
    found = changes(digest.read("dev", json.dumps(DIGEST)))
    assert [(c.group, c.op, c.name, c.reasons, c.loses_data) for c in found] == [
        ("server shared", "delete", "shared-wal", (), True),
        ("service orders", "create", "orders-reader", (), False),
        ("service orders", "update", "orders-app", ("connectionLimit",), False),
        ("service orders", "replace", "orders-db", ("name",), True),
        ("stack", "create", "dev-kv", (), False),
    ]


def test_data_loss_and_violations_block_and_the_override_lifts_only_data_loss() -> None:
    preview = digest.read("dev", json.dumps(DIGEST), json.dumps(VIOLATION) + "\n")
    assert blocking([preview], allow_data_loss=False) == [
        "dev: policy docker-ports-on-loopback is violated",
        "dev: delete of volume shared-wal loses data", "dev: replace of database orders-db loses data"]
    assert blocking([preview], allow_data_loss=True) == ["dev: policy docker-ports-on-loopback is violated"]
    clean = digest.read("dev", json.dumps({"steps": DIGEST["steps"][:5]}))
    assert blocking([clean], allow_data_loss=False) == []


def test_the_report_flags_data_loss_first_and_is_the_same_text_every_time() -> None:
    preview = digest.read("dev", json.dumps(DIGEST), json.dumps(VIOLATION) + "\n")
    body = render([preview])
    assert body.startswith(MARKER + "\n# pgfleet preview\n")
    assert "## Stack `dev`: 2 to create, 1 to update, 1 to replace, 1 to delete" in body
    assert body.index("**Loses data**") < body.index("### server shared") < body.index("### service orders")
    assert "> - replace of database `orders-db` in service orders (because `name` changed)" in body
    assert "| update | `orders-app` | `postgresql:index/role:Role` | `connectionLimit` |" in body
    assert "`docker-ports-on-loopback` (mandatory) on `shared-primary`" in body
    shuffled = {**DIGEST, "steps": list(reversed(DIGEST["steps"]))}
    assert render([digest.read("dev", json.dumps(shuffled), json.dumps(VIOLATION) + "\n")]) == body


def test_a_failed_preview_is_reported_and_blocks() -> None:
    preview = digest.read("prod", "", json.dumps({"diagnosticEvent": {"severity": "error",
                                                                      "message": "no stack named 'prod'"}}))
    assert preview.errors == ["no stack named 'prod'"]
    assert blocking([preview], allow_data_loss=True) == ["prod: the preview failed"]


def test_a_program_refusing_its_config_is_reported_with_what_it_said() -> None:
    said = {"diagnostics": [
        {"severity": "info#err", "message": "services[0].pool.max: pool max 10 exceeds connection_limit 7\n"},
        {"severity": "error",
         "message": "error: an unhandled error occurred: program exited with non-zero exit code: 1"}]}
    preview = digest.read("dev", json.dumps(said))
    assert preview.errors[0] == "services[0].pool.max: pool max 10 exceeds connection_limit 7"
    assert "> - `services[0].pool.max: pool max 10 exceeds connection_limit 7`" in render([preview])
    traceback = {"diagnostics": [{"severity": "error", "message": "error: Program failed:\nTraceback (most recent "
                                  "call last):\n  File \"x\"\nValueError: services[1].database: bad name\n"}]}
    assert digest.read("dev", json.dumps(traceback)).errors == ["ValueError: services[1].database: bad name"]


def test_stacks_touched_by_a_change() -> None:
    stacks = ["dev", "prod"]
    assert touched.stacks_touched(["Pulumi.prod.yaml", "README.md"], stacks) == ["prod"]
    assert touched.stacks_touched(["tests/unit/test_x.py", ".github/workflows/preview.yml"], stacks) == []
    assert touched.stacks_touched(["components/shared_server.py"], stacks) == ["dev", "prod"]
    assert touched.stacks_touched(["Pulumi.staging.yaml"], stacks) == []


def test_the_report_is_one_comment_updated_on_each_run() -> None:
    with fake_github([{"id": 1, "body": "LGTM", "html_url": "c1"}]) as github:
        pr = PullRequest(REPOSITORY, PR, TOKEN, github.url)
        first = render([digest.read("dev", json.dumps(DIGEST))])
        assert pr.upsert_report(first) == f"{github.url}/comment/2"
        second = render([digest.read("dev", json.dumps({"steps": DIGEST["steps"][:5]}))])
        assert pr.upsert_report(second) == f"{github.url}/comment/2"
        assert [c["body"] for c in github.comments] == ["LGTM", second]
    with fake_github() as github, pytest.raises(GitHubError, match="401"):
        PullRequest(REPOSITORY, PR, "wrong-token", github.url).upsert_report(first)
