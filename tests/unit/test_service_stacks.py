"""The platform side of service-owned stacks: what the stack gives each team, under mocks.
tests/integration/test_service_stacks.py runs both sides for real."""
from __future__ import annotations

import json

import pytest

from pgfleet import ServiceDatabase, ServiceDatabaseArgs
from pgfleet.components.service_provisioner import PROVISIONERS, provisioner_policy
from pgfleet.components.vault_app_role import read_policy
from pgfleet.stacks import outputs
from tests.support.mocks import RecordingMocks
from tests.support.program import Run, exports, run, run_stack, stack_config

PLATFORM = stack_config("examples/service-stacks/platform.yaml")
TEAMS = ["orders", "billing", "inventory"]


@pytest.fixture(scope="module")
def platform() -> Run:
    return run_stack(PLATFORM, collect=lambda _: exports())


def test_each_team_gets_a_provisioner_that_may_create_roles_and_databases_only(platform: Run) -> None:
    roles = {r.inputs["name"]: r for r in platform.mocks.of_type("postgresql:index/role:Role")}
    for team in TEAMS:
        role = roles[f"{team}_provisioner"]
        assert role.inputs["login"] and role.inputs["createRole"] and role.inputs["createDatabase"]
        assert not role.inputs.get("superuser") and role.inputs["connectionLimit"] == 4
        assert "password" in role.secret_paths
    # the platform declares no team's database: each team's stack does
    assert not platform.mocks.of_type("postgresql:index/database:Database")


def test_each_provisioner_login_goes_to_vault_and_its_policy_and_token_role_name_it(platform: Run) -> None:
    secrets = {r.inputs["name"]: r for r in platform.mocks.of_type("vault:kv/secretV2:SecretV2")}
    policies = {r.inputs["name"]: r for r in platform.mocks.of_type("vault:index/policy:Policy")}
    token_roles = {r.inputs["roleName"]: r for r in platform.mocks.of_type("vault:tokenauth/authBackendRole:AuthBackendRole")}
    for team in TEAMS:
        login = secrets[f"{PROVISIONERS}/{team}"]
        assert "dataJson" in login.secret_paths
        assert json.loads(login.inputs["dataJson"])["username"] == f"{team}_provisioner"
        name = f"pgfleet-provisioner-{team}"
        assert policies[name].inputs["policy"] == provisioner_policy("services", "approle", team)
        assert token_roles[name].inputs["allowedPolicies"] == [name] and token_roles[name].inputs["orphan"]


def test_the_provisioner_policy_reaches_its_service_alone() -> None:
    paths = json.loads(provisioner_policy("services", "approle", "orders"))["path"]
    assert all("orders" in path for path in paths), paths
    assert paths["services/data/_provisioners/orders"] == {"capabilities": ["read"]}
    # the AppRole may carry only the service's read policy, whose text is fixed
    role = paths["auth/approle/role/orders"]
    assert role["allowed_parameters"]["token_policies"] == ["orders-read"]
    assert role["denied_parameters"] == {"policies": [], "token_no_default_policy": []}
    assert paths["sys/policies/acl/orders-read"]["allowed_parameters"]["policy"] == [read_policy("services", "orders")]


def test_the_topology_output_is_plain_and_names_where_a_team_deploys(platform: Run) -> None:
    topology = platform.values[outputs.SERVICE_STACKS]
    assert not topology.secret, "a StackReference reads it; the only secret a team needs is in Vault"
    assert sorted(topology.value) == sorted(TEAMS)
    entry = topology.value["orders"]
    assert entry["admin"] == {"kind": "docker", "host": "127.0.0.1", "port": 5442}
    assert entry["host"] == "shared" and entry["port"] == 5432 and entry["tls"] is True
    assert entry["pooler_host"] == "shared-pooler" and entry["pooler_port"] == 6432
    assert entry["provisioner_secret"] == f"{PROVISIONERS}/orders" and entry["kv_mount"] == "services"
    assert entry["provisioner_token_role"] == "pgfleet-provisioner-orders"
    assert entry["vault_address"] == "http://127.0.0.1:8210"
    assert "password" not in json.dumps(topology.value)


@pytest.fixture
def platform_stack(platform: Run, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, object]]:
    """Mocks that play the platform stack above (as a StackReference reads it) and its Vault.
    An output drops its None values, so a platform without a pooler has no pooler keys."""
    entries = {name: {k: v for k, v in entry.items() if v is not None}
               for name, entry in platform.values[outputs.SERVICE_STACKS].value.items()}
    monkeypatch.setattr(RecordingMocks, "stack_outputs", {outputs.SERVICE_STACKS: entries})
    monkeypatch.setattr(RecordingMocks, "vault_secrets", {
        f"{PROVISIONERS}/{name}": {"username": f"{name}_provisioner", "password": "from-vault"} for name in entries})
    return entries


def test_a_team_stack_dials_its_server_as_its_provisioner(platform_stack: dict[str, dict[str, object]]) -> None:
    outcome = run(lambda: ServiceDatabase("orders", ServiceDatabaseArgs(platform="organization/pgfleet/platform",
                                                                         service="orders", pooled=True)),
                  collect=lambda db: {"url": db.url, "pooled": db.pooled_url})
    provider = outcome.mocks.named("orders-postgres", "pulumi:providers:postgresql")
    assert provider.inputs["username"] == "orders_provisioner" and provider.is_secret("password")
    assert (provider.inputs["host"], provider.inputs["port"]) == ("127.0.0.1", "5442")
    assert outcome.values["url"].secret and "@shared:5432/orders_db?" in outcome.values["url"].value
    assert "@shared-pooler:6432/orders_db?" in outcome.values["pooled"].value
    # its roles on the platform's server, made through that provider
    roles = outcome.mocks.of_type("postgresql:index/role:Role")
    assert {r.inputs["name"] for r in roles} == {"orders_owner", "orders_migrator", "orders_user", "orders_readonly"}


def test_a_service_the_platform_does_not_provision_is_named(platform_stack: dict[str, dict[str, object]]) -> None:
    with pytest.raises(Exception, match="provisions no service 'shipping' \\(it provisions: billing, inventory, orders\\)"):
        run(lambda: ServiceDatabase("shipping", ServiceDatabaseArgs(platform="organization/pgfleet/platform",
                                                                     service="shipping")),
            collect=lambda db: {"url": db.url})


def test_pooled_urls_need_the_platforms_pooler(platform_stack: dict[str, dict[str, object]]) -> None:
    for entry in platform_stack.values():
        entry.pop("pooler_host"), entry.pop("pooler_port")
    with pytest.raises(Exception, match="pooled=True needs its pooler enabled"):
        run(lambda: ServiceDatabase("orders", ServiceDatabaseArgs(platform="organization/pgfleet/platform",
                                                                   service="orders", pooled=True)),
            collect=lambda db: {"pooled": db.pooled_url})
