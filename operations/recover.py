"""pgfleet-recover: make a stack whose `pulumi up` was killed ready for the next `pulumi up`.

    pgfleet-recover [--stack STACK] [--cwd DIR] [--dry-run]

A killed run leaves its stack locked and the creates it had started recorded as pending: the
object may exist although the state does not hold it. The next `up` would then trip over the
lock, and over the name of every such object. This command, run where `pulumi up` runs (same
backend and passphrase), does what Pulumi asks an operator to do, for the objects pgfleet makes:

1. the lock: removed (`pulumi cancel`) only when the process that holds it is gone, after
   removing what its death left half-written (an empty checkpoint sidecar, temporary files);
2. each pending create, by what the object is:
   - recreated as it was (removed here): containers and networks, which hold no data;
   - adopted by the next `up` (kept here): volumes, PostgreSQL roles, databases, schemas,
     grants, Vault policies, roles and KV secrets (their create takes over what exists);
   - made again by the next `up`: providers (a configuration, nothing outside the state);
   - Vault mounts and auth backends: disabled when empty (made by the killed run), refused
     when not (an operator's, to import by hand);
   - AppRole secret_ids: the ones the killed run issued and no state records are destroyed,
     so no valid credential is left that nobody holds;
3. the pending creates cleared from the state (`pulumi refresh --clear-pending-creates`), which
   also reads back every recorded object.
Exit status 1 with the reason when something needs a human; nothing is removed in that case.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import docker_engine as engine


class RecoverError(RuntimeError):
    pass


@dataclass
class Pulumi:
    """The CLI on one stack, with the caller's environment (backend, passphrase)."""

    stack: str | None
    cwd: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        on_stack = self.stack and args[0] != "whoami"  # whoami is the backend's, not a stack's
        command = ["pulumi", *args, "--non-interactive", *(["--stack", self.stack] if on_stack else [])]
        result = subprocess.run(command, cwd=self.cwd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RecoverError(f"`pulumi {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()}")
        return result

    def json(self, *args: str) -> Any:
        """A command's JSON output (`stack export` writes JSON without being asked)."""
        return json.loads(self.run(*args, *([] if args[:2] == ("stack", "export") else ["--json"])).stdout)


@dataclass(frozen=True)
class Pending:
    """A create the killed run started: the object's type, URN and inputs."""

    type: str
    urn: str
    inputs: dict[str, Any]

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass
class Plan:
    """What recovery will do, decided before anything is touched."""

    actions: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# the lock

def _lock_files(backend_url: str, project: str, stack: str) -> list[Path]:
    root = Path(backend_url.removeprefix("file://")).expanduser()
    folder = root / ".pulumi" / "locks" / "organization" / project / stack
    return sorted(p for p in folder.glob("*.json")) if folder.is_dir() else []


def _holder_alive(lock: dict[str, Any]) -> bool:
    if lock.get("hostname") != socket.gethostname():
        return True  # another machine's process: it cannot be checked from here
    try:
        os.kill(int(lock["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def repair_checkpoint_files(backend_url: str, project: str, stack: str) -> list[str]:
    """A file backend writes each checkpoint to a temporary file renamed into place (atomic),
    but its metadata sidecar (`<stack>.json.attrs`: content type, MD5) in place: a kill in that
    write leaves it empty, and every command then fails with "failed to load checkpoint: EOF".
    An unreadable sidecar is removed (the checkpoint reads without one), and so are the
    temporary files of writes that never finished. Returns what was removed."""
    folder = Path(backend_url.removeprefix("file://")).expanduser() / ".pulumi" / "stacks" / project
    removed: list[str] = []
    for path in sorted(folder.glob(f"{stack}.json*")):
        if path.suffix == ".tmp":
            broken = True
        elif path.suffix == ".attrs":
            try:
                broken = not isinstance(json.loads(path.read_text()), dict)
            except ValueError:  # empty or cut short
                broken = True
        else:
            continue
        if broken:
            path.unlink()
            removed.append(path.name)
    return removed


def release_stale_lock(pulumi: Pulumi, project: str, stack: str, say: Callable[[str], None]) -> None:
    """`pulumi cancel` when the stack's lock is held by a process that is gone, after mending
    what that process's death may have left half-written; refused when the holder runs (or
    runs elsewhere). Locks exist on file backends; Pulumi Cloud shows and cancels its updates
    itself."""
    backend = pulumi.json("whoami")["url"]
    if not backend.startswith("file://"):
        return
    locks = _lock_files(backend, project, stack)
    for path in locks:
        holder = json.loads(path.read_text())
        if _holder_alive(holder):
            raise RecoverError(f"the stack is locked by pid {holder.get('pid')} on {holder.get('hostname')} "
                               f"(since {holder.get('timestamp')}), which may still be running: wait for it, "
                               "or stop it, and run pgfleet-recover again")
    for name in repair_checkpoint_files(backend, project, stack):
        say(f"removed {name}, left half-written by the killed run")
    if locks:
        pulumi.run("cancel", "--yes")
        say(f"released the lock of the killed run ({len(locks)} lock file(s))")


# ---------------------------------------------------------------------------------------------
# the platform and Vault, as far as pending creates need them

def _docker_labels(inputs: dict[str, Any]) -> dict[str, str]:
    return {item["label"]: item["value"] for item in inputs.get("labels") or []}


def _plan_container(item: Pending, plan: Plan) -> None:
    name = item.inputs["name"]
    found = engine.inspect(name)
    if found is None:
        plan.kept.append(f"container {name}: never created")
        return
    if any(found.labels.get(k) != v for k, v in _docker_labels(item.inputs).items()):
        plan.refused.append(f"container {name} exists but carries other labels than the stack declares: "
                            "not the killed run's; rename or remove it yourself")
        return
    plan.actions.append((f"remove container {name} (recreated by the next up)", lambda: engine.remove(name)))


def _plan_network(item: Pending, plan: Plan) -> None:
    name = item.inputs["name"]
    attached = engine.network_containers(name)
    if attached is None:
        plan.kept.append(f"network {name}: never created")
    elif attached:
        plan.refused.append(f"network {name} exists with containers attached: not the killed run's alone")
    else:
        plan.actions.append((f"remove network {name} (recreated by the next up)",
                             lambda: engine.remove_network(name)))


@dataclass(frozen=True)
class Vault:
    """The Vault the stack's vault provider talks to, with the provider's own token."""

    address: str
    token: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
        request = urllib.request.Request(
            f"{self.address.rstrip('/')}/v1/{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-Vault-Token": self.token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise RecoverError(f"Vault at {self.address}: {method} {path}: HTTP {error.code} "
                               f"{error.read().decode(errors='replace').strip()}") from error
        except urllib.error.URLError as error:
            raise RecoverError(f"Vault at {self.address} does not answer ({error.reason}): start it and "
                               "run pgfleet-recover again") from error
        return json.loads(text) if text else {}

    def listing(self, path: str) -> list[str]:
        answer = self.call("LIST", path)
        return list((answer or {}).get("data", {}).get("keys", []))


def _plan_vault_path(kind: str, path: str, vault: Vault, emptiness: str, plan: Plan) -> None:
    mounted = vault.call("GET", f"sys/{kind}")
    present = path.strip("/") + "/" in ((mounted or {}).get("data") or mounted or {})
    if not present:
        plan.kept.append(f"Vault {kind[:-1]} {path}: never created")
    elif vault.listing(emptiness):
        plan.refused.append(f"Vault {kind[:-1]} {path} exists and holds data: not the killed run's; "
                            f"`pulumi import` it, or remove it yourself")
    else:
        plan.actions.append((f"disable the empty Vault {kind[:-1]} {path} (made again by the next up)",
                             lambda: vault.call("DELETE", f"sys/{kind}/{path.strip('/')}")))


def _instant(text: str) -> datetime:
    """An RFC 3339 time as Vault and Pulumi write it (nanoseconds cut to what datetime holds)."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text))


def _issued_after(vault: Vault, backend: str, role: str, accessor: str, since: datetime) -> bool:
    info = vault.call("POST", f"auth/{backend}/role/{role}/secret-id-accessor/lookup", {"secret_id_accessor": accessor})
    created = ((info or {}).get("data") or {}).get("creation_time")
    return bool(created) and _instant(created) >= since


def _plan_secret_id(item: Pending, vault: Vault, recorded: set[str], since: datetime, plan: Plan) -> None:
    backend, role = item.inputs.get("backend", "approle"), item.inputs["roleName"]
    orphans = [a for a in vault.listing(f"auth/{backend}/role/{role}/secret-id")
               if a not in recorded and _issued_after(vault, backend, role, a, since)]
    if not orphans:
        plan.kept.append(f"secret_id of role {role}: never issued")
    for accessor in orphans:
        plan.actions.append((
            f"destroy the secret_id {accessor} of role {role}, issued by the killed run and held by no one",
            lambda a=accessor: vault.call("POST", f"auth/{backend}/role/{role}/secret-id-accessor/destroy",
                                          {"secret_id_accessor": a}),
        ))


# ---------------------------------------------------------------------------------------------
# the plan

#: Types whose create takes over an object that exists (pgsubset adopts, Vault writes by PUT,
#: Docker volumes are created once by name): kept for the next up.
ADOPTED = ("postgresql:", "random:", "docker:index/volume:Volume", "vault:index/policy:Policy",
           "vault:appRole/authBackendRole:AuthBackendRole", "vault:tokenauth/authBackendRole:AuthBackendRole",
           "vault:kv/secretV2:SecretV2")
#: Provider resources: a configuration the engine holds, nothing outside the state.
PROVIDERS = "pulumi:providers:"


#: How an exported state marks a secret; with --show-secrets its value is JSON in "plaintext".
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


def _plain(value: Any) -> Any:
    if isinstance(value, dict) and SECRET_SIGNATURE in value:
        return json.loads(value["plaintext"])
    return value


def _vault_of(resources: list[dict[str, Any]]) -> Vault | None:
    for resource in resources:
        if resource["type"] == "pulumi:providers:vault":
            inputs = resource.get("inputs", {})
            return Vault(_plain(inputs["address"]), _plain(inputs["token"]))
    return None


def _last_completed(history: list[dict[str, Any]]) -> datetime:
    """When the last update that finished ended: what was issued after it and is not in the
    state came from the killed run (refreshes issue nothing, and may have run since)."""
    ends = [entry["endTime"] for entry in history if entry.get("kind") == "update" and entry.get("endTime")]
    return max((_instant(end) for end in ends), default=datetime.fromtimestamp(0, UTC))


def plan(deployment: dict[str, Any], history: list[dict[str, Any]]) -> Plan:
    resources = deployment.get("resources") or []
    pending = [Pending(op["resource"]["type"], op["resource"]["urn"], op["resource"].get("inputs") or {})
               for op in deployment.get("pending_operations") or [] if op["type"] == "creating"]
    recorded_accessors = {r.get("outputs", {}).get("accessor") for r in resources
                          if r["type"].endswith("AuthBackendRoleSecretId")}
    since = _last_completed(history)
    result = Plan()
    vault = _vault_of(resources)
    # containers go before the networks they may sit on
    for item in sorted(pending, key=lambda p: p.type != "docker:index/container:Container"):
        if item.type == "docker:index/container:Container":
            _plan_container(item, result)
        elif item.type == "docker:index/network:Network":
            _plan_network(item, result)
        elif item.type.startswith(ADOPTED):
            result.kept.append(f"{item.type} {item.name}: taken over by the next up")
        elif item.type.startswith(PROVIDERS):
            result.kept.append(f"{item.type} {item.name}: a provider, nothing outside the state; made again by the next up")
        elif item.type.startswith("vault:") and vault is None:
            result.refused.append(f"{item.type} {item.name}: the state records no Vault provider to check it with")
        elif item.type == "vault:index/mount:Mount":
            path = item.inputs["path"]
            _plan_vault_path("mounts", path, vault, f"{path}/metadata", result)
        elif item.type == "vault:index/authBackend:AuthBackend":
            path = item.inputs.get("path") or item.inputs["type"]
            _plan_vault_path("auth", path, vault, f"auth/{path}/role", result)
        elif item.type == "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId":
            _plan_secret_id(item, vault, recorded_accessors, since, result)
        else:
            result.refused.append(f"{item.type} {item.name}: pgfleet-recover does not know this kind; check "
                                  "whether it exists, then `pulumi refresh --import-pending-creates` or "
                                  "`--clear-pending-creates` by hand")
    return result


def _project(cwd: Path) -> str:
    for line in (cwd / "Pulumi.yaml").read_text().splitlines():
        if line.startswith("name:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    raise RecoverError(f"no project name in {cwd / 'Pulumi.yaml'}")


def recover(pulumi: Pulumi, dry_run: bool = False, say: Callable[[str], None] = print) -> None:
    stack = pulumi.stack or pulumi.run("stack", "--show-name").stdout.strip()
    if not dry_run:
        release_stale_lock(pulumi, _project(pulumi.cwd), stack, say)
    deployment = pulumi.json("stack", "export", "--show-secrets").get("deployment", {})
    decided = plan(deployment, pulumi.json("stack", "history"))
    for line in decided.kept:
        say(f"keep: {line}")
    if decided.refused:
        raise RecoverError("needs a human, nothing was changed:\n  " + "\n  ".join(decided.refused))
    for what, _ in decided.actions:
        say(f"{'would ' if dry_run else ''}{what}")
    if dry_run:
        return
    for _, act in decided.actions:
        act()
    if deployment.get("pending_operations"):
        pulumi.run("refresh", "--clear-pending-creates", "--yes", "--skip-preview")
        say("cleared the pending operations from the state and read back every recorded object")
    say("ready: run `pulumi up`")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgfleet-recover", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", help="the stack (default: the selected one)")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the Pulumi project folder")
    parser.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    args = parser.parse_args(argv)
    try:
        recover(Pulumi(args.stack, args.cwd), dry_run=args.dry_run)
    except (RecoverError, engine.EngineError) as error:
        print(f"pgfleet-recover: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
