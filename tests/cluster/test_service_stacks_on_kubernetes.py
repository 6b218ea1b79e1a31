"""Service-owned stacks on Kubernetes: a platform stack runs a PostgreSQL 17 server in the cluster
(an external Vault beside it, as prod has); two team stacks of the example project reach its
primary through a port-forward of the API server, as the platform's own program does, and each
declares its service's database through its own provisioner. The refusals across them, and one
team's destroy leaving the other's data."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.support.cluster import Cluster
from tests.support.engine import throwaway_stack, up_with_policies
from tests.support.live import connect
from tests.support.prod import ClusterLive, ExternalVault
from tests.support.program import stack_config
from tests.support.service_stacks import Team, team_stacks, topology

PREFIX = f"svc-{secrets.token_hex(2)}-"
TEAMS = ("orders", "billing")


def platform_config(vault: ExternalVault) -> dict[str, Any]:
    """examples/service-stacks/platform.yaml on the test cluster: its own namespace, the test's
    Vault, requests that fit one node, no backups (the other cluster tests drill them)."""
    config = stack_config("examples/service-stacks/platform.yaml")
    images = config.pop("docker")["images"]
    config.pop("vault")
    server = {"name": "shared", "version": 17, "cpu": "100m", "memory": "512Mi", "pooler": {"enabled": True}}
    return {**config, "platform": "kubernetes", "servers": [server],
            "service_stacks": [{"name": team} for team in TEAMS],
            "kubernetes": {"namespace": f"{PREFIX}db", "images": images},
            "vault": {"mode": "external", "address": vault.address}, "backup": {"enabled": False}}


@pytest.fixture(scope="module")
def platform(cluster: Cluster, vault: ExternalVault, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterLive]:
    try:
        with throwaway_stack(tmp_path_factory.mktemp("platform"), "svc", platform_config(vault),
                             {"vaultToken": vault.token}, protected=True) as stack:
            yield ClusterLive(stack, up_with_policies(stack), f"{PREFIX}db")
    finally:
        cluster.core.delete_namespace(f"{PREFIX}db")


@pytest.fixture(scope="module")
def teams(platform: ClusterLive, vault: ExternalVault,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Team]]:
    with team_stacks(platform, tmp_path_factory.mktemp("teams"), vault.token, TEAMS) as made:
        yield made


def _as(platform: ClusterLive, url: str, database: str | None = None) -> str:
    """A URL's credentials through this process's port-forward to the primary (TLS, not verified:
    the link ends on this machine, as the program's own does)."""
    parts = urlsplit(url)
    return platform.server_url("shared", parts.username or "", parts.password or "",
                               database or parts.path.lstrip("/"), query="sslmode=require")


def test_each_team_made_its_database_and_uses_it(platform: ClusterLive, teams: dict[str, Team]) -> None:
    for service, team in teams.items():
        assert team.outputs["database"] == f"{service}_db"
        assert urlsplit(team.outputs["url"]).hostname == f"shared.{PREFIX}db.svc.cluster.local"
        with connect(_as(platform, team.outputs["migration_url"])) as migrator:
            migrator.execute("CREATE TABLE items (id serial PRIMARY KEY, label text NOT NULL)")
        with connect(_as(platform, team.outputs["url"])) as app:
            app.execute("INSERT INTO items (label) VALUES (%s)", (f"{service}-row",))
    with connect(platform.admin_url("shared")) as admin:
        for service in teams:
            admins = {row[0] for row in admin.execute(
                "SELECT member::regrole::text FROM pg_auth_members WHERE roleid = %s::regrole AND admin_option",
                (f"{service}_user",)).fetchall()}
            assert admins == {f"{service}_provisioner"}


def test_no_team_reaches_the_others_database_or_roles(platform: ClusterLive, teams: dict[str, Team]) -> None:
    orders, billing = teams["orders"], teams["billing"]
    connect(_as(platform, orders.outputs["url"])).close()  # admitted to its own
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect(_as(platform, orders.outputs["url"], "billing_db")).close()
    client = platform.vault_client(orders.token)
    entry = topology(platform)["orders"]
    login = client.secrets.kv.v2.read_secret_version(path=entry["provisioner_secret"], mount_point=entry["kv_mount"],
                                                     raise_on_deleted_version=True)["data"]["data"]
    provisioner = platform.server_url("shared", login["username"], login["password"], "postgres",
                                      query="sslmode=require")
    with connect(provisioner) as session:
        session.execute("ALTER ROLE orders_user CONNECTION LIMIT 20")  # its own: admitted
        for statement in ("ALTER ROLE billing_user PASSWORD 'taken'", "DROP ROLE billing_readonly",
                          "GRANT billing_owner TO orders_provisioner", "DROP DATABASE billing_db"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                session.execute(statement)


def test_destroying_one_team_leaves_the_other_teams_data(platform: ClusterLive, teams: dict[str, Team]) -> None:
    teams["billing"].destroy()
    with connect(platform.admin_url("shared")) as admin:
        databases = {row[0] for row in admin.execute("SELECT datname FROM pg_database").fetchall()}
    assert "billing_db" not in databases and "orders_db" in databases
    with connect(_as(platform, teams["orders"].outputs["url"])) as app:
        assert ("orders-row",) in app.execute("SELECT label FROM items").fetchall()
