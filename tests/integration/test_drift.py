"""Out-of-band changes to a live stack's databases and roles, seen by refresh and put back by up,
and a hand-made database adopted into the stack with `pulumi import`.

One small stack (one shared server, two services, no metrics, no backups). Each change is made
as the server's admin with psycopg, as an operator at a psql prompt would; `preview --refresh`
must name the resource that declares what changed, and `up --refresh` must put the catalog
back as declared. An unchanged stack must preview with refresh and no change at all.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from pulumi import automation as auto

from tests.support.live import Live, connect, docker_stack, isolated
from tests.support.program import PROJECT

PREFIX = "pgfleet-drift-"
CONFIG = isolated({
    "platform": "docker",
    "servers": [{"name": "main", "port": 5432, "metrics": {"enabled": False}}],
    "services": [{"name": "orders"}, {"name": "billing"}],
    "backup": {"enabled": False},
}, PREFIX, port_offset=10400)

#: Ops that are no change at all; refresh steps are reported apart from the plan's.
QUIET_OPS = {"same", "refresh", "read"}
#: Ops that would cost data or a credential on adoption.
DESTRUCTIVE_OPS = {"replace", "create-replacement", "delete-replaced", "delete", "discard", "import-replacement"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with docker_stack(tmp_path_factory.mktemp("drift"), "it-drift", CONFIG, PREFIX) as live:
        with connect(live.url("orders", "migration_url")) as migrator:
            migrator.execute("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)")
            migrator.execute("INSERT INTO items VALUES (1, 'kept')")
        yield live


def steps(run: Callable[..., object]) -> dict[str, set[str]]:
    """The engine's steps of one operation, by URN, leaving out those that change nothing."""
    ops: dict[str, set[str]] = defaultdict(set)

    def on_event(event: auto.EngineEvent) -> None:
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            ops[meta.urn].add(meta.op.value)

    run(on_event=on_event)
    return {urn: found - QUIET_OPS for urn, found in ops.items() if found - QUIET_OPS}


def urn(stack: auto.Stack, type_: str, name: str) -> str:
    for resource in stack.export_stack().deployment["resources"]:
        if resource["type"] == type_ and resource["urn"].endswith(f"::{name}"):
            return resource["urn"]
    raise AssertionError(f"no {type_} named {name} in the stack")


def scalar(live: Live, query: str, params: tuple[object, ...] = (), database: str = "postgres") -> object:
    with connect(live.admin("orders", database)) as admin:
        return admin.execute(query, params).fetchone()[0]


def app_reads_its_rows(live: Live) -> bool:
    with connect(live.url("orders")) as app:
        return app.execute("SELECT label FROM items WHERE id = 1").fetchone() == ("kept",)


def app_uses_its_schema(live: Live) -> bool:
    """The app connects and may use its schema (table privileges aside, see role-dropped)."""
    with connect(live.url("orders")) as app:
        return app.execute("SELECT has_schema_privilege(current_user, 'orders', 'USAGE')").fetchone() == (True,)


def test_an_unchanged_stack_refreshes_to_no_change(live: Live) -> None:
    # The admission side of every drift below: what Read returns must round-trip exactly.
    changes = steps(lambda **kw: live.stack.preview(refresh=True, expect_no_changes=True, **kw))
    assert changes == {}


def holds(check: Callable[[Live], bool], live: Live) -> bool:
    """A check's verdict, a refused connection or statement counting as false."""
    try:
        return check(live)
    except psycopg.Error:
        return False


@dataclass(frozen=True)
class Drift:
    """An operator's change: SQL as the admin (database, statement), the resource that must
    show it, and what must hold again after `up --refresh`."""

    sql: tuple[tuple[str, str], ...]
    type_: str
    resource: str
    repaired: Callable[[Live], bool]


ROLE, DATABASE = "postgresql:index/role:Role", "postgresql:index/database:Database"
GRANT, DEFAULTS = "postgresql:index/grant:Grant", "postgresql:index/defaultPrivileges:DefaultPrivileges"


def role_flag(column: str) -> Callable[[Live], bool]:
    return lambda live: scalar(live, f"SELECT {column} FROM pg_roles WHERE rolname = 'orders_user'") is False


def new_tables_reach_the_app(live: Live) -> bool:
    with connect(live.url("orders", "migration_url")) as migrator:
        migrator.execute("DROP TABLE IF EXISTS after_drift")
        migrator.execute("CREATE TABLE after_drift (id int)")
    with connect(live.url("orders")) as app:
        app.execute("SELECT count(*) FROM after_drift")
    return True


