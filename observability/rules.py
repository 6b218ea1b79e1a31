"""Prometheus recording and alerting rules for one stack (a rule file's `groups`)."""
from __future__ import annotations

from . import metrics as m
from .plan import MonitoringPlan


def _at(plan: MonitoringPlan, metric: str, extra: str = "") -> str:
    """`metric` of this stack only: one Prometheus may watch several stacks."""
    return f'{metric}{{stack="{plan.stack}"{", " + extra if extra else ""}}}'


def _duration(seconds: int) -> str:
    return f"{seconds}s"


def _alert(name: str, expr: str, pending: str, severity: str, summary: str, description: str) -> dict[str, object]:
    return {
        "alert": name,
        "expr": expr,
        "for": pending,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def recording_rules(plan: MonitoringPlan) -> list[dict[str, object]]:
    """The ages of the newest backups, which dashboards and alerts read."""
    rules: list[dict[str, object]] = []
    if plan.wal_archiving:
        rules.append({"record": m.BASE_BACKUP_AGE,
                      "expr": f"time() - ({_at(plan, m.BASE_BACKUP_LAST)} > 0)"})
    if plan.backups:
        rules.append({"record": m.DUMP_AGE, "expr": f"time() - ({_at(plan, m.DUMP_LAST)} > 0)"})
    return rules


def alert_rules(plan: MonitoringPlan) -> list[dict[str, object]]:
    """One alert per condition a team must act on; `for` is the config's alerts.pending."""
    pending, usage = plan.pending, plan.connection_usage
    alerts = [
        _alert("PgfleetServerDown", f"{_at(plan, m.UP)} == 0", pending, "critical",
               "{{ $labels.server }}: the exporter cannot reach PostgreSQL",
               "pg_up has been 0 for {{ $labels.server }} in stack {{ $labels.stack }}."),
        _alert("PgfleetServiceNearConnectionLimit",
               f"{_at(plan, m.ROLE_CONNECTIONS)} / ({_at(plan, m.ROLE_CONNECTION_LIMIT)} > 0) >= {usage}",
               pending, "warning",
               "{{ $labels.service }}: role {{ $labels.role }} near its connection limit",
               f"{{{{ $labels.role }}}} holds {{{{ $value | humanizePercentage }}}} of its connection limit "
               f"(alerts at {usage:.0%}); new connections will be refused at the limit."),
        _alert("PgfleetServerNearMaxConnections",
               f"{_at(plan, m.SERVER_CONNECTIONS)} / {_at(plan, m.SERVER_MAX_CONNECTIONS)} >= {usage}",
               pending, "warning",
               "{{ $labels.server }} near max_connections",
               f"{{{{ $labels.server }}}} uses {{{{ $value | humanizePercentage }}}} of max_connections (alerts at {usage:.0%})."),
        _alert("PgfleetDiskNearlyFull",
               f"{_at(plan, m.SERVER_DATA)} / {_at(plan, m.SERVER_STORAGE)} >= {plan.disk_usage}",
               pending, "warning",
               "{{ $labels.server }}: data nearly fills its storage",
               f"Databases and WAL take {{{{ $value | humanizePercentage }}}} of the server's storage "
               f"(alerts at {plan.disk_usage:.0%}): raise storage or remove data."),
        _alert("PgfleetReplicaMissing",
               f"{_at(plan, m.REPLICAS_STREAMING)} < {_at(plan, m.REPLICAS_EXPECTED)}", pending, "warning",
               "{{ $labels.server }}: a read replica is not streaming",
               "Fewer replicas stream from {{ $labels.server }} than the config runs."),
    ]
    if plan.platform == "kubernetes":
        alerts.append(_alert(
            "PgfleetVolumeNearlyFull",
            f'kubelet_volume_stats_used_bytes{{namespace="{plan.namespace}"}} '
            f'/ kubelet_volume_stats_capacity_bytes{{namespace="{plan.namespace}"}} >= {plan.disk_usage}',
            pending, "warning", "{{ $labels.persistentvolumeclaim }} nearly full",
            f"The volume is {{{{ $value | humanizePercentage }}}} full (alerts at {plan.disk_usage:.0%}; the kubelet's figure)."))
    if plan.rpo_s is not None:
        alerts.append(_alert(
            "PgfleetReplicaLagBeyondRpo", f"{_at(plan, m.REPLICA_LAG_SECONDS)} > {plan.rpo_s}", pending, "critical",
            "{{ $labels.server }}: replica {{ $labels.replica }} lags beyond the RPO",
            f"Replay lag is {{{{ $value | humanizeDuration }}}}, beyond the RPO of {plan.rpo_s}s."))
    if plan.wal_archiving:
        # A segment older than the RPO that is still not archived breaks it (5 min without one).
        stuck = plan.rpo_s or 300
        alerts += [
            _alert("PgfleetWalArchivingFailing",
                   f"{_at(plan, m.ARCHIVE_LAST_FAILURE)} > {_at(plan, m.ARCHIVE_LAST_SUCCESS)} "
                   f"or {_at(plan, m.ARCHIVE_OLDEST_PENDING)} > {stuck}", pending, "critical",
                   "{{ $labels.server }}: WAL archiving is failing",
                   f"The last attempt to archive WAL failed, or a segment has waited more than {stuck}s: "
                   "point-in-time recovery stops at the last archived segment, and pg_wal grows until "
                   "archiving works again."),
            _alert("PgfleetBaseBackupTooOld", f"{m.BASE_BACKUP_AGE}{{stack=\"{plan.stack}\"}} > {plan.base_backup_max_age_s}",
                   pending, "critical", "{{ $labels.server }}: no base backup within its schedule",
                   f"The newest base backup is {{{{ $value | humanizeDuration }}}} old; the schedule allows "
                   f"{plan.base_backup_max_age_s}s."),
        ]
    if plan.backups:
        alerts += [
            _alert("PgfleetDumpTooOld", f"{m.DUMP_AGE}{{stack=\"{plan.stack}\"}} > {plan.dump_max_age_s}",
                   pending, "warning", "{{ $labels.service }}: no dump within its schedule",
                   f"The newest dump of {{{{ $labels.database }}}} is {{{{ $value | humanizeDuration }}}} old; the "
                   f"schedule allows {plan.dump_max_age_s}s."),
            # A new database has no dump until the next scheduled run: only one the schedule
            # has passed over alerts ('for' counts from when Prometheus first saw it).
            _alert("PgfleetDumpMissing", f"{_at(plan, m.DUMP_LAST)} == 0", _duration(plan.dump_max_age_s), "warning",
                   "{{ $labels.service }}: never dumped",
                   "{{ $labels.database }} has had no successful dump for longer than its schedule allows."),
        ]
    return alerts


def rule_groups(plan: MonitoringPlan) -> list[dict[str, object]]:
    """The `groups` of a Prometheus rule file (and of a PrometheusRule's spec): one group, whose
    rules run in order, so each alert reads the ages recorded in the same evaluation."""
    rules = recording_rules(plan) + alert_rules(plan)
    return [{"name": f"pgfleet-{plan.stack}", "interval": plan.scrape_interval, "rules": rules}]
