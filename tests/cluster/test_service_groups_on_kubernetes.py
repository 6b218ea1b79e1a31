"""Service groups on Kubernetes: a platform stack runs a server in the cluster (an external Vault
beside it, as prod has); `pgfleet-fleet up` brings its two group stacks up, each reaching the
primary through a port-forward of the API server as the platform's program does. The checks
every live stack passes across the groups, each AppRole's secret_id where the services' pods
read it, the databases protected, and a change to one service running its group alone."""
from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from pgfleet.stacks import outputs
from pgfleet.stacks.config.groups import group_of
from tests.support.cluster import Cluster
from tests.support.fleet import FleetProject, fleet_project
from tests.support.live import (
    check_approles_read_only_their_own_path,
    check_apps_use_what_their_migrators_create,
    check_no_service_reaches_another,
    connect,
)
from tests.support.prod import ClusterLive, ExternalVault

PREFIX = f"grp-{secrets.token_hex(2)}-"
GROUPS = 2
SERVICES = ["orders", "billing", "search", "mailer"]


def platform_config(vault: ExternalVault) -> dict[str, Any]:
    return {
        "platform": "kubernetes",
        "servers": [{"name": "shared", "cpu": "100m", "memory": "512Mi", "metrics": {"enabled": False}}],
        "services": [{"name": name, "connection_limit": 10} for name in SERVICES],
        "service_groups": GROUPS,
        "kubernetes": {"namespace": f"{PREFIX}db"},
        "vault": {"mode": "external", "address": vault.address},
        "backup": {"enabled": False},
    }


@pytest.fixture(scope="module")
def fleet(cluster: Cluster, vault: ExternalVault, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetProject]:
    try:
        with fleet_project(tmp_path_factory.mktemp("groups"), "grp", platform_config(vault),
                           secret_config={"vaultToken": vault.token}, protected=True) as made:
            yield made
    finally:
        cluster.core.delete_namespace(f"{PREFIX}db")


@pytest.fixture(scope="module")
def live(fleet: FleetProject) -> ClusterLive:
    result = fleet.run("up")
    assert result.returncode == 0, result.stderr
    assert {fleet.actions(result)[fleet.group_stack(k)] for k in range(GROUPS)} == {"up"}
    return ClusterLive(fleet.platform_stack(), fleet.merged_outputs(GROUPS), f"{PREFIX}db")


def test_services_in_different_groups_are_isolated_on_the_cluster(live: ClusterLive) -> None:
    assert sorted(live.services) == sorted(SERVICES)
    assert len({group_of(s, GROUPS) for s in SERVICES}) == GROUPS, "the services must span both groups"
    check_apps_use_what_their_migrators_create(live)
    assert check_no_service_reaches_another(live) == len(SERVICES) * (len(SERVICES) - 1)
    check_approles_read_only_their_own_path(live)


def test_each_secret_id_is_kept_where_the_pods_read_it_and_the_data_is_protected(
        fleet: FleetProject, live: ClusterLive, cluster: Cluster) -> None:
    for service, info in live.services.items():
        assert info["vault_secret_id_ref"] == f"{PREFIX}db/{service}-vault-secret-id"
        secret = cluster.core.read_namespaced_secret(f"{service}-vault-secret-id", f"{PREFIX}db")
        assert set(secret.data) == {"VAULT_SECRET_ID"}
    for group in range(GROUPS):
        state = json.loads(fleet.pulumi("stack", "export", "-s", fleet.group_stack(group)))
        databases = [r for r in state["deployment"]["resources"] if r["type"] == "postgresql:index/database:Database"]
        assert databases and all(r.get("protect") for r in databases)


def test_a_change_to_one_service_runs_its_group_alone(fleet: FleetProject, vault: ExternalVault,
                                                      live: ClusterLive) -> None:
    changed = platform_config(vault)
    changed["services"][SERVICES.index("search")]["connection_limit"] = 12
    fleet.set_config(changed)
    result = fleet.run("up")
    assert result.returncode == 0, result.stderr
    ran = fleet.actions(result)
    home = fleet.group_stack(group_of("search", GROUPS))
    assert ran[home] == "up" and all(a == "skipped" for s, a in ran.items() if s not in (home, fleet.platform)), ran
    with connect(live.admin("search")) as admin:
        (limit,) = admin.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'search_user'").fetchone()
    assert limit == 12
    assert outputs.SERVICES in fleet.outputs(home)
