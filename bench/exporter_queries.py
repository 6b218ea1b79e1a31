"""What pgfleet's exporter queries cost a server, by how many services it holds.

A PostgreSQL container per size (the project's image, pg_stat_statements preloaded) holding N
service databases and their roles; each of the exporter's custom queries for those N services runs as a
member of pg_monitor, as the exporter runs them, best of R rounds, sizes interleaved so the
machine's noise hits every size alike. Prints milliseconds per scrape and per service, and how
the per-service cost at the largest size compares with the smallest (1.0: linear). Target: a
scrape of the largest size well inside the default 15 s scrape interval.

    python bench/exporter_queries.py [--sizes 10 100] [--repeat 5]
"""
from __future__ import annotations

import argparse
import dataclasses
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgfleet.observability import MonitoredServer, MonitoredService, plan  # noqa: E402
from pgfleet.observability.queries import queries  # noqa: E402
from pgfleet.stacks.config import parse_config  # noqa: E402

IMAGE = "pgfleet/postgres:15"
PORT = 25432
SCRAPE_INTERVAL_S = 15.0


def server_for(count: int) -> MonitoredServer:
    services = tuple(MonitoredService(f"svc{i}", f"svc{i}_db", (f"svc{i}_migrator", f"svc{i}_user", f"svc{i}_readonly"))
                     for i in range(count))
    return MonitoredServer("bench", "bench", 15, 1000, 10 * 2**30, 0, PORT, True, services)


def start(password: str, port: int) -> str:
    name = f"pgfleet-bench-exporter-{secrets.token_hex(3)}"
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:5432",
                    "-e", f"POSTGRES_PASSWORD={password}", IMAGE,
                    "-c", "shared_preload_libraries=pg_stat_statements", "-c", "max_connections=300"],
                   check=True, capture_output=True)
    return name


def populate(url: str, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        admin.execute("CREATE SCHEMA IF NOT EXISTS pgfleet")
        admin.execute("CREATE TABLE IF NOT EXISTS pgfleet.backup_runs (kind text, datname text DEFAULT '', "
                      "finished_at timestamptz, PRIMARY KEY (kind, datname))")
        admin.execute("DO $$ BEGIN CREATE ROLE monitor LOGIN IN ROLE pg_monitor; EXCEPTION WHEN duplicate_object "
                      "THEN NULL; END $$")
        admin.execute("GRANT USAGE ON SCHEMA pgfleet TO pg_monitor")
        admin.execute("GRANT SELECT ON pgfleet.backup_runs TO pg_monitor")
        existing = {r[0] for r in admin.execute("SELECT datname FROM pg_database")}
        for i in range(count):
            if f"svc{i}_db" in existing:
                continue
            for kind in ("migrator", "user", "readonly"):
                admin.execute(f"CREATE ROLE svc{i}_{kind} LOGIN CONNECTION LIMIT 10")
            admin.execute(f"CREATE DATABASE svc{i}_db")
            admin.execute("INSERT INTO pgfleet.backup_runs VALUES ('dump', %s, now())", (f"svc{i}_db",))


def scrape(url: str, server: MonitoredServer, config_plan: object) -> dict[str, float]:
    """Seconds each query takes, run once as the monitoring role."""
    took: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as monitor:
        monitor.execute("SET ROLE monitor")
        for name, definition in queries(server, config_plan).items():
            start_s = time.perf_counter()
            monitor.execute(definition["query"]).fetchall()
            took[name] = time.perf_counter() - start_s
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    password = secrets.token_urlsafe(16)
    names, urls = [], {}
    try:
        for index, size in enumerate(args.sizes):
            names.append(start(password, PORT + index))
            urls[size] = f"postgresql://postgres:{password}@127.0.0.1:{PORT + index}/postgres"
        for size, url in urls.items():
            for _ in range(60):
                try:
                    psycopg.connect(url).close()
                    break
                except psycopg.OperationalError:
                    time.sleep(1)
            populate(url, size)
        base = plan("bench", parse_config({"platform": "docker", "servers": [{"name": "bench", "port": PORT}],
                                           "services": [{"name": "svc0"}]}))
        best: dict[int, dict[str, float]] = {}
        for _ in range(args.repeat):
            for size in args.sizes:  # interleaved
                server = server_for(size)
                took = scrape(urls[size], server, dataclasses.replace(base, servers=(server,)))
                kept = best.setdefault(size, took)
                for query, seconds in took.items():
                    kept[query] = min(kept[query], seconds)
        print(f"{'services':>8} {'scrape ms':>10} {'ms/service':>11}  slowest query")
        per_service = {}
        for size in args.sizes:
            total = sum(best[size].values())
            per_service[size] = total / size
            slowest = max(best[size], key=best[size].get)
            print(f"{size:>8} {total * 1000:>10.1f} {total * 1000 / size:>11.2f}  {slowest} "
                  f"{best[size][slowest] * 1000:.1f} ms")
        small, large = min(args.sizes), max(args.sizes)
        print(f"per-service cost at {large} against {small}: {per_service[large] / per_service[small]:.2f}x; "
              f"a scrape of {large} takes {sum(best[large].values()) / SCRAPE_INTERVAL_S:.3f}x "
              f"the {SCRAPE_INTERVAL_S:.0f} s scrape interval")
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)


if __name__ == "__main__":
    main()
