"""Backups and restores on the cluster, drilled as on Docker (tests/integration/test_backup_drills.py).

A small Kubernetes stack (one server with a replica, two services) archives into an S3 store
in the cluster. In order: WAL archiving and the first full backup at deploy; the base-backup
and dump CronJobs fired by hand, and the dump CronJob firing on its schedule; point-in-time
recovery of the server (the replica follows); one service restored from its dump beside a
neighbour that keeps later rows; damaged and missing backups, which fail with the reason and
leave the running server as it was. Every restore is `pgfleet-restore` as an operator runs
it, with no flag naming the platform.
"""
from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pulumi import automation as auto

from tests.support.cluster import Cluster, wait
from tests.support.drills import (
    check_a_target_beyond_the_archive_puts_the_data_back,
    check_restored_database_keeps_owner_and_grants,
    restore_to_a_noted_time,
    rows,
    write,
)
from tests.support.engine import throwaway_stack, up_with_policies
from tests.support.live import Live, check_second_preview_is_empty, connect
from tests.support.prod import (
    ClusterLive,
    ExternalVault,
    ObjectStore,
    for_cluster,
    object_store,
    secret_config,
)
from tests.support.program import PROJECT

PREFIX = f"drill-{secrets.token_hex(2)}-"
NAMESPACE = f"{PREFIX}db"
STORE_NAMESPACE = f"{PREFIX}s3"
#: The store's own files: bucket "pgfleet-backups", pgBackRest's repository path "/pgfleet" in it.
REPO_ON_DISK = "/var/lib/versitygw/pgfleet-backups/pgfleet"
#: The dump CronJob's first schedule: daily, hours away from now, so that it never fires during
#: the drills; a test moves it to a minute soon after and watches it fire.
QUIET_HOURS = 12


def drill_config(store: ObjectStore, vault: ExternalVault) -> dict:
    quiet = datetime.now(UTC) + timedelta(hours=QUIET_HOURS)
    config = {
        "platform": "kubernetes",
        "servers": [{"name": "shared", "replicas": 1, "metrics": {"enabled": False}}],
        "services": [{"name": "orders", "server": "shared"}, {"name": "catalog", "server": "shared"}],
        "backup": {"dump_schedule": f"{quiet.minute} {quiet.hour} * * *", "retention_days": 7},
    }
    return for_cluster(config, PREFIX, vault, store)


@pytest.fixture(scope="module")
def store(cluster: Cluster) -> Iterator[ObjectStore]:
    with object_store(cluster, STORE_NAMESPACE) as store:
        yield store


@pytest.fixture(scope="module")
def config(store: ObjectStore, vault: ExternalVault) -> dict:
    return drill_config(store, vault)


@pytest.fixture(scope="module")
def live(cluster: Cluster, store: ObjectStore, vault: ExternalVault, config: dict,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterLive]:
    try:
        with throwaway_stack(tmp_path_factory.mktemp("k8s-drills"), "k8s-drills", config,
                             secret_config(vault, store), protected=True) as stack:
            live = ClusterLive(stack, up_with_policies(stack), NAMESPACE)
            for service in ("orders", "catalog"):
                with connect(live.url(service, "migration_url")) as migrator:
                    migrator.execute("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)")
            yield live
    finally:
        cluster.core.delete_namespace(NAMESPACE)


# -- helpers -------------------------------------------------------------------------------------

