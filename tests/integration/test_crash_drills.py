"""Crash drills on the dev stack: `pulumi up` killed half-way, Vault stopped and PostgreSQL
restarted under a running `up`. After each, what an operator is told to do (`pgfleet-recover`
after a kill, then `pulumi up`) converges: every container, role, database and AppRole
secret_id that exists is one the state holds, and no row written before is lost.

The tests run in order on one stack, each from where the previous one left it.
"""
from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi import automation as auto

from tests.support import live as checks
from tests.support.engine import config_values, throwaway_stack
from tests.support.live import Live, connect, isolated, sweep_leftovers
from tests.support.program import ROOT, stack_config

PREFIX = "pgfleet-crash-"
CONFIG = isolated(stack_config("Pulumi.dev.yaml"), PREFIX, port_offset=10300)
SERVICE_TYPE = "pgfleet:postgres:IsolatedDatabase"


class Drill:
    """The stack under drill, and the CLI runs a user makes on it."""

    def __init__(self, stack: auto.Stack) -> None:
        self.stack = stack
        self.config = copy.deepcopy(CONFIG)
        self.operator_accessors: dict[str, set[str]] = defaultdict(set)  # issued outside Pulumi: kept
        self.live: Live | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **(self.stack.workspace.env_vars or {})}

    def add_service(self, name: str) -> None:
        self.config["services"].append({"name": name, "server": "shared", "connection_limit": 10})
        self.stack.set_all_config(config_values({"services": self.config["services"]}))

    def cli_up(self, start_new_session: bool = False) -> subprocess.Popen[str]:
        """`pulumi up` as a user runs it, started: its output (stdout and stderr) as lines."""
        return subprocess.Popen(["pulumi", "up", "--yes", "--skip-preview", "--stack", self.stack.name],
                                cwd=self.stack.workspace.work_dir, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=start_new_session)

    def up_killed_at(self, marker: str, delay_s: float, freeze: tuple[str, str] | None = None) -> str:
        """`pulumi up` as a user runs it, SIGKILLed with all its plugins `delay_s` after a line
        with `marker` and "creating" shows: the output up to the kill. `freeze`: (a line's
        text, a container) paused from that line until after the kill, so that the create in
        flight at the kill is surely recorded as pending and surely unanswered."""
        process = self.cli_up(start_new_session=True)
        seen: list[str] = []
        frozen = False
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            if freeze and not frozen and freeze[0] in line:
                subprocess.run(["docker", "pause", freeze[1]], capture_output=True, check=True)
                frozen = True
            if marker in line and "creating" in line:
                time.sleep(delay_s)
                os.killpg(process.pid, signal.SIGKILL)
                break
        process.wait()
        if frozen:
            subprocess.run(["docker", "unpause", freeze[1]], capture_output=True, check=True)
        output = "".join(seen)
        problems = "".join(line for line in seen if "error" in line or "invalid" in line or line.startswith("  - "))
        assert process.returncode == -signal.SIGKILL, f"the up ended before {marker!r} showed:\n{problems[-3000:]}"
        return output

    def pending(self) -> list[str]:
        """The names of the creates the state records as started and not finished."""
        deployment = self.stack.export_stack().deployment
        return [op["resource"]["urn"].rsplit("::", 1)[-1] for op in deployment.get("pending_operations") or []]

    def recover(self) -> subprocess.CompletedProcess[str]:
        """pgfleet-recover as a user runs it, in the project folder with the stack's environment."""
        return subprocess.run([sys.executable, "-m", "pgfleet.operations.recover", "--stack", self.stack.name],
                              cwd=self.stack.workspace.work_dir, env={**self.env, "PYTHONPATH": str(ROOT)},
                              capture_output=True, text=True, timeout=600, check=False)

    def up(self, **kwargs: Any) -> Live:
        self.live = Live(self.stack, self.stack.up(on_output=print, **kwargs), PREFIX)
        return self.live

    def state(self) -> list[dict[str, Any]]:
        return self.stack.export_stack().deployment["resources"]


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    sweep_leftovers(PREFIX)
    with throwaway_stack(tmp_path_factory.mktemp("crash"), "it-crash", CONFIG) as stack:
        yield Drill(stack)


def _server_of(resource: dict[str, Any]) -> str:
    # the PostgreSQL provider each object was made through: "<server>-provider"
    return resource["provider"].split("::")[-2].removesuffix("-provider")


