"""Restore drills on live stacks: what `pgfleet-restore` brings back, and how it fails.

The dev stack (repository in its S3 store), drills in order: point-in-time recovery of a whole
server, one service restored from its dump beside untouched neighbours, then damaged and
missing backups (which must fail loudly and leave the live data as it was). A small stack with
a filesystem repository shows cron running a scheduled dump, then retention: that drill moves
the job's clock past the policy, which S3 request signing would refuse (RequestTimeTooSkewed).
"""
from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.drills import (
    check_a_target_beyond_the_archive_puts_the_data_back,
    check_restored_database_keeps_owner_and_grants,
    restore_to_a_noted_time,
    rows,
    write,
)
from tests.support.live import Live, connect, docker_stack, isolated
from tests.support.program import stack_config

PREFIX = "pgfleet-dr-"
CONFIG = isolated(stack_config("Pulumi.dev.yaml"), PREFIX, port_offset=10100)
BASE_JOB, DUMP_JOB, PRIMARY = f"{PREFIX}shared-base", f"{PREFIX}shared-dump", f"{PREFIX}shared"
#: The dev stack keeps its repository in the S3 store it runs (versitygw, posix backend):
#: bucket "pgfleet-backups", pgBackRest's repo path "/pgfleet" inside it.
assert CONFIG["backup"]["target"] == {"kind": "s3", "managed": True, "size": "5Gi"}
STORE, REPO_ON_DISK = f"{PREFIX}pgfleet-backup-store", "/var/lib/versitygw/pgfleet-backups/pgfleet"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with docker_stack(tmp_path_factory.mktemp("drills"), "it-drills", CONFIG, PREFIX) as live:
        for service in ("orders", "catalog", "auth"):
            with connect(live.url(service, "migration_url")) as migrator:
                migrator.execute("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)")
        yield live


FS_PREFIX = "pgfleet-drfs-"
FS_CONFIG = isolated({
    "platform": "docker",
    "servers": [{"name": "main", "port": 5432, "metrics": {"enabled": False}}],
    "services": [{"name": "ledger"}],
    "backup": {"target": {"kind": "filesystem", "size": "1Gi"}, "retention_days": 7},
}, FS_PREFIX, port_offset=10200)


FS_BASE_JOB, FS_DUMP_JOB = f"{FS_PREFIX}main-base", f"{FS_PREFIX}main-dump"


@pytest.fixture(scope="module")
def filesystem_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # Dumps scheduled once, a few minutes from now, so that cron itself is seen to run them.
    at = datetime.now(UTC) + timedelta(minutes=3)
    config = copy.deepcopy(FS_CONFIG)
    config["backup"]["dump_schedule"] = f"{at.minute} {at.hour} * * *"
    with docker_stack(tmp_path_factory.mktemp("drills-fs"), "it-drills-fs", config, FS_PREFIX) as live:
        with connect(live.url("ledger", "migration_url")) as migrator:
            migrator.execute("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)")
        yield live


