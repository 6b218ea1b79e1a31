"""The alert rules, checked by promtool: the file is valid, and each alert fires on a series that
breaks its condition and stays quiet on one beside it that does not."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from pgfleet.observability import MonitoringPlan, plan
from pgfleet.observability.files import rules_file
from pgfleet.observability.rules import alert_rules
from pgfleet.stacks.config import parse_config
from tests.support.program import stack_config

PROMTOOL = shutil.which("promtool")


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool is missing: bash setup/toolchain.sh installs Debian's prometheus package"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def monitoring(path: str) -> MonitoringPlan:
    return plan("dev" if "dev" in path else "prod", parse_config(stack_config(path)))


@dataclass
class Case:
    """Series that break an alert's condition (server "bad") and series that do not ("good");
    keyed by the alert's name, '/<how>' after it where a second way to break it has its own."""

    bad: dict[str, str]
    good: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    """Labels every series carries besides server and stack."""
    eval_time: str = "10m"
    value: float = 0.0
    """The alert's $value for the bad series, where its annotations print it."""


def humanize_duration(seconds: float) -> str:
    """Prometheus's humanizeDuration, for whole seconds of a minute or more."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


def minutes(seconds: int) -> int:
    """Minutes of samples that reach past an age limit by an hour."""
    return seconds // 60 + 60


def cases(p: MonitoringPlan) -> dict[str, Case]:
    service = {"service": "orders", "database": "orders_db"}
    # minutes into the test when the backup alerts are checked; the bad series finished at 1 s
    base_at, dump_at = minutes(p.base_backup_max_age_s) - 10, minutes(p.dump_max_age_s) - 10
    return {
        "PgfleetServerDown": Case({"pg_up": "0x15"}, {"pg_up": "1x15"}),
        "PgfleetServiceNearConnectionLimit": Case(
            {"pgfleet_role_connections": "17x15", "pgfleet_role_connection_limit": "20x15"},
            {"pgfleet_role_connections": "3x15", "pgfleet_role_connection_limit": "20x15"},
            {**service, "role": "orders_user"}, value=17 / 20),
        "PgfleetServerNearMaxConnections": Case(
            {"pgfleet_server_connections": "90x15", "pgfleet_server_max_connections": "100x15"},
            {"pgfleet_server_connections": "10x15", "pgfleet_server_max_connections": "100x15"}, value=90 / 100),
        "PgfleetDiskNearlyFull": Case(
            {"pgfleet_server_data_bytes": "9x15", "pgfleet_server_storage_bytes": "10x15"},
            {"pgfleet_server_data_bytes": "1x15", "pgfleet_server_storage_bytes": "10x15"}, value=9 / 10),
        "PgfleetReplicaMissing": Case(
            {"pgfleet_replication_streaming": "0x15", "pgfleet_replication_expected": "1x15"},
            {"pgfleet_replication_streaming": "1x15", "pgfleet_replication_expected": "1x15"}),
        "PgfleetVolumeNearlyFull": Case(
            {"kubelet_volume_stats_used_bytes": "9x15", "kubelet_volume_stats_capacity_bytes": "10x15"},
            {"kubelet_volume_stats_used_bytes": "1x15", "kubelet_volume_stats_capacity_bytes": "10x15"},
            {"namespace": p.namespace, "persistentvolumeclaim": "data-shared-0"}, value=9 / 10),
        "PgfleetReplicaLagBeyondRpo": Case(
            {"pgfleet_replica_lag_seconds": f"{(p.rpo_s or 0) * 2}x15"}, {"pgfleet_replica_lag_seconds": "1x15"},
            {"replica": "10.0.0.7/walreceiver"}, value=(p.rpo_s or 0) * 2),
        "PgfleetWalArchivingFailing": Case(
            {"pgfleet_wal_archive_last_failed_timestamp_seconds": "200x15",
             "pgfleet_wal_archive_last_archived_timestamp_seconds": "100x15",
             "pgfleet_wal_archive_oldest_pending_seconds": "0x15"},
            {"pgfleet_wal_archive_last_failed_timestamp_seconds": "100x15",
             "pgfleet_wal_archive_last_archived_timestamp_seconds": "200x15",
             "pgfleet_wal_archive_oldest_pending_seconds": "1x15"}),
        # an archive command that hangs: nothing fails, a segment waits
        "PgfleetWalArchivingFailing/stuck": Case(
            {"pgfleet_wal_archive_last_failed_timestamp_seconds": "0x15",
             "pgfleet_wal_archive_last_archived_timestamp_seconds": "100x15",
             "pgfleet_wal_archive_oldest_pending_seconds": f"{(p.rpo_s or 300) + 1}x15"},
            {"pgfleet_wal_archive_last_failed_timestamp_seconds": "0x15",
             "pgfleet_wal_archive_last_archived_timestamp_seconds": "100x15",
             "pgfleet_wal_archive_oldest_pending_seconds": "5x15"}),
        # A backup's age grows with the test's clock (which starts at 0, a sample a minute): a
        # finish at 1 s is older than the schedule allows, one that keeps up with the clock is fresh.
        "PgfleetBaseBackupTooOld": Case(
            {"pgfleet_base_backup_last_success_timestamp_seconds": f"1x{minutes(p.base_backup_max_age_s)}"},
            {"pgfleet_base_backup_last_success_timestamp_seconds": f"1+60x{minutes(p.base_backup_max_age_s)}"},
            eval_time=f"{base_at}m", value=base_at * 60 - 1),
        "PgfleetDumpTooOld": Case(
            {"pgfleet_dump_last_success_timestamp_seconds": f"1x{minutes(p.dump_max_age_s)}"},
            {"pgfleet_dump_last_success_timestamp_seconds": f"1+60x{minutes(p.dump_max_age_s)}"},
            service, eval_time=f"{dump_at}m", value=dump_at * 60 - 1),
        "PgfleetDumpMissing": Case(
            {"pgfleet_dump_last_success_timestamp_seconds": f"0x{minutes(p.dump_max_age_s)}"},
            {"pgfleet_dump_last_success_timestamp_seconds": f"0x2 120+60x{minutes(p.dump_max_age_s)}"},
            service, eval_time=f"{dump_at}m"),
    }


def render(template: str, labels: dict[str, str], value: float) -> str:
    text = template
    for key, label in labels.items():
        text = text.replace(f"{{{{ $labels.{key} }}}}", label)
    text = text.replace("{{ $value | humanizePercentage }}", f"{value * 100:.4g}%")
    return text.replace("{{ $value | humanizeDuration }}", humanize_duration(value))


def rule_tests(p: MonitoringPlan) -> dict[str, object]:
    tests = []
    rules = {rule["alert"]: rule for rule in alert_rules(p)}
    every = cases(p)
    assert set(rules) <= {key.split("/")[0] for key in every}, "an alert without a rule test"
    for key, case in every.items():
        name = key.split("/")[0]
        if name not in rules:  # the other platform's
            continue
        rule = rules[name]
        series = []
        for server, values in (("bad", case.bad), ("good", case.good)):
            for metric, spec in values.items():
                labels = {**case.labels, "server": server, "stack": p.stack}
                body = ",".join(f'{k}="{v}"' for k, v in labels.items())
                series.append({"series": f"{metric}{{{body}}}", "values": spec})
        labels = {**case.labels, "server": "bad", "stack": p.stack}
        annotations = {k: render(v, labels, case.value) for k, v in rule["annotations"].items()}
        tests.append({
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [{
                "eval_time": case.eval_time,
                "alertname": name,
                "exp_alerts": [{"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": annotations}],
            }],
        })
    return {"rule_files": ["pgfleet.rules.yml"], "evaluation_interval": "1m", "tests": tests}


@pytest.mark.parametrize("path", ["Pulumi.dev.yaml", "Pulumi.prod.yaml"])
def test_promtool_accepts_the_rules_and_each_alert_fires_on_its_condition_alone(path: str, tmp_path: Path) -> None:
    p = monitoring(path)
    (tmp_path / "pgfleet.rules.yml").write_text(rules_file(p))
    checked = promtool("check", "rules", "pgfleet.rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = {rule["alert"] for rule in alert_rules(p)}
    assert {"PgfleetWalArchivingFailing", "PgfleetBaseBackupTooOld", "PgfleetReplicaLagBeyondRpo",
            "PgfleetServiceNearConnectionLimit", "PgfleetServerNearMaxConnections", "PgfleetDiskNearlyFull"} <= names
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(rule_tests(p), sort_keys=False))
    tested = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_rule_test_fails_when_the_alert_would_not_fire(tmp_path: Path) -> None:
    """The harness itself can fail: a threshold raised past the bad series silences its alert."""
    p = monitoring("Pulumi.dev.yaml")
    quiet = yaml.safe_load(rules_file(p))
    for group in quiet["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "PgfleetWalArchivingFailing":
                rule["expr"] += " + 1000"
    (tmp_path / "pgfleet.rules.yml").write_text(yaml.safe_dump(quiet))
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(rule_tests(p), sort_keys=False))
    tested = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode != 0 and "PgfleetWalArchivingFailing" in tested.stdout + tested.stderr
