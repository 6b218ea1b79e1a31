"""pgfleet-restore's flows, in the order their guarantees need: the live data is untouched until
the restored data is ready, a failed recovery puts the previous data back, replicas are
re-cloned only after a successful one. A recording stand-in for the platform shows the order;
the drills (tests/integration, tests/cluster) run the same flows on Docker and Kubernetes.
Also: the `platform` output that tells pgfleet-restore where a stack's objects are."""
from __future__ import annotations

from collections.abc import Sequence

import pytest

from pgfleet.operations.deployed import JobKind, RestoreError, ServerObjects, servers_of
from pgfleet.operations.restore import list_backups, restore_dump, restore_pitr
from pgfleet.stacks.config import parse_config
from pgfleet.stacks.outputs import platform_objects
from tests.support.program import stack_config

SHARED = ServerObjects("shared", "shared", ("shared-read",), "shared-dump", "shared-base")
LEDGER = ServerObjects("ledger", "ledger", (), "ledger-dump", "ledger-base")


class Recorder:
    """Records each step; fails the step named in `fail`."""

    def __init__(self, fail: str | None = None) -> None:
        self.servers = {"shared": SHARED, "ledger": LEDGER}
        self.steps: list[str] = []
        self.fail = fail

    def _step(self, step: str) -> None:
        self.steps.append(step)
        if step == self.fail:
            raise RestoreError(f"{step} failed")

    def backup(self, server: ServerObjects, kind: JobKind, args: Sequence[str], timeout_s: float,
               primary_stopped: bool = False) -> str:
        self._step(f"{kind}:{args[0]}{' (stopped)' if primary_stopped else ''}@{server.name}")
        return "ok"

    def databases(self, server: ServerObjects) -> list[str]:
        return {"shared": ["orders_db", "catalog_db"], "ledger": ["ledger_db"]}[server.name]

    def stop_primary(self, server: ServerObjects) -> None:
        self._step("stop primary")

    def start_primary(self, server: ServerObjects) -> None:
        self._step("start primary")

    def wait_promoted(self, server: ServerObjects, timeout_s: float) -> None:
        self._step("promoted")

    def wait_ready(self, server: ServerObjects, timeout_s: float) -> None:
        self._step("ready")

    def stop_replicas(self, server: ServerObjects) -> None:
        self._step("stop replicas")

    def start_replicas(self, server: ServerObjects, reclone: bool, timeout_s: float) -> None:
        self._step("reclone replicas" if reclone else "start replicas")


def test_pitr_restores_beside_the_live_data_before_stopping_anything() -> None:
    deployed = Recorder()
    restore_pitr(deployed, "shared", "latest")
    assert deployed.steps == ["base:restore-pitr@shared", "stop replicas", "stop primary",
                              "base:swap (stopped)@shared", "start primary", "promoted", "base:finish-pitr@shared",
                              "reclone replicas"]


def test_a_failed_restore_stops_nothing() -> None:
    deployed = Recorder(fail="base:restore-pitr@shared")
    with pytest.raises(RestoreError, match="restore-pitr@shared failed"):
        restore_pitr(deployed, "shared", "latest")
    assert deployed.steps == ["base:restore-pitr@shared"]


def test_a_failed_recovery_puts_the_previous_data_back_and_starts_the_replicas_as_they_were() -> None:
    deployed = Recorder(fail="promoted")
    with pytest.raises(RestoreError, match="the previous data is back in place"):
        restore_pitr(deployed, "shared", "2026-11-22 10:15:00+00")
    assert deployed.steps[-6:] == ["promoted", "stop primary", "base:rollback (stopped)@shared", "start primary",
                                   "ready", "start replicas"]


def test_a_failed_swap_starts_the_server_on_its_own_data() -> None:
    deployed = Recorder(fail="base:swap (stopped)@shared")
    with pytest.raises(RestoreError):
        restore_pitr(deployed, "shared", "latest")
    assert deployed.steps[-2:] == ["start primary", "start replicas"]


def test_an_unknown_server_is_named_with_the_stacks_servers() -> None:
    with pytest.raises(RestoreError, match=r"no server 'shard' \(its servers: ledger, shared\)"):
        restore_pitr(Recorder(), "shard", "latest")
    with pytest.raises(RestoreError, match="no server 'shard'"):
        list_backups(Recorder(), "shard")


def test_a_dump_restore_runs_on_the_server_that_dumps_the_database() -> None:
    deployed = Recorder()
    restore_dump(deployed, "ledger_db", stamp="20261122T000000Z")
    assert deployed.steps == ["dump:restore-dump@ledger"]
    with pytest.raises(RestoreError, match="no server of this stack dumps a database named 'billing_db'"):
        restore_dump(deployed, "billing_db")


def test_a_server_without_wal_archiving_has_no_base_job_to_restore_from() -> None:
    servers = servers_of({"kind": "docker", "servers": {"a": {"primary": "a", "replicas": [], "dump_job": "a-dump",
                                                               "base_job": None}}})
    with pytest.raises(RestoreError, match="no base job: is the stack deployed with WAL archiving"):
        servers["a"].job("base")


def test_the_platform_output_names_each_servers_objects_on_kubernetes() -> None:
    objects = platform_objects(parse_config(stack_config("Pulumi.prod.yaml")))
    assert objects["kind"] == "kubernetes" and objects["namespace"] == "databases"
    assert objects["servers"]["shared"] == {"primary": "shared", "replicas": ["shared-read"],
                                            "dump_job": "shared-dump", "base_job": "shared-base"}
    assert objects["servers"]["payments"]["replicas"] == ["payments-read"]


def test_the_platform_output_names_each_servers_containers_on_docker() -> None:
    raw = stack_config("Pulumi.dev.yaml")
    raw["docker"] = {**raw.get("docker", {}), "prefix": "t-"}
    raw["servers"][0]["replicas"] = 2
    objects = platform_objects(parse_config(raw))
    assert objects["kind"] == "docker" and objects["prefix"] == "t-"
    assert objects["servers"]["shared"] == {"primary": "t-shared", "replicas": ["t-shared-read-0", "t-shared-read-1"],
                                            "dump_job": "t-shared-dump", "base_job": "t-shared-base"}
