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
Also printed: the bound the settings promise (archive_timeout) and each measure / target.

    python bench/backup_restore.py [--scale 35] [--random-mib 512] [--writes 75]
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


def stack_config() -> dict:
    return isolated({
        "platform": "docker",
        "servers": [{"name": "bench", "port": PORT, "metrics": {"enabled": False}}],
        "services": [{"name": "load", "server": "bench"}],
        "backup": {"enabled": True, "target": {"kind": "filesystem", "size": "20Gi"},
                   "archive_timeout": f"{ARCHIVE_TIMEOUT_S}s", "rpo": "5m"},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=35, help="pgbench scale; 35 is about 0.5 GiB")
    parser.add_argument("--random-mib", type=int, default=512, help="MiB of incompressible rows besides")
    parser.add_argument("--writes", type=float, default=75, help="seconds of writes before the crash")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, throwaway_stack(Path(tmp), "bench-backup", stack_config()) as stack:
        up = stack.up(on_output=lambda _: None)
        password = up.outputs["server_admin_passwords"].value["bench"]
        admin = f"postgresql://postgres:{password}@127.0.0.1:{PORT}/load_db"
        primary, base_job = f"{PREFIX}bench", f"{PREFIX}bench-base"

        print(f"loading pgbench scale {args.scale} ...", flush=True)
        docker("exec", primary, "pgbench", "-i", "-q", "-s", str(args.scale), "-U", "postgres", "load_db")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
            conn.execute("CREATE TABLE noise (id int, bytes bytea) WITH (toast_tuple_target = 8160)")
            conn.execute("ALTER TABLE noise ALTER bytes SET STORAGE EXTERNAL")  # stored as is, uncompressed
            conn.execute("INSERT INTO noise SELECT g, gen_random_bytes(1024) FROM generate_series(1, %s) g",
                         (args.random_mib * 1024,))
            (size,) = conn.execute("SELECT pg_database_size('load_db')").fetchone()
        print(f"database size: {size / 2**30:.2f} GiB")

        backup_s = timed("backup (full, zstd, encrypted)", lambda: docker("exec", base_job, "pgfleet-backup", "base", "full"))

        writer = Writer(admin)
        writer.start()
        time.sleep(args.writes)
        docker("kill", "-s", "KILL", primary)
        writer.stop.set()
        writer.join(10)
        acknowledged = writer.last_acknowledged
        assert acknowledged is not None

        # The disk is lost: restore from the repository alone, to the end of the archived WAL.
        rto_s = timed("restore to latest (RTO)", lambda: restore_pitr("bench", "latest", PREFIX))
        with psycopg.connect(admin, autocommit=True) as conn:
            (recovered,) = conn.execute("SELECT max(at) FROM heartbeat").fetchone()
            (restored_size,) = conn.execute("SELECT pg_database_size('load_db')").fetchone()
        print(f"  restored database size: {restored_size / 2**30:.2f} GiB")
        assert restored_size >= size, "the restored database is smaller than the one backed up"
        rpo_s = (acknowledged - recovered).total_seconds() if recovered else float("inf")

        print()
        print(f"{'measure':<28}{'seconds':>10}{'target':>10}{'ratio':>8}")
        print(f"{'backup of ' + format(size / 2**30, '.2f') + ' GiB':<28}{backup_s:>10.1f}{'-':>10}{'-':>8}")
        print(f"{'RTO (restore, promote)':<28}{rto_s:>10.1f}{TARGET_RTO_S:>10}{rto_s / TARGET_RTO_S:>8.3f}")
        print(f"{'RPO (measured after kill)':<28}{rpo_s:>10.1f}{TARGET_RPO_S:>10}{rpo_s / TARGET_RPO_S:>8.3f}")
        print(f"{'RPO bound (archive_timeout)':<28}{ARCHIVE_TIMEOUT_S:>10}{TARGET_RPO_S:>10}"
              f"{ARCHIVE_TIMEOUT_S / TARGET_RPO_S:>8.3f}")


if __name__ == "__main__":
    main()
