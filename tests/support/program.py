"""Runs the pgfleet program (or any function) under recording mocks and resolves Outputs."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from .mocks import RecordingMocks, install

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "pgfleet"


@dataclass
class Resolved:
    value: Any
    secret: bool


@dataclass
class Run:
    mocks: RecordingMocks
    result: Any
    values: dict[str, Resolved] = field(default_factory=dict)


def stack_config(path: Path | str) -> dict[str, Any]:
    """The `pgfleet:` keys of a Pulumi stack file, as plain values."""
    document = yaml.safe_load(Path(ROOT / path).read_text())
    prefix = f"{PROJECT}:"
    return {k[len(prefix):]: v for k, v in (document.get("config") or {}).items() if k.startswith(prefix)}


def run(
    build: Callable[[], Any],
    collect: Callable[[Any], Mapping[str, Any]] = lambda _: {},
    config: Mapping[str, Any] | None = None,
    secret_config: Mapping[str, str] | None = None,
    stack: str = "dev",
) -> Run:
    """Run `build` as a Pulumi program under fresh mocks; resolve what `collect` picks from
    its result, with each value's secretness."""
    mocks = install(project=PROJECT, stack=stack, config=config, secret_config=secret_config)
    outcome = Run(mocks=mocks, result=None)

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        # The root Stack outlives a test; start each run with no exports.
        pulumi.runtime.get_root_resource().outputs.clear()
        outcome.result = build()

        async def gather() -> dict[str, Resolved]:
            resolved = {}
            for key, value in collect(outcome.result).items():
                output = pulumi.Output.from_input(value)
                resolved[key] = Resolved(await output.future(), await output.is_secret())
            return resolved

        return pulumi.Output.from_input(gather()).apply(outcome.values.update)

    program()
    return outcome


def exports() -> dict[str, Any]:
    """The stack outputs the program exported so far (for `collect`)."""
    return dict(pulumi.runtime.get_root_resource().outputs)


def run_stack(config: Mapping[str, Any], secret_config: Mapping[str, str] | None = None,
              collect: Callable[[Any], Mapping[str, Any]] = lambda _: {}, stack: str = "dev") -> Run:
    """The whole program, as `pulumi up` runs it, with this stack config."""
    from pgfleet import stacks

    return run(lambda: stacks.run(), collect, config=config, secret_config=secret_config, stack=stack)


#: Secret config a stack needs for external Vault and S3 targets, with throwaway values.
TEST_SECRETS = {"vaultToken": "test-token", "backupS3AccessKey": "test-access", "backupS3SecretKey": "test-secret",
                "backupPassphrase": "test-passphrase"}
