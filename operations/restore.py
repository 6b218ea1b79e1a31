"""pgfleet-restore: bring one service's database, or a whole server, back from its backups.

    pgfleet-restore [--stack STACK] [--cwd DIR] list [--server S]
    pgfleet-restore [--stack STACK] [--cwd DIR] dump DATABASE [--stamp STAMP] [--keep-previous]
    pgfleet-restore [--stack STACK] [--cwd DIR] pitr --server S TARGET
                                                 TARGET: '2026-11-22 10:15:00+00' or 'latest'

Runs against a deployed stack of the Pulumi project in DIR (the selected stack by default), on
the platform the stack itself names in its `platform` output: Docker or Kubernetes, the same
commands and guarantees on both. It drives `pgfleet-backup` with the settings of the server's
backup jobs, which hold the repository and its keys. A dump restore replaces one database and
leaves the server's others alone; if it fails the old database is put back. A point-in-time
restore prepares the data beside the live data while the server runs, then stops the server
(and its replicas), swaps the data in, starts it, waits for recovery and promotion, and
re-clones the replicas; if recovery fails it puts the previous data back. Exit status 1 with
the reason on any failure.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .deployed import DeployedServers, RestoreError, ServerObjects, locate
from .docker_engine import EngineError


def _server(deployed: DeployedServers, name: str) -> ServerObjects:
    if name not in deployed.servers:
        known = ", ".join(sorted(deployed.servers)) or "none"
        raise RestoreError(f"the stack has no server {name!r} (its servers: {known})")
    return deployed.servers[name]


def list_backups(deployed: DeployedServers, server: str | None = None, timeout_s: float = 600) -> str:
    servers = [_server(deployed, server)] if server else [s for s in deployed.servers.values() if s.dump_job]
    if not servers:
        raise RestoreError("no server of this stack has backups: is it deployed with backups enabled?")
    return "\n".join(f"== {s.name}\n{deployed.backup(s, 'dump', ['list'], timeout_s)}" for s in servers)


def restore_dump(deployed: DeployedServers, database: str, stamp: str | None = None, keep_previous: bool = False,
                 timeout_s: float = 3600) -> str:
    server = next((s for s in deployed.servers.values() if s.dump_job and database in deployed.databases(s)), None)
    if server is None:
        raise RestoreError(f"no server of this stack dumps a database named {database!r}")
    args = ["restore-dump", database, *([stamp] if stamp else []), *(["--keep-previous"] if keep_previous else [])]
    return deployed.backup(server, "dump", args, timeout_s)


def restore_pitr(deployed: DeployedServers, server_name: str, target: str, timeout_s: float = 3600) -> str:
    server = _server(deployed, server_name)
    report = [deployed.backup(server, "base", ["restore-pitr", target], timeout_s)]  # live data untouched so far
    deployed.stop_replicas(server)
    try:
        deployed.stop_primary(server)
        report.append(deployed.backup(server, "base", ["swap", "--server-stopped"], timeout_s, primary_stopped=True))
    except RestoreError:
        deployed.start_primary(server)
        deployed.start_replicas(server, reclone=False, timeout_s=timeout_s)
        raise
    deployed.start_primary(server)
    try:
        deployed.wait_promoted(server, timeout_s)
    except RestoreError as failure:
        deployed.stop_primary(server)
        deployed.backup(server, "base", ["rollback", "--server-stopped"], timeout_s, primary_stopped=True)
        deployed.start_primary(server)
        deployed.wait_ready(server, timeout_s)
        deployed.start_replicas(server, reclone=False, timeout_s=timeout_s)
        raise RestoreError(f"recovery to {target!r} failed; the previous data is back in place.\n{failure}") from None
    report.append(deployed.backup(server, "base", ["finish-pitr"], timeout_s))  # before replicas clone it
    deployed.start_replicas(server, reclone=True, timeout_s=timeout_s)
    report.append(f"{server.primary} restored to {target}; {len(server.replicas)} replica set(s) re-cloned")
    return "\n".join(report)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgfleet-restore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", help="the stack to restore in (default: the selected stack)")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the Pulumi project's directory (default: here)")
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
    for command in (listing, dump, pitr):
        command.add_argument("--timeout", type=float, default=3600, help="seconds allowed for each step")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        deployed = locate(args.stack, args.cwd)
        if args.command == "list":
            print(list_backups(deployed, args.server, args.timeout))
        elif args.command == "dump":
            print(restore_dump(deployed, args.database, args.stamp, args.keep_previous, args.timeout))
        else:
            print(restore_pitr(deployed, args.server, args.target, args.timeout))
    except (RestoreError, EngineError) as failure:
        print(f"pgfleet-restore: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
