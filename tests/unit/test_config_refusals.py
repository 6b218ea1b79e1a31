"""Configs that used to pass validation and then fail (or do harm) half-way through `pulumi up`.

Each case is refused at load with its key path and what is valid, registers no resource, and a
close valid config is admitted: the refusal is the rule's, not an accident of the case.
tests/integration/test_image_catalogue.py checks the catalogue these rules read against the image.
"""
from __future__ import annotations

import copy
from typing import Any

import pytest

from pgfleet.stacks.config import ConfigError, parse_config
from pgfleet.stacks.config.catalogue import catalogue, value_problem
from pgfleet.stacks.config.names import STACK_PROCESSES, placed_servers
from pgfleet.stacks.config.types import PGFLEET_ROLES
from tests.support.program import TEST_SECRETS, run_stack, stack_config

BASE: dict[str, Any] = {
    "platform": "docker",
    "servers": [{"name": "shared", "port": 5432}],
    "services": [{"name": "auth"}, {"name": "orders"}],
}


def config(*edits: tuple[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """BASE with values set at dotted paths ('servers.0.settings' sets servers[0].settings)."""
    result = copy.deepcopy(base or BASE)
    for path, value in edits:
        *parents, last = path.split(".")
        node: Any = result
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return result


def kube(*edits: tuple[str, Any]) -> dict[str, Any]:
    s3 = {"kind": "s3", "endpoint": "s3.example", "bucket": "backups"}  # the repository servers can share
    return config(("platform", "kubernetes"), ("servers", [{"name": "shared"}]), ("backup", {"target": s3}), *edits)


PG17_POSTGRES = (("docker.images.postgres", "pgfleet/postgres:17"),)
PG17_IMAGES = (*PG17_POSTGRES, ("docker.images.backup", "pgfleet/postgres:17"))

# (case id, refused config, key path, words in its message, the close config that is admitted)
CASES: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    # 1. identifiers PostgreSQL reserves or the server holds already
    ("database 'postgres'", config(("services.0.database", "postgres")),
     "services[0].database", "every PostgreSQL server already holds", config(("services.0.database", "postgres_db"))),
    ("database 'template1'", config(("services.0.database", "template1")),
     "services[0].database", "(postgres, template0, template1)", config(("services.0.database", "template2"))),
    ("database named after the admin", config(("servers.0.admin_user", "dbadmin"), ("services.0.database", "dbadmin")),
     "services[0].database", "the one server 'shared' makes for its admin_user",
     config(("servers.0.admin_user", "dbadmin"), ("services.0.database", "dbadmin_db"))),
    ("app role that is the admin", config(("services.0.app_user", "postgres")),
     "services[0].app_user", "is server 'shared''s admin_user", config(("services.0.app_user", "postgres_app"))),
    ("service whose owner role is the admin", config(("servers.0.admin_user", "auth_owner")),
     "services[0].name", "role 'auth_owner' is server 'shared''s admin_user", config(("servers.0.admin_user", "auth_admin"))),
    ("app role pgfleet makes", config(("services.0.app_user", "pgfleet_replicator")),
     "services[0].app_user", "a role pgfleet makes on every server", config(("services.0.app_user", "replicator"))),
    ("admin role pgfleet makes", config(("servers.0.admin_user", "pgfleet_monitor")),
     "servers[0].admin_user", "a role pgfleet makes on every server", config(("servers.0.admin_user", "monitor"))),
    ("role with the pg_ prefix", config(("services.0.app_user", "pg_auth")),
     "services[0].app_user", "reserves the 'pg_' prefix", config(("services.0.app_user", "pgauth"))),
    ("admin with the pg_ prefix", config(("servers.0.admin_user", "pg_admin")),
     "servers[0].admin_user", "reserves the 'pg_' prefix", config(("servers.0.admin_user", "pgadmin"))),
    ("service with the pg_ prefix", config(("services.0.name", "pg_auth")),
     "services[0].name", "the service's roles begin with its name", config(("services.0.name", "pgauth"))),
    ("reserved role 'public'", config(("services.0.app_user", "public")),
     "services[0].app_user", "a role name PostgreSQL reserves", config(("services.0.app_user", "publisher"))),
    ("reserved role 'none'", config(("servers.0.admin_user", "none")),
     "servers[0].admin_user", "a role name PostgreSQL reserves", config(("servers.0.admin_user", "nobody"))),
    ("schema with the pg_ prefix", config(("services.0.schema", "pg_auth")),
     "services[0].schema", "'pg_' prefix for system schemas", config(("services.0.schema", "auth_data"))),
    ("schema 'public'", config(("services.0.schema", "public")),
     "services[0].schema", "exists in every new database", config(("services.0.schema", "publicdata"))),
    ("service 'public' and its default schema", config(("services.0.name", "public")),
     "services[0].name", "set 'schema'", config(("services.0.name", "public"), ("services.0.schema", "pub"))),
    # NAMEDATALEN: 40 characters leave room for '_migrator', '_readonly' and '_db' within 63 bytes
    ("name past 40 characters", config(("services.0.name", "a" * 41)),
     "services[0].name", "1-40 characters", config(("services.0.name", "a" * 40))),
    ("two servers deriving one host name", config(("servers", [
        {"name": "shared", "port": 5432, "replicas": 1, "read_port": 5442},
        {"name": "shared_read", "port": 5433}]), ("services.1.server", "shared_read"), ("services.0.server", "shared")),
     "servers[1].name", "derives the name 'shared-read', which server 'shared' takes too",
     config(("servers", [{"name": "shared", "port": 5432, "replicas": 1, "read_port": 5442},
                         {"name": "shared_reads", "port": 5433}]),
            ("services.1.server", "shared_reads"), ("services.0.server", "shared"))),
    ("a server named like the stack's Vault", config(("servers.0.name", "pgfleet_vault")),
     "servers[0].name", "the stack's own process (vault.mode 'managed')", config(("servers.0.name", "pgfleet_vaults"))),
    ("a host that is another server's job", config(("servers", [{"name": "shared", "port": 5432},
                                                               {"name": "spare", "port": 5433, "host": "shared-dump"}]),
                                                   ("services.1.server", "spare"), ("services.0.server", "shared")),
     "servers[1].host", "derives the name 'shared-dump'",
     config(("servers", [{"name": "shared", "port": 5432}, {"name": "spare", "port": 5433, "host": "shared-dumps"}]),
            ("services.1.server", "spare"), ("services.0.server", "shared"))),
    # 2. values the platform refuses only at apply time
    ("cpu not a quantity", kube(("servers.0.cpu", "2 cores")),
     "servers[0].cpu", "not a Kubernetes quantity", kube(("servers.0.cpu", "2"))),
    ("memory with a lowercase suffix", kube(("servers.0.memory", "4gb")),
     "servers[0].memory", "suffixes are case-sensitive", kube(("servers.0.memory", "4Gi"))),
    ("memory of zero", kube(("servers.0.memory", "0Gi")),
     "servers[0].memory", "more than zero", kube(("servers.0.memory", "1Gi"))),
    ("dedicated cpu not a quantity", kube(("services.0.topology", "dedicated"), ("services.0.dedicated", {"cpu": "half"})),
     "services[0].dedicated.cpu", "not a Kubernetes quantity",
     kube(("services.0.topology", "dedicated"), ("services.0.dedicated", {"cpu": "500m"}))),
    ("host too long for a StatefulSet", kube(("servers.0.host", "h" * 45)),
     "servers[0].host", "at most 52: a longer StatefulSet name creates no pod); use at most 44",
     kube(("servers.0.host", "h" * 44))),
    ("host too long for a Docker host name", config(("servers.0.host", "h" * 56)),
     "servers[0].host", "Docker refuses a longer host name", config(("servers.0.host", "h" * 55))),
    ("a Service name beginning with a digit", kube(("servers.0.host", "1pg")),
     "servers[0].host", "begin with a letter", kube(("servers.0.host", "pg1"))),
    ("pod label value", config(("services.0.pod_labels", {"app": "-auth"})),
     "services[0].pod_labels.app", "not a Kubernetes label value", config(("services.0.pod_labels", {"app": "auth"}))),
    ("pod label key", config(("services.0.pod_labels", {"team name": "a"})),
     "services[0].pod_labels.team name", "not a Kubernetes label name",
     config(("services.0.pod_labels", {"team-name": "a"}))),
    ("pod label key prefix", config(("services.0.pod_labels", {"Example.com/team": "a"})),
     "services[0].pod_labels.Example.com/team", "not a DNS subdomain",
     config(("services.0.pod_labels", {"example.com/team": "a"}))),
    ("storage class", kube(("kubernetes", {"storage_class": "Fast_SSD"})),
     "kubernetes.storage_class", "not a Kubernetes object name", kube(("kubernetes", {"storage_class": "fast-ssd"}))),
    ("s3 bucket with capitals", config(("backup", {"target": {"kind": "s3", "endpoint": "s3.example",
                                                               "bucket": "Acme_Backups"}})),
     "backup.target.bucket", "not an S3 bucket name",
     config(("backup", {"target": {"kind": "s3", "endpoint": "s3.example", "bucket": "acme-backups"}}))),
    ("s3 bucket like an IP address", config(("backup", {"target": {"kind": "s3", "endpoint": "s3.example",
                                                                    "bucket": "10.0.0.1"}})),
     "backup.target.bucket", "may not look like an IP address",
     config(("backup", {"target": {"kind": "s3", "endpoint": "s3.example", "bucket": "10.0.0.1a"}}))),
    ("s3 bucket with '..'", config(("backup", {"target": {"kind": "s3", "endpoint": "s3.example", "bucket": "a..b"}})),
     "backup.target.bucket", "no '..'",
     config(("backup", {"target": {"kind": "s3", "endpoint": "s3.example", "bucket": "a.b"}}))),
    ("s3 bucket of two characters", config(("backup", {"target": {"kind": "s3", "endpoint": "s3.example", "bucket": "ab"}})),
     "backup.target.bucket", "3-63 lowercase letters",
     config(("backup", {"target": {"kind": "s3", "endpoint": "s3.example", "bucket": "abc"}}))),
    ("cron day 7 on Kubernetes", kube(("backup", {"dump_schedule": "0 0 * * 7"})),
     "backup.dump_schedule", "write Sunday as 0", kube(("backup", {"dump_schedule": "0 0 * * 0"}))),
    # 3. settings and libraries that keep PostgreSQL from starting, against the image's catalogue
    ("unknown setting", config(("servers.0.settings", {"shared_bufers": "256MB"})),
     "servers[0].settings.shared_bufers", "did you mean 'shared_buffers'",
     config(("servers.0.settings", {"shared_buffers": "256MB"}))),
    ("memory unit PostgreSQL does not know", config(("servers.0.settings", {"shared_buffers": "256mb"})),
     "servers[0].settings.shared_buffers", "with an optional unit (B, kB, MB, GB, TB)",
     config(("servers.0.settings", {"shared_buffers": "256MB"}))),
    ("setting below its minimum", config(("servers.0.settings", {"work_mem": "63kB"})),
     "servers[0].settings.work_mem", "outside the valid range 64 .. 2147483647",
     config(("servers.0.settings", {"work_mem": "64kB"}))),
    ("boolean setting", config(("servers.0.settings", {"jit": "maybe"})),
     "servers[0].settings.jit", "not a boolean", config(("servers.0.settings", {"jit": "off"}))),
    ("enum setting", config(("servers.0.settings", {"log_min_messages": "verbose"})),
     "servers[0].settings.log_min_messages", "not one of debug5",
     config(("servers.0.settings", {"log_min_messages": "WARNING"}))),
    ("read-only setting", config(("servers.0.settings", {"server_version": "16"})),
     "servers[0].settings.server_version", "read-only", config(("servers.0.settings", {}))),
    ("a build without Bonjour", config(("servers.0.settings", {"bonjour": "on"})),
     "servers[0].settings.bonjour", "takes only off", config(("servers.0.settings", {"bonjour": "off"}))),
    ("a stack deeper than the image's limit", config(("servers.0.settings", {"max_stack_depth": "8MB"})),
     "servers[0].settings.max_stack_depth", "100 .. 7680", config(("servers.0.settings", {"max_stack_depth": "7680kB"}))),
    ("a session setting in a server's configuration", config(("servers.0.settings", {"transaction_isolation": "serializable"})),
     "servers[0].settings.transaction_isolation", "set 'default_transaction_isolation'",
     config(("servers.0.settings", {"default_transaction_isolation": "serializable"}))),
    ("more processes than PostgreSQL counts", config(("servers.0.settings", {"max_worker_processes": "262100"})),
     "servers[0].settings.max_worker_processes", "over PostgreSQL's limit of 262143",
     config(("servers.0.settings", {"max_worker_processes": "262000"}))),
    ("module setting the server would drop", config(("servers.0.settings", {"pg_stat_statements.track": "on"})),
     "servers[0].settings.pg_stat_statements.track", "not one of none, top, all",
     config(("servers.0.settings", {"pg_stat_statements.track": "all"}))),
    ("module setting with no such name", config(("servers.0.settings", {"auto_explain.log_min_duraton": "1s"})),
     "servers[0].settings.auto_explain.log_min_duraton", "did you mean 'auto_explain.log_min_duration'",
     config(("servers.0.extensions", ["auto_explain"]), ("servers.0.settings", {"auto_explain.log_min_duration": "1s"}))),
    ("library the image lacks", config(("servers.0.extensions", ["pg_stat_statement"])),
     "servers[0].extensions[0]", "did you mean 'pg_stat_statements'",
     config(("servers.0.extensions", ["pg_stat_statements", "auto_explain"]))),
    ("dedicated server setting", config(("services.0.topology", "dedicated"),
                                         ("services.0.dedicated", {"port": 5433, "settings": {"max_wal_size": "1XB"}})),
     "services[0].dedicated.settings.max_wal_size", "not a whole number",
     config(("services.0.topology", "dedicated"), ("services.0.dedicated", {"port": 5433, "settings": {"max_wal_size": "1GB"}}))),
    ("a setting pgfleet manages", config(("servers.0.settings", {"max_connections": "500"})),
     "servers[0].settings.max_connections", "set the server's max_connections key",
     config(("servers.0.max_connections", 500))),
    ("archiving the backups set", config(("servers.0.settings", {"archive_command": "/bin/true"})),
     "servers[0].settings.archive_command", "the backups set 'archive_command'",
     config(("servers.0.settings", {"archive_command": "/bin/true"}), ("backup", {"enabled": False}))),
    ("wal_level minimal", config(("servers.0.settings", {"wal_level": "minimal"})),
     "servers[0].settings.wal_level", "use replica (the default) or logical",
     config(("servers.0.settings", {"wal_level": "logical"}))),
    ("a version the image does not run", config(("servers.0.version", 16)),
     "servers[0].version", "runs PostgreSQL 15",
     config(("servers.0.version", 16), ("docker", {"images": {"postgres": "postgres:16", "backup": "postgres:16"}}))),
    ("backups whose pg_dump is older than the server", config(("servers.0.version", 17), *PG17_POSTGRES),
     "docker.images.backup", "refuses servers[0]'s PostgreSQL 17",
     config(("servers.0.version", 17), *PG17_IMAGES)),
    # 8. service-owned stacks: a provisioner's CREATEROLE must reach only its own roles
    ("a service stack on PostgreSQL 15", config(("service_stacks", [{"name": "billing"}])),
     "service_stacks[0].server", "service stacks need version 16 or newer",
     config(("service_stacks", [{"name": "billing"}]), ("servers.0.version", 17), *PG17_IMAGES)),
    ("a service stack on a server without a host port",
     config(("service_stacks", [{"name": "billing"}]), ("servers.0.version", 17), ("servers.0.port", None),
            *PG17_IMAGES),
     "service_stacks[0].server", "has no host port",
     config(("service_stacks", [{"name": "billing"}]), ("servers.0.version", 17), *PG17_IMAGES)),
    ("a service stack named as a service", config(("service_stacks", [{"name": "auth"}]), ("servers.0.version", 17),
                                                  *PG17_IMAGES),
     "service_stacks[0].name", "duplicate service name 'auth'",
     config(("service_stacks", [{"name": "billing"}]), ("servers.0.version", 17), *PG17_IMAGES)),
    ("a service stack without TLS", config(("service_stacks", [{"name": "billing"}]), ("servers.0.version", 17),
                                           ("tls", {"enabled": False}), *PG17_IMAGES),
     "tls.enabled", "service_stacks need TLS",
     config(("service_stacks", [{"name": "billing"}]), ("servers.0.version", 17), *PG17_IMAGES)),
    ("no service at all", config(("services", [])),
     "services", "declare at least one service", config(("services", []), ("service_stacks", [{"name": "billing"}]),
                                                        ("servers.0.version", 17), *PG17_IMAGES)),
]


@pytest.mark.parametrize("bad,path,words,good", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_with_key_path_and_close_value_admitted(bad: dict[str, Any], path: str, words: str,
                                                         good: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(bad)
    lines = [str(problem) for problem in raised.value.problems]
    assert any(line.startswith(f"{path}:") and words in line for line in lines), lines
    parse_config(good)


@pytest.mark.parametrize("bad", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_refusal_registers_no_resource(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        outcome = run_stack(bad, secret_config=TEST_SECRETS)
        pytest.fail(f"program ran and registered {len(outcome.mocks.registered)} resources")


def test_a_40_character_name_derives_identifiers_within_namedatalen() -> None:
    name = "a" * 40
    service = parse_config(config(("services.0.name", name))).services[0]
    derived = [service.database_name, service.app_role, service.schema,
               *(f"{name}_{suffix}" for suffix in ("owner", "migrator", "readonly"))]
    assert max(len(n.encode()) for n in derived) <= 63


def test_pgfleet_roles_are_the_ones_a_server_makes() -> None:
    """The reserved list follows what SharedServer creates: a replica and an exporter each log in."""
    stack = config(("servers.0.replicas", 1), ("servers.0.read_port", 5442), ("servers.0.metrics", {"port": 9187}))
    outcome = run_stack(stack, secret_config=TEST_SECRETS)
    services = parse_config(stack).services
    own = {role for s in services for role in
           (s.app_role, *(f"{s.name}_{suffix}" for suffix in ("owner", "migrator", "readonly")))}
    roles = {r.inputs["name"] for r in outcome.mocks.of_type("postgresql:index/role:Role")}
    assert roles - own == set(PGFLEET_ROLES)


@pytest.mark.parametrize("path", ["Pulumi.dev.yaml", "Pulumi.prod.yaml", "examples/db-server.yaml",
                                  "examples/game-platform.yaml", "examples/movie-booking-local.yaml",
                                  "examples/quest-services.yaml", "examples/shared-postgres.yaml"])
def test_derived_host_names_are_the_containers_the_program_makes(path: str) -> None:
    """names.py predicts the containers' names (the collisions it refuses are among these)."""
    stack = stack_config(path)
    if stack.get("platform") == "kubernetes":
        return  # the same names, as StatefulSets: covered through the Docker configs
    parsed = parse_config(stack)
    predicted = {name for server in placed_servers(parsed)
                 for name in server.host_names() + server.job_names(parsed.backup.enabled)
                 + server.tls_names(parsed.tls.enabled)}
    predicted |= {name for name in STACK_PROCESSES if {
        "pgfleet-vault": parsed.vault.mode == "managed", "pgfleet-redis": parsed.redis.enabled,
        "pgfleet-backup-store": parsed.backup.enabled and parsed.backup.target.managed}[name]}
    outcome = run_stack(stack, secret_config=TEST_SECRETS)
    made = {c.inputs["name"] for c in outcome.mocks.of_type("docker:index/container:Container")}
    assert made == predicted


# PostgreSQL's own answers (postgres -C on pgfleet/postgres:15, recorded by hand; the integration
# test asks the live server the same for many more values)
VALUES = [
    ("shared_buffers", "128MB", True), ("shared_buffers", "1.5GB", True), ("shared_buffers", "0x100", True),
    ("shared_buffers", " 64 MB ", True), ("shared_buffers", "100kB", False), ("shared_buffers", "010", False),
    ("shared_buffers", "128mb", False), ("work_mem", "1B", False), ("statement_timeout", "1.5s", True),
    ("statement_timeout", "30sec", False), ("random_page_cost", "1e2", True), ("random_page_cost", "-1", False),
    ("jit", "of", True), ("jit", "o", False), ("jit", "tru", True), ("wal_level", "hot_standby", True),
    ("wal_level", "Replica", True), ("synchronous_commit", "true", True), ("log_rotation_age", "30s", True),
]


@pytest.mark.parametrize("name,value,accepted", VALUES)
def test_values_parse_as_postgresql_parses_them(name: str, value: str, accepted: bool) -> None:
    cat = catalogue(15)
    assert cat is not None
    assert (value_problem(cat.settings[name], value) is None) == accepted


def test_another_image_of_the_same_major_gets_the_builtin_checks_only() -> None:
    other = ("docker", {"images": {"postgres": "postgres:15"}})
    with pytest.raises(ConfigError, match=r"servers\[0\]\.settings\.shared_bufers"):
        parse_config(config(other, ("servers.0.settings", {"shared_bufers": "1GB"})))
    # the image's own libraries and module settings are its own business
    parse_config(config(other, ("servers.0.extensions", ["timescaledb"]),
                        ("servers.0.settings", {"timescaledb.max_background_workers": "8"})))
