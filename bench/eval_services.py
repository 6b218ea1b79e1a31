"""Program evaluation under Pulumi mocks for 10, 100 and 500 services.

Prints milliseconds per service and per resource, and how per-service cost grows from the
smallest run to the largest (1.0 is perfectly linear). Target: at most 50 ms per service.
Sizes run interleaved, best of N, so machine noise hits all of them alike. The program runs
as `pulumi up` runs it (`stacks.run()`, which switches the cyclic GC off; see there).

    python bench/eval_services.py [--sizes 10 100 500] [--repeat 3]
"""
from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.program import run_stack  # noqa: E402

SERVICES_PER_SERVER = 50
TARGET_MS_PER_SERVICE = 50.0


def config_for(count: int) -> dict:
    servers = (count + SERVICES_PER_SERVER - 1) // SERVICES_PER_SERVER
    return {
        "platform": "docker",
        "servers": [{"name": f"pg{i}", "port": 15432 + i, "max_connections": 2000} for i in range(servers)],
        "services": [
            {"name": f"svc{i}", "server": f"pg{i // SERVICES_PER_SERVER}", "connection_limit": 10, "pool": {"max": 10}}
            for i in range(count)
        ],
    }


def measure(count: int) -> tuple[float, int]:
    config = config_for(count)
    gc.collect()
    start = time.perf_counter()
    outcome = run_stack(config)
    elapsed = time.perf_counter() - start
    return elapsed, len(outcome.mocks.registered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    measure(5)  # warm imports and the SDK's caches outside the timed runs
    best: dict[int, tuple[float, int]] = {}
    for _ in range(args.repeat):
        for size in args.sizes:
            elapsed, resources = measure(size)
            if size not in best or elapsed < best[size][0]:
                best[size] = (elapsed, resources)
    print(f"{'services':>8} {'resources':>9} {'total s':>8} {'ms/service':>10} {'ms/resource':>11}")
    for size in args.sizes:
        elapsed, resources = best[size]
        print(f"{size:>8} {resources:>9} {elapsed:>8.2f} {elapsed * 1000 / size:>10.2f} {elapsed * 1000 / resources:>11.3f}")
    small, large = min(args.sizes), max(args.sizes)
    growth = (best[large][0] / large) / (best[small][0] / small)
    worst = max(best[s][0] * 1000 / s for s in args.sizes)
    print(f"per-service cost, {large} vs {small} services: {growth:.2f}x (1.00 = linear)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"peak memory {peak} MiB (mocks record every resource's inputs too)")
    print(f"worst ms/service vs target {TARGET_MS_PER_SERVICE:.0f}: {worst / TARGET_MS_PER_SERVICE:.2f}x of the target")


if __name__ == "__main__":
    main()
