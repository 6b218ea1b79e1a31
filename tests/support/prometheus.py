"""A real Prometheus (Debian's package) for the live tiers, and its HTTP API."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .cluster import wait


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        return [(r["metric"], float(r["value"][1])) for r in self.get("/api/v1/query", query=expr)["result"]]

    def value(self, expr: str) -> float | None:
        found = self.query(expr)
        assert len(found) <= 1, f"{expr}: {found}"
        return found[0][1] if found else None

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """The alerts called `name`, pending or firing, each with its labels and state."""
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["labels"].get("alertname") == name]

    def firing(self, name: str, **labels: str) -> bool:
        """An alert called `name` fires with these labels (among its others)."""
        return any(a["state"] == "firing" and labels.items() <= a["labels"].items() for a in self.alerts(name))

    def names(self) -> set[str]:
        return set(self.get("/api/v1/label/__name__/values"))

    def answers(self) -> bool:
        try:
            self.get("/api/v1/status/buildinfo")
            return True
        except OSError:
            return False


_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def exporter_samples(port: int, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric `name` an exporter on 127.0.0.1:`port` serves now (its text format,
    read directly: no Prometheus in between)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match["name"] == name:
            found.append((dict(_LABEL.findall(match["labels"] or "")), float(match["value"])))
    return found


@contextmanager
def running(config: Path, data: Path, port: int) -> Iterator[Prometheus]:
    """Prometheus with `config` (checked by promtool first), its data in `data`, on 127.0.0.1."""
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    assert binary and promtool, "prometheus is missing: bash setup/toolchain.sh installs Debian's package"
    checked = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with (data / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
        try:
            server = Prometheus(port)
            wait(server.answers, 60, "Prometheus answers")
            yield server
        finally:
            process.terminate()
            process.wait(timeout=30)


def dashboard_metrics(board: dict[str, Any]) -> set[str]:
    """The metric names a Grafana dashboard's panels query (each written `name{...}`)."""
    named: set[str] = set()
    for panel in board["panels"]:
        for target in panel["targets"]:
            metrics = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", target["expr"]))
            assert metrics, f"{board['title']}: {target['expr']}"
            named |= metrics
    return named
