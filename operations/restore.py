"""pgfleet-restore: bring one service's database, or a whole server, back from its backups.

    pgfleet-restore list [--server S]
    pgfleet-restore dump DATABASE [--stamp STAMP] [--keep-previous]
    pgfleet-restore pitr --server S TARGET          TARGET: '2026-11-22 10:15:00+00' or 'latest'

Runs against a deployed Docker stack: it drives `pgfleet-backup` in the server's backup
containers (`<server>-dump`, `<server>-base`), which hold the repository settings and keys.
A dump restore replaces one database and leaves the server's others alone. A point-in-time
restore prepares the data beside the live data while the server runs, then stops the server,
swaps it in, starts it, waits for recovery to finish, and re-clones the read replicas; if
recovery fails it puts the previous data back. Exit status 1 with the reason on any failure.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from . import docker_engine as engine

DATA_PATH = "/var/lib/postgresql/data"


class RestoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    """A deployed server's containers, by the names the dev platform gives them."""

    name: str
    prefix: str

    @property
    def primary(self) -> str:
        return f"{self.prefix}{self.name}"

    @property
    def base_job(self) -> str:
        return f"{self.prefix}{self.name}-base"

    @property
    def dump_job(self) -> str:
        return f"{self.prefix}{self.name}-dump"

    def replicas(self) -> list[str]:
        return engine.names(re.escape(f"{self.prefix}{self.name}-read") + r"(-\d+)?")


def _backup(container: str, *args: str, timeout: float | None = None) -> str:
    """Run pgfleet-backup in a job container; its output, or RestoreError with its reason."""
    if engine.inspect(container) is None:
        raise RestoreError(f"container {container!r} does not exist: is the stack deployed with backups enabled?")
    result = engine.execute(container, ["pgfleet-backup", *args], timeout=timeout)
    if result.returncode != 0:
        raise RestoreError((result.stderr or result.stdout).strip() or f"pgfleet-backup {args[0]} failed")
    return result.stdout + result.stderr


def _servers(prefix: str) -> list[Server]:
    dumps = engine.names(re.escape(prefix) + r".+-dump")
    return [Server(name[len(prefix):-len("-dump")], prefix) for name in dumps]


def _server_of(database: str, prefix: str) -> Server:
    """The server whose dump job covers `database`."""
    for server in _servers(prefix):
        listed = engine.execute(server.dump_job, ["sh", "-c", ". /etc/pgfleet/job.env && echo $PGFLEET_DATABASES"])
        if database in listed.stdout.split():
            return server
    raise RestoreError(f"no server of this stack (prefix {prefix!r}) dumps a database named {database!r}")


def list_backups(prefix: str, server: str | None) -> str:
    servers = [Server(server, prefix)] if server else _servers(prefix)
    if not servers:
        raise RestoreError(f"no backup containers with prefix {prefix!r}: is the stack deployed with backups enabled?")
    return "\n".join(f"== {s.name}\n{_backup(s.dump_job, 'list')}" for s in servers)


def restore_dump(database: str, prefix: str, stamp: str | None = None, keep_previous: bool = False) -> str:
    server = _server_of(database, prefix)
    args = ["restore-dump", database, *([stamp] if stamp else []), *(["--keep-previous"] if keep_previous else [])]
    return _backup(server.dump_job, *args)


def _wait_promoted(server: Server, restarts_before: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = engine.inspect(server.primary)
        if state is None:
            raise RestoreError(f"{server.primary} disappeared during recovery")
        if state.restarts > restarts_before:
            raise RestoreError(f"{server.primary} stopped during recovery:\n{engine.logs(server.primary)}")
        if state.running and engine.execute(server.base_job, ["pgfleet-backup", "promoted"]).returncode == 0:
            return
        time.sleep(1)
    raise RestoreError(f"{server.primary} did not finish recovery in {timeout_s:.0f} s")


def _reclone(replica: str, timeout_s: float) -> None:
    # A replica follows the old timeline; an empty data directory makes it clone the primary.
    state = engine.inspect(replica)
    if state is None:
        return
    volume = state.volumes.get(DATA_PATH)
    if volume:
        engine.run_once(state.image, {volume: DATA_PATH}, ["rm", "-rf", f"{DATA_PATH}/pgdata"])
    engine.start(replica)
    engine.wait_healthy(replica, timeout_s)


def restore_pitr(server_name: str, target: str, prefix: str, timeout_s: float = 3600) -> str:
    server = Server(server_name, prefix)
    primary = engine.inspect(server.primary)
    if primary is None:
        raise RestoreError(f"server container {server.primary!r} does not exist")
    report = [_backup(server.base_job, "restore-pitr", target, timeout=timeout_s)]  # live data untouched so far
    replicas = server.replicas()
    for replica in replicas:
        engine.stop(replica)
    engine.stop(server.primary)
    stopped = engine.inspect(server.primary)
    if stopped is None or stopped.running:
        raise RestoreError(f"{server.primary} did not stop; the live data is untouched")
    try:
        report.append(_backup(server.base_job, "swap", "--server-stopped"))
    except RestoreError:
        engine.start(server.primary)
        raise
    engine.start(server.primary)
    try:
        _wait_promoted(server, primary.restarts, timeout_s)
    except RestoreError as failure:
        engine.stop(server.primary)
        _backup(server.base_job, "rollback", "--server-stopped")
        engine.start(server.primary)
        engine.wait_healthy(server.primary, timeout_s)
        for replica in replicas:
            engine.start(replica)
        raise RestoreError(f"recovery to {target!r} failed; the previous data is back in place.\n{failure}") from None
    for replica in replicas:
        _reclone(replica, timeout_s)
    report.append(f"{server.primary} restored to {target}; {len(replicas)} replica(s) re-cloned")
    return "\n".join(report)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgfleet-restore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default="", help="the stack's docker.prefix (container name prefix)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="base backups and dumps in the repository")
    listing.add_argument("--server")
    dump = commands.add_parser("dump", help="restore one database from its latest (or a chosen) dump")
    dump.add_argument("database")
    dump.add_argument("--stamp", help="a dump's UTC stamp, e.g. 20261122T000000Z (latest when omitted)")
    dump.add_argument("--keep-previous", action="store_true", help="keep the replaced database, renamed")
    pitr = commands.add_parser("pitr", help="restore a whole server to a point in time")
    pitr.add_argument("--server", required=True)
    pitr.add_argument("target", help="a timestamp with time zone, or 'latest' for the end of the archived WAL")
    pitr.add_argument("--timeout", type=float, default=3600, help="seconds allowed for restore and recovery")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            print(list_backups(args.prefix, args.server))
        elif args.command == "dump":
            print(restore_dump(args.database, args.prefix, args.stamp, args.keep_previous))
        else:
            print(restore_pitr(args.server, args.target, args.prefix, args.timeout))
    except (RestoreError, engine.EngineError) as failure:
        print(f"pgfleet-restore: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
