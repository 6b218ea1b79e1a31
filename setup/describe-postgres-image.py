#!/usr/bin/env python3
"""Describe what a PostgreSQL image accepts: its settings and the libraries it can preload.

Usage: describe-postgres-image.py [--image pgfleet/postgres:15] [--write stacks/config/postgres15.json]

Runs the image once (a throwaway container, removed after): initdb into a temporary directory,
tries each module in `$(pg_config --pkglibdir)` as the only entry of `shared_preload_libraries`
(single-user mode), then starts a server with every module that loaded preloaded and reads
`pg_settings`: name, type, unit, bounds, enum values, context and default, for the built-in
settings and those the modules define. Then it asks that server, with ALTER SYSTEM (which
validates a value as the server does at start, check hooks included, without applying it):
which settings a configuration may carry at all, which of on/off each boolean takes (a build
without Bonjour refuses bonjour=on), which enum values and other spellings (true, hot_standby)
each enum takes. And the stack size limit, which bounds max_stack_depth.
Prints the catalogue as JSON, or writes it with --write. `stacks/config/catalogue.py` checks
`servers[].settings` and `extensions` against it; tests/integration/test_image_catalogue.py
regenerates it from the live image to keep it true.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

IMAGE = "pgfleet/postgres:15"
WORK = "/tmp/describe"
SOCKET = f"-h {WORK} -U postgres -d postgres"
#: Spellings an enum may take besides its listed values (parse_bool's, and old names).
ENUM_CANDIDATES = ("on", "off", "true", "false", "yes", "no", "1", "0", "archive", "hot_standby")

START = rf"""
set -eu
mkdir -p {WORK}
initdb -D {WORK}/data -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 > /dev/null
libs=()
for path in "$(pg_config --pkglibdir)"/*.so; do
  name="$(basename "$path" .so)"
  if echo 'SELECT 1;' | postgres --single -D {WORK}/data -c "shared_preload_libraries=\"$name\"" postgres \
       > /dev/null 2>&1; then
    libs+=("\"$name\"")
  fi
done
preload="$(IFS=,; echo "${{libs[*]}}")"
pg_ctl -D {WORK}/data -l {WORK}/log -w -o "-c listen_addresses= -k {WORK} -c shared_preload_libraries=$preload" \
  start > /dev/null || {{ cat {WORK}/log >&2; exit 1; }}
echo "$(ulimit -s)"
"""

SETTINGS = """
SELECT json_build_object(
  'server_version_num', current_setting('server_version_num')::int,
  'libraries', (SELECT json_agg(trim(both '"' from l) ORDER BY trim(both '"' from l))
                FROM regexp_split_to_table(current_setting('shared_preload_libraries'), '\\s*,\\s*') AS l),
  'settings', (SELECT json_object_agg(name, json_build_object(
                  'type', vartype, 'unit', unit, 'min', min_val, 'max', max_val,
                  'enum', enumvals, 'context', context, 'default', boot_val) ORDER BY name)
               FROM pg_settings))
"""


def _sh(container: str, script: str) -> str:
    result = subprocess.run(["docker", "exec", "-i", "--user", "postgres", container, "bash", "-s"],
                            input=script, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"describing the image failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def server_takes(container: str, probes: list[tuple[str, str | None]]) -> list[bool]:
    """Whether the running server takes each (setting, value) in a configuration file; value
    None asks whether the setting may be in one at all."""
    lines = []
    for index, (name, value) in enumerate(probes):
        target = "DEFAULT" if value is None else _literal(value)
        lines.append(f'\\echo PROBE {index}\nALTER SYSTEM SET "{name}" TO {target};')
    out = _sh(container, f"psql -X -q {SOCKET} 2>&1 <<'SQL'\n" + "\n".join(lines) + "\n\\echo PROBE end\nSQL\n")
    blocks = out.split("PROBE ")[1:]
    if len(blocks) != len(probes) + 1 or blocks[-1].strip() != "end":
        raise RuntimeError(f"unexpected psql output:\n{out[-2000:]}")
    return ["ERROR" not in block for block in blocks[:-1]]


def _probe(container: str, settings: dict[str, dict[str, Any]]) -> None:
    probes: list[tuple[str, str | None]] = []
    for name, spec in settings.items():
        if spec["context"] == "internal":
            continue
        probes.append((name, None))
        if spec["type"] == "bool":
            probes += [(name, "on"), (name, "off")]
        elif spec["type"] == "enum":
            probes += [(name, v) for v in spec["enum"]]
            probes += [(name, v) for v in ENUM_CANDIDATES if v not in spec["enum"]]
    for (name, value), taken in zip(probes, server_takes(container, probes), strict=True):
        spec = settings[name]
        if value is None:
            spec["in_file"] = taken
        elif spec["type"] == "bool" or value in spec["enum"]:  # one of its own values: does this build take it?
            spec.setdefault("takes", []).extend([value] if taken else [])
        elif taken:
            spec.setdefault("aliases", []).append(value)
    for spec in settings.values():
        if spec.get("in_file") is False:  # ALTER SYSTEM refused it whatever the value
            spec.pop("takes", None)
            spec.pop("aliases", None)


@contextmanager
def running(image: str) -> Iterator[tuple[str, int]]:
    """A throwaway container of `image` with a server running every module it can preload:
    (container id, its stack size limit in kB). Removed on exit."""
    container = subprocess.run(["docker", "run", "-d", "--rm", "--user", "postgres", "--entrypoint", "sleep", image,
                                "infinity"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield container, int(_sh(container, START).split()[-1])
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def describe(image: str) -> dict[str, Any]:
    """The catalogue of `image`."""
    with running(image) as (container, stack_kb):
        described = json.loads(_sh(container, f"psql -X -qAt {SOCKET} <<'SQL'\n{SETTINGS}\nSQL\n"))
        _probe(container, described["settings"])
    return {"image": image, "stack_limit_kb": stack_kb, **described}


def dumps(catalogue: dict[str, Any]) -> str:
    """The committed form: one setting per line, so a new image shows as a readable diff."""
    settings = catalogue["settings"]
    head = {k: v for k, v in catalogue.items() if k != "settings"}
    lines = [json.dumps(head, sort_keys=True)[:-1] + ', "settings": {']
    items = [f"  {json.dumps(name)}: {json.dumps(settings[name], sort_keys=True)}" for name in sorted(settings)]
    lines.append(",\n".join(items))
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--write", metavar="PATH", help="write the catalogue here instead of printing it")
    args = parser.parse_args(argv)
    text = dumps(describe(args.image))
    if args.write:
        with open(args.write, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
