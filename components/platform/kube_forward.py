"""Port-forwards from the Pulumi runner to pods, so a runner outside the cluster that holds only
a kubeconfig can reach each server: the PostgreSQL provider connects to a Unix socket that a
helper process relays through the API server's pod port-forward (as `kubectl port-forward`).

The socket lives at a path derived from the pod alone (libpq's `<dir>/.s.PGSQL.<port>`), so the
provider's `host` is the same on every run and every runner: a second preview shows no change.
The helper outlives the program on purpose: the engine deletes what a program no longer
declares after the program has exited, and those deletes need the connection too. It stops when
the process that started the program (the language host, alive for the whole deployment) does.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
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


def ensure(namespace: str, pod: str, port: int, timeout: float = 60, watch: int | None = None) -> str:
    """Start (or reuse) the forward to `pod`:`port`; returns the socket directory, libpq's host.
    It lasts as long as process `watch` (by default this one's parent: the language host)."""
    directory = socket_dir(namespace, pod, port)
    path = socket_path(directory, port)
    if _answers(path):
        return str(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / "forward.log", "ab") as log:
        subprocess.Popen(  # our own module, by absolute interpreter path
            [sys.executable, "-m", __name__, namespace, pod, str(port), str(directory),
             "--watch", str(watch or os.getppid())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True, close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while not _answers(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"port-forward to {namespace}/{pod}:{port} did not start: see {directory / 'forward.log'}")
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


def serve(namespace: str, pod: str, port: int, directory: Path, watch: int) -> None:
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
        while _alive(watch):
            time.sleep(1)
        path.unlink(missing_ok=True)
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
    parser.add_argument("directory", type=Path)
    parser.add_argument("--watch", type=int, required=True, help="exit when this process has gone")
    args = parser.parse_args()
    serve(args.namespace, args.pod, args.port, args.directory, args.watch)
