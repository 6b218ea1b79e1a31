"""Port-forwards from the Pulumi runner to pods, so a runner outside the cluster that holds only
a kubeconfig can reach each server: the PostgreSQL provider connects to a Unix socket that a
helper process relays through the API server's pod port-forward (as `kubectl port-forward`).

The socket lives at a path derived from the pod alone (libpq's `<dir>/.s.PGSQL.<port>`), so the
provider's `host` is the same on every run and every runner: a second preview shows no change.
The helper outlives the program on purpose: the engine deletes what a program no longer
declares after the program has exited, and those deletes need the connection too. Every process
that asks for a forward is recorded as one of its watchers (the language host, alive for the whole
deployment; a test process); the helper stops when the last watcher has gone. One forward serves
every deployment on the runner that dials the same pod, so one finishing never cuts another's
connections. A lock on the socket's directory orders starting, joining and stopping.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Where the sockets live; short, because a Unix socket path is limited to 107 bytes.
ROOT = Path(os.environ.get("PGFLEET_FORWARD_DIR", f"/tmp/pgfleet-forward-{os.getuid()}"))


def socket_dir(namespace: str, pod: str, port: int) -> Path:
    key = hashlib.sha256(f"{namespace}/{pod}:{port}".encode()).hexdigest()[:12]
    return ROOT / key


def socket_path(directory: Path, port: int) -> Path:
    return directory / f".s.PGSQL.{port}"


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with open(directory / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # released when the file closes (or the process exits)


def add_watcher(directory: Path, pid: int) -> None:
    """Record `pid` as one of the forward's watchers (call it under the lock)."""
    watchers = directory / "watchers"
    watchers.mkdir(exist_ok=True)
    (watchers / str(pid)).touch()


def live_watchers(directory: Path) -> set[int]:
    """The watchers still running; the gone ones are forgotten (call it under the lock)."""
    live = set()
    for entry in (directory / "watchers").glob("*"):
        if _alive(int(entry.name)):
            live.add(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return live


def ensure(namespace: str, pod: str, port: int, timeout: float = 60, watch: int | None = None) -> str:
    """Start (or join) the forward to `pod`:`port`; returns the socket directory, libpq's host.
    It lasts while process `watch` (by default this one's parent: the language host) or
    another watcher runs."""
    directory = socket_dir(namespace, pod, port)
    path = socket_path(directory, port)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(directory):  # a helper stopping now has unlinked its socket before we look
        add_watcher(directory, watch or os.getppid())
        if _answers(path):
            return str(directory)
        with open(directory / "forward.log", "ab") as log:
            subprocess.Popen(  # our own module, by absolute interpreter path
                [sys.executable, "-m", __name__, namespace, pod, str(port), str(directory)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True, close_fds=True,
            )
        deadline = time.monotonic() + timeout  # under the lock: a second caller joins, not starts
        while not _answers(path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port-forward to {namespace}/{pod}:{port} did not start: "
                                   f"see {directory / 'forward.log'}")
            time.sleep(0.2)
    return str(directory)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(namespace: str, pod: str, port: int, directory: Path) -> None:
    from kubernetes import client, config
    from kubernetes.stream import portforward

    config.load_kube_config()
    core = client.CoreV1Api()
    path = socket_path(directory, port)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)  # the connection carries the superuser's password exchange
    listener.listen(16)

    def watchdog() -> None:
        while True:
            time.sleep(1)
            with _locked(directory):
                if not live_watchers(directory):
                    path.unlink(missing_ok=True)  # before the lock goes: a newcomer starts afresh
                    os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    while True:
        local, _ = listener.accept()

        def relay(local: socket.socket = local) -> None:
            try:
                forward = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
                remote = forward.socket(port)
                remote.setblocking(True)
            except Exception as error:  # noqa: BLE001 - reported, and this connection closed
                print(f"port-forward {namespace}/{pod}:{port}: {error}", file=sys.stderr, flush=True)
                local.close()
                return
            back = threading.Thread(target=_pump, args=(remote, local), daemon=True)
            back.start()
            _pump(local, remote)
            back.join()
            local.close()
            forward.close()

        threading.Thread(target=relay, daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="relay a Unix socket to a pod's port through the API server")
    parser.add_argument("namespace")
    parser.add_argument("pod")
    parser.add_argument("port", type=int)
    parser.add_argument("directory", type=Path, help="the socket's; its watchers/ name the processes served")
    args = parser.parse_args()
    serve(args.namespace, args.pod, args.port, args.directory)
