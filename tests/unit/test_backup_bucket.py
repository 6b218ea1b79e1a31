"""BackupBucket alone: the repository, retention, encryption and the WAL settings it hands out."""
from __future__ import annotations

import pulumi
import pytest

from pgfleet.components import BackupBucket, BackupBucketArgs
from pgfleet.components.platform import DataVolume, PortSpec, ProcessSpec
from pgfleet.components.backup_bucket import REPOSITORY_PATH, split_endpoint
from tests.support.platforms import make_platform
from tests.support.program import Run, run


PGDATA = "/var/lib/postgresql/data/pgdata"


def build(kind: str = "docker", **options) -> Run:
    def program() -> tuple:
        platform = make_platform(kind)
        bucket = BackupBucket("bk", BackupBucketArgs(platform=platform, **options))
        primary = platform.run(
            ProcessSpec(name="main", role="postgres", server="main", image="pg:15",
                        ports=[PortSpec("postgres", 5432, 5432)],
                        data=DataVolume("/var/lib/postgresql/data", "1Gi", retain=False)),
            pulumi.ResourceOptions(),
        )
        jobs = bucket.jobs("main", "main", "backup:1", primary, PGDATA, "postgres", "admin-pw", ["a_db", "b_db"])
        return bucket, bucket.wiring("main", PGDATA), jobs

    return run(program, lambda r: {"repository": r[0].repository,
                                   **({"passphrase": r[0].passphrase} if r[0].passphrase is not None else {})})


def test_filesystem_repository_is_a_platform_volume() -> None:
    outcome = build("docker", size="5Gi")
    volume = outcome.mocks.named("bk-repository", "docker:index/volume:Volume")
    assert volume.inputs["name"] == "bk-repository"
    assert outcome.values["repository"].value == "volume:bk-repository"
    _, wiring, _ = outcome.result
    assert wiring.env["PGBACKREST_REPO1_TYPE"] == "posix"
    assert wiring.env["PGBACKREST_REPO1_PATH"] == f"{REPOSITORY_PATH}/pgbackrest"
    assert [path for _, path in wiring.mounts] == [REPOSITORY_PATH]


def test_kubernetes_repository_is_a_pvc() -> None:
    outcome = build("kubernetes", size="100Gi")
    claim = outcome.mocks.named("bk-repository", "kubernetes:core/v1:PersistentVolumeClaim")
    assert claim.inputs["spec"]["resources"]["requests"]["storage"] == "100Gi"


def test_retention_and_encryption_policy() -> None:
    outcome = build(retention_days=30, encryption=True)
    _, wiring, jobs = outcome.result
    assert wiring.env["PGBACKREST_REPO1_RETENTION_FULL_TYPE"] == "time"
    assert wiring.env["PGBACKREST_REPO1_RETENTION_FULL"] == "30"
    assert wiring.env["PGBACKREST_REPO1_CIPHER_TYPE"] == "aes-256-cbc"
    assert set(wiring.secret_env) == {"PGBACKREST_REPO1_CIPHER_PASS", "PGFLEET_DUMP_PASSPHRASE"}
    assert outcome.values["passphrase"].secret
    assert outcome.mocks.named("bk-passphrase").inputs["length"] == 48
    assert all(job.secret_env["PGPASSWORD"] == "admin-pw" for job in jobs)


def test_unencrypted_backups_carry_no_cipher() -> None:
    outcome = build(encryption=False)
    _, wiring, _ = outcome.result
    assert "PGBACKREST_REPO1_CIPHER_TYPE" not in wiring.env and not wiring.secret_env
    assert "passphrase" not in outcome.values


@pytest.mark.parametrize("timeout", [30, 60, 240])
def test_archive_timeout_reaches_the_server_settings(timeout: int) -> None:
    _, wiring, _ = build(archive_timeout_s=timeout).result
    assert wiring.settings == {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": "pgbackrest --stanza=main archive-push %p",
        "archive_timeout": str(timeout),
    }


