"""The dev stack for real: `pulumi up` on Docker, then the isolation proved on the live system."""
from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import hvac
import psycopg
import pytest
import sqlalchemy
from pulumi import automation as auto
from sqlalchemy.ext.asyncio import create_async_engine

from pgfleet.stacks import outputs
from tests.support import live as checks
from tests.support import tls
from tests.support.cluster import wait
from tests.support.engine import up_with_policies
from tests.support.live import Live, connect, docker_stack, isolated
from tests.support.program import stack_config

PREFIX = "pgfleet-it-dev-"
OFFSET = 10000
CONFIG = isolated(stack_config("Pulumi.dev.yaml"), PREFIX, port_offset=OFFSET)
CONFIG["vault"]["secret_id_num_uses"] = 3


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with docker_stack(tmp_path_factory.mktemp("dev"), "it-dev", CONFIG, PREFIX) as live:
        yield live


def test_up_created_every_service(live: Live) -> None:
    assert sorted(live.services) == ["auth", "catalog", "orders", "payments"]
    assert live.result.summary.result == "succeeded"


def test_each_app_reads_and_writes_what_its_migrator_created(live: Live) -> None:
    checks.check_apps_use_what_their_migrators_create(live)


def test_no_service_reaches_another_services_database(live: Live) -> None:
    assert checks.check_no_service_reaches_another(live) == 12


def test_app_roles_cannot_create_roles_or_databases_or_ddl(live: Live) -> None:
    checks.check_app_roles_are_least_privileged(live)


def test_public_has_no_connect(live: Live) -> None:
    checks.check_public_has_no_connect(live)


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


def test_approle_reads_its_own_secret_and_nothing_else(live: Live) -> None:
    checks.check_approles_read_only_their_own_path(live)


def test_used_up_secret_id_is_refused(live: Live) -> None:
    role_id = live.services["orders"]["vault_role_id"]
    # The role bounds every secret_id to 3 uses (CONFIG above).
    fresh = live.vault_client(live.root_token).auth.approle.generate_secret_id("orders")["data"]["secret_id"]
    for _ in range(3):
        live.vault_client().auth.approle.login(role_id=role_id, secret_id=fresh)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        live.vault_client().auth.approle.login(role_id=role_id, secret_id=fresh)


def test_expired_secret_id_is_refused(live: Live) -> None:
    """The TTL pgfleet sets on secret_ids holds at login (setup/patches/vault: upstream leaves an
    expired one usable until its once-a-minute tidy). The admission: one minted with a TTL
    ample for a loaded machine logs in; then one whose 2 s TTL ran out is refused."""
    role_id = live.services["orders"]["vault_role_id"]
    admin = live.vault_client(live.root_token)
    lasting = admin.adapter.post("/v1/auth/approle/role/orders/secret-id", json={"ttl": "60s"})
    live.vault_client().auth.approle.login(role_id=role_id, secret_id=lasting["data"]["secret_id"])
    expiring = admin.adapter.post("/v1/auth/approle/role/orders/secret-id", json={"ttl": "2s"})
    time.sleep(4)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        live.vault_client().auth.approle.login(role_id=role_id, secret_id=expiring["data"]["secret_id"])


def test_no_container_port_beyond_loopback(live: Live) -> None:
    expected = {"shared", "shared-read", "shared-pooler", "shared-metrics", "payments", "payments-metrics",
                "pgfleet-vault", "pgfleet-redis", "shared-base", "shared-dump", "payments-base", "payments-dump", "pgfleet-backup-store",
                "shared-tls", "payments-tls"}
    assert live.containers() == sorted(PREFIX + name for name in expected)
    checks.check_ports_on_loopback_only(live, {p + OFFSET for p in (5432, 5442, 6432, 9187, 5433, 9188, 8200, 6379)})


def test_no_container_config_holds_a_secret(live: Live) -> None:
    # every container of the stack: 13, and the 2 servers' TLS file writers
    assert checks.check_no_secret_in_container_config(live) == 15


