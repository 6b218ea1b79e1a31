"""The dev stack for real: `pulumi up` on Docker, then the isolation proved on the live system."""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import hvac
import psycopg
import pytest
from pulumi import automation as auto

from tests.support import live as checks
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
    expected = {"shared", "shared-read", "shared-pooler", "shared-metrics", "payments", "pgfleet-vault", "pgfleet-redis",
                "shared-base", "shared-dump", "payments-base", "payments-dump", "pgfleet-backup-store"}
    assert live.containers() == sorted(PREFIX + name for name in expected)
    checks.check_ports_on_loopback_only(live, {p + OFFSET for p in (5432, 5442, 6432, 9187, 5433, 8200, 6379)})


def test_no_container_config_holds_a_secret(live: Live) -> None:
    assert checks.check_no_secret_in_container_config(live) == 12  # every container of the stack


def test_second_preview_shows_no_changes(live: Live) -> None:
    checks.check_second_preview_is_empty(live)


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
