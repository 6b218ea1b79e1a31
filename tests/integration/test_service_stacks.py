"""Service-owned stacks for real: a platform stack runs the server and Vault; two team stacks of
the example Python project (pgfleet pip-installed in its own virtualenv) and one Pulumi YAML
program (pgfleet's component package) declare their services' databases and AppRoles, each
through its own provisioner. Then the isolation matrix across them, and one team's destroy."""
from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import hvac
import psycopg
import pytest

from tests.support.live import Live, connect, docker_stack, exported_state, isolated
from tests.support.prometheus import exporter_samples
from tests.support.program import stack_config
from tests.support.service_stacks import Team, team_stacks, topology

PREFIX = "pgfleet-it-svc-"
CONFIG = isolated(stack_config("examples/service-stacks/platform.yaml"), PREFIX, port_offset=10500)
CONFIG["servers"][0]["metrics"] = {"port": 9187 + 10500}  # the exporter published, read directly
PYTHON_TEAMS = ("orders", "billing")
YAML_TEAM = "inventory"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with docker_stack(tmp_path_factory.mktemp("platform"), "it-svc", CONFIG, PREFIX) as live:
        yield live


@pytest.fixture(scope="module")
def teams(platform: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Team]]:
    assert platform.root_token is not None
    with team_stacks(platform, tmp_path_factory.mktemp("teams"), platform.root_token, PYTHON_TEAMS, YAML_TEAM) as made:
        yield made


def _local(platform: Live, url: str) -> str:
    """A team's URL as this process dials it: the server's published port, the CA on this machine."""
    parts = urlsplit(url)
    return platform.server_url("shared", parts.username or "", parts.password or "", parts.path.lstrip("/"),
                               query=platform.local_query(parts.query))


def _provisioner(platform: Live, team: Team) -> str:
    """The team's provisioner login, read from Vault with the team's own token."""
    client = platform.vault_client(team.token)
    entry = topology(platform)[team.service]
    data = client.secrets.kv.v2.read_secret_version(path=entry["provisioner_secret"], mount_point=entry["kv_mount"],
                                                    raise_on_deleted_version=True)["data"]["data"]
    return platform.server_url("shared", data["username"], data["password"], "postgres")


def test_each_team_declared_its_database_through_its_own_provisioner(platform: Live, teams: dict[str, Team]) -> None:
    assert sorted(teams) == sorted((*PYTHON_TEAMS, YAML_TEAM))
    with connect(platform.admin_url("shared")) as admin:
        for service, team in teams.items():
            assert team.outputs["database"] == f"{service}_db"
            (owner,) = admin.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (f"{service}_db",)).fetchone()
            assert owner == f"{service}_owner"
            # PostgreSQL 16+ gives the role that made a role ADMIN OPTION on it: the team's
            # provisioner, never the superuser
            admins = {row[0] for row in admin.execute(
                "SELECT m.member::regrole::text FROM pg_auth_members m WHERE m.roleid = %s::regrole "
                "AND m.admin_option", (f"{service}_user",)).fetchall()}
            assert admins == {f"{service}_provisioner"}


def test_each_app_uses_what_its_migrator_created(platform: Live, teams: dict[str, Team]) -> None:
    for service, team in teams.items():
        with connect(_local(platform, team.outputs["migration_url"])) as migrator:
            migrator.execute("CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, label text NOT NULL)")
        with connect(_local(platform, team.outputs["url"])) as app:
            app.execute("INSERT INTO items (label) VALUES (%s)", (f"{service}-row",))
            assert (f"{service}-row",) in app.execute("SELECT label FROM items").fetchall()


def test_no_service_reaches_another_services_database(platform: Live, teams: dict[str, Team]) -> None:
    refused = 0
    for service, team in teams.items():
        own = urlsplit(team.outputs["url"])
        for other, other_team in teams.items():
            url = platform.server_url("shared", own.username or "", own.password or "", f"{other}_db",
                                      query=platform.local_query(own.query))
            if other == service:
                connect(url).close()  # admitted to its own: the refusals below are about the database
                continue
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                connect(url).close()
            refused += 1
    assert refused == len(teams) * (len(teams) - 1)


