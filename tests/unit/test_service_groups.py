"""Service groups under mocks: which stack holds which service, what the platform gives the
groups, what a group stack builds, and the fleet runner's refusals. The live side:
tests/integration/test_service_groups.py."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from pgfleet.operations.fleet import Fleet, FleetError
from pgfleet.stacks import ConfigError, outputs, parse_config
from pgfleet.stacks.config.groups import code_digest, fingerprint, group_of, group_stacks, parse_group_stack
from pgfleet.stacks.group import deploy
from tests.support.mocks import RecordingMocks
from tests.support.program import Run, exports, run, run_stack

DATABASE = "postgresql:index/database:Database"


def fleet_config(count: int, groups: int, **extra: Any) -> dict[str, Any]:
    return {
        "platform": "docker",
        "servers": [{"name": "pg", "port": 15432, "max_connections": 2000}],
        "services": [{"name": f"svc{i}"} for i in range(count)],
        "service_groups": groups,
        **extra,
    }


def test_a_service_keeps_its_group_while_others_come_and_go() -> None:
    names = [f"svc{i}" for i in range(200)]
    before = {name: group_of(name, 8) for name in names}
    assert {group_of(name, 8) for name in names + ["new-one"]} == set(range(8))
    assert {name: group_of(name, 8) for name in names[50:]} == {n: before[n] for n in names[50:]}
    sizes = Counter(before.values())
    assert min(sizes.values()) >= 15 and max(sizes.values()) <= 35, sizes  # 25 each on average


def test_group_stack_names_round_trip() -> None:
    assert parse_group_stack("dev-services-3") == ("dev", 3)
    assert parse_group_stack("team-a-services-12") == ("team-a", 12)
    assert parse_group_stack("dev") is None and parse_group_stack("dev-services-x") is None


def test_service_groups_out_of_range_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="service_groups"):
        parse_config(fleet_config(3, -1))
    assert parse_config(fleet_config(3, 2)).service_groups == 2


def test_a_changed_service_changes_its_own_groups_fingerprint_only() -> None:
    base = parse_config(fleet_config(20, 4))
    changed_raw = fleet_config(20, 4)
    changed_raw["services"][7]["connection_limit"] = 15
    changed = parse_config(changed_raw)
    home = group_of("svc7", 4)
    for group in range(4):
        same = fingerprint(base, group, "code") == fingerprint(changed, group, "code")
        assert same == (group != home), group
    # a server setting reaches every group, and so does the program's code
    servers = parse_config(fleet_config(20, 4, servers=[{"name": "pg", "port": 15433, "max_connections": 2000}]))
    assert all(fingerprint(base, g, "code") != fingerprint(servers, g, "code") for g in range(4))
    assert all(fingerprint(base, g, "code") != fingerprint(base, g, "other") for g in range(4))


@pytest.fixture(scope="module")
def platform() -> Run:
    return run_stack(fleet_config(6, 2), collect=lambda _: exports())


def test_the_platform_holds_no_service_database_and_says_where_each_is(platform: Run) -> None:
    assert not platform.mocks.of_type(DATABASE)
    stacks = platform.values[outputs.SERVICE_GROUP_STACKS].value
    assert sorted(stacks) == ["dev-services-0", "dev-services-1"]
    assert sorted(s for members in stacks.values() for s in members) == [f"svc{i}" for i in range(6)]
    access = platform.values[outputs.SERVICE_GROUPS]
    assert access.secret, "the groups' access (admin passwords, Vault token) must be a secret output"
    assert access.value["servers"]["pg"]["admin"] == {"kind": "docker", "host": "127.0.0.1", "port": 15432}
    assert access.value["servers"]["pg"]["admin_password"] and access.value["vault"]["token"]


def _project(tmp_path: Path, config: dict[str, Any]) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: pgfleet\nruntime: python\n")
    values = {f"pgfleet:{k}": v for k, v in config.items()}
    values["pgfleet:vaultToken"] = {"secure": "v1:ciphertext"}  # secret keys are skipped, not needed
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": values}))
    return tmp_path


def _group_run(root: Path, group: int, platform: Run) -> Run:
    RecordingMocks.stack_outputs = {outputs.SERVICE_GROUPS: platform.values[outputs.SERVICE_GROUPS].value}
    try:
        return run(lambda: deploy("dev", group, root, "pgfleet"), collect=lambda _: exports(),
                   stack=f"dev-services-{group}")
    finally:
        RecordingMocks.stack_outputs = {}


def test_a_group_stack_builds_its_own_services_on_the_platforms_server(tmp_path: Path, platform: Run) -> None:
    config = fleet_config(6, 2)
    root = _project(tmp_path, config)
    mine = sorted(platform.values[outputs.SERVICE_GROUP_STACKS].value["dev-services-1"])
    group = _group_run(root, 1, platform)
    assert sorted(r.inputs["name"] for r in group.mocks.of_type(DATABASE)) == [f"{s}_db" for s in mine]
    provider = group.mocks.named("pg-provider")
    assert provider.inputs["host"] == "127.0.0.1" and int(provider.inputs["port"]) == 15432
    assert "password" in provider.secret_paths
    assert sorted(group.values[outputs.SERVICES].value) == mine
    assert not group.values[outputs.SERVICES].secret, "hosts and ports are no secrets"
    assert group.values[outputs.CONNECTION_URLS].secret
    assert group.values[outputs.GROUP_FINGERPRINT].value == fingerprint(parse_config(config), 1, code_digest())


def test_a_group_past_the_configured_number_is_refused(tmp_path: Path, platform: Run) -> None:
    root = _project(tmp_path, fleet_config(6, 2))
    with pytest.raises(ConfigError, match="no group 2"):
        _group_run(root, 2, platform)


def test_the_fleet_refuses_a_config_that_moves_a_service_between_groups(tmp_path: Path) -> None:
    root = _project(tmp_path, fleet_config(6, 3))
    fleet = Fleet("dev", root)
    assert sorted(fleet.groups) == ["dev-services-0", "dev-services-1", "dev-services-2"]
    # as the stacks were with service_groups: 2
    before = group_stacks(parse_config(fleet_config(6, 2)), "dev")
    records = {stack: {outputs.SERVICES: {name: {} for name in members}} for stack, members in before.items()}
    moved = [s for s in (f"svc{i}" for i in range(6)) if group_of(s, 2) != group_of(s, 3)]
    assert moved, "the test needs a service whose group changes"
    with pytest.raises(FleetError, match=moved[0]):
        fleet.check_moves(records)
    # the same stacks, as the config places them now, pass
    now = {stack: {outputs.SERVICES: {name: {} for name in members}} for stack, members in fleet.groups.items()}
    fleet.check_moves(now)


def test_on_kubernetes_a_group_reaches_the_primary_through_the_api_and_keeps_secret_ids_for_the_pods(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**fleet_config(4, 2), "platform": "kubernetes", "servers": [{"name": "pg", "max_connections": 2000}],
              "vault": {"mode": "external", "address": "https://vault.example:8200"},
              "kubernetes": {"namespace": "db", "services_namespace": "apps"}, "backup": {"enabled": False}}
    platform = run_stack(config, secret_config={"vaultToken": "t0ken-for-tests"}, collect=lambda _: exports())
    access = platform.values[outputs.SERVICE_GROUPS].value
    assert access["servers"]["pg"]["admin"] == {"kind": "kubernetes", "namespace": "db", "pod": "pg-0", "port": 5432}
    assert access["vault"] == {"address": "https://vault.example:8200", "token": "t0ken-for-tests"}
    forwards: list[tuple[str, str, int]] = []
    monkeypatch.setattr("pgfleet.components.platform.kube_forward.ensure",
                        lambda namespace, pod, port: forwards.append((namespace, pod, port)) or "127.0.0.1")
    root = _project(tmp_path, config)
    mine = platform.values[outputs.SERVICE_GROUP_STACKS].value["dev-services-0"]
    assert mine, "the test needs a service in group 0"
    group = _group_run(root, 0, platform)
    assert forwards and set(forwards) == {("db", "pg-0", 5432)}
    secrets = {r.inputs["metadata"]["name"]: r for r in group.mocks.of_type("kubernetes:core/v1:Secret")}
    assert sorted(secrets) == sorted(f"{s}-vault-secret-id" for s in mine)
    assert {r.inputs["metadata"]["namespace"] for r in secrets.values()} == {"apps"}
    assert not group.mocks.of_type("kubernetes:core/v1:Namespace")
    assert all(r.protect for r in group.mocks.of_type(DATABASE)), "prod data is protected in a group stack too"
