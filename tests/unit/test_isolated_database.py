"""IsolatedDatabase alone: its roles, the isolation grants, and its secret URLs."""
from __future__ import annotations

import itertools

import pytest

from pgfleet.components import DRIVER_SCHEMES, IsolatedDatabase, IsolatedDatabaseArgs
from tests.support.builders import server_connection
from tests.support.program import Run, run

GRANT = "postgresql:index/grant:Grant"
DEFAULT_PRIVILEGES = "postgresql:index/defaultPrivileges:DefaultPrivileges"
ROLE = "postgresql:index/role:Role"


def build_auth(pooler: bool = False) -> Run:
    def program() -> IsolatedDatabase:
        return IsolatedDatabase("auth", IsolatedDatabaseArgs(
            server=server_connection(pooler=pooler, local_port=5433), service="auth", connection_limit=15,
            statement_timeout_ms=10_000,
        ))

    def collect(db: IsolatedDatabase) -> dict:
        values = {"url": db.url, "read_url": db.read_url, "migration_url": db.migration_url,
                  "app_password": db.app_password, "local_url": db.local_url}
        values |= {f"urls.{s}": db.urls[s] for s in DRIVER_SCHEMES}
        values |= {f"read_urls.{s}": db.read_urls[s] for s in DRIVER_SCHEMES}
        if db.pooled_url is not None:
            values["pooled_url"] = db.pooled_url
        return values

    return run(program, collect)


@pytest.fixture(scope="module")
def auth() -> Run:
    return build_auth()


def test_roles_owner_nologin_migrator_member_app_limited(auth: Run) -> None:
    roles = {r.inputs["name"]: r.inputs for r in auth.mocks.of_type(ROLE)}
    assert set(roles) == {"auth_owner", "auth_migrator", "auth_user", "auth_readonly"}
    assert roles["auth_owner"]["login"] is False
    assert roles["auth_migrator"]["login"] is True and roles["auth_migrator"]["roles"] == ["auth_owner"]
    app = roles["auth_user"]
    assert app["connectionLimit"] == 15 and app["statementTimeout"] == 10_000
    assert app.get("roles") in (None, []), "the app role must not inherit the owner's DDL rights"
    for name in ("auth_user", "auth_readonly", "auth_migrator"):
        assert not roles[name].get("createRole") and not roles[name].get("createDatabase")
        assert not roles[name].get("superuser")


def test_passwords_go_to_roles_as_secrets(auth: Run) -> None:
    for role in auth.mocks.of_type(ROLE):
        if role.inputs["login"]:
            assert role.is_secret("password"), role.urn


def test_database_and_schema_owned_by_the_owner(auth: Run) -> None:
    database = auth.mocks.named("auth-database").inputs
    schema = auth.mocks.named("auth-schema").inputs
    assert (database["name"], database["owner"]) == ("auth_db", "auth_owner")
    assert (schema["name"], schema["owner"], schema["database"]) == ("auth", "auth_owner", "auth_db")
    assert schema["dropCascade"] is False


def test_public_loses_connect_and_only_own_roles_get_it(auth: Run) -> None:
    database_grants = [g.inputs for g in auth.mocks.of_type(GRANT) if g.inputs["objectType"] == "database"]
    revoke = [g for g in database_grants if g["role"] == "public"]
    assert revoke == [{"database": "auth_db", "role": "public", "objectType": "database", "privileges": []}]
    connect = {g["role"] for g in database_grants if g["privileges"] == ["CONNECT"]}
    assert connect == {"auth_migrator", "auth_user", "auth_readonly"}


def test_default_privileges_for_role_owner_and_migrator(auth: Run) -> None:
    defaults = {
        (d.inputs["owner"], d.inputs["role"], d.inputs["objectType"]): d.inputs["privileges"]
        for d in auth.mocks.of_type(DEFAULT_PRIVILEGES)
    }
    for creator in ("auth_owner", "auth_migrator"):
        assert defaults[(creator, "auth_user", "table")] == ["SELECT", "INSERT", "UPDATE", "DELETE"]
        assert defaults[(creator, "auth_user", "sequence")] == ["USAGE", "SELECT", "UPDATE"]
        assert defaults[(creator, "auth_readonly", "table")] == ["SELECT"]
        assert defaults[(creator, "auth_readonly", "sequence")] == ["SELECT"]
    assert all(d.inputs["schema"] == "auth" for d in auth.mocks.of_type(DEFAULT_PRIVILEGES))
    assert len(defaults) == 8


