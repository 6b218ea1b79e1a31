"""Pulumi mocks that record every registration: inputs (with secretness), parent, protect.

Mocks neither auto-name nor apply `additional_secret_outputs`; assertions stay on what the
program itself set.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

_SIG = rpc._special_sig_key  # noqa: SLF001 - the wire marker of a secret value
_SECRET = rpc._special_secret_sig  # noqa: SLF001


def _unwrap(value: Any, path: str, secrets: set[str]) -> Any:
    if isinstance(value, dict):
        if value.get(_SIG) == _SECRET:
            secrets.add(path)
            return _unwrap(value["value"], path, secrets)
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


@dataclass
class Registered:
    """One resource as the program registered it."""

    typ: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    secret_paths: set[str]
    protect: bool
    retain_on_delete: bool
    custom: bool
    provider: str
    dependencies: list[str] = field(default_factory=list)
    deleted_with: str = ""
    ignore_changes: list[str] = field(default_factory=list)

    def is_secret(self, path: str) -> bool:
        """Whether the input at `path` (or a value that contains it) was sent as a secret."""
        return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in self.secret_paths)

    def get(self, path: str) -> Any:
        value: Any = self.inputs
        for part in path.replace("]", "").replace("[", ".").split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        return value


class RecordingMocks(pulumi.runtime.Mocks):
    """Echoes inputs as outputs and fills in the outputs providers compute."""

    #: What a StackReference reads (the referenced stack's outputs), and each Vault KV secret's
    #: data by its name (what vault.kv.get_secret_v2 returns): set by a test that needs them.
    stack_outputs: dict[str, Any] = {}
    vault_secrets: dict[str, dict[str, str]] = {}

    def __init__(self) -> None:
        self.registered: list[Registered] = []
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        secrets: set[str] = set()
        inputs = _unwrap(dict(args.inputs), "", secrets)
        meta = self.pending.pop((args.typ, args.name), {})
        self.registered.append(Registered(
            typ=args.typ, name=args.name, urn=meta.get("urn", ""), parent=meta.get("parent", ""),
            inputs=inputs, secret_paths=secrets, protect=meta.get("protect", False),
            retain_on_delete=meta.get("retain_on_delete", False), custom=bool(args.custom),
            provider=args.provider or "", dependencies=meta.get("dependencies", []),
            deleted_with=meta.get("deleted_with", ""),
            ignore_changes=meta.get("ignore_changes", []),
        ))
        outputs = dict(inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = f"mock-{args.name}-{'x' * 8}"
        elif args.typ == "vault:appRole/authBackendRole:AuthBackendRole":
            outputs["roleId"] = f"role-id-{args.name}"
        elif args.typ == "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId":
            outputs["secretId"] = f"secret-id-{args.name}"
            outputs["accessor"] = f"accessor-{args.name}"
        elif args.typ.startswith("kubernetes:") and "metadata" in outputs:
            outputs["status"] = {}
        elif args.typ == "pulumi:pulumi:StackReference":
            outputs["outputs"] = self.stack_outputs
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "vault:kv/getSecretV2:getSecretV2":
            return {"data": self.vault_secrets[args.args["name"]]}
        return {}

    # -- queries ---------------------------------------------------------------------------
    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.registered if r.typ == typ]

    def named(self, name: str, typ: str | None = None) -> Registered:
        found = [r for r in self.registered if r.name == name and (typ is None or r.typ == typ)]
        assert len(found) == 1, f"expected one resource named {name!r}, found {len(found)}"
        return found[0]

    def children_of(self, urn: str) -> Iterator[Registered]:
        return (r for r in self.registered if r.parent == urn)

    def components(self) -> list[Registered]:
        return [r for r in self.registered if not r.custom]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Passes each request's parent, protect and URN to the mocks before they see it."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        self.recording.pending[(request.type, request.name)] = {
            "urn": urn,
            "parent": request.parent,
            "protect": bool(request.protect),
            "retain_on_delete": bool(request.retainOnDelete),
            "dependencies": list(request.dependencies),
            "deleted_with": request.deletedWith,
            "ignore_changes": list(request.ignoreChanges),
        }
        response = super().RegisterResource(request)
        if not request.custom and request.type != "pulumi:pulumi:Stack":
            # Components never reach Mocks.new_resource through every SDK path; record them here.
            meta = self.recording.pending.pop((request.type, request.name), None)
            if meta is not None:
                self.recording.registered.append(Registered(
                    typ=request.type, name=request.name, urn=urn, parent=request.parent, inputs={},
                    secret_paths=set(), protect=meta["protect"], retain_on_delete=meta["retain_on_delete"],
                    custom=False, provider="",
                ))
        return response


def install(project: str = "pgfleet", stack: str = "dev", config: Mapping[str, Any] | None = None,
            secret_config: Mapping[str, str] | None = None) -> RecordingMocks:
    """Fresh mocks and config for one test: objects are passed as JSON, as the CLI does."""
    recording = RecordingMocks()
    try:
        asyncio.get_event_loop()
    except RuntimeError:  # an earlier asyncio.run() in this process leaves the main thread without a loop
        asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(recording, project=project, stack=stack, preview=False,
                             monitor=RecordingMonitor(recording))
    values = {
        f"{project}:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in (config or {}).items()
    }
    values |= {f"{project}:{key}": value for key, value in (secret_config or {}).items()}
    pulumi.runtime.set_all_config(values, [f"{project}:{key}" for key in (secret_config or {})])
    return recording