def test_second_preview_shows_no_changes(live: Live) -> None:
    checks.check_second_preview_is_empty(live)


POOLER_PORT = CONFIG["servers"][0]["pooler"]["port"]


def _local(live: Live, url: str, port: int) -> str:
    """A URL of any driver form as this machine dials it: its server's 127.0.0.1 port, and the
    CA where the stack wrote it here."""
    parts = urlsplit(url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, live.local_query(parts.query), ""))


def test_network_connections_are_tls_only_and_verify_the_server(live: Live) -> None:
    url = live.url("orders")
    assert "sslmode=verify-full" in url
    with connect(url) as app:
        assert app.pgconn.ssl_in_use and tls.backend_uses_tls(app)
    with connect(live.urls["orders"]["local_url"]) as app:  # as handed out, with the CA the stack wrote here
        assert tls.backend_uses_tls(app)
    refused = tls.refusal(lambda: connect(url.replace("sslmode=verify-full", "sslmode=disable")).close())
    assert "no encryption" in refused  # pg_hba: hostssl only
    # the same server under a name its certificate does not carry fails verification
    elsewhere = tls.refusal(lambda: psycopg.connect(url, host="elsewhere.example", hostaddr="127.0.0.1",
                                                    connect_timeout=10).close())
    assert 'does not match host name "elsewhere.example"' in elsewhere


