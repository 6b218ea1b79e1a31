"""Service groups: a fleet's services kept in stacks of their own, beside the platform stack.

The local file backend rewrites a stack's whole checkpoint after every step, so one `up` costs
the square of the stack's size; with `service_groups: N` no checkpoint holds more than about
1/N of the services. A group stack is named `<platform stack>-services-<k>`; it reads the
platform stack's config file for its services and the platform's `service_groups` output (by
StackReference) for the servers and Vault it provisions them on.
"""
from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Iterable
from pathlib import Path

from .models import ServiceConfig, StackConfig

_GROUP_STACK = re.compile(r"^(?P<platform>.+)-services-(?P<group>\d+)$")


def group_of(service: str, groups: int) -> int:
    """The group a service lives in: from its name alone, so it keeps its group while others
    come and go (crc32, not hash(): Python salts that per process)."""
    return zlib.crc32(service.encode()) % groups


def group_stack(platform_stack: str, group: int) -> str:
    return f"{platform_stack}-services-{group}"


def parse_group_stack(stack: str) -> tuple[str, int] | None:
    """(platform stack, group) when `stack` is named as a group stack, else None."""
    match = _GROUP_STACK.match(stack)
    return (match["platform"], int(match["group"])) if match else None


def services_of_group(config: StackConfig, group: int) -> list[ServiceConfig]:
    return [s for s in config.services if group_of(s.name, config.service_groups) == group]


def group_stacks(config: StackConfig, platform_stack: str) -> dict[str, list[str]]:
    """Every group stack of the platform, with the services it holds (an empty group too)."""
    return {
        group_stack(platform_stack, group): [s.name for s in services_of_group(config, group)]
        for group in range(config.service_groups)
    }


def code_digest(roots: Iterable[Path] | None = None) -> str:
    """A digest of pgfleet's program code: a group whose config is unchanged still runs when it changed."""
    if roots is None:
        package = Path(__file__).resolve().parents[2]  # the checkout, or site-packages/pgfleet
        roots = [package / "components", package / "stacks"]
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in {".py", ".json"} and path.is_file():
                digest.update(path.relative_to(root).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(config: StackConfig, group: int, code: str) -> str:
    """What a group's `up` depends on: its services' config, every setting outside `services`
    (servers, Vault, TLS...: over-running a group is safe, skipping a changed one is not) and
    the program's code. A group whose fingerprint matches its last `up` has nothing to do."""
    shared = config.model_dump(mode="json", exclude={"services", "service_stacks"})
    members = [s.model_dump(mode="json") for s in services_of_group(config, group)]
    text = json.dumps({"shared": shared, "services": members, "group": group, "code": code}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
