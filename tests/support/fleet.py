"""A platform stack with service groups on a throwaway local backend, driven by pgfleet-fleet
as an operator drives it (tests/integration/test_service_groups.py, bench/fleet_scale.py)."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pulumi import automation as auto

from pgfleet.stacks import outputs

from .engine import POLICY_PACKS, config_values, engine_env, program_work_dir
from .program import PROJECT, ROOT

#: A stack's per-service outputs: in a fleet with groups, each group stack has its services'.
SERVICE_KEYS = (outputs.SERVICES, outputs.CONNECTION_URLS, outputs.VAULT_SECRET_IDS)


@dataclass
class FleetProject:
    work: Path
    env: dict[str, str]
    platform: str
    policies: bool = True

    def run(self, action: str, *extra: str, echo: bool = True) -> subprocess.CompletedProcess[str]:
        """`pgfleet-fleet ACTION` in the project directory (with pgfleet's policy pack on up and preview)."""
        packs = [f"--policy-pack={pack}" for pack in POLICY_PACKS] if self.policies and action != "destroy" else []
        command = [sys.executable, "-m", "pgfleet.operations.fleet", action, "--stack", self.platform,
                   "--cwd", str(self.work), *extra, "--", *packs]
        result = subprocess.run(command, cwd=ROOT, env={**os.environ, **self.env}, capture_output=True, text=True,
                                timeout=7200)
        if echo:
            print(result.stdout, result.stderr)
        return result

    @staticmethod
    def actions(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
        """Each stack's line of the summary: stack -> up/preview/destroy/skipped/FAILED."""
        return {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line.strip()}

    def group_stack(self, group: int) -> str:
        return f"{self.platform}-services-{group}"

    def pulumi(self, *args: str) -> str:
        return subprocess.run(["pulumi", *args], cwd=self.work, env={**os.environ, **self.env}, capture_output=True,
                              text=True, check=True).stdout

    def outputs(self, stack: str) -> dict[str, Any]:
        return json.loads(self.pulumi("stack", "output", "--json", "--show-secrets", "-s", stack))

    def workspace(self) -> auto.LocalWorkspace:
        return auto.LocalWorkspace(work_dir=str(self.work), env_vars=self.env)

    def set_config(self, config: dict[str, Any]) -> None:
        self.platform_stack().set_all_config(config_values(config))

    def platform_stack(self) -> auto.Stack:
        return auto.Stack.select(self.platform, self.workspace())

    def merged_outputs(self, groups: int) -> SimpleNamespace:
        """The platform's outputs with every group's service outputs in them, shaped as an up's
        result (`.outputs[key].value`), for the checks every live stack passes."""
        merged = self.outputs(self.platform)
        for key in SERVICE_KEYS:
            merged[key] = {}
        for group in range(groups):
            found = self.outputs(self.group_stack(group))
            for key in SERVICE_KEYS:
                assert not set(found[key]) & set(merged[key]), f"a service in two groups: {found[key]}"
                merged[key].update(found[key])
        return SimpleNamespace(outputs={key: SimpleNamespace(value=value) for key, value in merged.items()})


@contextmanager
def fleet_project(tmp: Path, name: str, config: dict[str, Any], policies: bool = True,
                  secret_config: dict[str, str] | None = None, protected: bool = False) -> Iterator[FleetProject]:
    """A new platform stack with this config; its fleet destroyed and its stacks removed afterwards
    (`protected`: protection is lifted first, with an up of every stack)."""
    (tmp / "state").mkdir(parents=True, exist_ok=True)
    made = FleetProject(work=program_work_dir(tmp), env=engine_env(tmp / "state"),
                        platform=f"{name}-{secrets.token_hex(3)}", policies=policies)
    stack = auto.Stack.create(made.platform, made.workspace())
    made.set_config(config)
    for key, value in (secret_config or {}).items():
        stack.set_config(f"{PROJECT}:{key}", auto.ConfigValue(value=value, secret=True))
    try:
        yield made
    finally:
        made.set_config({**config, "protect": False} if protected else config)  # whatever the caller left
        if protected:  # without the policy pack, which refuses unprotected prod data, rightly
            made.policies = False
            lifted = made.run("up", echo=False)
            assert lifted.returncode == 0, lifted.stdout + lifted.stderr
        destroyed = made.run("destroy", echo=False)
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
        for stack in made.workspace().list_stacks():
            made.workspace().remove_stack(stack.name, force=True)
