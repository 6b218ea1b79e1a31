"""A Docker stack's servers: `pgfleet-backup` runs in the server's backup containers
(`<server>-dump`, `<server>-base`), which hold the repository settings and keys and mount the
primary's data volume; the primary and replicas are containers stopped and started in place."""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from .. import docker_engine as engine
from . import JobKind, RestoreError, ServerObjects

DATA_PATH = "/var/lib/postgresql/data"


class DockerServers:
    def __init__(self, servers: Mapping[str, ServerObjects]) -> None:
        self.servers = servers
        self._restarts: dict[str, int] = {}

    def backup(self, server: ServerObjects, kind: JobKind, args: Sequence[str], timeout_s: float,
               primary_stopped: bool = False) -> str:
        container = server.job(kind)
        if engine.inspect(container) is None:
            raise RestoreError(f"container {container!r} does not exist: is the stack deployed with backups enabled?")
        result = engine.execute(container, ["pgfleet-backup", *args], timeout=timeout_s)
        if result.returncode != 0:
            raise RestoreError((result.stderr or result.stdout).strip() or f"pgfleet-backup {args[0]} failed")
        return result.stdout + result.stderr

    def databases(self, server: ServerObjects) -> list[str]:
        listed = engine.execute(server.job("dump"), ["sh", "-c", ". /etc/pgfleet/job.env && echo $PGFLEET_DATABASES"])
        return listed.stdout.split()

    def stop_primary(self, server: ServerObjects) -> None:
        state = engine.inspect(server.primary)
        if state is None:
            raise RestoreError(f"server container {server.primary!r} does not exist")
        engine.stop(server.primary)
        stopped = engine.inspect(server.primary)
        if stopped is None or stopped.running:
            raise RestoreError(f"{server.primary} did not stop")
        self._restarts[server.name] = stopped.restarts

    def start_primary(self, server: ServerObjects) -> None:
        engine.start(server.primary)

    def wait_promoted(self, server: ServerObjects, timeout_s: float) -> None:
        restarts = self._restarts.get(server.name, 0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = engine.inspect(server.primary)
            if state is None:
                raise RestoreError(f"{server.primary} disappeared during recovery")
            if state.restarts > restarts:
                raise RestoreError(f"{server.primary} stopped during recovery:\n{engine.logs(server.primary)}")
            if state.running and engine.execute(server.job("base"), ["pgfleet-backup", "promoted"]).returncode == 0:
                return
            time.sleep(1)
        raise RestoreError(f"{server.primary} did not finish recovery in {timeout_s:.0f} s")

    def wait_ready(self, server: ServerObjects, timeout_s: float) -> None:
        engine.wait_healthy(server.primary, timeout_s)

    def stop_replicas(self, server: ServerObjects) -> None:
        for replica in server.replicas:
            if engine.inspect(replica) is not None:
                engine.stop(replica)

    def start_replicas(self, server: ServerObjects, reclone: bool, timeout_s: float) -> None:
        for replica in server.replicas:
            state = engine.inspect(replica)
            if state is None:
                continue
            volume = state.volumes.get(DATA_PATH)
            if reclone and volume:
                engine.run_once(state.image, {volume: DATA_PATH}, ["rm", "-rf", f"{DATA_PATH}/pgdata"])
            engine.start(replica)
            engine.wait_healthy(replica, timeout_s)