DRIFTS = {
    "superuser": Drift((("postgres", "ALTER ROLE orders_user SUPERUSER"),), ROLE, "orders-app", role_flag("rolsuper")),
    "createrole": Drift((("postgres", "ALTER ROLE orders_user CREATEROLE"),), ROLE, "orders-app",
                        role_flag("rolcreaterole")),
    "createdb": Drift((("postgres", "ALTER ROLE orders_user CREATEDB"),), ROLE, "orders-app", role_flag("rolcreatedb")),
    "role-connection-limit": Drift(
        (("postgres", "ALTER ROLE orders_user CONNECTION LIMIT 1"),), ROLE, "orders-app",
        lambda live: scalar(live, "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'orders_user'") == 20),
    "connect-to-public": Drift(
        (("postgres", "GRANT CONNECT ON DATABASE orders_db TO PUBLIC"),), GRANT, "orders-revoke-public",
        lambda live: scalar(live, "SELECT has_database_privilege('public', 'orders_db', 'CONNECT')") is False),
    "connect-revoked": Drift(
        (("postgres", "REVOKE CONNECT ON DATABASE orders_db FROM orders_user"),), GRANT, "orders-connect-app",
        app_reads_its_rows),
    "schema-usage-revoked": Drift(
        (("orders_db", "REVOKE USAGE ON SCHEMA orders FROM orders_user"),), GRANT, "orders-usage-app",
        app_uses_its_schema),
    "default-privilege-dropped": Drift(
        (("orders_db", ("ALTER DEFAULT PRIVILEGES FOR ROLE orders_migrator IN SCHEMA orders "
                        "REVOKE ALL ON TABLES FROM orders_user")),),
        DEFAULTS, "orders-app-tables-by-migrator", new_tables_reach_the_app),
    "database-owner": Drift(
        (("postgres", "ALTER DATABASE orders_db OWNER TO CURRENT_USER"),), DATABASE, "orders-database",
        lambda live: scalar(live, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'orders_db'")
        == "orders_owner"),
    "database-connection-limit": Drift(
        (("postgres", "ALTER DATABASE orders_db CONNECTION LIMIT 0"),), DATABASE, "orders-database",
        lambda live: scalar(live, "SELECT datconnlimit FROM pg_database WHERE datname = 'orders_db'") == -1
        and app_reads_its_rows(live)),
    # Last: DROP OWNED also took the app's privileges on the tables that exist, which no resource
    # declares (default privileges cover tables made later), so only new tables reach it again.
    "role-dropped": Drift(
        (("orders_db", "DROP OWNED BY orders_user"), ("postgres", "DROP OWNED BY orders_user"),
         ("postgres", "DROP ROLE orders_user")),
        ROLE, "orders-app", lambda live: app_uses_its_schema(live) and new_tables_reach_the_app(live)),
}


#: Drifts made together, one refresh-preview-up-preview round each (every round takes the engine
#: 30-70 s): changes to one resource, or to resources that share no catalog row. A group's
#: changes are still checked one by one: each must show on its own resource and be put back.
GROUPS = {
    "role-attributes": ["superuser", "createrole", "createdb", "role-connection-limit"],
    "database": ["database-owner", "database-connection-limit"],
    # in this order, so that each change is seen to take while the app can still connect
    "grants": ["default-privilege-dropped", "schema-usage-revoked", "connect-to-public", "connect-revoked"],
    "role-dropped": ["role-dropped"],
}


def test_every_drift_is_in_one_group() -> None:
    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(DRIFTS) and len(grouped) == len(set(grouped))


@pytest.mark.parametrize("group", list(GROUPS))
def test_refresh_shows_the_change_and_up_puts_it_back(live: Live, group: str) -> None:
    drifts = {name: DRIFTS[name] for name in GROUPS[group]}
    targets = {name: urn(live.stack, drift.type_, drift.resource) for name, drift in drifts.items()}
    for name, drift in drifts.items():
        for database, statement in drift.sql:
            with connect(live.admin("orders", database)) as admin:
                admin.execute(statement)
        assert not holds(drift.repaired, live), f"{name}: the change did not take"

    seen = steps(lambda **kw: live.stack.preview(refresh=True, **kw))
    for name, target in targets.items():
        assert target in seen, f"{name}: preview --refresh did not show {target}; it showed {sorted(seen)}"

    done = steps(lambda **kw: live.stack.up(refresh=True, **kw))
    for name, target in targets.items():
        assert target in done, f"{name}: up --refresh left {target} alone"
    others = {u: ops for u, ops in done.items() if "postgresql:index/" not in u or "::orders-" not in u}
    assert not others, f"{group}: up --refresh changed what the changes did not touch: {others}"
    for name, drift in drifts.items():
        assert holds(drift.repaired, live), f"{name}: the catalog is not back as declared"
    assert steps(lambda **kw: live.stack.preview(refresh=True, expect_no_changes=True, **kw)) == {}


def test_a_hand_made_database_is_adopted_without_replacing_it(live: Live) -> None:
    # What an operator made before pgfleet: an owner, a login role with its own password, the
    # database, a schema with a table and a row, the grants the app needed.
    with connect(live.admin("orders")) as admin:
        admin.execute("CREATE ROLE legacy_owner NOLOGIN")
        admin.execute("CREATE ROLE legacy_user LOGIN PASSWORD 'hand-made-password'")
        admin.execute("CREATE DATABASE legacy_db OWNER legacy_owner")
        admin.execute("REVOKE CONNECT ON DATABASE legacy_db FROM PUBLIC")
        admin.execute("GRANT CONNECT ON DATABASE legacy_db TO legacy_user")
    with connect(live.admin("orders", "legacy_db")) as admin:
        admin.execute("CREATE SCHEMA legacy AUTHORIZATION legacy_owner")
        admin.execute("CREATE TABLE legacy.notes (id int PRIMARY KEY, body text NOT NULL)")
        admin.execute("ALTER TABLE legacy.notes OWNER TO legacy_owner")
        admin.execute("INSERT INTO legacy.notes VALUES (1, 'written before pgfleet')")
        admin.execute("GRANT USAGE ON SCHEMA legacy TO legacy_user")
        admin.execute("GRANT SELECT, INSERT ON legacy.notes TO legacy_user")

    # README "Adopting an existing database": declare the service, import what exists, up.
    stack = live.stack
    services = json.loads(stack.get_config(f"{PROJECT}:services").value)
    stack.set_config(f"{PROJECT}:services", auto.ConfigValue(json.dumps([*services, {"name": "legacy"}])))
    provider = urn(stack, "pulumi:providers:postgresql", "main-provider")
    on_server = {"parent": "legacy", "provider": "main-provider"}
    stack.import_resources(
        resources=[
            {"type": "pgfleet:postgres:IsolatedDatabase", "name": "legacy", "component": True},
            {"type": ROLE, "name": "legacy-owner", "id": "legacy_owner", **on_server},
            {"type": ROLE, "name": "legacy-app", "id": "legacy_user", **on_server},
            {"type": DATABASE, "name": "legacy-database", "id": "legacy_db", **on_server},
            {"type": "postgresql:index/schema:Schema", "name": "legacy-schema", "id": "legacy_db.legacy",
             **on_server},
        ],
        name_table={"main-provider": provider},
        protect=False, generate_code=False, show_secrets=False, on_output=print,
    )
    imported = {name: urn(stack, type_, name) for type_, name in (
        (ROLE, "legacy-owner"), (ROLE, "legacy-app"), (DATABASE, "legacy-database"),
        ("postgresql:index/schema:Schema", "legacy-schema"))}

    planned = steps(lambda **kw: stack.preview(**kw))
    assert not {u: ops for u, ops in planned.items() if ops & DESTRUCTIVE_OPS}, planned
    result: list[auto.UpResult] = []
    done = steps(lambda **kw: result.append(stack.up(**kw)))
    assert not {u: ops for u, ops in done.items() if ops & DESTRUCTIVE_OPS}, done
    for name, resource in imported.items():
        assert "create" not in done.get(resource, set()), f"{name} was created, not adopted: {done[resource]}"
    # The app role now holds the stack's generated password (in Vault); the hand-made one is gone.
    assert done[imported["legacy-app"]] == {"update"}

    adopted = Live(stack, result[0], PREFIX)
    with connect(adopted.url("legacy")) as app:
        assert app.execute("SELECT body FROM notes WHERE id = 1").fetchone() == ("written before pgfleet",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(adopted.server_url("main", "legacy_user", "hand-made-password", "legacy_db")).close()
    assert steps(lambda **kw: stack.preview(refresh=True, expect_no_changes=True, **kw)) == {}
