"""The servers and services a stack's monitoring covers, read from its checked config."""
from __future__ import annotations

from dataclasses import dataclass

from pgfleet.components.service_provisioner import provisioner_role
from pgfleet.stacks.config import StackConfig
from pgfleet.stacks.config.names import placed_servers
from pgfleet.stacks.config.types import duration_ms, duration_s

from .schedule import longest_gap_s

_STORAGE_UNITS = {"Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


@dataclass(frozen=True)
class MonitoredService:
    name: str
    database: str
    roles: tuple[str, ...]
    """Its login roles: migrator, app and read-only."""
    provisioner: str | None = None
    """A service-owned stack's service: its provisioner's role. Its database and roles are the
    team's to name, so the exporter finds them as those the provisioner made (database and
    roles are then empty here), and the platform's dumps do not cover them."""


@dataclass(frozen=True)
class MonitoredServer:
    name: str
    host: str
    """Its host name; the exporter is `<host>-metrics`."""
    version: int
    max_connections: int
    storage_bytes: int
    replicas: int
    metrics_port: int | None
    """Docker: the exporter's port on the dev bind address."""
    statements: bool
    """pg_stat_statements is preloaded: statement metrics are read from it."""
    services: tuple[MonitoredService, ...]

    @property
    def own_services(self) -> tuple[MonitoredService, ...]:
        """The services the stack itself declares: the ones its dumps cover."""
        return tuple(s for s in self.services if s.provisioner is None)


@dataclass(frozen=True)
class MonitoringPlan:
    stack: str
    platform: str
    namespace: str
    """Kubernetes: the namespace the exporters run in."""
    bind_address: str
    servers: tuple[MonitoredServer, ...]
    slow_query_ms: int
    scrape_interval: str
    pending: str
    connection_usage: float
    disk_usage: float
    backups: bool
    wal_archiving: bool
    base_backup_max_age_s: int
    """The longest gap between base backups plus the grace: older than this alerts."""
    dump_max_age_s: int
    rpo_s: int | None
    kubernetes_discovery: str

    def server(self, name: str) -> MonitoredServer | None:
        """The monitored server called `name`; None when its exporter does not run."""
        return next((s for s in self.servers if s.name == name), None)


def _bytes(size: str) -> int:
    return int(size[:-2]) * _STORAGE_UNITS[size[-2:]]


def plan(stack: str, config: StackConfig) -> MonitoringPlan:
    """What `stack`'s monitoring covers: every server whose exporter runs, with its services."""
    monitoring, backup = config.monitoring, config.backup
    servers = tuple(
        MonitoredServer(
            name=placed.name,
            host=placed.host,
            version=placed.settings.version,
            max_connections=placed.settings.max_connections,
            storage_bytes=_bytes(placed.settings.storage),
            replicas=placed.settings.replicas,
            metrics_port=placed.settings.metrics.port,
            statements="pg_stat_statements" in placed.settings.extensions,
            services=tuple(
                MonitoredService(s.name, s.database_name, (f"{s.name}_migrator", s.app_role, f"{s.name}_readonly"))
                for _, s in placed.services
            ) + tuple(
                MonitoredService(entry.name, "", (), provisioner_role(entry.name))
                for entry in config.service_stacks if config.server_of_stack(entry) == placed.name
            ),
        )
        for placed in placed_servers(config)
        if placed.settings.metrics.enabled
    )
    grace = duration_s(monitoring.alerts.backup_grace)
    return MonitoringPlan(
        stack=stack,
        platform=config.platform,
        namespace=config.kubernetes.namespace,
        bind_address=config.docker.bind_address,
        servers=servers if monitoring.enabled else (),
        slow_query_ms=duration_ms(monitoring.slow_query),
        scrape_interval=monitoring.scrape_interval,
        pending=monitoring.alerts.pending,
        connection_usage=monitoring.alerts.connection_usage,
        disk_usage=monitoring.alerts.disk_usage,
        backups=backup.enabled,
        wal_archiving=backup.enabled and backup.wal_archiving,
        base_backup_max_age_s=longest_gap_s(backup.base_backup_schedule) + grace,
        dump_max_age_s=longest_gap_s(backup.dump_schedule) + grace,
        rpo_s=duration_s(backup.rpo) if backup.enabled and backup.rpo else None,
        kubernetes_discovery=monitoring.kubernetes,
    )
