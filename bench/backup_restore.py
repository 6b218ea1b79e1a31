"""Backup time, restore time (RTO) and the data-loss window after a crash (RPO) of a >= 1 GB
database, on Docker and on Kubernetes side by side, against the seeds' targets: RPO 5 minutes,
RTO 1 hour.

Each run brings up a one-server stack (backups on) with the real engine and fills a database
past 1 GiB: pgbench tables (which compress very well) plus a table of random bytes (which do
not), so the repository's compression does not flatter the times. Then:
  backup   a full base backup of the whole server, as the base-backup job runs it (Docker: the
           job container; Kubernetes: a Job from the CronJob, pod start included), timed;
  dump     the dump job, and the one-service restore from it (`pgfleet-restore dump`'s step);
  RPO      a writer commits a timestamped row every 100 ms; after a while the postmaster is
           killed (SIGKILL) and its disk treated as lost (Docker: the container stays down;
           Kubernetes, which restarts it at once: its PGDATA moved away on the node first), so
           the server is restored from the repository alone (base backup + archived WAL).
           RPO = last acknowledged commit - newest row back;
  RTO      that restore, timed from the command to a server taking writes (`pgfleet-restore
           pitr latest`: restore beside, stop, swap, recovery, promotion).
Runs are `platform:repository`: docker:filesystem, docker:s3 (the managed store), kubernetes:s3
(the project's S3 store in the cluster). Kubernetes needs KUBECONFIG (setup/cluster.sh env).

    python bench/backup_restore.py [--runs docker:s3 kubernetes:s3] [--scale 35] [--random-mib 512] [--writes 75]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgfleet.operations.deployed import DeployedServers, servers_of
from pgfleet.operations.deployed.docker import DockerServers
from pgfleet.operations.deployed.kubernetes import KubernetesServers
from pgfleet.operations.restore import restore_pitr
from tests.support.engine import throwaway_stack
from tests.support.live import isolated

PREFIX = "pgfleet-bbench-"
PORT = 26432  # below the ephemeral range (see tests/support/live.py)
ARCHIVE_TIMEOUT_S = 60
TARGET_RPO_S = 5 * 60
TARGET_RTO_S = 60 * 60
SERVER = {"name": "bench", "storage": "20Gi", "metrics": {"enabled": False}}
BACKUP = {"enabled": True, "archive_timeout": f"{ARCHIVE_TIMEOUT_S}s", "rpo": "5m"}


@dataclass
class Deployed:
    """A bench stack: how to reach, fill, back up and kill its server on its platform."""

    admin_dsn: str
    servers: DeployedServers
    shell: Callable[[list[str]], None]
    """A command in the primary's container (as root), e.g. pgbench."""
    kill_postmaster: Callable[[], None]


def timed(label: str, action: Callable[[], Any]) -> float:
    start = time.monotonic()
    action()
    seconds = time.monotonic() - start
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return seconds


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


@contextlib.contextmanager
def on_docker(repository: str) -> Iterator[Deployed]:
    target = {"kind": "filesystem", "size": "20Gi"} if repository == "filesystem" else \
        {"kind": "s3", "managed": True, "size": "20Gi"}
    config = isolated({"platform": "docker", "servers": [{**SERVER, "port": PORT}],
                       "services": [{"name": "load", "server": "bench"}],
                       "backup": {**BACKUP, "target": target}}, PREFIX, port_offset=0)
    with tempfile.TemporaryDirectory() as tmp, throwaway_stack(Path(tmp), "bench-backup", config) as stack:
        up = stack.up(on_output=lambda _: None)
        password = up.outputs["server_admin_passwords"].value["bench"]
        servers = servers_of(up.outputs["platform"].value)
        primary = servers["bench"].primary

        def shell(command: list[str]) -> None:
            _docker("exec", primary, *command)

        def kill() -> None:
            _docker("kill", "-s", "KILL", primary)

        yield Deployed(admin_dsn=f"postgresql://postgres:{password}@127.0.0.1:{PORT}/load_db",
                       servers=DockerServers(servers), shell=shell, kill_postmaster=kill)


def _postmaster_pid(pod_uid: str) -> int:
    """The host pid of the postmaster in a pod (the node is this machine): the `postgres`
    process of the pod's cgroup whose parent is not postgres."""
    marks = (pod_uid, pod_uid.replace("-", "_"))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            if not any(mark in (entry / "cgroup").read_text() for mark in marks):
                continue
            parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            if Path(f"/proc/{parent}/comm").read_text().strip() != "postgres":
                return int(entry.name)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    raise RuntimeError(f"no postmaster in pod {pod_uid} on this node")