def backup(container: str, *args: str, clock: str | None = None) -> str:
    """pgfleet-backup in a job container, optionally under a moved clock (libfaketime)."""
    command = ["pgfleet-backup", *args]
    if clock:
        command = ["faketime", "-f", clock, *command]
    result = subprocess.run(["docker", "exec", container, *command], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return result.stderr


def in_job(container: str, script: str) -> str:
    """A shell script as postgres in a job container, with the job's settings."""
    result = subprocess.run(["docker", "exec", "-u", "postgres", container, "sh", "-c", f". /etc/pgfleet/job.env && {script}"],
                            capture_output=True, text=True, check=True)
    return result.stdout


def on_store_disk(script: str) -> None:
    """A shell script on the store's own files ($REPO: the repository), as an attacker or a
    failing disk would touch them, beneath S3."""
    subprocess.run(["docker", "exec", STORE, "sh", "-c", f"REPO={REPO_ON_DISK}; {script}"],
                   capture_output=True, text=True, check=True)





def started_at(container: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", container],
                          capture_output=True, text=True, check=True).stdout.strip()


def backup_labels(job: str = BASE_JOB) -> list[str]:
    info = json.loads(in_job(job, "pgbackrest info --output=json"))
    return [b["label"] for b in info[0]["backup"]]


def dumps_of(database: str, job: str = DUMP_JOB, server: str = "shared") -> list[str]:
    listing = f"pgbackrest repo-ls --repo1-cipher-type=none --filter='dump(.enc)?$' dumps/{server}/{database}"
    return in_job(job, listing).split()


def test_deploy_archives_wal_and_takes_a_first_full_backup(live: Live) -> None:
    assert len(backup_labels()) == 1 and backup_labels()[0].endswith("F")
    with connect(live.admin("orders")) as admin:
        admin.execute("SELECT pg_switch_wal()")
        # Segments finished before the job created the stanza fail once and are retried.
        archived, failed_last = admin.execute(
            "SELECT archived_count, coalesce(last_failed_time < last_archived_time, true) FROM pg_stat_archiver"
        ).fetchone()
        assert archived > 0 and failed_last


def test_point_in_time_recovery_brings_back_exactly_the_rows_before_the_target(live: Live) -> None:
    restore_to_a_noted_time(live, lambda: backup(BASE_JOB, "base", "full"))
    assert rows(live, "orders") == [1, 2, 3, 4, 5]
    # the replica was re-cloned from the restored primary, and serves its rows
    assert rows(live, "orders", "read_url") == [1, 2, 3, 4, 5]
    write(live, "orders", 7)  # the server takes writes again, on a new timeline
    assert rows(live, "orders") == [1, 2, 3, 4, 5, 7]
    # and the replica follows it (it did not copy the recovery target and stop there)
    deadline = time.monotonic() + 60
    while rows(live, "orders", "read_url") != [1, 2, 3, 4, 5, 7] and time.monotonic() < deadline:
        time.sleep(1)
    assert rows(live, "orders", "read_url") == [1, 2, 3, 4, 5, 7]


def test_a_recovery_target_beyond_the_archive_fails_and_puts_the_data_back(live: Live) -> None:
    check_a_target_beyond_the_archive_puts_the_data_back(live)


def test_one_service_restores_from_its_dump_and_its_neighbours_are_untouched(live: Live) -> None:
    write(live, "orders", 10, 11)
    write(live, "catalog", 1, 2)
    backup(DUMP_JOB, "dump")
    orders_at_dump = rows(live, "orders")
    write(live, "orders", 12)
    with connect(live.url("orders", "migration_url")) as migrator:
        migrator.execute("DELETE FROM items WHERE id < 10")
    write(live, "catalog", 3)

    result = live.restore("dump", "orders_db")
    assert result.returncode == 0, result.stderr
    assert rows(live, "orders") == orders_at_dump
    assert rows(live, "catalog") == [1, 2, 3]  # written after the dump, on the same server
    check_restored_database_keeps_owner_and_grants(live, "orders", neighbour="catalog")


def test_a_corrupted_dump_fails_loudly_and_restores_nothing(live: Live) -> None:
    before = rows(live, "orders")
    (latest,) = dumps_of("orders_db")[-1:]
    on_store_disk(f"printf XXXX | dd of=$REPO/dumps/shared/orders_db/{latest} bs=1 seek=200 conv=notrunc")
    result = live.restore("dump", "orders_db")
    assert result.returncode == 1 and "is corrupted" in result.stderr and "nothing was restored" in result.stderr
    assert rows(live, "orders") == before


def test_a_missing_dump_fails_loudly(live: Live) -> None:
    in_job(DUMP_JOB, "pgbackrest repo-rm --repo1-cipher-type=none --recurse dumps/shared/catalog_db")
    result = live.restore("dump", "catalog_db")
    assert result.returncode == 1 and "no dump of database 'catalog_db'" in result.stderr
    assert rows(live, "catalog") == [1, 2, 3]


def test_a_corrupted_base_backup_fails_loudly_and_leaves_the_server_running(live: Live) -> None:
    before, started = rows(live, "orders"), started_at(PRIMARY)
    (label,) = backup_labels()[-1:]
    # damage the largest file of the newest backup
    on_store_disk(f"f=$(find $REPO/backup/shared/{label}/pg_data -type f -size +8k | head -n 1); "
                  "printf XXXXXXXX | dd of=$f bs=1 seek=4096 conv=notrunc")
    result = live.restore("pitr", "--server", "shared", "latest")
    assert result.returncode == 1 and "the live data is untouched" in result.stderr
    assert started_at(PRIMARY) == started and rows(live, "orders") == before


def test_a_missing_base_backup_fails_loudly(live: Live) -> None:
    on_store_disk("rm -rf $REPO/backup/shared/2*")
    started = started_at(PRIMARY)
    result = live.restore("pitr", "--server", "shared", "latest")
    assert result.returncode == 1
    assert started_at(PRIMARY) == started


def test_cron_runs_the_scheduled_dump(filesystem_live: Live) -> None:
    write(filesystem_live, "ledger", 1)
    deadline = time.monotonic() + 300
    while not dumps_of("ledger_db", FS_DUMP_JOB, "main") and time.monotonic() < deadline:
        time.sleep(5)
    assert len(dumps_of("ledger_db", FS_DUMP_JOB, "main")) == 1
    # run by cron from the job's settings file, as root turned postgres; its log is the container's
    logs = subprocess.run(["docker", "logs", FS_DUMP_JOB], capture_output=True, text=True, check=True)
    output = logs.stdout + logs.stderr
    assert "pgfleet-backup: dumped ledger_db to dumps/main/ledger_db/" in output
    assert "not found" not in output and "Permission denied" not in output, output


def test_retention_removes_what_is_older_than_the_policy(filesystem_live: Live) -> None:
    base_job, dump_job = FS_BASE_JOB, FS_DUMP_JOB
    days = FS_CONFIG["backup"]["retention_days"]
    write(filesystem_live, "ledger", 2)
    backup(base_job, "base", "full")
    backup(dump_job, "dump")
    labels = backup_labels(base_job)
    old_dumps = dumps_of("ledger_db", dump_job, "main")
    assert len(labels) == 2 and len(old_dumps) == 2
    # A week and a day on: every backup so far is past the policy; pgBackRest keeps the newest
    # full backup (with its WAL) so a restore point remains, and expires the rest.
    backup(base_job, "expire", clock=f"+{days + 1}d")
    assert backup_labels(base_job) == labels[-1:]
    backup(dump_job, "dump", clock=f"+{days + 1}d")
    remaining = dumps_of("ledger_db", dump_job, "main")
    assert len(remaining) == 1 and remaining[0] not in old_dumps
    # what is left still restores, from the filesystem repository
    with connect(filesystem_live.url("ledger")) as app:
        app.execute("DELETE FROM items")
    result = filesystem_live.restore("dump", "ledger_db")
    assert result.returncode == 0, result.stderr
    assert rows(filesystem_live, "ledger") == [1, 2]
