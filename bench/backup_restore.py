"""Backup time, restore time (RTO) and the data-loss window after a crash (RPO) of a >= 1 GB
database, against the seeds' targets: RPO 5 minutes, RTO 1 hour.

A one-server stack (backups on, filesystem repository) is brought up with the real engine and
a database filled past 1 GiB: pgbench tables (which compress very well) plus a table of random
bytes (which do not), so the repository's compression does not flatter the times. Then:
  backup   `pgfleet-backup base full` of the whole server, timed;
  RPO      a writer commits a timestamped row every 100 ms; after a while the server is killed
           (SIGKILL) and its disk treated as lost: the server is restored from the repository
           alone (base backup + archived WAL). RPO = last acknowledged commit - newest row back;
  RTO      that restore, timed from the command to a server taking writes
           (`pgfleet-restore pitr latest`: restore beside, swap, recovery, promotion).
Also timed: a dump of the database and its restore (one service brought back alone). Also
printed: the bound the settings promise (archive_timeout), and each measure / its target. Both
repository kinds run one after the other in one run: a volume, and the managed S3 store.

    python bench/backup_restore.py [--scale 35] [--random-mib 512] [--writes 75] [--targets filesystem s3]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from operations.restore import restore_pitr  # noqa: E402
from tests.support.engine import throwaway_stack  # noqa: E402
from tests.support.live import isolated  # noqa: E402

PREFIX = "pgfleet-bbench-"
PORT = 36432
ARCHIVE_TIMEOUT_S = 60
TARGET_RPO_S = 5 * 60
TARGET_RTO_S = 60 * 60


def stack_config(target: str) -> dict:
    repository = {"kind": "filesystem", "size": "20Gi"} if target == "filesystem" else \
        {"kind": "s3", "managed": True, "size": "20Gi"}
    return isolated({
        "platform": "docker",
        "servers": [{"name": "bench", "port": PORT, "metrics": {"enabled": False}}],
        "services": [{"name": "load", "server": "bench"}],
        "backup": {"enabled": True, "target": repository, "archive_timeout": f"{ARCHIVE_TIMEOUT_S}s", "rpo": "5m"},
    }, PREFIX, port_offset=0)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def timed(label: str, action) -> float:
    start = time.monotonic()
    action()
    seconds = time.monotonic() - start
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return seconds


class Writer(threading.Thread):
    """Commits one timestamped row every 100 ms; remembers the last acknowledged one."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.last_acknowledged: datetime | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS heartbeat (at timestamptz PRIMARY KEY)")
            while not self.stop.is_set():
                try:
                    (at,) = conn.execute("INSERT INTO heartbeat VALUES (clock_timestamp()) RETURNING at").fetchone()
                except psycopg.Error:
                    return  # the server is gone
                self.last_acknowledged = at
                time.sleep(0.1)


def measure(target: str, args: argparse.Namespace) -> dict[str, float]:
    print(f"== repository: {target}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, throwaway_stack(Path(tmp), "bench-backup", stack_config(target)) as stack:
        up = stack.up(on_output=lambda _: None)
        password = up.outputs["server_admin_passwords"].value["bench"]
        admin = f"postgresql://postgres:{password}@127.0.0.1:{PORT}/load_db"
        primary, base_job, dump_job = f"{PREFIX}bench", f"{PREFIX}bench-base", f"{PREFIX}bench-dump"

        docker("exec", primary, "pgbench", "-i", "-q", "-s", str(args.scale), "-U", "postgres", "load_db")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
            conn.execute("CREATE TABLE noise (id int, bytes bytea)")
            conn.execute("ALTER TABLE noise ALTER bytes SET STORAGE EXTERNAL")  # stored as is, uncompressed
            conn.execute("INSERT INTO noise SELECT g, gen_random_bytes(1024) FROM generate_series(1, %s) g",
                         (args.random_mib * 1024,))
            (size,) = conn.execute("SELECT pg_database_size('load_db')").fetchone()
        print(f"  database size: {size / 2**30:.2f} GiB", flush=True)

        result = {"size_gib": size / 2**30}
        result["backup"] = timed("base backup (full, zstd, encrypted)",
                                 lambda: docker("exec", base_job, "pgfleet-backup", "base", "full"))
        result["dump"] = timed("dump of the database (encrypted)", lambda: docker("exec", dump_job, "pgfleet-backup", "dump"))
        result["dump_restore"] = timed("restore of the database from its dump",
                                       lambda: docker("exec", dump_job, "pgfleet-backup", "restore-dump", "load_db"))

        writer = Writer(admin)
        writer.start()
        time.sleep(args.writes)
        docker("kill", "-s", "KILL", primary)
        writer.stop.set()
        writer.join(10)
        acknowledged = writer.last_acknowledged
        assert acknowledged is not None

        # The disk is lost: restore from the repository alone, to the end of the archived WAL.
        result["rto"] = timed("server restore to latest (RTO)", lambda: restore_pitr("bench", "latest", PREFIX))
        with psycopg.connect(admin, autocommit=True) as conn:
            (recovered,) = conn.execute("SELECT max(at) FROM heartbeat").fetchone()
            (restored,) = conn.execute("SELECT pg_database_size('load_db')").fetchone()
        print(f"  restored database size: {restored / 2**30:.2f} GiB")
        assert restored >= 0.95 * size, "the restored database is smaller than the one backed up"
        result["rpo"] = (acknowledged - recovered).total_seconds() if recovered else float("inf")
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=35, help="pgbench scale; 35 is about 0.5 GiB")
    parser.add_argument("--random-mib", type=int, default=512, help="MiB of incompressible rows besides")
    parser.add_argument("--writes", type=float, default=75, help="seconds of writes before the crash")
    parser.add_argument("--targets", nargs="+", default=["filesystem", "s3"], choices=["filesystem", "s3"])
    args = parser.parse_args()

    results = {target: measure(target, args) for target in args.targets}
    print()
    header = "".join(f"{t:>14}{'/target':>9}" for t in results)
    print(f"{'seconds':<34}{header}")
    rows = [
        ("database size (GiB)", "size_gib", None),
        ("base backup", "backup", None),
        ("dump", "dump", None),
        ("one service from its dump", "dump_restore", TARGET_RTO_S),
        ("RTO: server restored, promoted", "rto", TARGET_RTO_S),
        ("RPO: measured after a kill", "rpo", TARGET_RPO_S),
    ]
    for label, key, target in rows:
        cells = "".join(
            f"{r[key]:>14.1f}{(format(r[key] / target, '.3f') if target else '-'):>9}" for r in results.values()
        )
        print(f"{label:<34}{cells}")
    bound = f"{ARCHIVE_TIMEOUT_S:>14.1f}{ARCHIVE_TIMEOUT_S / TARGET_RPO_S:>9.3f}" * len(results)
    print(f"{'RPO bound (archive_timeout)':<34}{bound}")
    print(f"targets: RPO {TARGET_RPO_S} s, RTO {TARGET_RTO_S} s (the seeds')")


if __name__ == "__main__":
    main()
