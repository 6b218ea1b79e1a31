"""Names the config gives or derives that a server or a platform would refuse only at apply time.

Each rule is here because `pulumi up` would otherwise stop half-way, or worse: the PostgreSQL
provider adopts a role or database that exists already, so an app role named after the server's
admin would strip the admin of SUPERUSER and change its password (measured on PostgreSQL 15).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pgfleet.components.platform.base import dns_name

from .models import ServerSettings, ServiceConfig, StackConfig
from .problem import Problem

#: What pgfleet puts after a server's host name: its replicas, pooler and exporter.
HELPER_SUFFIXES = ("-read", "-pooler", "-metrics")
#: What it puts after a server's key (its name as a DNS label): the backup jobs.
JOB_SUFFIXES = ("-dump", "-base")
#: And its TLS files (a Docker volume and the container that writes it; a Kubernetes Secret).
TLS_SUFFIX = "-tls"
#: Processes every stack runs under fixed names (stacks.run's prefix "pgfleet"), by what makes them.
STACK_PROCESSES = {"pgfleet-vault": "vault.mode 'managed'", "pgfleet-redis": "redis.enabled",
                   "pgfleet-backup-store": "backup.target.managed"}
#: A host name is a DNS label: 63 characters (Docker refuses a longer container host name).
HOST_MAX = 63
#: A StatefulSet's pods carry the label 'controller-revision-hash: <name>-<10 characters>', and a
#: label value has at most 63: a longer name creates no pod (kubernetes/kubernetes#64023).
STATEFULSET_MAX = 52


@dataclass(frozen=True)
class PlacedServer:
    """A server with where the config sets it: `servers[i]` or a dedicated `services[i]`."""

    path: str
    """Where its settings are: 'servers[0]' or 'services[2].dedicated'."""
    name_path: str
    name: str
    settings: ServerSettings
    services: list[tuple[int, ServiceConfig]]

    @property
    def key(self) -> str:
        return dns_name(self.name)

    @property
    def host(self) -> str:
        return self.settings.host or self.key

    @property
    def host_path(self) -> str:
        return f"{self.path}.host" if self.settings.host else self.name_path

    def _helpers(self, base: str) -> list[str]:
        """`base` with the suffixes of the helpers this server runs: replicas, pooler, exporter."""
        replicas = self.settings.replicas
        names = [f"{base}-read"] if replicas == 1 else [f"{base}-read-{i}" for i in range(replicas)]
        if self.settings.pooler.enabled:
            names.append(f"{base}-pooler")
        if self.settings.metrics.enabled:
            names.append(f"{base}-metrics")
        return names

    def host_names(self) -> list[str]:
        """Host names of the primary and its helpers: containers, StatefulSets, Services."""
        return [self.host, *self._helpers(self.host)]

    def statefulset_names(self) -> list[str]:
        """On Kubernetes the replicas are one StatefulSet, '<host>-read', of several pods."""
        return list(dict.fromkeys(name.rsplit("-", 1)[0] if name.startswith(f"{self.host}-read-") else name
                                  for name in self.host_names()))

    def key_names(self, backups: bool) -> list[str]:
        """Names of the primary, its helpers and jobs as Pulumi resources and Kubernetes Secrets:
        two the same make a duplicate URN, which stops `pulumi up` where it meets it."""
        return [self.key, *self._helpers(self.key), *self.job_names(backups)]

    def job_names(self, backups: bool) -> list[str]:
        """The backup jobs: CronJobs, or containers beside the server on Docker."""
        return [self.key + suffix for suffix in JOB_SUFFIXES] if backups else []

    def tls_names(self, tls: bool) -> list[str]:
        """The server's TLS files: a container and volume on Docker, a Secret on Kubernetes."""
        return [self.key + TLS_SUFFIX] if tls else []


def placed_servers(config: StackConfig) -> list[PlacedServer]:
    """Every server the stack runs, shared ones first, with the services placed on it."""
    servers = [
        PlacedServer(f"servers[{i}]", f"servers[{i}].name", server.name, server,
                     [(j, s) for j, s in enumerate(config.services) if s.topology == "shared" and (
                         s.server == server.name or (s.server is None and len(config.servers) == 1))])
        for i, server in enumerate(config.servers)
    ]
    servers += [
        PlacedServer(f"services[{i}].dedicated", f"services[{i}].name", service.name,
                     service.dedicated or ServerSettings(), [(i, service)])
        for i, service in enumerate(config.services) if service.topology == "dedicated"
    ]
    return servers


