"""pgfleet-fleet: bring a platform stack and its service-group stacks up (or preview, or destroy) in one command.

    pgfleet-fleet {up,preview,destroy} [--stack STACK] [--cwd DIR] [--parallel N] [--all] [-- PULUMI_ARGS...]

With `service_groups: N` in a stack's config, its services live in N stacks of their own
(`<stack>-services-<k>`, see stacks/config/groups.py). Each is an ordinary stack: `pulumi up -s
<stack>-services-3` works, after the platform's. This runs them all as that would, in order:

- up: the platform stack first (its servers and Vault), then the group stacks, `--parallel` at a
  time. A group whose fingerprint (its services' config, the settings they depend on and the
  program's code) matches the one its last up recorded has nothing to do and is skipped: a change
  to one service runs one group. `--all` runs every group.
- preview: the same order and skipping, `pulumi preview` each.
- destroy: the groups, then the platform.

A stack without service groups is run alone, as `pulumi up` would.

Group stacks it does not find it creates (`pulumi stack init`, the same backend and secrets
provider as the platform's). Before anything runs, it refuses a config that would move a
service from one group to another (a changed `service_groups`): its database would be dropped
in one stack and made empty in the other. Arguments after `--` go to every pulumi command
(for example `--policy-pack DIR`). Exit status 1 when any stack fails; its output is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from pgfleet.stacks.config import ConfigError, StackConfig
from pgfleet.stacks.config.groups import code_digest, fingerprint, group_of, group_stack, group_stacks, parse_group_stack
from pgfleet.stacks.group import stack_config_file, read_platform_config
from pgfleet.stacks.outputs import GROUP_FINGERPRINT, SERVICES


class FleetError(Exception):
    """What stops the fleet before or while it runs, said for a human."""


@dataclass
class Outcome:
    stack: str
    action: str  # "up", "preview", "destroy", "skipped"
    seconds: float = 0.0
    output: str = ""
    failed: bool = False


class Fleet:
    def __init__(self, stack: str, cwd: Path, pulumi_args: Sequence[str] = ()) -> None:
        self.stack = stack
        self.cwd = cwd
        self.pulumi_args = list(pulumi_args)
        project = _project_name(cwd)
        self.config: StackConfig = read_platform_config(stack_config_file(cwd, stack), project)
        self.groups = group_stacks(self.config, stack)

    def pulumi(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=self.cwd, text=True,
                                capture_output=True, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise FleetError(f"pulumi {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def existing_stacks(self) -> set[str]:
        listed = json.loads(self.pulumi("stack", "ls", "--json", check=True).stdout or "[]")
        return {entry["name"].split("/")[-1] for entry in listed}

    def recorded(self, stack: str) -> dict:
        """A group stack's outputs from its last up (secrets masked): {} when it has none."""
        result = self.pulumi("stack", "output", "--json", "-s", stack)
        return json.loads(result.stdout or "{}") if result.returncode == 0 else {}

    def check_moves(self, records: dict[str, dict]) -> None:
        """Refuse a config that puts a service some group stack holds into another group."""
        wanted = {service.name for service in self.config.services}
        moved = []
        for stack, outputs in records.items():
            for service in outputs.get(SERVICES) or {}:
                home = group_stack(self.stack, group_of(service, self.config.service_groups))
                if service in wanted and home != stack:
                    moved.append(f"{service} ({stack} -> {home})")
        if moved:
            raise FleetError(
                f"service_groups: {self.config.service_groups} would move services between group stacks, and a move "
                f"drops a database in one stack and makes an empty one in the other: {', '.join(sorted(moved))}. "
                "Keep the groups' number, or move each with `pulumi state move` first.")

    def run(self, action: str, parallel: int, everything: bool) -> list[Outcome]:
        existing = self.existing_stacks()
        groups = sorted(name for name in existing if (parse_group_stack(name) or ("",))[0] == self.stack)
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            records = dict(zip(groups, pool.map(self.recorded, groups)))
        if action == "destroy":
            outcomes = self._parallel([name for name in sorted(records)], "destroy", parallel)
            if any(o.failed for o in outcomes):
                return outcomes
            return outcomes + [self._one(self.stack, "destroy")]
        self.check_moves(records)
        platform = self._one(self.stack, action)
        if platform.failed:
            return [platform]
        code = code_digest()
        todo, outcomes = [], [platform]
        for index, name in enumerate(self.groups):
            current = fingerprint(self.config, index, code)
            if not everything and records.get(name, {}).get(GROUP_FINGERPRINT) == current:
                outcomes.append(Outcome(name, "skipped"))
                continue
            if name not in existing:
                self.pulumi("stack", "init", name, check=True)
            todo.append(name)
        return outcomes + self._parallel(todo, action, parallel)

    def _parallel(self, stacks: list[str], action: str, parallel: int) -> list[Outcome]:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            return list(pool.map(lambda name: self._one(name, action), stacks))

    def _one(self, stack: str, action: str) -> Outcome:
        # on Kubernetes the program opens the port-forwards the PostgreSQL providers dial: it runs on destroy too
        forwards = ["--run-program"] if self.config.platform == "kubernetes" else []
        destroy = ["destroy", "--yes", "--skip-preview", *forwards]
        args = {"up": ["up", "--yes", "--skip-preview"], "preview": ["preview"], "destroy": destroy}[action]
        start = time.perf_counter()
        result = self.pulumi(*args, "-s", stack, *self.pulumi_args)
        return Outcome(stack, action, time.perf_counter() - start, result.stdout + result.stderr,
                       failed=result.returncode != 0)


def _project_name(cwd: Path) -> str:
    return str(yaml.safe_load((cwd / "Pulumi.yaml").read_text())["name"])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:
        passthrough = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(prog="pgfleet-fleet", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "preview", "destroy"])
    parser.add_argument("--stack", "-s", default=os.environ.get("PULUMI_STACK"), required="PULUMI_STACK" not in os.environ,
                        help="the platform stack")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the project directory (where Pulumi.yaml is)")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 2, help="group stacks run at once")
    parser.add_argument("--all", action="store_true", help="run every group stack, changed or not")
    args = parser.parse_args(argv)
    try:
        fleet = Fleet(args.stack, args.cwd, passthrough)
        outcomes = fleet.run(args.action, args.parallel, args.all)
    except (FleetError, ConfigError) as error:
        print(f"pgfleet-fleet: {error}", file=sys.stderr)
        return 1
    for outcome in outcomes:
        state = "FAILED" if outcome.failed else outcome.action
        print(f"{outcome.stack:<40} {state:<8} {outcome.seconds:7.1f} s")
    failed = [o for o in outcomes if o.failed]
    for outcome in failed:
        print(f"\n--- {outcome.stack}: pulumi {outcome.action} failed ---\n{outcome.output}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