def test_app_role_gets_dml_never_ddl(auth: Run) -> None:
    privileges = set()
    for grant in auth.mocks.of_type(GRANT) + auth.mocks.of_type(DEFAULT_PRIVILEGES):
        if grant.inputs["role"] == "auth_user":
            privileges |= set(grant.inputs["privileges"])
    assert privileges == {"CONNECT", "USAGE", "SELECT", "INSERT", "UPDATE", "DELETE"}
    assert "CREATE" not in privileges and "TRUNCATE" not in privileges


def test_contents_go_with_the_database_and_protection_follows_the_args(auth: Run) -> None:
    database = auth.mocks.named("auth-database")
    assert database.protect is False
    inside = [r for r in auth.mocks.registered if r.typ in (GRANT, DEFAULT_PRIVILEGES, "postgresql:index/schema:Schema")]
    assert len(inside) == 15
    assert all(r.deleted_with == database.urn for r in inside)
    roles = auth.mocks.of_type(ROLE)
    assert all(r.deleted_with == "" for r in roles), "roles are cluster-wide: they are dropped on their own"
    assert {r.urn for r in roles} <= set(database.dependencies), "the database goes before its roles"
    protected = run(lambda: IsolatedDatabase("auth", IsolatedDatabaseArgs(server=server_connection(), service="auth",
                                                                          protect=True)))
    assert protected.mocks.named("auth-database").protect is True


def test_every_child_is_parented_and_uses_the_server_provider(auth: Run) -> None:
    component = auth.mocks.named("auth", "pgfleet:postgres:IsolatedDatabase")
    children = list(auth.mocks.children_of(component.urn))
    assert len(children) == len(auth.mocks.registered) - 2  # all but the component and the provider
    for child in children:
        if child.typ.startswith("postgresql:"):
            assert "main-provider" in child.provider, child.urn


def test_urls_are_secret_in_each_driver_form(auth: Run) -> None:
    values = auth.values
    for key, resolved in values.items():
        assert resolved.secret, f"{key} is not secret"
    for scheme in DRIVER_SCHEMES:
        assert values[f"urls.{scheme}"].value == f"{scheme}://auth_user:mock-auth-app-password-xxxxxxxx@main-primary:5432/auth_db"
        assert values[f"read_urls.{scheme}"].value.startswith(f"{scheme}://auth_readonly:")
        assert values[f"read_urls.{scheme}"].value.endswith("@main-read:5432/auth_db")
    assert values["migration_url"].value.startswith("postgresql://auth_migrator:")
    assert values["local_url"].value.endswith("@127.0.0.1:5433/auth_db")


def test_pooled_url_only_with_a_pooler() -> None:
    with_pooler = build_auth(pooler=True)
    assert with_pooler.values["pooled_url"].value.endswith("@main-pooler:6432/auth_db")
    assert with_pooler.values["pooled_url"].secret
    assert "pooled_url" not in build_auth(pooler=False).values


def test_names_follow_the_args() -> None:
    outcome = run(lambda: IsolatedDatabase("movie", IsolatedDatabaseArgs(
        server=server_connection(), service="movie", database="movies_db", schema="catalog", app_username="movie_user",
    )))
    assert outcome.mocks.named("movie-database").inputs["name"] == "movies_db"
    assert outcome.mocks.named("movie-schema").inputs["name"] == "catalog"
    assert outcome.mocks.named("movie-app").inputs["searchPaths"] == ["catalog"]


def test_privilege_changes_on_one_database_run_one_at_a_time(auth: Run) -> None:
    changes = auth.mocks.of_type(GRANT) + auth.mocks.of_type(DEFAULT_PRIVILEGES)
    order = sorted(changes, key=auth.mocks.registered.index)
    schema = auth.mocks.named("auth-schema")
    assert schema.urn in order[0].dependencies
    for before, after in itertools.pairwise(order):
        assert before.urn in after.dependencies, f"{after.name} does not wait for {before.name}"
