"""Rules that relate several parts of the config: names, references and ports."""
from __future__ import annotations

from collections.abc import Iterator

from pgfleet.components.platform.base import dns_name

from .models import ServerSettings, StackConfig
from .names import name_problems, placed_servers
from .problem import Problem
from .server_settings import settings_problems


def _duplicates(pairs: list[tuple[str, str]], what: str) -> Iterator[Problem]:
    first_seen: dict[str, str] = {}
    for path, value in pairs:
        if value in first_seen:
            yield Problem(path, f"duplicate {what} {value!r} (first at {first_seen[value]}); {what}s must be unique")
        else:
            first_seen[value] = path


def _names(config: StackConfig) -> Iterator[Problem]:
    yield from _duplicates([(f"services[{i}].name", s.name) for i, s in enumerate(config.services)], "service name")
    server_names = [(f"servers[{i}].name", s.name) for i, s in enumerate(config.servers)]
    dedicated = [(f"services[{i}].name", s.name) for i, s in enumerate(config.services) if s.topology == "dedicated"]
    yield from _duplicates(server_names + dedicated, "server name")
    # the host names the servers go by: containers and Services, so one per server
    hosts = [(f"servers[{i}].host", s.host or dns_name(s.name)) for i, s in enumerate(config.servers)]
    hosts += [(f"services[{i}].dedicated.host", (s.dedicated.host if s.dedicated else None) or dns_name(s.name))
              for i, s in enumerate(config.services) if s.topology == "dedicated"]
    yield from _duplicates(hosts, "server host")
    roles: list[tuple[str, str]] = []
    distinct = {service.name: i for i, service in reversed(list(enumerate(config.services)))}
    for i, service in enumerate(config.services):
        if distinct[service.name] != i:
            continue  # already reported as a duplicate service name
        roles += [(f"services[{i}].app_user", service.app_role)]
        roles += [(f"services[{i}].name", f"{service.name}_{suffix}") for suffix in ("owner", "migrator", "readonly")]
    # Roles are cluster-wide in PostgreSQL, so they must be unique across the stack's servers too.
    yield from _duplicates(roles, "role name")


def _placement(config: StackConfig) -> Iterator[Problem]:
    known = {server.name for server in config.servers}
    databases: dict[tuple[str, str], str] = {}
    for i, service in enumerate(config.services):
        where = f"services[{i}]"
        if service.topology == "dedicated":
            if service.server is not None:
                yield Problem(f"{where}.server", "a dedicated service gets its own server; remove 'server'")
            continue
        if service.dedicated is not None:
            yield Problem(f"{where}.dedicated", "only valid with topology 'dedicated'; remove it or change topology")
        if service.server is None and len(config.servers) != 1:
            valid = ", ".join(sorted(known)) or "none declared under 'servers'"
            yield Problem(f"{where}.server", f"required when the stack has {len(config.servers)} servers (valid: {valid})")
            continue
        if service.server is not None and service.server not in known:
            valid = ", ".join(sorted(known)) or "none declared under 'servers'"
            yield Problem(f"{where}.server", f"unknown server {service.server!r} (valid: {valid})")
            continue
        server = config.server_of(service)
        key = (server, service.database_name)
        if key in databases:
            yield Problem(
                f"{where}.database",
                f"database {service.database_name!r} is already used on server {server!r} by {databases[key]}",
            )
        databases[key] = where
    for i, server in enumerate(config.servers):
        hosted = [s.server for s in config.services if s.topology == "shared"] + [s.server for s in config.service_stacks]
        if not any(name in (server.name, None) for name in hosted):
            yield Problem(f"servers[{i}].name", f"server {server.name!r} hosts no service; remove it or place one on it")


#: The first PostgreSQL major whose CREATEROLE reaches only the roles that role created.
SCOPED_CREATEROLE = 16


def _service_stacks(config: StackConfig) -> Iterator[Problem]:
    servers = {server.name: server for server in config.servers}
    names = [(f"services[{i}].name", s.name) for i, s in enumerate(config.services)]
    names += [(f"service_stacks[{i}].name", s.name) for i, s in enumerate(config.service_stacks)]
    # duplicates among `services` alone are _names' to report
    yield from (p for p in _duplicates(names, "service name") if p.path.startswith("service_stacks"))
    for i, entry in enumerate(config.service_stacks):
        where = f"service_stacks[{i}]"
        valid = ", ".join(sorted(servers)) or "none declared under 'servers'"
        if entry.server is None and len(servers) != 1:
            yield Problem(f"{where}.server", f"required when the stack has {len(servers)} servers (valid: {valid})")
            continue
        if entry.server is not None and entry.server not in servers:
            yield Problem(f"{where}.server", f"unknown server {entry.server!r} (valid: {valid})")
            continue
        server = servers[config.server_of_stack(entry)]
        if server.version < SCOPED_CREATEROLE:
            yield Problem(
                f"{where}.server",
                f"server {server.name!r} runs PostgreSQL {server.version}, where a provisioner's CREATEROLE "
                f"reaches every role; service stacks need version {SCOPED_CREATEROLE} or newer (e.g. version: 17 "
                "with images.postgres pgfleet/postgres:17)",
            )
        if config.platform == "docker" and server.port is None:
            yield Problem(f"{where}.server", f"server {server.name!r} has no host port: a service stack's deploy "
                                             "dials it there; set its port")
    if config.service_stacks and not config.tls.enabled:
        yield Problem("tls.enabled", "service_stacks need TLS: their deploys reach the server over the network")


