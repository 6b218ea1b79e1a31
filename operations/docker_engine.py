"""The few Docker engine calls the restore and recover commands make, through the `docker` CLI."""
from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass


class EngineError(RuntimeError):
    """A docker command failed; the message carries its output."""


@dataclass(frozen=True)
class Container:
    name: str
    running: bool
    restarts: int
    image: str
    labels: dict[str, str]
    volumes: dict[str, str]
    """Mount destination -> named volume."""


def _docker(*args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise EngineError(f"docker {args[0]} failed: {(result.stderr or result.stdout).strip()}")
    return result


def inspect(name: str) -> Container | None:
    result = _docker("inspect", "--type", "container", name, check=False)
    if result.returncode != 0:
        return None
    info = json.loads(result.stdout)[0]
    return Container(
        name=info["Name"].lstrip("/"),
        running=info["State"]["Running"],
        restarts=info["RestartCount"],
        image=info["Config"]["Image"],
        labels=info["Config"]["Labels"] or {},
        volumes={m["Destination"]: m["Name"] for m in info["Mounts"] if m["Type"] == "volume"},
    )


def names(pattern: str) -> list[str]:
    """Containers (running or not) whose whole name matches the regular expression."""
    listed = _docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    return sorted(n for n in listed if re.fullmatch(pattern, n))


def execute(name: str, command: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command in a running container; the result, whatever its exit status."""
    return _docker("exec", name, *command, check=False, timeout=timeout)


def remove(name: str) -> None:
    """A container, stopped first if it runs."""
    _docker("rm", "-f", name)


def network_containers(name: str) -> int | None:
    """How many containers sit on a network; None when there is no such network."""
    result = _docker("network", "inspect", "--format", "{{len .Containers}}", name, check=False)
    return int(result.stdout.strip()) if result.returncode == 0 else None


def remove_network(name: str) -> None:
    _docker("network", "rm", name)


def stop(name: str, grace_s: int = 120) -> None:
    _docker("stop", "-t", str(grace_s), name)


def start(name: str) -> None:
    _docker("start", name)


def run_once(image: str, volumes: dict[str, str], command: Sequence[str]) -> None:
    """A throwaway container with named volumes mounted (volume -> path)."""
    mounts = [arg for volume, path in volumes.items() for arg in ("-v", f"{volume}:{path}")]
    _docker("run", "--rm", *mounts, "--entrypoint", command[0], image, *command[1:])


def wait_healthy(name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _docker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", name).stdout.strip()
        if status == "healthy":
            return
        time.sleep(1)
    raise EngineError(f"{name} did not turn healthy in {timeout_s:.0f} s")


def logs(name: str, lines: int = 20) -> str:
    result = _docker("logs", "--tail", str(lines), name, check=False)
    return (result.stdout + result.stderr).strip()