def test_every_driver_form_verifies_the_server(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    port = live.servers["shared"]["local_port"]
    urls = live.urls["orders"]
    engine = sqlalchemy.create_engine(_local(live, urls["postgresql+psycopg"], port))
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar()
    engine.dispose()

    async def asyncpg_ssl(url: str) -> bool:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                query = sqlalchemy.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                return bool((await connection.execute(query)).scalar())
        finally:
            await engine.dispose()

    def run_on_own_loop(url: str) -> bool:
        # not asyncio.run: it leaves the main thread without a loop, which Pulumi's mocks need later
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(asyncpg_ssl(url))
        finally:
            loop.close()

    asyncpg_url = _local(live, urls["postgresql+asyncpg"], port)
    assert asyncpg_url.endswith("?ssl=verify-full")
    monkeypatch.setenv("PGSSLROOTCERT", live.tls["local_ca_path"])  # asyncpg's way to the CA
    assert run_on_own_loop(asyncpg_url)
    monkeypatch.setenv("PGSSLROOTCERT", "/etc/ssl/certs/ca-certificates.crt")  # public CAs only: not ours
    assert "certificate verify failed" in tls.refusal(lambda: run_on_own_loop(asyncpg_url))


def test_the_replica_streams_from_the_primary_over_tls(live: Live) -> None:
    with connect(live.admin("orders")) as admin:
        streams = admin.execute(
            "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)").fetchall()
    assert streams == [(True,)]
    with connect(live.server_url("shared", live.servers["shared"]["admin_username"],
                                 live.admin_passwords["shared"], "postgres", read=True)) as replica:
        status, conninfo = replica.execute("SELECT status, conninfo FROM pg_stat_wal_receiver").fetchone()
    assert status == "streaming" and "sslmode=verify-full" in conninfo


def test_pgbouncer_is_tls_on_both_sides(live: Live) -> None:
    pooled = _local(live, live.urls["orders"]["pooled_url"], POOLER_PORT)
    with connect(pooled) as app:
        # the client's side is TLS, and so is the server session PgBouncer runs the query on
        assert app.pgconn.ssl_in_use and tls.backend_uses_tls(app)
    refused = tls.refusal(lambda: connect(pooled.replace("sslmode=verify-full", "sslmode=disable")).close())
    assert "SSL required" in refused
    served = tls.served_certificate("127.0.0.1", POOLER_PORT, live.tls["local_ca_path"], "shared-pooler")
    assert ("DNS", "shared-pooler") in served["subjectAltName"]


def test_a_rotation_through_up_reaches_the_servers_without_a_restart(live: Live) -> None:
    ca = live.tls["local_ca_path"]
    ports = {"primary": live.servers["shared"]["local_port"], "replica": live.servers["shared"]["local_read_port"],
             "pooler": POOLER_PORT}

    def serving(serial: int) -> bool:
        return all(tls.served_serial("127.0.0.1", port, ca, "localhost") == serial for port in ports.values())

    before = tls.vault_serial(live.servers["shared"]["certificate_serial"])
    assert serving(before)
    containers = {name: _container_id(f"{PREFIX}{name}") for name in ("shared", "shared-read", "shared-pooler")}
    with connect(live.url("orders")) as app, connect(live.admin("orders")) as admin:
        started = admin.execute("SELECT pg_postmaster_start_time()").fetchone()
        # a new rotation token: this `up` renews the certificate
        live.stack.set_config("pgfleet:tls", auto.ConfigValue(value=json.dumps({"rotation": f"test-{time.time_ns()}"})))
        result = up_with_policies(live.stack)
        after = tls.vault_serial(result.outputs[outputs.SERVERS].value["shared"]["certificate_serial"])
        assert after != before
        wait(lambda: serving(after), 60, "the primary, its replica and PgBouncer to serve the new certificate",
             interval=2, errors=(OSError, AssertionError))
        # the connection opened before the rotation carries on, and no server restarted
        assert app.execute("SELECT 1").fetchone() == (1,) and tls.backend_uses_tls(app)
        assert admin.execute("SELECT pg_postmaster_start_time()").fetchone() == started
    assert {name: _container_id(f"{PREFIX}{name}") for name in containers} == containers, "no container was replaced"
    checks.check_second_preview_is_empty(live)  # in the same period, with the same token: nothing is due


def _container_id(name: str) -> str:
    return subprocess.run(["docker", "inspect", name, "--format", "{{.Id}}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_unreachable_docker_engine_fails_clearly_and_touches_nothing(live: Live) -> None:
    before = _container_id(f"{PREFIX}shared")
    workspace = live.stack.workspace
    workspace.env_vars["DOCKER_HOST"] = "unix:///run/pgfleet-no-such-docker.sock"
    try:
        with pytest.raises(auto.CommandError, match="(?i)cannot connect to the docker daemon|docker.*daemon|no such file"):
            live.stack.up(refresh=True, on_output=print)
    finally:
        del workspace.env_vars["DOCKER_HOST"]
    assert _container_id(f"{PREFIX}shared") == before
    with connect(live.url("orders")) as app:
        assert ("orders-row",) in app.execute("SELECT label FROM items").fetchall(), "data survived"
    checks.check_second_preview_is_empty(live)


def test_bad_config_on_a_live_stack_changes_nothing(live: Live) -> None:
    before = _container_id(f"{PREFIX}shared")
    live.stack.set_config("pgfleet:services", auto.ConfigValue(value='[{"name": "Bad Name"}]'))
    try:
        with pytest.raises(auto.CommandError, match=r"services\[0\]\.name"):
            live.stack.up(on_output=print)
    finally:
        live.stack.set_config("pgfleet:services", auto.ConfigValue(value=json.dumps(CONFIG["services"])))
    assert _container_id(f"{PREFIX}shared") == before
    with connect(live.url("orders")) as app:
        assert ("orders-row",) in app.execute("SELECT label FROM items").fetchall(), "data survived"


def test_destroy_removes_everything_and_up_works_again(live: Live) -> None:
    live.stack.destroy(on_output=print)
    assert live.containers() == [] and live.volumes() == []
    assert subprocess.run(["docker", "network", "inspect", f"{PREFIX}net"], capture_output=True).returncode != 0
    again = Live(live.stack, live.stack.up(on_output=print), PREFIX)
    assert again.result.summary.result == "succeeded"
    with connect(again.url("catalog")) as app:
        assert app.execute("SELECT current_user").fetchone() == ("catalog_user",)
