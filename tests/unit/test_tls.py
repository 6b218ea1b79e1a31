"""TLS under mocks: the stack's CA, each server's certificate and files, and URLs that verify."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from pgfleet.components.certificate_authority import renewal_period
from pgfleet.stacks import outputs
from pgfleet.stacks.config import ConfigError, parse_config
from tests.support.program import TEST_SECRETS, Run, exports, run_stack, stack_config

CONTAINER = "docker:index/container:Container"
CERT = "vault:pkiSecret/secretBackendCert:SecretBackendCert"


@pytest.fixture(scope="module")
def dev() -> Run:
    return run_stack(stack_config("Pulumi.dev.yaml"), collect=lambda _: exports())


@pytest.fixture(scope="module")
def prod() -> Run:
    return run_stack(stack_config("Pulumi.prod.yaml"), TEST_SECRETS, stack="prod", collect=lambda _: exports())


def _settings(run: Run, name: str) -> dict[str, str]:
    args = run.mocks.named(name, CONTAINER).inputs["command"]
    return dict(a.split("=", 1) for a in args if "=" in a)


def test_the_stack_ca_lives_in_vault_pki_and_issues_server_certificates_only(dev: Run) -> None:
    mount = dev.mocks.named("pgfleet-ca-pki").inputs
    assert (mount["type"], mount["path"]) == ("pki", "pgfleet-pki")
    root = dev.mocks.named("pgfleet-ca-root").inputs
    assert root["type"] == "internal", "the CA's key never leaves Vault"
    role = dev.mocks.named("pgfleet-ca-server-role").inputs
    assert role["serverFlag"] is True and role["clientFlag"] is False and role["allowWildcardCertificates"] is False


def test_each_server_certificate_names_every_host_its_clients_use(dev: Run, prod: Run) -> None:
    shared = dev.mocks.named("shared-certificate", CERT)
    names = [shared.inputs["commonName"], *shared.inputs["altNames"]]
    assert names == ["shared", "shared-read", "shared-pooler", "localhost"]
    assert shared.inputs["ipSans"] == ["127.0.0.1", "::1"]
    assert shared.inputs["autoRenew"] is True and shared.inputs["minSecondsRemaining"] == 168 * 3600
    assert shared.inputs["ttl"] == str(720 * 3600)
    # issued by the stack's Vault, though it belongs to the server component
    assert shared.provider.startswith(dev.mocks.named("pgfleet-vault", "pulumi:providers:vault").urn)
    cluster = prod.mocks.named("shared-certificate", CERT).inputs
    ns = "databases"
    assert {"shared", f"shared.{ns}.svc.cluster.local", f"shared-0.shared.{ns}.svc.cluster.local",
            f"shared-read.{ns}.svc", f"shared-read-1.shared-read.{ns}.svc.cluster.local",
            f"shared-pooler.{ns}.svc.cluster.local"} <= {cluster["commonName"], *cluster["altNames"]}


def test_servers_serve_tls_from_their_file_set_and_refuse_plain_network_connections(dev: Run) -> None:
    settings = _settings(dev, "shared")
    assert settings["ssl"] == "on" and settings["hba_file"] == "/etc/pgfleet/tls/pg_hba.conf"
    assert (settings["ssl_cert_file"], settings["ssl_key_file"]) == ("/etc/pgfleet/tls/tls.crt", "/etc/pgfleet/tls/tls.key")
    writer = dev.mocks.named("shared-tls", CONTAINER)
    assert writer.is_secret("uploads"), "the key is secret in state"
    files = {u["file"].rsplit("/", 1)[1]: u["content"] for u in writer.inputs["uploads"]}
    assert set(files) == {"ca.crt", "tls.crt", "tls.key", "pg_hba.conf"}
    hba = [line.split() for line in files["pg_hba.conf"].splitlines() if line and not line.startswith("#")]
    network = [line for line in hba if line[-2] == "all" and line[0].startswith("host")]
    assert network == [["hostssl", "all", "all", "all", "scram-sha-256"],
                       ["hostssl", "replication", "all", "all", "scram-sha-256"]]
    for process in ("shared", "shared-read", "shared-pooler", "shared-metrics", "shared-dump", "shared-base"):
        volumes = {v["containerPath"]: v for v in dev.mocks.named(process, CONTAINER).inputs["volumes"]}
        assert volumes["/etc/pgfleet/tls"]["volumeName"] == "shared-tls", process
        assert volumes["/etc/pgfleet/tls"]["readOnly"] is True, process
        assert writer.urn in dev.mocks.named(process, CONTAINER).dependencies, f"{process} starts after its files"


def test_require_off_admits_plain_connections_and_tls_off_serves_none() -> None:
    config = stack_config("Pulumi.dev.yaml")
    run = run_stack({**config, "tls": {"require": False}}, collect=lambda _: exports())
    uploads = run.mocks.named("shared-tls", CONTAINER).inputs["uploads"]
    hba = next(u["content"] for u in uploads if u["file"].endswith("pg_hba.conf"))
    assert "hostssl" not in hba and "host all all all scram-sha-256" in hba
    off = run_stack({**config, "tls": {"enabled": False}}, collect=lambda _: exports())
    assert not off.mocks.of_type(CERT) and "ssl" not in _settings(off, "shared")
    assert "?" not in off.values[outputs.CONNECTION_URLS].value["orders"]["url"]
    assert outputs.TLS not in off.values


def test_every_url_verifies_the_server_in_its_drivers_form(dev: Run) -> None:
    urls = dev.values[outputs.CONNECTION_URLS].value["orders"]
    for key in ("url", "read_url", "migration_url", "pooled_url", "postgresql", "postgresql+psycopg"):
        query = parse_qs(urlsplit(urls[key]).query)
        assert query == {"sslmode": ["verify-full"], "sslrootcert": ["/etc/pgfleet/ca.crt"]}, key
    assert urlsplit(urls["postgresql+asyncpg"]).query == "ssl=verify-full"
    local = dev.values[outputs.TLS].value["local_ca_path"]
    assert parse_qs(urlsplit(urls["local_url"]).query)["sslrootcert"] == [local]


def test_the_ca_reaches_services_beside_their_credentials(prod: Run) -> None:
    secret = prod.mocks.named("orders-secret", "vault:kv/secretV2:SecretV2")
    data = json.loads(secret.inputs["dataJson"])
    assert data["PGSSLROOTCERT"] == "/etc/pgfleet/ca.crt" and "DATABASE_CA_CERT" in data
    ca = prod.mocks.named("pgfleet-ca", "kubernetes:core/v1:Secret").inputs
    assert ca["metadata"]["namespace"] == "apps"  # the services' namespace (the PEM is unknown under mocks)


def test_kubernetes_mounts_the_file_set_whole_with_a_private_key(prod: Run) -> None:
    pooler = prod.mocks.named("shared-pooler-statefulset").inputs["spec"]["template"]["spec"]
    volume = next(v for v in pooler["volumes"] if v.get("secret", {}).get("secretName") == "shared-tls")
    modes = {item["key"]: item["mode"] for item in volume["secret"]["items"]}
    assert modes == {"ca.crt": 0o644, "pg_hba.conf": 0o644, "tls.crt": 0o644, "tls.key": 0o640}
    mount = next(m for m in pooler["containers"][0]["volumeMounts"] if m["mountPath"] == "/etc/pgfleet/tls")
    assert "subPath" not in mount, "a subPath mount never sees a rotated Secret"
    assert pooler["securityContext"]["fsGroup"] == 999
    env = {e["name"]: e.get("value") for e in pooler["containers"][0]["env"]}
    assert env["PGFLEET_RELOAD_WATCH"] == "/etc/pgfleet/tls"


def test_a_certificate_outliving_its_ca_is_refused() -> None:
    config = stack_config("Pulumi.dev.yaml")
    with pytest.raises(ConfigError, match=r"tls: .*cert_ttl 9000h outlives ca_ttl 8760h"):
        parse_config({**config, "tls": {"cert_ttl": "9000h", "ca_ttl": "8760h"}})


def test_renew_before_at_or_above_the_lifetime_is_refused() -> None:
    config = stack_config("Pulumi.dev.yaml")
    with pytest.raises(ConfigError, match=r"renew_before 720h is not below cert_ttl 720h"):
        parse_config({**config, "tls": {"renew_before": "720h"}})


def test_a_certificate_is_renewed_in_each_new_period_and_on_a_new_token() -> None:
    day = 86_400
    ttl, renew = 30 * day, 7 * day  # periods of 23 days
    issued = renewal_period(ttl, renew, now=0)
    assert renewal_period(ttl, renew, now=23 * day - 1) == issued, "the same period: kept"
    assert renewal_period(ttl, renew, now=23 * day) != issued, "a new period: renewed, with 7 days left"
    assert renewal_period(ttl, renew, "r1", now=0) != issued != renewal_period(ttl, renew, "r2", now=0)
    assert renewal_period(ttl, renew, "r1", now=0) == renewal_period(ttl, renew, "r1", now=day)



def test_server_settings_that_tls_sets_are_refused_by_key() -> None:
    config = stack_config("Pulumi.dev.yaml")
    config["servers"][0]["settings"] = {"ssl_cert_file": "/mine.crt"}
    with pytest.raises(ConfigError, match=r"servers\[0\]\.settings\.ssl_cert_file: TLS sets 'ssl_cert_file'"):
        parse_config(config)
    config["tls"] = {"enabled": False}
    assert parse_config(config).servers[0].settings == {"ssl_cert_file": "/mine.crt"}