def _roles(service: ServiceConfig) -> list[str]:
    return [service.app_role] + [f"{service.name}_{suffix}" for suffix in ("owner", "migrator", "readonly")]


def _held_by_server(servers: list[PlacedServer]) -> Iterator[Problem]:
    """A service's database and roles must not be what its server holds already: its admin
    role, and the database the image makes for the admin (POSTGRES_DB defaults to POSTGRES_USER)."""
    for server in servers:
        admin = server.settings.admin_user
        for i, service in server.services:
            if service.database_name == admin:
                path = f"services[{i}].database" if service.database else f"services[{i}].name"
                yield Problem(path, f"database {admin!r} is the one server {server.name!r} makes for its admin_user; "
                                    "choose another database name (or another admin_user)")
            for role in _roles(service):
                if role == admin:
                    path = f"services[{i}].app_user" if role == service.app_user else f"services[{i}].name"
                    yield Problem(path, f"role {role!r} is server {server.name!r}'s admin_user: the app role would "
                                        "take it over (the provider adopts a role that exists), and with it the superuser; choose "
                                        "another name (or another admin_user)")
            if service.schema_name is None and service.name in ("public", "information_schema"):
                yield Problem(f"services[{i}].name", f"the default schema {service.name!r} exists in every new database; "
                                                     "set 'schema' to a name of the service's own")


def _platform_names(config: StackConfig, servers: list[PlacedServer]) -> Iterator[Problem]:
    """Containers (Docker), StatefulSets, Services and Secrets (Kubernetes) and the resources'
    names derive from the servers' names and hosts: no two servers may derive the same one."""
    backups, tls = config.backup.enabled, config.tls.enabled
    stack = {name: (f"the stack's own process ({why})", False)
             for name, why in STACK_PROCESSES.items() if _runs(config, name)}
    # (name, server, key path, whether it is the server's primary host); on Docker the backup
    # jobs are containers beside the servers, so they share the host names' namespace
    hosts = [(name, server, server.host_path, name == server.host)
             for server in servers for name in server.host_names() + server.job_names(backups) + server.tls_names(tls)]
    keys = [(name, server, server.name_path, False)
            for server in servers for name in server.key_names(backups) + server.tls_names(tls)]
    reported: set[tuple[str, str]] = set()
    for derived in (hosts, keys):
        taken: dict[str, tuple[str, bool]] = dict(stack)
        for name, server, path, primary in derived:
            owner = f"server {server.name!r}"
            holder, holder_primary = taken.setdefault(name, (owner, primary))
            # two servers by one host name are checks._names' to report
            if holder == owner or (primary and holder_primary) or (path, name) in reported:
                continue
            reported.add((path, name))
            yield Problem(path, f"derives the name {name!r}, which {holder} takes too (pgfleet adds "
                                f"{', '.join(HELPER_SUFFIXES + JOB_SUFFIXES + (TLS_SUFFIX,))}); choose one that derives none of "
                                "another's")


def _runs(config: StackConfig, process: str) -> bool:
    return {
        "pgfleet-vault": config.vault.mode == "managed",
        "pgfleet-redis": config.redis.enabled,
        "pgfleet-backup-store": config.backup.enabled and config.backup.target.managed,
    }[process]


def _host_lengths(config: StackConfig, servers: list[PlacedServer]) -> Iterator[Problem]:
    kubernetes = config.platform == "kubernetes"
    limit = STATEFULSET_MAX if kubernetes else HOST_MAX
    for server in servers:
        longest = max(server.statefulset_names() if kubernetes else server.host_names(), key=len)
        if len(longest) > limit:
            why = ("a longer StatefulSet name creates no pod" if kubernetes
                   else "Docker refuses a longer host name")
            yield Problem(server.host_path, f"derives the host name {longest!r} ({len(longest)} characters, at most "
                                            f"{limit}: {why}); use at most {limit - len(longest) + len(server.host)} "
                                            "characters")
        if kubernetes and not server.host[0].isalpha():
            yield Problem(server.host_path, f"{server.host!r} names Kubernetes Services, which begin with a letter; "
                                            f"e.g. 'pg-{server.host}'")


def name_problems(config: StackConfig) -> list[Problem]:
    servers = placed_servers(config)
    return [*_held_by_server(servers), *_platform_names(config, servers), *_host_lengths(config, servers)]

