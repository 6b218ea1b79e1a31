"""The prod stack on Kubernetes beside the dev stack on Docker, for the same services.

Two pairs, each side from empty on this machine, one right after the other so that noise hits
both alike: `Pulumi.prod.yaml` (on the cluster KUBECONFIG names, fitted to one node as the
cluster tier fits it) beside `Pulumi.dev.yaml` (the same four services on Docker), and seed
003's `examples/movie-booking.yaml` beside `examples/movie-booking-local.yaml`. For each side:
`pulumi up` from an empty stack until every service's URL answers (through the port-forwards on
Kubernetes, the loopback ports on Docker), then a no-op `preview`. Prints seconds, the prod/dev
ratios, and where the time of each `up` went: when the last platform object (StatefulSet,
container, job) was ready, and when the last database object was made.

    KUBECONFIG=... python bench/prod_vs_dev.py [--pairs prod seed003]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pulumi import automation as auto  # noqa: E402

from tests.support.cluster import Cluster, kubeconfig  # noqa: E402
from tests.support.engine import throwaway_stack  # noqa: E402
from tests.support.live import Live, connect, isolated  # noqa: E402
from tests.support.prod import ClusterLive, external_vault, for_cluster, object_store, secret_config  # noqa: E402
from tests.support.program import stack_config  # noqa: E402

PAIRS = {
    "prod": ("Pulumi.prod.yaml", "Pulumi.dev.yaml"),
    "seed003": ("examples/movie-booking.yaml", "examples/movie-booking-local.yaml"),
}
PLATFORM_TYPES = ("kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:Job", "docker:index/container:Container")


@dataclass
class Timing:
    up: float = 0.0
    urls: float = 0.0
    preview: float = 0.0
    platform_ready: float = 0.0
    databases_done: float = 0.0
    resources: int = 0


def recorder(start: float, timing: Timing) -> Callable[[auto.EngineEvent], None]:
    """Engine events -> when the last platform object and the last database object finished."""
    def on_event(event: auto.EngineEvent) -> None:
        outputs = event.res_outputs_event
        if outputs is None:
            return
        typ, at = outputs.metadata.type, time.monotonic() - start
        timing.resources += 1
        if typ in PLATFORM_TYPES:
            timing.platform_ready = max(timing.platform_ready, at)
        elif typ.startswith("postgresql:"):
            timing.databases_done = max(timing.databases_done, at)
    return on_event


def measure(stack: auto.Stack, make_live: Callable[[auto.UpResult], Live]) -> Timing:
    timing = Timing()
    start = time.monotonic()
    result = stack.up(on_event=recorder(start, timing))
    timing.up = time.monotonic() - start
    live = make_live(result)
    for service in live.services:
        connect(live.url(service)).close()
    timing.urls = time.monotonic() - start
    start = time.monotonic()
    preview = stack.preview()
    timing.preview = time.monotonic() - start
    changes = {op: n for op, n in preview.change_summary.items() if op != auto.OpType.SAME and n}
    assert not changes, f"the no-op preview shows changes: {changes}"
    return timing


@contextmanager
def kubernetes_side(path: str, tmp: Path, cluster: Cluster) -> Iterator[Callable[[], Timing]]:
    prefix = f"bench-{int(time.time()) % 100000}-"
    apps = f"{prefix}apps"
    from kubernetes import client

    config = stack_config(path)
    services_namespace = apps if config.get("kubernetes", {}).get("services_namespace") else None
    with ExitStack() as resources:
        if services_namespace:
            cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=apps)))
            resources.callback(cluster.core.delete_namespace, apps)
        resources.callback(cluster.core.delete_namespace, f"{prefix}db")
        vault = resources.enter_context(external_vault())
        store = resources.enter_context(object_store(cluster, f"{prefix}s3"))
        fitted = for_cluster(config, prefix, vault, store, services_namespace)
        stack = resources.enter_context(throwaway_stack(tmp, "bench-k8s", fitted, secret_config(vault, store),
                                                        protected=True))
        yield lambda: measure(stack, lambda result: ClusterLive(stack, result, f"{prefix}db"))


@contextmanager
def docker_side(path: str, tmp: Path) -> Iterator[Callable[[], Timing]]:
    prefix = "pgfleet-bench-dev-"
    config = isolated(stack_config(path), prefix, port_offset=11200)
    with throwaway_stack(tmp, "bench-docker", config) as stack:
        yield lambda: measure(stack, lambda result: Live(stack, result, prefix))


def row(label: str, k8s: float, docker: float) -> str:
    return f"  {label:<34} {k8s:8.1f} s {docker:8.1f} s {k8s / docker:7.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", choices=sorted(PAIRS), default=sorted(PAIRS))
    args = parser.parse_args()
    cluster = Cluster(kubeconfig())
    for pair in args.pairs:
        prod_path, dev_path = PAIRS[pair]
        results: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            with kubernetes_side(prod_path, Path(tmp) / "k8s", cluster) as run:
                results["k8s"] = run()
            with docker_side(dev_path, Path(tmp) / "docker") as run:
                results["docker"] = run()
        k8s, docker = results["k8s"], results["docker"]
        print(f"{pair}: {prod_path} on Kubernetes ({k8s.resources} resources) beside {dev_path} on Docker "
              f"({docker.resources} resources)")
        print(f"  {'':<34} {'kubernetes':>10} {'docker':>10} {'ratio':>8}")
        print(row("up, from empty", k8s.up, docker.up))
        print(row("up until every URL answers", k8s.urls, docker.urls))
        print(row("no-op preview", k8s.preview, docker.preview))
        print(row("  last platform object ready at", k8s.platform_ready, docker.platform_ready))
        print(row("  last database object made at", k8s.databases_done, docker.databases_done))


if __name__ == "__main__":
    main()