def check_converged(drill: Drill) -> None:
    """What exists is what the state holds, and the stack serves its services."""
    live, state = drill.live, drill.state()
    assert live is not None
    declared = {r["outputs"]["name"] for r in state if r["type"] == "docker:index/container:Container"}
    assert live.containers() == sorted(declared)
    running = subprocess.run(["docker", "ps", "--filter", f"name=^{PREFIX}", "--format", "{{.Names}}"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert sorted(running) == sorted(declared)

    for kind, catalog, builtin in (
        ("postgresql:index/role:Role", "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_'", {"postgres"}),
        ("postgresql:index/database:Database", "SELECT datname FROM pg_database",
         {"postgres", "template0", "template1"}),
    ):
        wanted: dict[str, set[str]] = defaultdict(set)
        for r in state:
            if r["type"] == kind:
                wanted[_server_of(r)].add(r["outputs"]["name"])
        for server in live.servers:
            service = next(s for s, info in live.services.items() if info["server"] == server)
            with connect(live.admin(service)) as admin:
                found = {row[0] for row in admin.execute(catalog).fetchall()} - builtin
            assert found == wanted[server], f"{kind} on {server}"

    vault = live.vault_client(live.root_token)
    recorded: dict[str, set[str]] = defaultdict(set)
    for r in state:
        if r["type"] == "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId":
            recorded[r["outputs"]["roleName"]].add(r["outputs"]["accessor"])
    for role in live.services:
        listed = vault.adapter.request("LIST", f"/v1/auth/approle/role/{role}/secret-id")["data"]["keys"]
        assert set(listed) == recorded[role] | drill.operator_accessors[role], role

    checks.check_apps_use_what_their_migrators_create(live)
    assert checks.check_no_service_reaches_another(live) > 0


def rows(live: Live, service: str) -> list[str]:
    with connect(live.url(service)) as app:
        return [r[0] for r in app.execute("SELECT label FROM items ORDER BY id").fetchall()]


def test_first_up_killed_while_creating_converges(drill: Drill) -> None:
    output = drill.up_killed_at("postgresql:index:Role", delay_s=1.0)
    assert "docker:index:Container" in output
    # the next up is refused until recovery: the killed run holds the lock (and, when the kill
    # fell in a checkpoint write, left its metadata sidecar empty: "failed to load checkpoint")
    with pytest.raises(auto.CommandError) as refused:
        drill.stack.up(on_output=print)
    assert "locked" in str(refused.value) or "failed to load checkpoint" in str(refused.value)

    recovered = drill.recover()
    assert recovered.returncode == 0, recovered.stderr
    assert "released the lock" in recovered.stdout and "ready: run `pulumi up`" in recovered.stdout
    drill.up()
    check_converged(drill)


def test_update_killed_while_issuing_a_secret_id_leaves_no_credential_behind(drill: Drill) -> None:
    live = drill.live
    assert live is not None
    # data written before, and a secret_id an operator issued by hand: both must stay
    with connect(live.url("orders")) as app:
        app.execute("INSERT INTO items (label) VALUES ('before-the-kill')")
    vault = live.vault_client(live.root_token)
    issued = vault.auth.approle.generate_secret_id("orders")["data"]["secret_id_accessor"]
    drill.operator_accessors["orders"].add(issued)

    drill.add_service("reviews")
    # Vault is frozen once the role exists, so the secret_id's create hangs in flight.
    drill.up_killed_at("reviews-secret-id", delay_s=1.0, freeze=("reviews-role created", f"{PREFIX}pgfleet-vault"))
    assert "reviews-secret-id" in drill.pending()
    # What a kill between Vault's answer and Pulumi's checkpoint leaves: a secret_id issued
    # during the run that no state holds (issued here, so that the drill always meets one).
    orphan = vault.auth.approle.generate_secret_id("reviews")["data"]["secret_id_accessor"]

    recovered = drill.recover()
    assert recovered.returncode == 0, recovered.stderr
    assert f"destroy the secret_id {orphan} of role reviews" in recovered.stdout
    assert issued not in recovered.stdout
    drill.up()
    check_converged(drill)
    assert "before-the-kill" in rows(drill.live, "orders")
    assert orphan not in vault.adapter.request("LIST", "/v1/auth/approle/role/reviews/secret-id")["data"]["keys"]


def test_recover_refuses_while_the_lock_holder_runs(drill: Drill) -> None:
    """The other side of releasing a dead run's lock: a live run's lock (its CLI held stopped
    here, so that it cannot finish first) is refused, and the run completes untouched."""
    process = drill.cli_up()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "pulumi:pulumi:Stack" in line:
                break
        os.kill(process.pid, signal.SIGSTOP)
        refused = drill.recover()
        assert refused.returncode == 1, refused.stdout
        assert f"locked by pid {process.pid}" in refused.stderr and "may still be running" in refused.stderr
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.communicate(timeout=600)
    assert process.returncode == 0


def test_vault_stopped_during_up_fails_naming_it_then_up_completes(drill: Drill) -> None:
    live = drill.live
    assert live is not None
    vault_container, address = f"{PREFIX}pgfleet-vault", live.vault["address"]
    drill.add_service("ratings")
    events: list[str] = []

    def stop_vault_once_creating(line: str) -> None:
        events.append(line)
        if "postgresql:index:Role" in line and "creating" in line and not any("STOPPED" in e for e in events):
            subprocess.run(["docker", "stop", vault_container], capture_output=True, check=True)
            events.append("STOPPED")

    with pytest.raises(auto.CommandError) as failed:
        drill.stack.up(on_output=stop_vault_once_creating)
    message = str(failed.value)
    assert "STOPPED" in events
    assert "vault:" in message and address.removeprefix("http://") in message, message[-3000:]

    # The dev Vault keeps its data in memory: started again it is empty, and `up --refresh`
    # writes back everything the state says it must hold.
    subprocess.run(["docker", "start", vault_container], capture_output=True, check=True)
    drill.operator_accessors.clear()  # gone with the rest of the dev Vault's memory
    drill.up(refresh=True)
    check_converged(drill)
    assert "before-the-kill" in rows(drill.live, "orders")


def test_postgres_restarted_during_up_then_up_completes(drill: Drill) -> None:
    live = drill.live
    assert live is not None
    drill.add_service("search")
    events: list[str] = []

    def restart_once_creating(line: str) -> None:
        events.append(line)
        if "search-owner" in line and "creating" in line and "RESTARTED" not in events:
            subprocess.run(["docker", "restart", "-t", "0", f"{PREFIX}shared"], capture_output=True, check=True)
            events.append("RESTARTED")

    try:
        drill.stack.up(on_output=restart_once_creating)
    except auto.CommandError as error:
        # a failure names the server it lost: its address
        assert f"127.0.0.1:{live.servers['shared']['local_port']}" in str(error), str(error)[-3000:]
    assert "RESTARTED" in events
    drill.up()
    check_converged(drill)
    assert "before-the-kill" in rows(drill.live, "orders")