def pgbackrest_info(cluster: Cluster) -> list[dict]:
    """`pgbackrest info` in the primary's pod, with the server's own repository settings, as
    postgres (root would leave lock and log files the archiver cannot write)."""
    code, output = cluster.exec(NAMESPACE, "shared-0", [
        "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "pgbackrest", "info", "--output=json"])
    assert code == 0, output
    return json.loads(output)


def backup_labels(cluster: Cluster) -> list[str]:
    return [b["label"] for b in pgbackrest_info(cluster)[0]["backup"]]


def on_store_disk(cluster: Cluster, script: str) -> str:
    """A shell script on the store's own files ($REPO: the repository), as a failing disk or an
    attacker would touch them, beneath S3."""
    code, output = cluster.exec(STORE_NAMESPACE, "s3-0", ["sh", "-c", f"REPO={REPO_ON_DISK}; {script}"])
    assert code == 0, output
    return output


def dumps_of(cluster: Cluster, database: str) -> list[str]:
    return on_store_disk(cluster, f"ls $REPO/dumps/shared/{database} 2>/dev/null | grep -E 'dump(.enc)?$' || true").split()



def rows_when_served(live: Live, service: str, kind: str = "url") -> list[int]:
    """Rows once the server answers again (after a restart the forward reaches the new pod)."""
    return wait(lambda: (rows(live, service, kind),), 180, f"{service} ({kind}) to answer",
                errors=(psycopg.OperationalError,))[0]




def primary_incarnation(cluster: Cluster) -> tuple[str, int]:
    pod = cluster.core.read_namespaced_pod("shared-0", NAMESPACE)
    return pod.metadata.uid, pod.status.container_statuses[0].restart_count


# -- backups run for real ------------------------------------------------------------------------

def test_deploy_archives_wal_and_takes_a_first_full_backup(cluster: Cluster, live: ClusterLive) -> None:
    jobs = {j.metadata.name: j.status.succeeded for j in cluster.batch.list_namespaced_job(NAMESPACE).items}
    assert jobs == {"shared-base-init": 1}
    labels = backup_labels(cluster)
    assert len(labels) == 1 and labels[0].endswith("F")
    with connect(live.admin("orders")) as admin:
        admin.execute("SELECT pg_switch_wal()")
    # the first segments, from before the stanza existed, are retried until archived
    archived = wait(lambda: pgbackrest_info(cluster)[0]["archive"][0]["max"], 120, "WAL in the repository")
    assert archived >= pgbackrest_info(cluster)[0]["archive"][0]["min"]
    info = pgbackrest_info(cluster)[0]
    assert info["cipher"] == "aes-256-cbc" and info["status"]["message"] == "ok"
    # each job applies the config's retention after its run (drilled with a moved clock on Docker)
    for job in ("shared-base", "shared-dump"):
        container = cluster.batch.read_namespaced_cron_job(job, NAMESPACE).spec.job_template.spec.template.spec.containers[0]
        env = {e.name: e.value for e in container.env}
        assert env["PGBACKREST_REPO1_RETENTION_FULL"] == env["PGFLEET_RETENTION_DAYS"] == "7"
        assert env["PGBACKREST_REPO1_CIPHER_TYPE"] == "aes-256-cbc"


def test_the_backup_cronjobs_fired_by_hand_take_a_base_backup_and_dumps(cluster: Cluster, live: ClusterLive) -> None:
    write(live, "orders", 100)
    cluster.fire_cronjob(NAMESPACE, "shared-base")
    labels = backup_labels(cluster)
    assert len(labels) == 2 and all(label.endswith("F") for label in labels)
    logs = cluster.fire_cronjob(NAMESPACE, "shared-dump")
    assert "dumped orders_db to dumps/shared/orders_db/" in logs and "dumped catalog_db" in logs
    assert len(dumps_of(cluster, "orders_db")) == 1 and dumps_of(cluster, "orders_db")[0].endswith(".dump.enc")
    listed = live.restore("list")
    assert listed.returncode == 0, listed.stderr
    assert "stanza: shared" in listed.stdout and dumps_of(cluster, "orders_db")[0] in listed.stdout


def test_the_dump_cronjob_fires_on_its_schedule(cluster: Cluster, live: ClusterLive, config: dict) -> None:
    # The schedule changed in the config to a minute soon after: an in-place update of the CronJob.
    at = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)
    backup = {**config["backup"], "dump_schedule": f"{at.minute} {at.hour} * * *"}
    live.stack.set_config(f"{PROJECT}:backup", auto.ConfigValue(json.dumps(backup)))
    result = live.stack.up(on_output=print)
    assert result.summary.resource_changes == {"same": result.summary.resource_changes["same"], "update": 1}
    assert cluster.batch.read_namespaced_cron_job("shared-dump", NAMESPACE).spec.schedule == backup["dump_schedule"]
    before = len(dumps_of(cluster, "orders_db"))
    done = wait(lambda: cluster.batch.read_namespaced_cron_job("shared-dump", NAMESPACE).status.last_successful_time,
                (at - datetime.now(UTC)).total_seconds() + 240, f"the dump CronJob's run at {at:%H:%M} UTC", interval=5)
    assert done >= at
    assert len(dumps_of(cluster, "orders_db")) == before + 1
    assert len(dumps_of(cluster, "catalog_db")) == before + 1


# -- restores ------------------------------------------------------------------------------------

def test_point_in_time_recovery_brings_back_exactly_the_rows_before_the_target(
        cluster: Cluster, live: ClusterLive) -> None:
    restore_to_a_noted_time(live, lambda: cluster.fire_cronjob(NAMESPACE, "shared-base"))
    assert rows_when_served(live, "orders") == [1, 2, 3, 4, 5, 100]
    # the replica was re-cloned from the restored primary: it serves those rows, and follows
    assert rows_when_served(live, "orders", "read_url") == [1, 2, 3, 4, 5, 100]
    write(live, "orders", 7)  # the server takes writes again, on a new timeline
    assert rows(live, "orders") == [1, 2, 3, 4, 5, 7, 100]
    wait(lambda: rows(live, "orders", "read_url") == [1, 2, 3, 4, 5, 7, 100], 60, "the replica to follow")


def test_a_recovery_target_beyond_the_archive_fails_and_puts_the_data_back(live: ClusterLive) -> None:
    before = check_a_target_beyond_the_archive_puts_the_data_back(live, read=rows_when_served)
    assert rows_when_served(live, "orders", "read_url") == before


def test_a_lost_primary_volume_is_restored_from_the_repository_alone(cluster: Cluster, live: ClusterLive) -> None:
    write(live, "orders", 20)
    expected = rows(live, "orders")
    with connect(live.admin("orders")) as admin:
        archived = admin.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()[0]
        admin.execute("SELECT pg_switch_wal()")
        wait(lambda: admin.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()[0] > archived,
             120, "the last rows' WAL in the archive")
    # The disk is lost: what was on the primary's claim is gone. The StatefulSet brings the pod
    # back on the emptied claim, where the image starts a new, empty server.
    cluster.apps.patch_namespaced_stateful_set_scale("shared", NAMESPACE, {"spec": {"replicas": 0}})
    wait(lambda: not cluster.core.list_namespaced_pod(NAMESPACE, field_selector="metadata.name=shared-0").items,
         180, "the primary's pod to go")
    phase, log = cluster.run_pod(NAMESPACE, f"lose-{secrets.token_hex(2)}", ["rm", "-rf", "/data/pgdata"],
                                 claims={"data-shared-0": "/data"})
    assert phase == "Succeeded", log
    cluster.apps.patch_namespaced_stateful_set_scale("shared", NAMESPACE, {"spec": {"replicas": 1}})
    wait(lambda: cluster.apps.read_namespaced_stateful_set("shared", NAMESPACE).status.ready_replicas, 180,
         "a new, empty primary")
    with pytest.raises(psycopg.OperationalError):
        rows(live, "orders")  # the new server has no such role or database

    result = live.restore("pitr", "--server", "shared", "latest")
    assert result.returncode == 0, result.stderr
    assert rows_when_served(live, "orders") == expected
    assert rows_when_served(live, "orders", "read_url") == expected  # the replica re-cloned from it
    # The stack is as Pulumi declared it: StatefulSets at their counts, every role and grant back.
    check_second_preview_is_empty(live, refresh=True)


def test_one_service_restores_from_its_dump_and_its_neighbour_is_untouched(
        cluster: Cluster, live: ClusterLive) -> None:
    write(live, "orders", 10, 11)
    write(live, "catalog", 1, 2)
    logs = cluster.fire_cronjob(NAMESPACE, "shared-dump")
    # the stamp of this dump: a scheduled run cannot slip in a newer one and change the drill
    stamp = next(line.rsplit("/", 1)[1].split(".")[0] for line in logs.splitlines() if "dumped orders_db" in line)
    orders_at_dump = rows(live, "orders")
    write(live, "orders", 12)
    with connect(live.url("orders", "migration_url")) as migrator:
        migrator.execute("DELETE FROM items WHERE id < 10")
    write(live, "catalog", 3)

    result = live.restore("dump", "orders_db", "--stamp", stamp)
    assert result.returncode == 0, result.stderr
    assert rows(live, "orders") == orders_at_dump
    assert rows(live, "catalog") == [1, 2, 3]  # written after the dump, on the same server
    check_restored_database_keeps_owner_and_grants(live, "orders", neighbour="catalog")


def test_a_corrupted_dump_fails_with_the_reason_and_restores_nothing(cluster: Cluster, live: ClusterLive) -> None:
    before = rows(live, "orders")
    latest = dumps_of(cluster, "orders_db")[-1]
    on_store_disk(cluster, f"printf XXXX | dd of=$REPO/dumps/shared/orders_db/{latest} bs=1 seek=200 conv=notrunc")
    result = live.restore("dump", "orders_db")
    assert result.returncode == 1
    assert "is corrupted" in result.stderr and "nothing was restored" in result.stderr
    assert rows(live, "orders") == before


def test_a_missing_dump_fails_with_the_reason(cluster: Cluster, live: ClusterLive) -> None:
    on_store_disk(cluster, "rm -rf $REPO/dumps/shared/catalog_db")
    result = live.restore("dump", "catalog_db")
    assert result.returncode == 1 and "no dump of database 'catalog_db'" in result.stderr
    assert rows(live, "catalog") == [1, 2, 3]


def test_a_corrupted_base_backup_fails_and_leaves_the_server_running(cluster: Cluster, live: ClusterLive) -> None:
    before, incarnation = rows(live, "orders"), primary_incarnation(cluster)
    label = backup_labels(cluster)[-1]
    on_store_disk(cluster, f"f=$(find $REPO/backup/shared/{label}/pg_data -type f -size +8k | head -n 1); "
                           "printf XXXXXXXX | dd of=$f bs=1 seek=4096 conv=notrunc")
    result = live.restore("pitr", "--server", "shared", "latest")
    assert result.returncode == 1 and "the live data is untouched" in result.stderr
    assert primary_incarnation(cluster) == incarnation and rows(live, "orders") == before


def test_a_missing_base_backup_fails_and_leaves_the_server_running(cluster: Cluster, live: ClusterLive) -> None:
    before, incarnation = rows(live, "orders"), primary_incarnation(cluster)
    on_store_disk(cluster, "rm -rf $REPO/backup/shared/2*")
    result = live.restore("pitr", "--server", "shared", "latest")
    assert result.returncode == 1
    assert re.search(r"no base backup in the repository|the live data is untouched", result.stderr), result.stderr
    assert primary_incarnation(cluster) == incarnation and rows(live, "orders") == before
    # no restore Job or pod is left behind
    left = cluster.core.list_namespaced_pod(NAMESPACE, label_selector="pgfleet.io/restore=true").items
    assert not [p.metadata.name for p in left if p.status.phase not in ("Succeeded", "Failed")]
