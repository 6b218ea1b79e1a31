"""The real Pulumi engine through the Automation API: local file backend, passphrase secrets.

A throwaway stack lives in a temporary work dir whose Pulumi.yaml points `main` back at this
repository, so no stack file is ever written into the checkout.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from pgfleet.policies import PACK_DIR, PACK_NAME

from .program import PROJECT, ROOT

#: pgfleet's policy pack, given to every `up` of a live test's stack (the dev and prod stacks,
#: every example): each must keep the invariants, enforced by the engine as a user's CI would.
POLICY_PACKS = [str(PACK_DIR)]
#: The engine's line for a pack that ran and found nothing.
PACK_PASSED = f"✅ {PACK_NAME}@v"

#: Where setup/toolchain.sh links the CLI, the language host and the plugins.
TOOLCHAIN_BIN = Path(os.environ.get("PGFLEET_BIN_DIR", "/usr/local/bin"))


def engine_env(state_dir: Path) -> dict[str, str]:
    """The environment the engine runs with: offline, local state, a fresh passphrase."""
    return {
        "PATH": f"{TOOLCHAIN_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PULUMI_BACKEND_URL": f"file://{state_dir}",
        "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24),
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",  # the plugin cache's copies, as setup/env.sh says
        "PULUMI_HOME": os.environ.get("PULUMI_HOME", str(Path.home() / ".pulumi")),
        # the cluster the kubernetes provider talks to (scripts/test.sh sets it)
        **({"KUBECONFIG": os.environ["KUBECONFIG"]} if os.environ.get("KUBECONFIG") else {}),
    }


def program_work_dir(base: Path) -> Path:
    """`base` made a project directory whose Pulumi.yaml runs this repository's program."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["main"] = os.path.relpath(ROOT, base)
    (base / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    return base


def config_values(config: Mapping[str, Any]) -> dict[str, auto.ConfigValue]:
    """Stack config as the CLI stores it: objects as JSON strings, which the program parses."""
    return {
        f"{PROJECT}:{key}": auto.ConfigValue(value=value if isinstance(value, str) else json.dumps(value))
        for key, value in config.items()
    }


@contextmanager
def throwaway_stack(tmp: Path, name: str, config: Mapping[str, Any],
                    secret_config: Mapping[str, str] | None = None, protected: bool = False) -> Iterator[auto.Stack]:
    """A new stack with this config; destroyed and removed afterwards, whatever happened.

    `protected`: its data is protected (a Kubernetes stack): protection is lifted first, and the
    program runs during destroy (it opens the port-forwards the PostgreSQL provider dials)."""
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    work = program_work_dir(tmp)
    workspace = auto.LocalWorkspace(work_dir=str(work), env_vars=engine_env(state))
    stack = auto.Stack.create(f"{name}-{secrets.token_hex(3)}", workspace)
    values = config_values(config)
    values |= {f"{PROJECT}:{k}": auto.ConfigValue(value=v, secret=True) for k, v in (secret_config or {}).items()}
    stack.set_all_config(values)
    try:
        yield stack
    finally:
        try:
            if protected:
                stack.set_config(f"{PROJECT}:protect", auto.ConfigValue("false"))
                stack.up(on_output=lambda _: None)
            stack.destroy(on_output=lambda _: None, run_program=protected)
        finally:
            workspace.remove_stack(stack.name, force=True)
            # what a Docker stack's `up` wrote on this machine (its CA, its monitoring files)
            shutil.rmtree(Path.home() / ".pgfleet" / PROJECT / stack.name, ignore_errors=True)


@contextmanager
def program_stacks(tmp: Path) -> Iterator[Callable[[Callable[[], None]], auto.Stack]]:
    """Makes throwaway stacks of inline programs (a small program built in the test from the
    components) on a local backend; each is destroyed and removed afterwards."""
    made: list[auto.Stack] = []

    def make(program: Callable[[], None]) -> auto.Stack:
        (tmp / "state").mkdir(exist_ok=True)
        stack = auto.create_stack(f"program-{secrets.token_hex(3)}", project_name="pgfleet-program", program=program,
                                  opts=auto.LocalWorkspaceOptions(env_vars=engine_env(tmp / "state")))
        made.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in made:
            stack.destroy(on_output=lambda _: None)
            stack.workspace.remove_stack(stack.name)


def up_with_policies(stack: auto.Stack, **kwargs: Any) -> auto.UpResult:
    """`up` with pgfleet's policy pack, which must have run and passed (printed as it goes)."""
    said: list[str] = []

    def show(line: str) -> None:
        said.append(line)
        print(line)

    result = stack.up(policy_packs=POLICY_PACKS, on_output=show, **kwargs)
    assert any(PACK_PASSED in line for line in said), "the policy pack did not report on the update"
    return result
