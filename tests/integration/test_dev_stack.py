"""The dev stack for real: `pulumi up` on Docker, then the isolation proved on the live system."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import hvac
import psycopg
import pytest
from pulumi import automation as auto

from stacks import outputs
from tests.support.engine import throwaway_stack
from tests.support.program import stack_config

PREFIX = "pgfleet-it-"
# The shipped dev config on ports of its own, so it runs beside a developer's dev stack.
PORTS = {"shared": 25432, "shared_read": 25442, "pooler": 26432, "metrics": 29187, "payments": 25433,
         "vault": 28200, "redis": 26379}


def it_config() -> dict[str, Any]:
    config = stack_config("Pulumi.dev.yaml")
    shared = config["servers"][0]
    shared |= {"port": PORTS["shared"], "read_port": PORTS["shared_read"]}
    shared["pooler"]["port"] = PORTS["pooler"]
    shared["metrics"]["port"] = PORTS["metrics"]
    payments = next(s for s in config["services"] if s["name"] == "payments")
    payments["dedicated"]["port"] = PORTS["payments"]
    config["vault"] |= {"port": PORTS["vault"], "secret_id_num_uses": 3}
    config["redis"] |= {"port": PORTS["redis"]}
    config["docker"] = {"network": "pgfleet-it", "prefix": PREFIX}
    return config


class Live:
    """The stack's outputs, with URLs rewritten to the 127.0.0.1 ports the host can reach."""

    def __init__(self, stack: auto.Stack, result: auto.UpResult) -> None:
        self.stack = stack
        self.result = result
        values = {k: v.value for k, v in result.outputs.items()}
        self.services: dict[str, Any] = values[outputs.SERVICES]
        self.urls: dict[str, Any] = values[outputs.CONNECTION_URLS]
        self.secret_ids: dict[str, str] = values[outputs.VAULT_SECRET_IDS]
        self.vault: dict[str, Any] = values[outputs.VAULT]
        self.root_token: str = values[outputs.VAULT_ROOT_TOKEN]
        self.servers: dict[str, Any] = values[outputs.SERVERS]
        self.admin_passwords: dict[str, str] = values[outputs.SERVER_ADMIN_PASSWORDS]

    def local(self, url: str, read: bool = False) -> str:
        """The same URL through the server's host port (libpq form for psycopg)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        server = next(s for s in self.servers.values() if host in (s["host"], s["read_host"]))
        port = server["local_read_port"] if read and host == server["read_host"] != server["host"] else server["local_port"]
        netloc = f"{parts.username}:{parts.password}@127.0.0.1:{port}"
        return urlunsplit(("postgresql", netloc, parts.path, parts.query, ""))

    def url(self, service: str, kind: str = "url") -> str:
        return self.local(self.urls[service][kind], read=kind.startswith("read"))

    def admin(self, service: str, database: str = "postgres") -> str:
        server = self.services[service]["server"]
        info = self.servers[server]
        return (f"postgresql://{info['admin_username']}:{self.admin_passwords[server]}"
                f"@127.0.0.1:{info['local_port']}/{database}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with throwaway_stack(tmp_path_factory.mktemp("dev"), "it-dev", it_config()) as stack:
        result = stack.up(on_output=print)
        yield Live(stack, result)


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, connect_timeout=10, autocommit=True)


def test_up_created_every_service(live: Live) -> None:
    assert sorted(live.services) == ["auth", "catalog", "orders", "payments"]
    assert live.result.summary.result == "succeeded"


def test_each_app_reads_and_writes_what_its_migrator_created(live: Live) -> None:
    for service in live.services:
        with connect(live.url(service, "migration_url")) as migrator:
            migrator.execute("CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, label text NOT NULL)")
        with connect(live.url(service)) as app:
            app.execute("INSERT INTO items (label) VALUES (%s)", (f"{service}-row",))
            rows = app.execute("SELECT label FROM items").fetchall()
            assert (f"{service}-row",) in rows
            app.execute("UPDATE items SET label = label WHERE true")
            app.execute("DELETE FROM items WHERE label = 'none'")


def test_no_service_reaches_another_services_database(live: Live) -> None:
    attempts = 0
    for service in live.services:
        for other, info in live.services.items():
            if other == service:
                continue
            # Service's own credentials, aimed at the other service's server and database.
            other_server = live.servers[info["server"]]
            parts = urlsplit(live.url(service))
            target = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{other_server['local_port']}",
                                    path=f"/{info['database']}")
            with pytest.raises(psycopg.OperationalError, match="permission denied for database|password authentication failed"):
                connect(urlunsplit(target)).close()
            attempts += 1
    n = len(live.services)
    assert attempts == n * (n - 1)


def test_app_roles_cannot_create_roles_or_databases_or_ddl(live: Live) -> None:
    with connect(live.url("orders")) as app:
        for statement in ("CREATE ROLE intruder", "CREATE DATABASE intruder", "CREATE TABLE intruder (id int)",
                          "DROP TABLE items"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)


def test_public_has_no_connect(live: Live) -> None:
    for service, info in live.services.items():
        with connect(live.admin(service)) as admin:
            (allowed,) = admin.execute(
                "SELECT has_database_privilege('public', %s, 'CONNECT')", (info["database"],)
            ).fetchone()
            assert allowed is False, service


def test_readonly_reads_on_the_read_host_and_cannot_write(live: Live) -> None:
    deadline = time.monotonic() + 60
    with connect(live.url("auth", "read_url")) as reader:
        while True:  # the replica replays the rows written above within moments
            rows = reader.execute("SELECT label FROM items").fetchall()
            if ("auth-row",) in rows or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert ("auth-row",) in rows
        (in_recovery,) = reader.execute("SELECT pg_is_in_recovery()").fetchone()
        assert in_recovery is True, "the read URL of a server with a replica points at the replica"
        with pytest.raises((psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)):
            reader.execute("INSERT INTO items (label) VALUES ('x')")
    with connect(live.admin("auth", "auth_db")) as admin:
        admin.execute("SET ROLE auth_readonly")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute("INSERT INTO auth.items (label) VALUES ('x')")


def vault_client(live: Live) -> hvac.Client:
    return hvac.Client(url=f"http://127.0.0.1:{PORTS['vault']}")


def test_approle_reads_its_own_secret_and_nothing_else(live: Live) -> None:
    mount = live.vault["kv_mount"]
    for service, info in live.services.items():
        client = vault_client(live)
        client.auth.approle.login(role_id=info["vault_role_id"], secret_id=live.secret_ids[service])
        own = client.secrets.kv.v2.read_secret_version(path=service, mount_point=mount, raise_on_deleted_version=True)
        assert own["data"]["data"]["DB_NAME"] == info["database"]
        for other in live.services:
            if other != service:
                with pytest.raises(hvac.exceptions.Forbidden):
                    client.secrets.kv.v2.read_secret_version(path=other, mount_point=mount,
                                                             raise_on_deleted_version=True)


def _admin(live: Live) -> hvac.Client:
    return hvac.Client(url=f"http://127.0.0.1:{PORTS['vault']}", token=live.root_token)


def test_used_up_secret_id_is_refused(live: Live) -> None:
    role_id = live.services["orders"]["vault_role_id"]
    # The role bounds every secret_id to 3 uses (the config above).
    fresh = _admin(live).auth.approle.generate_secret_id("orders")["data"]["secret_id"]
    for _ in range(3):
        vault_client(live).auth.approle.login(role_id=role_id, secret_id=fresh)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault_client(live).auth.approle.login(role_id=role_id, secret_id=fresh)


@pytest.mark.xfail(strict=True, reason="the Vault server setup/ builds offline (v1.21.4 on a patched sdk) "
                   "does not refuse expired secret_ids at login; see setup/README.md")
def test_expired_secret_id_is_refused(live: Live) -> None:
    role_id = live.services["orders"]["vault_role_id"]
    expiring = _admin(live).adapter.post("/v1/auth/approle/role/orders/secret-id", json={"ttl": "2s"})
    time.sleep(4)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault_client(live).auth.approle.login(role_id=role_id, secret_id=expiring["data"]["secret_id"])


def docker_ps(*args: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"name=^{PREFIX}", *args],
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def test_no_container_port_beyond_loopback(live: Live) -> None:
    names = docker_ps("--format", "{{.Names}}")
    expected = {"shared", "shared-read", "shared-pooler", "shared-metrics", "payments", "pgfleet-vault", "pgfleet-redis"}
    assert sorted(names) == sorted(PREFIX + name for name in expected)
    published = set()
    for name in names:
        ports = subprocess.run(["docker", "port", name], capture_output=True, text=True, check=True).stdout
        for line in ports.splitlines():
            assert "-> 127.0.0.1:" in line, f"{name}: {line}"
            published.add(int(line.rsplit(":", 1)[1]))
    assert published == set(PORTS.values())


def test_second_preview_shows_no_changes(live: Live) -> None:
    preview = live.stack.preview(on_output=print)
    changes = {op: n for op, n in preview.change_summary.items() if op != auto.OpType.SAME and n}
    assert not changes, changes


def test_destroy_removes_everything_and_up_works_again(live: Live) -> None:
    live.stack.destroy(on_output=print)
    assert docker_ps("--format", "{{.Names}}") == []
    volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"name=^{PREFIX}"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert volumes == []
    again = live.stack.up(on_output=print)
    assert again.summary.result == "succeeded"
    with connect(Live(live.stack, again).url("catalog")) as app:
        app.execute("SELECT 1")


def test_bad_config_on_a_live_stack_changes_nothing(live: Live) -> None:
    before = subprocess.run(["docker", "inspect", f"{PREFIX}shared", "--format", "{{.Id}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    live.stack.set_config("pgfleet:services", auto.ConfigValue(value='[{"name": "Bad Name"}]'))
    try:
        with pytest.raises(auto.CommandError, match=r"services\[0\]\.name"):
            live.stack.up(on_output=print)
    finally:
        live.stack.set_all_config({"pgfleet:services": auto.ConfigValue(value=_services_json())})
    after = subprocess.run(["docker", "inspect", f"{PREFIX}shared", "--format", "{{.Id}}"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert before == after


def _services_json() -> str:
    import json

    return json.dumps(it_config()["services"])
