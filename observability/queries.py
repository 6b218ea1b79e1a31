"""The postgres exporter's custom queries (its queries.yaml) for one server.

The exporter runs them as pgfleet_monitor (pg_monitor: reads every statistics view, nothing
else) on the server's `postgres` database; pg_stat_statements and pg_stat_database cover every
database from there. Each service's name is written into the queries, so its series carry
`service` on every platform without relabelling. A service-owned stack's database and roles are
named by the team: they are found as the ones its provisioner made (PostgreSQL 16 and newer give
the role that made a role ADMIN OPTION on it, recorded in pg_auth_members).
"""
from __future__ import annotations

from collections.abc import Iterable

import yaml

from .plan import MonitoredServer, MonitoringPlan


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _values(name: str, columns: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    """A CTE of constant text rows; with none, an empty one of the same shape."""
    rows = list(rows)
    if rows:
        body = "VALUES " + ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    else:
        body = "SELECT " + ", ".join(["NULL::text"] * len(columns)) + " WHERE false"
    return f"{name}({', '.join(columns)}) AS ({body})"


def _metric(query: str, labels: Iterable[str], columns: dict[str, tuple[str, str]]) -> dict[str, object]:
    metrics: list[dict[str, object]] = [{label: {"usage": "LABEL", "description": label}} for label in labels]
    metrics += [{name: {"usage": usage, "description": text}} for name, (usage, text) in columns.items()]
    return {"query": " ".join(query.split()), "master": True, "metrics": metrics}


def _service_tables(server: MonitoredServer) -> tuple[str, str, str]:
    """CTEs of the services' databases and login roles: `declared(service, datname)` (the stack's
    own services: the ones its dumps cover), `services(service, datname)` and
    `roles(service, datname, rolname)` (those plus what each service stack's provisioner made)."""
    own = server.own_services
    declared = _values("declared", ("service", "datname"), ((s.name, s.database) for s in own))
    declared_roles = _values("declared_roles", ("service", "datname", "rolname"),
                             ((s.name, s.database, r) for s in own for r in s.roles))
    provisioners = _values("provisioners", ("service", "rolname"),
                           ((s.name, s.provisioner) for s in server.services if s.provisioner is not None))
    made = f"""{provisioners},
        made AS (SELECT DISTINCT p.service, m.roleid FROM provisioners p
                 JOIN pg_roles pr ON pr.rolname = p.rolname
                 JOIN pg_auth_members m ON m.member = pr.oid AND m.admin_option),
        owned AS (SELECT made.service, d.datname FROM made JOIN pg_database d ON d.datdba = made.roleid)"""
    services = f"{declared}, {made}, services AS (SELECT * FROM declared UNION ALL SELECT * FROM owned)"
    roles = f"""{declared_roles}, {made},
        roles AS (SELECT * FROM declared_roles
                  UNION ALL SELECT o.service, o.datname, r.rolname FROM made
                  JOIN pg_roles r ON r.oid = made.roleid AND r.rolcanlogin
                  JOIN owned o ON o.service = made.service)"""
    return declared, services, roles


def queries(server: MonitoredServer, plan: MonitoringPlan) -> dict[str, dict[str, object]]:
    """Query name (the metric prefix) -> the exporter's definition of it."""
    declared, services, roles = _service_tables(server)
    found: dict[str, dict[str, object]] = {
        "pgfleet_role": _metric(
            f"""WITH {roles}
            SELECT r.service, r.datname AS database, r.rolname AS role,
                   count(a.pid) AS connections, COALESCE(max(pr.rolconnlimit), -1) AS connection_limit
            FROM roles r
            LEFT JOIN pg_roles pr ON pr.rolname = r.rolname
            LEFT JOIN pg_stat_activity a ON a.usename = r.rolname
            GROUP BY r.service, r.datname, r.rolname""",
            ("service", "database", "role"),
            {"connections": ("GAUGE", "Open connections of the role"),
             "connection_limit": ("GAUGE", "The role's connection limit (-1: none)")},
        ),
        "pgfleet_database": _metric(
            f"""WITH {services}
            SELECT s.service, s.datname AS database,
                   COALESCE(d.xact_commit, 0) AS xact_commit_total, COALESCE(d.xact_rollback, 0) AS xact_rollback_total,
                   COALESCE(pg_database_size(db.oid), 0) AS size_bytes
            FROM services s
            LEFT JOIN pg_database db ON db.datname = s.datname
            LEFT JOIN pg_stat_database d ON d.datid = db.oid""",
            ("service", "database"),
            {"xact_commit_total": ("COUNTER", "Transactions committed"),
             "xact_rollback_total": ("COUNTER", "Transactions rolled back"),
             "size_bytes": ("GAUGE", "Size of the database on disk")},
        ),
        "pgfleet_server": _metric(
            f"""SELECT current_setting('max_connections')::int AS max_connections,
                   (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections,
                   (SELECT sum(pg_database_size(oid)) FROM pg_database)
                     + (SELECT COALESCE(sum(size), 0) FROM pg_ls_waldir()) AS data_bytes,
                   {server.storage_bytes}::bigint AS storage_bytes""",
            (),
            {"max_connections": ("GAUGE", "The server's max_connections"),
             "connections": ("GAUGE", "Client connections open"),
             "data_bytes": ("GAUGE", "Every database plus the WAL on disk"),
             "storage_bytes": ("GAUGE", "The storage the config gives the server's volume")},
        ),
        "pgfleet_replication": _metric(
            f"""SELECT count(*) FILTER (WHERE state = 'streaming') AS streaming, {server.replicas} AS expected
            FROM pg_stat_replication""",
            (),
            {"streaming": ("GAUGE", "Replicas streaming from this primary"),
             "expected": ("GAUGE", "Replicas the config runs")},
        ),
    }
    if server.replicas:
        found["pgfleet_replica"] = _metric(
            """SELECT COALESCE(host(client_addr), 'local') || '/' || application_name AS replica,
                   COALESCE(EXTRACT(epoch FROM replay_lag), 0) AS lag_seconds,
                   COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) AS lag_bytes
            FROM pg_stat_replication""",
            ("replica",),
            {"lag_seconds": ("GAUGE", "How far behind the replica replays (0 when idle and caught up)"),
             "lag_bytes": ("GAUGE", "WAL the replica has yet to replay")},
        )
    if server.statements:
        slow = plan.slow_query_ms
        found["pgfleet_statements"] = _metric(
            f"""WITH {services}
            SELECT s.service, s.datname AS database,
                   COALESCE(sum(p.calls), 0) AS calls_total,
                   COALESCE(sum(p.total_exec_time), 0) / 1000 AS exec_seconds_total,
                   count(p.queryid) FILTER (WHERE p.mean_exec_time >= {slow}) AS slow,
                   COALESCE(sum(p.calls) FILTER (WHERE p.mean_exec_time >= {slow}), 0) AS slow_calls_total,
                   COALESCE(max(p.mean_exec_time), 0) / 1000 AS max_mean_seconds
            FROM services s
            LEFT JOIN pg_database db ON db.datname = s.datname
            LEFT JOIN pg_stat_statements p ON p.dbid = db.oid
            GROUP BY s.service, s.datname""",
            ("service", "database"),
            {"calls_total": ("COUNTER", "Statement executions"),
             "exec_seconds_total": ("COUNTER", "Time spent executing statements"),
             "slow": ("GAUGE", f"Statements whose mean execution time is {slow} ms or more"),
             "slow_calls_total": ("COUNTER", "Executions of those statements"),
             "max_mean_seconds": ("GAUGE", "The slowest statement's mean execution time")},
        )
    if plan.wal_archiving:
        found["pgfleet_wal_archive"] = _metric(
            """SELECT (current_setting('archive_mode') <> 'off')::int AS enabled,
                   archived_count AS archived_total, failed_count AS failed_total,
                   COALESCE(EXTRACT(epoch FROM last_archived_time), 0) AS last_archived_timestamp_seconds,
                   COALESCE(EXTRACT(epoch FROM last_failed_time), 0) AS last_failed_timestamp_seconds,
                   pending.segments AS pending, pending.oldest_seconds AS oldest_pending_seconds
            FROM pg_stat_archiver,
                 (SELECT count(*) AS segments, COALESCE(EXTRACT(epoch FROM now() - min(modification)), 0) AS oldest_seconds
                  FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') AS pending""",
            (),
            {"enabled": ("GAUGE", "archive_mode is on"),
             "archived_total": ("COUNTER", "WAL files archived"),
             "failed_total": ("COUNTER", "Failed attempts to archive a WAL file"),
             "last_archived_timestamp_seconds": ("GAUGE", "When the last WAL file was archived (0: never)"),
             "last_failed_timestamp_seconds": ("GAUGE", "When archiving last failed (0: never)"),
             # An archive command that hangs (a store that does not answer) fails nothing: the
             # segments waiting for it show it.
             "pending": ("GAUGE", "WAL segments waiting to be archived"),
             "oldest_pending_seconds": ("GAUGE", "How long the oldest of them has waited (0: none)")},
        )
        # pgfleet-backup records every success in the server (setup/images/postgres/pgfleet-backup).
        found["pgfleet_base_backup"] = _metric(
            """SELECT COALESCE(EXTRACT(epoch FROM max(finished_at)), 0) AS last_success_timestamp_seconds
            FROM pgfleet.backup_runs WHERE kind = 'base'""",
            (),
            {"last_success_timestamp_seconds": ("GAUGE", "When the newest base backup finished (0: never)")},
        )
    if plan.backups:
        found["pgfleet_dump"] = _metric(
            f"""WITH {declared}
            SELECT s.service, s.datname AS database,
                   COALESCE(EXTRACT(epoch FROM max(b.finished_at)), 0) AS last_success_timestamp_seconds
            FROM declared s
            LEFT JOIN pgfleet.backup_runs b ON b.kind = 'dump' AND b.datname = s.datname
            GROUP BY s.service, s.datname""",
            ("service", "database"),
            {"last_success_timestamp_seconds": ("GAUGE", "When the database's newest dump finished (0: never)")},
        )
    return found


def queries_yaml(server: MonitoredServer, plan: MonitoringPlan) -> str:
    """The exporter's queries.yaml for `server`."""
    return yaml.safe_dump(queries(server, plan), sort_keys=False, width=10_000)
