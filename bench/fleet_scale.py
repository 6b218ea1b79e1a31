"""A fleet's cost as it grows: one stack against service groups, beside one psql script.

For each size: the psql script doing the same SQL (bench/up_vs_psql.py), `pgfleet-fleet up` from
empty with `service_groups` = ceil(size / --group-size) (crash-safe state: every step
checkpointed), a change to one service's connection limit, one service added, a no-op
`preview` (changed groups only, and `--all`), each timed, and the peak memory of every
process under the run (the engines, the programs, the providers). `--single` sizes run the
same fleet as one stack (`service_groups: 0`) for comparison. Sizes run one after the other,
each on a fresh backend; everything it brings up it destroys. Prints seconds and ratios
against issue 17's targets.

    python bench/fleet_scale.py [--sizes 10 20 50 200] [--single 20 50] [--group-size 20] [--parallel 2]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.up_vs_psql import stack_config, time_psql  # noqa: E402
from tests.support.fleet import fleet_project  # noqa: E402
from tests.support.live import sweep_leftovers  # noqa: E402

PREFIX = "pgfleet-bench-"


class PeakMemory:
    """The largest total resident memory of this process's descendants, sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.2):
            parents: dict[int, int] = {}
            rss: dict[int, int] = {}
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    parents[int(entry.name)] = int(fields[1])
                    rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
                except (OSError, IndexError, ValueError):
                    continue
            total = sum(kib for pid, kib in rss.items() if pid != me and _descends(pid, me, parents))
            self.peak_kib = max(self.peak_kib, total)


def _descends(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    while pid in parents and pid > 1:
        pid = parents[pid]
        if pid == ancestor:
            return True
    return False


@dataclass
class Result:
    size: int
    groups: int
    psql: float = 0.0
    up: float = 0.0
    change: float = 0.0
    add: float = 0.0
    preview: float = 0.0
    preview_all: float = 0.0
    peak_mib: float = 0.0
    notes: list[str] = field(default_factory=list)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def fleet_config(size: int, groups: int, limit_of_first: int = 10, extra: int = 0) -> dict:
    config = stack_config(size + extra)
    # room for the added service from the start: a server setting reaches every group (and the
    # server itself), and adding one service must change nothing but that service
    config["servers"][0]["max_connections"] = 10 * (size + 1) + 30
    config["service_groups"] = groups
    config["services"][0]["connection_limit"] = limit_of_first
    return config


def measure(size: int, groups: int, parallel: int) -> Result:
    result = Result(size, groups, psql=time_psql(size))
    sweep_leftovers(PREFIX)
    config = fleet_config(size, groups)
    with tempfile.TemporaryDirectory() as tmp, fleet_project(Path(tmp), f"bench-{size}", config, policies=False) as fleet:
        def run(action: str, *extra: str) -> None:
            done = fleet.run(action, "--parallel", str(parallel), *extra, echo=False)
            if done.returncode != 0:
                raise SystemExit(f"{action} failed at {size} services:\n{(done.stdout + done.stderr)[-4000:]}")

        with PeakMemory() as memory:
            result.up = timed(lambda: run("up"))
        result.peak_mib = memory.peak_kib / 1024
        fleet.set_config(fleet_config(size, groups, limit_of_first=12))
        result.change = timed(lambda: run("up"))
        fleet.set_config(fleet_config(size, groups, limit_of_first=12, extra=1))
        result.add = timed(lambda: run("up"))
        result.preview = timed(lambda: run("preview"))
        if groups:
            result.preview_all = timed(lambda: run("preview", "--all"))
        fleet.set_config(fleet_config(size, groups, limit_of_first=12, extra=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50, 200])
    parser.add_argument("--single", type=int, nargs="*", default=[20, 50])
    parser.add_argument("--group-size", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    print(f"{'layout':>8} {'services':>8} {'groups':>6} {'psql s':>7} {'up s':>7} {'ratio':>6} {'s/svc':>6} "
          f"{'change s':>8} {'add s':>6} {'preview s':>9} {'--all s':>7} {'peak MiB':>8}", flush=True)
    grouped: dict[int, Result] = {}
    for size, groups in [(s, 0) for s in args.single] + [(s, math.ceil(s / args.group_size)) for s in args.sizes]:
        r = measure(size, groups, args.parallel)
        if groups:
            grouped[size] = r
        print(f"{'groups' if groups else 'single':>8} {size:>8} {groups:>6} {r.psql:>7.1f} {r.up:>7.1f} "
              f"{r.up / r.psql:>5.1f}x {r.up / size:>6.2f} {r.change:>8.1f} {r.add:>6.1f} {r.preview:>9.1f} "
              f"{r.preview_all:>7.1f} {r.peak_mib:>8.0f}", flush=True)
    sizes = sorted(grouped)
    if len(sizes) < 2:
        return
    small, large = (20 if 20 in grouped else sizes[0]), sizes[-1]
    fifty = grouped.get(50)
    print("targets (service groups, crash-safe state):")
    if fifty:
        print(f"  1. up from empty, 50 services vs psql: {fifty.up / fifty.psql:.1f}x (target <= 5x)")
    per = (grouped[large].up / large) / (grouped[small].up / small)
    print(f"  1. up per service, {large} vs {small}: {per:.2f}x (target <= 1.5x)")
    tiny = grouped[sizes[0]]
    print(f"  2. change one service's limit, {large} vs {tiny.size}: {grouped[large].change / tiny.change:.2f}x; "
          f"add one: {grouped[large].add / tiny.add:.2f}x (target <= 2x)")
    print(f"  3. no-op preview per service, {large} vs {small}: "
          f"{(grouped[large].preview / large) / (grouped[small].preview / small):.2f}x; with --all: "
          f"{(grouped[large].preview_all / large) / (grouped[small].preview_all / small):.2f}x (target <= 1.5x)")
    print(f"  4. peak memory (engines, programs, providers), {large} vs {small}: "
          f"{grouped[large].peak_mib:.0f} MiB vs {grouped[small].peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