def test_jobs_dump_each_database_and_take_base_backups() -> None:
    _, _, jobs = build(dump_schedule="0 0 * * *", base_backup_schedule="0 1 * * 0").result
    dump, base = jobs
    assert (dump.name, dump.schedule, list(dump.command)) == ("main-dump", "0 0 * * *", ["pgfleet-backup", "dump"])
    assert dump.env["PGFLEET_DATABASES"] == "a_db b_db"
    assert (base.name, base.schedule, list(base.command)) == ("main-base", "0 1 * * 0", ["pgfleet-backup", "base", "full"])


def test_base_backups_read_the_primarys_data_and_start_with_a_full_backup() -> None:
    _, wiring, (dump, base) = build().result
    # pgBackRest copies PGDATA from the file system: the job mounts the server's own volume
    assert base.data is not None and base.data.mount_path == "/var/lib/postgresql/data"
    assert base.data.process.name == "main" and base.data.process.data is not None
    assert base.env["PGBACKREST_PG1_PATH"] == wiring.env["PGBACKREST_PG1_PATH"] == PGDATA
    assert list(base.at_start or ()) == ["pgfleet-backup", "init"]
    # dumps go over the network only
    assert dump.data is None and dump.at_start is None


def test_without_wal_archiving_only_dumps() -> None:
    _, wiring, jobs = build(wal_archiving=False).result
    assert wiring.settings == {} and [j.name for j in jobs] == ["main-dump"]
    # no base job's init: the dump job makes the table where backups are recorded
    assert list(jobs[0].at_start or ()) == ["pgfleet-backup", "prepare"]


def test_s3_target_takes_any_endpoint_and_secret_keys() -> None:
    outcome = build("kubernetes", target="s3", s3_endpoint="https://minio.local:9000", s3_bucket="b",
                    s3_access_key="AK", s3_secret_key="SK")
    _, wiring, _ = outcome.result
    assert wiring.env["PGBACKREST_REPO1_TYPE"] == "s3"
    assert wiring.env["PGBACKREST_REPO1_S3_ENDPOINT"] == "minio.local"
    assert wiring.env["PGBACKREST_REPO1_STORAGE_PORT"] == "9000"
    assert "PGBACKREST_REPO1_STORAGE_VERIFY_TLS" not in wiring.env
    assert wiring.secret_env["PGBACKREST_REPO1_S3_KEY"] == "AK"
    assert wiring.mounts == ()
    assert outcome.values["repository"].value == "s3://b/pgfleet"
    assert not outcome.mocks.of_type("kubernetes:core/v1:PersistentVolumeClaim")


@pytest.mark.parametrize("endpoint, host, port", [
    ("s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", None),
    ("minio.storage:9000", "minio.storage", 9000),
    ("https://10.0.0.5:443/", "10.0.0.5", 443),
])
def test_endpoints_split_into_host_and_port(endpoint: str, host: str, port: int | None) -> None:
    assert split_endpoint(endpoint) == (host, port)


def test_managed_store_runs_on_the_platform_with_generated_keys() -> None:
    outcome = build("docker", target="s3", s3_bucket="bk-backups", store_image="store:1", size="5Gi")
    bucket, wiring, _ = outcome.result
    store = outcome.mocks.named("bk-store", "docker:index/container:Container")
    assert store.inputs["image"] == "store:1" and not store.inputs.get("ports")  # never published
    assert {"ROOT_ACCESS_KEY_FILE=/run/pgfleet/secrets/ROOT_ACCESS_KEY",  # the keys as files, not env values
            "ROOT_SECRET_KEY_FILE=/run/pgfleet/secrets/ROOT_SECRET_KEY"} <= set(store.inputs["envs"])
    assert store.is_secret("uploads")
    assert outcome.mocks.named("bk-store-data").inputs["name"] == "bk-store-data"
    assert wiring.env["PGBACKREST_REPO1_S3_ENDPOINT"] is bucket.store.host
    assert wiring.env["PGBACKREST_REPO1_STORAGE_PORT"] == "7070"
    assert wiring.env["PGBACKREST_REPO1_STORAGE_VERIFY_TLS"] == "n"  # its certificate is self-signed
    assert outcome.mocks.named("bk-store-secret-key").inputs["length"] == 40
    assert {"PGBACKREST_REPO1_S3_KEY", "PGBACKREST_REPO1_S3_KEY_SECRET"} <= set(wiring.secret_env)
    assert bucket.ready == list(bucket.store.resources)
