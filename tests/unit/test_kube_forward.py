"""The port-forward helper's lifetime, with real processes: it serves every process that asked for
it and stops when the last one has gone (a forward one deployment started must not vanish under
another that joined it). No pod is dialled: the socket answers before any connection is relayed,
so a kubeconfig that names no reachable server is enough."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgfleet.components.platform import kube_forward
from tests.support.cluster import wait

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


@pytest.fixture
def forwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.setattr(kube_forward, "ROOT", tmp_path / "f")
    return tmp_path / "f"


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    made = [subprocess.Popen(["sleep", "120"]) for _ in range(2)]
    yield made
    for process in made:
        process.kill()
        process.wait()


def test_a_forward_lasts_while_any_process_that_asked_for_it_runs(
        forwards: Path, sleepers: list[subprocess.Popen[bytes]]) -> None:
    first, second = sleepers
    directory = Path(kube_forward.ensure("db", "main-0", 5432, timeout=30, watch=first.pid))
    path = kube_forward.socket_path(directory, 5432)
    assert directory.parent == forwards and kube_forward._answers(path)
    started = path.stat().st_ino

    assert kube_forward.ensure("db", "main-0", 5432, watch=second.pid) == str(directory)
    assert path.stat().st_ino == started  # joined, not started again
    with kube_forward._locked(directory):
        assert kube_forward.live_watchers(directory) == {first.pid, second.pid}

    first.kill()
    first.wait()
    time.sleep(2.5)  # the helper looks every second
    assert kube_forward._answers(path) and path.stat().st_ino == started  # the second still served
    with kube_forward._locked(directory):
        assert kube_forward.live_watchers(directory) == {second.pid}  # the gone one forgotten

    second.kill()
    second.wait()
    wait(lambda: not path.exists(), 10, "the helper to stop once every process it served has gone", interval=0.1)
    assert not kube_forward._answers(path)
