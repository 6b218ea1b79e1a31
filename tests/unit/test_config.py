"""Config validation: every wrong input names its key and what is valid; nothing is created."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from pgfleet.stacks.config import ConfigError, StackConfig, parse_config
from pgfleet.stacks.config.types import duration_ms
from tests.support.program import TEST_SECRETS, run_stack, stack_config

BASE: dict[str, Any] = {
    "platform": "docker",
    "servers": [{"name": "shared", "port": 5432}],
    "services": [{"name": "auth"}, {"name": "orders"}],
}


def with_changes(**changes: Any) -> dict[str, Any]:
    config = copy.deepcopy(BASE)
    config.update(changes)
    return config


# (case id, config, key path expected in the message, words the message must contain)
BAD_CONFIGS: list[tuple[str, dict[str, Any], str, str]] = [
    ("duplicate service names", with_changes(services=[{"name": "auth"}, {"name": "auth"}]),
     "services[1].name", "duplicate service name 'auth'"),
    ("two servers by one host name", with_changes(services=[
        {"name": "auth", "topology": "dedicated", "dedicated": {"port": 5433, "host": "pg"}},
        {"name": "user", "topology": "dedicated", "dedicated": {"port": 5434, "host": "pg"}}]),
     "services[1].dedicated.host", "duplicate server host 'pg'"),
    ("name not an identifier", with_changes(services=[{"name": "Auth-Service"}]),
     "services[0].name", "lowercase letters, digits and underscores"),
    ("name starting with a digit", with_changes(services=[{"name": "1auth"}]),
     "services[0].name", "starting with a letter"),
    ("redis index above 15", with_changes(redis={"enabled": True}, services=[{"name": "auth", "redis": {"db": 16}}]),
     "services[0].redis.db", "less than or equal to 15"),
    ("redis index below 0", with_changes(redis={"enabled": True}, services=[{"name": "auth", "redis": {"db": -1}}]),
     "services[0].redis.db", "greater than or equal to 0"),
    ("redis without the shared redis", with_changes(services=[{"name": "auth", "redis": {"db": 0}}]),
     "services[0].redis", "set redis.enabled to true"),
    ("two dedicated servers on one host port", with_changes(servers=[], services=[
        {"name": "auth", "topology": "dedicated", "dedicated": {"port": 5433}},
        {"name": "game", "topology": "dedicated", "dedicated": {"port": 5433}}]),
     "services[1].dedicated.port", "host port 5433 is already taken by services[0].dedicated.port"),
    ("pooler port clashing with a server", with_changes(servers=[{"name": "shared", "port": 5432,
                                                                  "pooler": {"enabled": True, "port": 5432}}]),
     "servers[0].pooler.port", "already taken"),
    ("replica count below 0", with_changes(servers=[{"name": "shared", "port": 5432, "replicas": -1}]),
     "servers[0].replicas", "greater than or equal to 0"),
    ("retention below 1 day", with_changes(backup={"retention_days": 0}),
     "backup.retention_days", "greater than or equal to 1"),
    ("rpo the archive timeout cannot meet", with_changes(backup={"archive_timeout": "10m", "rpo": "5m"}),
     "backup", "archive_timeout 10m cannot meet rpo 5m"),
    ("rpo without wal archiving", with_changes(backup={"wal_archiving": False, "rpo": "5m"}),
     "backup", "needs wal_archiving"),
    ("malformed storage size", with_changes(servers=[{"name": "shared", "port": 5432, "storage": "10GB"}]),
     "servers[0].storage", "'10GB' is not a storage size"),
    ("s3 endpoint over plain http", with_changes(backup={"target": {"kind": "s3", "bucket": "backups",
                                                                     "endpoint": "http://minio:9000"}}),
     "backup.target", "pgBackRest reaches S3 over https only"),
    ("managed store with an endpoint", with_changes(backup={"target": {"kind": "s3", "managed": True,
                                                                       "endpoint": "s3.example"}}),
     "backup.target", "a managed store has no 'endpoint'"),
    ("managed filesystem", with_changes(backup={"target": {"kind": "filesystem", "managed": True}}),
     "backup.target", "'managed' is for kind 's3'"),
    ("malformed cron schedule", with_changes(backup={"dump_schedule": "every day"}),
     "backup.dump_schedule", "five fields"),
    ("cron field out of range", with_changes(backup={"dump_schedule": "0 24 * * *"}),
     "backup.dump_schedule", "hour field '24' must lie within 0-23"),
    ("unknown topology", with_changes(services=[{"name": "auth", "topology": "sharded"}]),
     "services[0].topology", "'shared' or 'dedicated', got 'sharded'"),
    ("missing required key", {"platform": "docker", "servers": [{"name": "shared", "port": 5432}]},
     "services", "Field required"),
    ("unknown platform", with_changes(platform="nomad"),
     "platform", "'docker' or 'kubernetes', got 'nomad'"),
    ("misspelt key", with_changes(services=[{"name": "auth", "conection_limit": 5}]),
     "services[0].conection_limit", "unknown key"),
    ("unknown server reference", with_changes(services=[{"name": "auth", "server": "main"}]),
     "services[0].server", "unknown server 'main' (valid: shared)"),
    ("several servers and none named", with_changes(
        servers=[{"name": "a", "port": 5432}, {"name": "b", "port": 5433}],
        services=[{"name": "auth", "server": "a"}, {"name": "orders"}]),
     "services[1].server", "required when the stack has 2 servers (valid: a, b)"),
    ("server on a dedicated service", with_changes(services=[
        {"name": "auth", "topology": "dedicated", "server": "shared", "dedicated": {"port": 5433}},
        {"name": "orders"}]),
     "services[0].server", "dedicated service gets its own server"),
    ("dev port not on loopback", with_changes(docker={"bind_address": "0.0.0.0"}),
     "docker.bind_address", "not a loopback address"),
    ("malformed duration", with_changes(services=[{"name": "auth", "statement_timeout": "30 seconds"}]),
     "services[0].statement_timeout", "not a duration"),
    ("pool larger than the role limit", with_changes(services=[{"name": "auth", "connection_limit": 5,
                                                                "pool": {"max": 10}}]),
     "services[0].pool.max", "exceeds connection_limit 5"),
    ("database name used twice on a server", with_changes(services=[{"name": "auth", "database": "main"},
                                                                    {"name": "orders", "database": "main"}]),
     "services[1].database", "already used on server 'shared'"),
    ("token ttl above max", with_changes(vault={"token_ttl": "2h", "token_max_ttl": "1h"}),
     "vault", "token_ttl (2h) is longer than token_max_ttl (1h)"),
    ("external vault without address", with_changes(vault={"mode": "external"}),
     "vault", "needs 'address'"),
    ("s3 target without bucket", with_changes(backup={"target": {"kind": "s3", "endpoint": "https://s3"}}),
     "backup.target", "needs both 'endpoint' and 'bucket'"),
    ("bad vault cidr", with_changes(services=[{"name": "auth", "vault": {"bind_cidrs": ["10.0.0.1/8"]}}, {"name": "orders"}]),
     "services[0].vault.bind_cidrs[0]", "not a CIDR block"),
    ("connections over max_connections", with_changes(servers=[{"name": "shared", "port": 5432, "max_connections": 30}]),
     "servers[0].max_connections", "add up to 40"),
    ("one repository volume for two kubernetes servers", with_changes(
        platform="kubernetes", servers=[{"name": "shared"}],
        services=[{"name": "auth"}, {"name": "orders", "topology": "dedicated"}],
        backup={"target": {"kind": "filesystem"}}),
     "backup.target.kind", "cannot share across nodes: use kind 's3'"),
    ("server with no services", with_changes(servers=[{"name": "shared", "port": 5432}, {"name": "spare", "port": 5433}],
                                             services=[{"name": "auth", "server": "shared"}]),
     "servers[1].name", "hosts no service"),
]


@pytest.mark.parametrize("config,path,words", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_the_key(config: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(config)
    lines = [str(problem) for problem in raised.value.problems]
    assert any(line.startswith(f"{path}:") and words in line for line in lines), lines


@pytest.mark.parametrize("config,path,words", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_registers_no_resource(config: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError):
        outcome = run_stack(config)
        pytest.fail(f"program ran and registered {len(outcome.mocks.registered)} resources")


def test_every_problem_is_listed_at_once() -> None:
    config = with_changes(
        platform="dokcer",
        services=[{"name": "Auth"}, {"name": "orders", "connection_limit": 0}],
        backup={"retention_days": 0},
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(config)
    paths = {problem.path for problem in raised.value.problems}
    assert {"platform", "services[0].name", "services[1].connection_limit", "backup.retention_days"} <= paths
    assert "4 problems" in str(raised.value)


def test_missing_secret_fails_before_any_resource() -> None:
    config = with_changes(vault={"mode": "external", "address": "https://vault:8200"})
    with pytest.raises(ConfigError, match="vaultToken: required with vault.mode 'external'"):
        run_stack(config)


def test_prod_backups_need_a_passphrase_that_outlives_the_stack() -> None:
    config = stack_config("Pulumi.prod.yaml")
    secrets = {k: v for k, v in TEST_SECRETS.items() if k != "backupPassphrase"}
    with pytest.raises(ConfigError, match="backupPassphrase: required on kubernetes with backup.encryption"):
        run_stack(config, secret_config=secrets)
    run_stack(config, secret_config=TEST_SECRETS)  # and given, the same config passes


def test_docker_server_without_port_is_refused() -> None:
    config = with_changes(servers=[{"name": "shared"}])
    with pytest.raises(ConfigError, match="server 'shared' port: required on docker"):
        run_stack(config)


def test_defaults_are_what_the_readme_documents() -> None:
    config = parse_config(BASE)
    service = config.services[0]
    assert (service.database_name, service.schema, service.app_role) == ("auth_db", "auth", "auth_user")
    assert config.backup.retention_days == 30 and config.backup.dump_schedule == "0 0 * * *"
    assert duration_ms(config.backup.archive_timeout) <= duration_ms(config.backup.rpo or "0s")
    assert config.protect_stateful is False
    assert parse_config(with_changes(platform="kubernetes", servers=[{"name": "shared"}])).protect_stateful is True


@pytest.mark.parametrize("path", ["Pulumi.dev.yaml", "Pulumi.prod.yaml"])
def test_shipped_stack_configs_are_valid(path: str) -> None:
    assert isinstance(parse_config(stack_config(path)), StackConfig)


def test_dev_and_prod_share_one_service_list() -> None:
    dev, prod = parse_config(stack_config("Pulumi.dev.yaml")), parse_config(stack_config("Pulumi.prod.yaml"))
    shape = lambda c: [(s.name, s.topology, s.server, s.database_name, s.app_role) for s in c.services]  # noqa: E731
    assert shape(dev) == shape(prod)
    assert (dev.platform, prod.platform) == ("docker", "kubernetes")