def test_a_provisioner_manages_its_own_roles_and_no_other_teams(platform: Live, teams: dict[str, Team]) -> None:
    checked = 0
    for service, team in teams.items():
        with connect(_provisioner(platform, team)) as provisioner:
            # its own: admitted (a new limit on its app role, then put back as declared)
            provisioner.execute(f"ALTER ROLE {service}_user CONNECTION LIMIT 7")
            provisioner.execute(f"ALTER ROLE {service}_user CONNECTION LIMIT {20 if service != YAML_TEAM else 15}")
            for other in teams:
                if other == service:
                    continue
                for statement in (f"ALTER ROLE {other}_user PASSWORD 'taken'", f"DROP ROLE {other}_readonly",
                                  f"GRANT {other}_owner TO {service}_provisioner", f"DROP DATABASE {other}_db"):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        provisioner.execute(statement)
                    checked += 1
            for statement in ("ALTER ROLE postgres PASSWORD 'taken'", "CREATE ROLE root_like SUPERUSER"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    provisioner.execute(statement)
        # nor reach another team's database as itself
        for other in teams:
            if other != service:
                parts = urlsplit(_provisioner(platform, team))
                with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                    connect(platform.server_url("shared", parts.username or "", parts.password or "",
                                                f"{other}_db")).close()
    assert checked == len(teams) * (len(teams) - 1) * 4


def test_a_team_token_reaches_only_its_own_service_in_vault(platform: Live, teams: dict[str, Team]) -> None:
    entries = topology(platform)
    mount = entries["orders"]["kv_mount"]
    orders = platform.vault_client(teams["orders"].token)
    # its own: the credentials its stack wrote, its provisioner's login, its AppRole
    assert orders.secrets.kv.v2.read_secret_version(path="orders", mount_point=mount,
                                                    raise_on_deleted_version=True)["data"]["data"]["DB_NAME"] == "orders_db"
    assert orders.read("auth/approle/role/orders/role-id")["data"]["role_id"] == teams["orders"].outputs["vault_role_id"]
    refusals = [
        lambda: orders.secrets.kv.v2.read_secret_version(path="billing", mount_point=mount,
                                                         raise_on_deleted_version=True),
        lambda: orders.secrets.kv.v2.create_or_update_secret(path="billing", secret={"DB_PASSWORD": "x"},
                                                             mount_point=mount),
        lambda: orders.secrets.kv.v2.read_secret_version(path=entries["billing"]["provisioner_secret"],
                                                         mount_point=mount, raise_on_deleted_version=True),
        lambda: orders.write("auth/approle/role/billing", token_policies=["orders-read"]),
        # its own AppRole, widened: refused
        lambda: orders.write("auth/approle/role/orders", token_policies=["orders-read", "billing-read"]),
        lambda: orders.sys.create_or_update_policy("orders-read", 'path "*" { capabilities = ["read"] }'),
    ]
    for attempt in refusals:
        with pytest.raises(hvac.exceptions.Forbidden):
            attempt()


def test_each_approle_reads_only_its_own_credentials(platform: Live, teams: dict[str, Team]) -> None:
    mount = topology(platform)["orders"]["kv_mount"]
    for service, team in teams.items():
        client = platform.vault_client()
        client.auth.approle.login(role_id=team.outputs["vault_role_id"], secret_id=team.outputs["vault_secret_id"])
        own = client.secrets.kv.v2.read_secret_version(path=service, mount_point=mount, raise_on_deleted_version=True)
        assert own["data"]["data"]["DB_NAME"] == f"{service}_db"
        assert own["data"]["data"]["DATABASE_CA_CERT"].startswith("-----BEGIN CERTIFICATE-----")
        for other in teams:
            if other != service:
                with pytest.raises(hvac.exceptions.Forbidden):
                    client.secrets.kv.v2.read_secret_version(path=other, mount_point=mount,
                                                             raise_on_deleted_version=True)


def test_no_secret_reaches_the_platform_topology(platform: Live) -> None:
    topology = platform.result.outputs["service_stacks"]
    assert not topology.secret
    passwords = list(platform.admin_passwords.values())
    assert not any(password in str(topology.value) for password in passwords)


def test_no_team_state_holds_a_secret_in_plain_text(platform: Live, teams: dict[str, Team]) -> None:
    for team in teams.values():
        state = exported_state(team.stack)
        provisioner = urlsplit(_provisioner(platform, team)).password or ""
        app = urlsplit(team.outputs["url"]).password or ""
        assert len(provisioner) >= 16 and len(app) >= 16
        for secret in (team.token, provisioner, app):
            assert secret not in state, f"{team.service}: a secret is in its state in plain text"
        assert "ciphertext" in state  # they are there, encrypted


def _metrics_by_service(name: str) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for labels, _ in exporter_samples(CONFIG["servers"][0]["metrics"]["port"], name):
        found.setdefault(labels["service"], []).append(labels)
    return found


def test_each_teams_service_has_its_own_metrics(platform: Live, teams: dict[str, Team]) -> None:
    # the platform names only the services; the exporter finds what each provisioner made
    roles = _metrics_by_service("pgfleet_role_connections")
    sizes = _metrics_by_service("pgfleet_database_size_bytes")
    assert set(roles) == set(sizes) == set(teams)
    for service in teams:
        assert {(r["database"], r["role"]) for r in roles[service]} == {
            (f"{service}_db", f"{service}_{role}") for role in ("migrator", "user", "readonly")}
        assert [s["database"] for s in sizes[service]] == [f"{service}_db"]
    assert not _metrics_by_service("pgfleet_dump_last_success_timestamp_seconds")  # not the platform's dumps


def test_destroying_one_team_stack_leaves_the_others_data(platform: Live, teams: dict[str, Team]) -> None:
    billing = teams["billing"]
    billing.stack.destroy(on_output=print)
    assert set(_metrics_by_service("pgfleet_role_connections")) == set(teams) - {"billing"}
    with connect(platform.admin_url("shared")) as admin:
        databases = {row[0] for row in admin.execute("SELECT datname FROM pg_database").fetchall()}
        roles = {row[0] for row in admin.execute("SELECT rolname FROM pg_roles").fetchall()}
    assert "billing_db" not in databases and "billing_user" not in roles
    assert {"orders_db", f"{YAML_TEAM}_db"} <= databases
    for service in ("orders", YAML_TEAM):
        with connect(_local(platform, teams[service].outputs["url"])) as app:
            assert (f"{service}-row",) in app.execute("SELECT label FROM items").fetchall()
    # and the platform still gives billing's team what it needs to come back
    assert "billing_provisioner" in roles
