"""The policy pack's checks over the properties the engine hands them (policies/invariants.py),
each shown to refuse what breaks it and to admit what keeps it. The engine running the pack is
the integration tier's (tests/integration/test_policy_pack.py)."""
from typing import Any

from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.proxy import unknown_checking_proxy

from pgfleet.policies import invariants as inv
from pgfleet.policies.secrets import SecretStr, unwrap_secrets

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown string during preview


def container(*ports: dict[str, Any], envs: list[str] | None = None) -> Any:
    return unknown_checking_proxy({"ports": list(ports), "envs": envs or []})


def resource(type_: str, name: str, props: dict[str, Any], protect: bool = False) -> inv.Resource:
    return inv.Resource(f"urn:pulumi:dev::pgfleet::{type_}::{name}", type_, name, unknown_checking_proxy(props),
                        protect)


def test_docker_ports_beyond_loopback_are_refused_and_loopback_ones_admitted() -> None:
    assert inv.ports_beyond_loopback(container({"internal": 5432, "external": 5432, "ip": "127.0.0.1"},
                                               {"internal": 9187, "ip": "::1"})) == []
    found = inv.ports_beyond_loopback(container({"internal": 5432, "external": 5432},
                                                {"internal": 6432, "external": 6432, "ip": "0.0.0.0"},
                                                {"internal": 8200, "external": 8200, "ip": "10.0.0.5"}))
    assert [m.split(" is ")[0] for m in found] == ["ports[0] (container port 5432)", "ports[1] (container port 6432)",
                                                   "ports[2] (container port 8200)"]
    assert "0.0.0.0 (every interface)" in found[0]
    # An address not known until the update is checked then, not refused in the preview.
    assert inv.ports_beyond_loopback(container({"internal": 5432, "ip": UNKNOWN})) == []


def test_a_credential_in_a_plain_env_is_refused_and_a_file_or_secret_reference_admitted() -> None:
    docker = inv.plain_credential_env(inv.DOCKER_CONTAINER, container(envs=[
        "POSTGRES_PASSWORD_FILE=/run/secrets/pw", "PGFLEET_SECRETS_DIR=/run/pgfleet", "PGPORT=5432",
        UNKNOWN, "POSTGRES_PASSWORD=hunter2", "VAULT_TOKEN=s.abc"]))  # an entry known only at the update is skipped
    assert [m.split(" in ")[0] for m in docker] == ["envs sets POSTGRES_PASSWORD", "envs sets VAULT_TOKEN"]
    statefulset = unknown_checking_proxy({"spec": {"template": {"spec": {
        "initContainers": [{"name": "init", "env": [{"name": "ADMIN_PASSWORD", "value": "plain"}]}],
        "containers": [{"name": "postgres", "env": [
            {"name": "PGDATA", "value": "/data"},
            {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
            {"name": "REPLICATION_PASSWORD_FILE", "value": "/run/secrets/replication"}]}]}}}})
    found = inv.plain_credential_env(inv.STATEFULSET, statefulset)
    assert found == ["spec.template.spec.initContainers[0] env ADMIN_PASSWORD has a plain value; "
                     "use valueFrom.secretKeyRef or a mounted Secret"]
    cronjob = unknown_checking_proxy({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "dump", "env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "k"}]}]}}}}}})
    assert len(inv.plain_credential_env("kubernetes:batch/v1:CronJob", cronjob)) == 1


def test_credentials_not_held_as_secrets_are_found_by_key_and_in_urls() -> None:
    wire = {"password": {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": "s3cret"},
            "urls": {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": {"orders": "postgresql://app:pw@db:5432/orders"}},
            "admin": {"token": "plain-token", "tokenTtl": 900, "token_policies": ["orders"]},
            "dsn": "postgresql://app:pw@db:5432/orders", "reader": "postgresql://app@db:5432/orders",
            "secretId": UNKNOWN}
    props = unwrap_secrets(wire)
    assert isinstance(props["password"], SecretStr) and isinstance(props["urls"]["orders"], SecretStr)
    found = inv.plaintext_credentials(unknown_checking_proxy(props))
    assert [m.split(" is ")[0] for m in found] == ["admin.token", "dsn"]
    assert inv.plaintext_credentials(unknown_checking_proxy(unwrap_secrets(
        {"admin": {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": {"token": "t"}}}))) == []


def test_on_kubernetes_unprotected_or_deleting_stateful_resources_are_refused() -> None:
    claims = {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}
    kept = [resource(inv.STATEFULSET, "shared", {"spec": {**claims, "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain", "whenScaled": "Retain"}}}, protect=True),
            resource(inv.DATABASE, "orders-db", {}, protect=True),
            resource(inv.CLAIM, "repository", {}, protect=True)]
    assert inv.unkept_data(kept) == []
    broken = [resource(inv.STATEFULSET, "shared", {"spec": {**claims, "persistentVolumeClaimRetentionPolicy": {
                  "whenDeleted": "Delete"}}}),
              resource(inv.DATABASE, "orders-db", {}),
              resource(inv.CLAIM, "repository", {}),
              resource(inv.STATEFULSET, "stateless", {"spec": {}})]
    assert [m for _, m in inv.unkept_data(broken)] == [
        "StatefulSet shared holds data and is not protected",
        "StatefulSet shared deletes its claims whenDeleted; set Retain",
        "database orders-db is not protected",
        "PersistentVolumeClaim repository is not protected"]
    # Docker is the developer's machine: an unprotected database there is allowed.
    assert inv.unkept_data([resource(inv.DATABASE, "orders-db", {})]) == []


def test_a_database_server_no_ingress_network_policy_selects_is_refused() -> None:
    pod_labels = {"app.kubernetes.io/name": "postgres", inv.SERVER_LABEL: "shared"}
    server = resource(inv.STATEFULSET, "shared", {"metadata": {"namespace": "databases"},
                                                  "spec": {"template": {"metadata": {"labels": pod_labels}}}})
    pooler = resource(inv.DEPLOYMENT, "shared-pooler", {"metadata": {"namespace": "databases"}, "spec": {
        "template": {"metadata": {"labels": {**pod_labels, "app.kubernetes.io/name": "pgbouncer"}}}}})
    unrelated = resource(inv.DEPLOYMENT, "web", {"spec": {"template": {"metadata": {"labels": {"app": "web"}}}}})

    def policy(name: str, namespace: str, labels: dict[str, str], types: list[str]) -> inv.Resource:
        return resource(inv.NETWORK_POLICY, name, {"metadata": {"namespace": namespace}, "spec": {
            "podSelector": {"matchLabels": labels}, "policyTypes": types, "ingress": []}})

    admitting = [policy("shared", "databases", {inv.SERVER_LABEL: "shared"}, ["Ingress"])]
    assert inv.servers_without_network_policy([server, pooler, unrelated, *admitting]) == []
    not_admitting = [policy("egress-only", "databases", {inv.SERVER_LABEL: "shared"}, ["Egress"]),
                     policy("elsewhere", "apps", {inv.SERVER_LABEL: "shared"}, ["Ingress"]),
                     policy("other-server", "databases", {inv.SERVER_LABEL: "payments"}, ["Ingress"])]
    assert [m for _, m in inv.servers_without_network_policy([server, pooler, unrelated, *not_admitting])] == [
        "StatefulSet shared is admitted by no ingress NetworkPolicy",
        "Deployment shared-pooler is admitted by no ingress NetworkPolicy"]
