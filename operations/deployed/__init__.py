"""A deployed stack's servers and backup jobs, on whichever platform the stack runs.

`locate` reads the stack's `platform` output (stacks/outputs.py): the platform's kind, where the
stack's objects are (a Docker container prefix, a Kubernetes namespace) and each server's object
names. The restore flows (operations/restore.py) drive a server through `DeployedServers` alone.
"""
from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

JobKind = Literal["dump", "base"]


class RestoreError(RuntimeError):
    """A restore step failed; the message says why and what state the server is in."""


@dataclass(frozen=True)
class ServerObjects:
    """One server's objects, as its platform names them."""

    name: str
    primary: str
    replicas: tuple[str, ...]
    dump_job: str | None
    base_job: str | None

    def job(self, kind: JobKind) -> str:
        job = self.dump_job if kind == "dump" else self.base_job
        if job is None:
            what = "backups" if kind == "dump" else "WAL archiving (base backups)"
            raise RestoreError(f"server {self.name!r} has no {kind} job: is the stack deployed with {what} enabled?")
        return job


class DeployedServers(Protocol):
    """What a restore does to a server, on one platform."""

    servers: Mapping[str, ServerObjects]

    def backup(self, server: ServerObjects, kind: JobKind, args: Sequence[str], timeout_s: float,
               primary_stopped: bool = False) -> str:
        """`pgfleet-backup ARGS` with the settings of the server's `kind` job; its output, or
        RestoreError with the reason. `primary_stopped`: the primary is down (swap, rollback)."""
        ...

    def databases(self, server: ServerObjects) -> list[str]:
        """The databases the server's dump job covers."""
        ...

    def stop_primary(self, server: ServerObjects) -> None: ...

    def start_primary(self, server: ServerObjects) -> None: ...

    def wait_promoted(self, server: ServerObjects, timeout_s: float) -> None:
        """Return once the primary takes writes; RestoreError (with its log) if it stops first."""
        ...

    def wait_ready(self, server: ServerObjects, timeout_s: float) -> None: ...

    def stop_replicas(self, server: ServerObjects) -> None: ...

    def start_replicas(self, server: ServerObjects, reclone: bool, timeout_s: float) -> None:
        """Start the replicas stopped before; `reclone`: from an empty data directory, so they
        clone the (restored) primary anew rather than follow the old timeline."""
        ...


def stack_platform(stack: str | None, cwd: Path) -> dict[str, Any]:
    """The `platform` output of a stack of the Pulumi project in `cwd` (the selected stack when
    `stack` is None), read with the Pulumi CLI from the backend it is logged in to."""
    command = ["pulumi", "stack", "output", "platform", "--json", "--non-interactive"]
    if stack:
        command += ["--stack", stack]
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise RestoreError("the pulumi CLI is not on PATH (setup/toolchain.sh installs it)") from None
    missing = RestoreError("the stack has no 'platform' output: run `pulumi up` with this pgfleet version first")
    if result.returncode != 0:
        if "does not have output property" in result.stderr:
            raise missing
        raise RestoreError(f"cannot read the stack's outputs: {(result.stderr or result.stdout).strip()}")
    platform = json.loads(result.stdout or "null")
    if not isinstance(platform, dict) or "kind" not in platform:
        raise missing
    return platform


def servers_of(platform: Mapping[str, Any]) -> dict[str, ServerObjects]:
    return {
        name: ServerObjects(name, objects["primary"], tuple(objects.get("replicas") or ()),
                            objects.get("dump_job"), objects.get("base_job"))
        for name, objects in platform.get("servers", {}).items()
    }


def locate(stack: str | None, cwd: Path) -> DeployedServers:
    """The deployed servers of a stack, on its platform."""
    platform = stack_platform(stack, cwd)
    if platform["kind"] == "docker":
        from .docker import DockerServers

        return DockerServers(servers_of(platform))
    if platform["kind"] == "kubernetes":
        from .kubernetes import KubernetesServers

        return KubernetesServers(servers_of(platform), platform["namespace"])
    raise RestoreError(f"platform {platform['kind']!r} is not one pgfleet-restore drives (docker, kubernetes)")