@contextlib.contextmanager
def on_kubernetes(repository: str) -> Iterator[Deployed]:
    from kubernetes import client

    from tests.support.cluster import Cluster, kubeconfig
    from tests.support.prod import ClusterLive, external_vault, for_cluster, object_store, secret_config

    if repository != "s3":
        raise SystemExit("kubernetes runs use the S3 store in the cluster: kubernetes:s3")
    cluster = Cluster(kubeconfig())
    prefix = "bbench-"
    namespace = f"{prefix}db"
    try:
        with external_vault() as vault, object_store(cluster, f"{prefix}s3") as store, \
                tempfile.TemporaryDirectory() as tmp:
            config = for_cluster({"platform": "kubernetes", "servers": [dict(SERVER)],
                                  "services": [{"name": "load", "server": "bench"}], "backup": dict(BACKUP)},
                                 prefix, vault, store)
            config["servers"][0] |= {"cpu": "500m", "memory": "1Gi"}
            with throwaway_stack(Path(tmp), "bench-backup", config, secret_config(vault, store),
                                 protected=True) as stack:
                up = stack.up(on_output=lambda _: None)
                live = ClusterLive(stack, up, namespace)
                servers = KubernetesServers(servers_of(up.outputs["platform"].value), namespace, cluster.api_client)
                pod = f"{servers.servers['bench'].primary}-0"

                def shell(command: list[str]) -> None:
                    code, output = cluster.exec(namespace, pod, command, timeout=3600)
                    if code != 0:
                        raise RuntimeError(output)

                def kill() -> None:
                    # The disk goes with the process: PGDATA moved away on the node (the claim's
                    # host-path volume, on this machine), then SIGKILL. Kubernetes restarts the
                    # container at once, on an empty directory: a new server that can neither
                    # archive the old one's unarchived WAL nor give it back on shutdown.
                    uid = cluster.core.read_namespaced_pod(pod, namespace).metadata.uid
                    postmaster = _postmaster_pid(uid)
                    claim = cluster.core.read_namespaced_persistent_volume_claim(f"data-{pod}", namespace)
                    volume = cluster.core.read_persistent_volume(claim.spec.volume_name).spec.host_path.path
                    Path(volume, "pgdata").rename(Path(volume, "pgdata.lost"))
                    os.kill(postmaster, signal.SIGKILL)

                yield Deployed(admin_dsn=live.admin("load", "load_db"), servers=servers, shell=shell,
                               kill_postmaster=kill)
    finally:
        with contextlib.suppress(client.ApiException):
            cluster.core.delete_namespace(namespace)


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


def measure(run: str, args: argparse.Namespace) -> dict[str, float]:
    platform, repository = run.split(":")
    print(f"== {platform}, repository {repository}", flush=True)
    deploy = on_docker if platform == "docker" else on_kubernetes
    with deploy(repository) as bench:
        server = bench.servers.servers["bench"]
        bench.shell(["pgbench", "-i", "-q", "-s", str(args.scale), "-h", "/var/run/postgresql", "-U", "postgres",
                     "load_db"])
        with psycopg.connect(bench.admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
            conn.execute("CREATE TABLE noise (id int, bytes bytea)")
            conn.execute("ALTER TABLE noise ALTER bytes SET STORAGE EXTERNAL")  # stored as is, uncompressed
            conn.execute("INSERT INTO noise SELECT g, gen_random_bytes(1024) FROM generate_series(1, %s) g",
                         (args.random_mib * 1024,))
            (size,) = conn.execute("SELECT pg_database_size('load_db')").fetchone()
        print(f"  database size: {size / 2**30:.2f} GiB", flush=True)

        def backup(kind: str, *command: str) -> Callable[[], str]:
            return lambda: bench.servers.backup(server, kind, list(command), 3600)  # type: ignore[arg-type]

        result = {"size_gib": size / 2**30}
        result["backup"] = timed("base backup (full, zstd, encrypted)", backup("base", "base", "full"))
        result["dump"] = timed("dump of the database (encrypted)", backup("dump", "dump"))
        result["dump_restore"] = timed("restore of the database from its dump",
                                       backup("dump", "restore-dump", "load_db"))

        writer = Writer(bench.admin_dsn)
        writer.start()
        time.sleep(args.writes)
        bench.kill_postmaster()
        writer.stop.set()
        writer.join(10)
        acknowledged = writer.last_acknowledged
        assert acknowledged is not None

        # The disk is lost: restore from the repository alone, to the end of the archived WAL.
        result["rto"] = timed("server restore to latest (RTO)", lambda: restore_pitr(bench.servers, "bench", "latest"))
        recovered = restored = None
        for _ in range(60):  # a Kubernetes forward reaches the new pod within a few seconds
            try:
                with psycopg.connect(bench.admin_dsn, autocommit=True, connect_timeout=5) as conn:
                    (recovered,) = conn.execute("SELECT max(at) FROM heartbeat").fetchone()
                    (restored,) = conn.execute("SELECT pg_database_size('load_db')").fetchone()
                break
            except psycopg.OperationalError:
                time.sleep(1)
        assert restored is not None, "the restored server does not answer"
        print(f"  restored database size: {restored / 2**30:.2f} GiB")
        assert restored >= 0.95 * size, "the restored database is smaller than the one backed up"
        result["rpo"] = (acknowledged - recovered).total_seconds() if recovered else float("inf")
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=["docker:s3", "kubernetes:s3"],
                        choices=["docker:filesystem", "docker:s3", "kubernetes:s3"])
    parser.add_argument("--scale", type=int, default=35, help="pgbench scale; 35 is about 0.5 GiB")
    parser.add_argument("--random-mib", type=int, default=512, help="MiB of incompressible rows besides")
    parser.add_argument("--writes", type=float, default=75, help="seconds of writes before the crash")
    args = parser.parse_args()

    results = {run: measure(run, args) for run in args.runs}
    print()
    header = "".join(f"{run:>18}{'/target':>9}" for run in results)
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
            f"{r[key]:>18.1f}{(format(r[key] / target, '.3f') if target else '-'):>9}" for r in results.values()
        )
        print(f"{label:<34}{cells}")
    bound = f"{ARCHIVE_TIMEOUT_S:>18.1f}{ARCHIVE_TIMEOUT_S / TARGET_RPO_S:>9.3f}" * len(results)
    print(f"{'RPO bound (archive_timeout)':<34}{bound}")
    if len(results) > 1:
        first, *others = results
        for other in others:
            ratios = ", ".join(f"{key} {results[other][key] / results[first][key]:.2f}x"
                               for _, key, _ in rows[1:] if results[first][key])
            print(f"{other} / {first}: {ratios}")
    print(f"targets: RPO {TARGET_RPO_S} s, RTO {TARGET_RTO_S} s (the seeds')")


if __name__ == "__main__":
    main()