def _server_ports(prefix: str, server: ServerSettings) -> list[tuple[str, int | None]]:
    return [
        (f"{prefix}.port", server.port),
        (f"{prefix}.read_port", server.read_port),
        (f"{prefix}.pooler.port", server.pooler.port if server.pooler.enabled else None),
        (f"{prefix}.metrics.port", server.metrics.port if server.metrics.enabled else None),
    ]


def _host_ports(config: StackConfig) -> Iterator[Problem]:
    """On Docker every published port shares the host's loopback address, so each must be unique."""
    if config.platform != "docker":
        return
    ports: list[tuple[str, int | None]] = []
    for i, server in enumerate(config.servers):
        ports += _server_ports(f"servers[{i}]", server)
    for i, service in enumerate(config.services):
        if service.topology == "dedicated":
            ports += _server_ports(f"services[{i}].dedicated", service.dedicated or ServerSettings())
    if config.redis.enabled:
        ports.append(("redis.port", config.redis.port))
    if config.vault.mode == "managed":
        ports.append(("vault.port", config.vault.port))
    seen: dict[int, str] = {}
    for path, port in ports:
        if port is None:
            continue
        if port in seen:
            yield Problem(path, f"host port {port} is already taken by {seen[port]}; pick a free port")
        else:
            seen[port] = path


def _redis(config: StackConfig) -> Iterator[Problem]:
    for i, service in enumerate(config.services):
        if service.redis is not None and not config.redis.enabled:
            yield Problem(f"services[{i}].redis", "needs the shared Redis: set redis.enabled to true")


def _limits(config: StackConfig) -> Iterator[Problem]:
    for i, service in enumerate(config.services):
        if service.pool.max > service.connection_limit:
            yield Problem(
                f"services[{i}].pool.max",
                f"pool max {service.pool.max} exceeds connection_limit {service.connection_limit}; "
                "raise connection_limit or lower the pool",
            )
    for name, server, services in _placed(config):
        total = sum(s.connection_limit for s in services)
        # Headroom for the admin, replication, the exporter and backups.
        if total + 10 > server.max_connections:
            yield Problem(
                name,
                f"the connection_limits of its services add up to {total}, over max_connections "
                f"{server.max_connections} less 10 reserved; raise max_connections",
            )


def _placed(config: StackConfig) -> Iterator[tuple[str, ServerSettings, list]]:
    for i, server in enumerate(config.servers):
        yield f"servers[{i}].max_connections", server, [
            s for s in config.services if s.topology == "shared" and s.server in (server.name, None)
        ]
    for i, service in enumerate(config.services):
        if service.topology == "dedicated":
            yield f"services[{i}].dedicated.max_connections", service.dedicated or ServerSettings(), [service]


def _schedules(config: StackConfig) -> Iterator[Problem]:
    """Kubernetes parses CronJob schedules with robfig/cron, whose day of week ends at 6
    (cron on Docker also takes 7 for Sunday): the API server would refuse the CronJob."""
    if config.platform != "kubernetes" or not config.backup.enabled:
        return
    for key in ("dump_schedule", "base_backup_schedule"):
        schedule = getattr(config.backup, key)
        day_of_week = schedule.split()[4]
        numbers = [n for part in day_of_week.split(",") for n in part.partition("/")[0].split("-")]
        if "7" in numbers:
            yield Problem(f"backup.{key}", f"{schedule!r}: Kubernetes CronJobs take day of week 0-6; "
                                           "write Sunday as 0")


def _repository(config: StackConfig) -> Iterator[Problem]:
    """A filesystem repository is one ReadWriteOnce claim that every primary and backup job
    mounts: two servers would be scheduled apart and one of them never start."""
    servers = len(placed_servers(config))
    if (config.platform == "kubernetes" and config.backup.enabled and config.backup.target.kind == "filesystem"
            and servers > 1):
        yield Problem("backup.target.kind", f"'filesystem' is one ReadWriteOnce volume, which the stack's {servers} "
                                            "servers cannot share across nodes: use kind 's3' (any S3-compatible "
                                            "endpoint) on Kubernetes")


def cross_checks(config: StackConfig) -> list[Problem]:
    """Every problem that involves more than one key, in a stable order."""
    return [
        *_names(config),
        *_placement(config),
        *_service_stacks(config),
        *_host_ports(config),
        *_redis(config),
        *_limits(config),
        *_schedules(config),
        *_repository(config),
        *name_problems(config),
        *settings_problems(config),
    ]
