"""`pulumi up` from empty beside one plain psql script, for 5, 20 and 50 services.

Both sides start from nothing on the same Docker engine and end with the same databases,
roles and grants on one shared server: the script side starts the server container, waits
for it and runs one psql script; the Pulumi side runs the whole stack (server, managed
Vault, per-service AppRoles and secrets too). Sizes run one after the other, each side right
after the other, so machine noise hits both alike. Prints seconds and the ratio.

The Pulumi side runs twice: as shipped, and with PULUMI_SKIP_CHECKPOINTS=true, because the
local file backend rewrites (and re-encrypts) the whole state after every resource step,
which grows with the square of the stack; the second column shows what that costs.

    python bench/up_vs_psql.py [--sizes 5 20 50]
"""
from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.engine import throwaway_stack  # noqa: E402
from tests.support.live import isolated  # noqa: E402

IMAGE = "pgfleet/postgres:15"
PORT = 25432  # below the ephemeral range (see tests/support/live.py)
TARGET_RATIO = 5.0


def stack_config(count: int) -> dict:
    return isolated({
        "platform": "docker",
        "servers": [{"name": "bench", "port": PORT, "max_connections": 10 * count + 20,
                     "metrics": {"enabled": False}}],
        "services": [{"name": f"svc{i}", "connection_limit": 10} for i in range(count)],
        "backup": {"enabled": False},  # the psql side has none; bench/backup_restore.py measures them
    }, "pgfleet-bench-", port_offset=0)


def psql_script(count: int) -> str:
    """What IsolatedDatabase makes, for every service, as one script."""
    lines = ["\\set ON_ERROR_STOP on"]
    for i in range(count):
        s = f"svc{i}"
        pw = secrets.token_hex(16)
        lines += [
            f"CREATE ROLE {s}_owner NOLOGIN;",
            f"CREATE ROLE {s}_migrator LOGIN PASSWORD '{pw}' IN ROLE {s}_owner CONNECTION LIMIT 5;",
            f"CREATE ROLE {s}_user LOGIN PASSWORD '{pw}' CONNECTION LIMIT 10;",
            f"ALTER ROLE {s}_user SET statement_timeout = 30000;",
            f"CREATE ROLE {s}_readonly LOGIN PASSWORD '{pw}' CONNECTION LIMIT 10;",
            f"CREATE DATABASE {s}_db OWNER {s}_owner;",
            f"REVOKE ALL ON DATABASE {s}_db FROM PUBLIC;",
            f"GRANT CONNECT ON DATABASE {s}_db TO {s}_migrator, {s}_user, {s}_readonly;",
            f"\\connect {s}_db",
            f"CREATE SCHEMA {s} AUTHORIZATION {s}_owner;",
            f"GRANT USAGE ON SCHEMA {s} TO {s}_user, {s}_readonly;",
        ]
        for creator in (f"{s}_owner", f"{s}_migrator"):
            lines += [
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {s}_user;",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA {s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {s}_user;",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA {s} GRANT SELECT ON TABLES TO {s}_readonly;",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA {s} GRANT SELECT ON SEQUENCES TO {s}_readonly;",
            ]
        lines.append("\\connect postgres")
    return "\n".join(lines) + "\n"


def time_psql(count: int) -> float:
    name = f"pgfleet-bench-psql-{secrets.token_hex(3)}"
    password = secrets.token_hex(16)
    start = time.perf_counter()
    subprocess.run(["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{PORT}:5432",
                    "-e", f"POSTGRES_PASSWORD={password}", IMAGE], check=True, capture_output=True)
    try:
        while subprocess.run(["docker", "exec", name, "pg_isready", "-h", "127.0.0.1", "-q"]).returncode != 0:
            time.sleep(0.2)
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres", "-d", "postgres"],
                       input=psql_script(count), text=True, check=True, capture_output=True,
                       env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"})
        return time.perf_counter() - start
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)


def time_pulumi(count: int, skip_checkpoints: bool = False) -> float:
    with tempfile.TemporaryDirectory() as tmp, throwaway_stack(Path(tmp), f"bench-{count}", stack_config(count)) as stack:
        if skip_checkpoints:
            stack.workspace.env_vars["PULUMI_SKIP_CHECKPOINTS"] = "true"
        start = time.perf_counter()
        stack.up(on_output=lambda _: None)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 50])
    args = parser.parse_args()
    print(f"{'services':>8} {'psql s':>7} {'pulumi up s':>11} {'ratio':>6} {'no-checkpoint s':>15} {'ratio':>6}"
          f"  (target: within {TARGET_RATIO:.0f}x)")
    for count in args.sizes:
        script = time_psql(count)
        pulumi = time_pulumi(count)
        lean = time_pulumi(count, skip_checkpoints=True)
        print(f"{count:>8} {script:>7.1f} {pulumi:>11.1f} {pulumi / script:>5.1f}x {lean:>15.1f} {lean / script:>5.1f}x",
              flush=True)


if __name__ == "__main__":
    main()
