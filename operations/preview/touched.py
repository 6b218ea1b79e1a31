"""Which stacks a change touches: a stack's own config file names it; a change to the program
(components, stacks, policies, dependencies, images) touches every stack; docs, tests and CI
files touch none.

    python3 -m pgfleet.operations.preview.touched BASE_REF [--cwd DIR]   # prints one stack per line
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

STACK_CONFIG = re.compile(r"^Pulumi\.([^./]+)\.yaml$")
#: What the stacks do not run: a change only here previews nothing.
NOT_PROGRAM = re.compile(r"^(tests/|bench/|examples/|\.github/|\.ci/|scripts/|README|.*\.md$|\.gitignore$)")
#: A base that names no commit (a new branch's push event): every stack is touched.
NO_COMMIT = re.compile(r"^0*$")


def all_stacks(cwd: Path) -> list[str]:
    return sorted(m.group(1) for p in cwd.iterdir() if (m := STACK_CONFIG.match(p.name)))


def stacks_touched(changed: Iterable[str], stacks: Sequence[str]) -> list[str]:
    touched: set[str] = set()
    for path in changed:
        named = STACK_CONFIG.match(path)
        if named:
            touched.add(named.group(1))
        elif not NOT_PROGRAM.match(path):
            return sorted(stacks)
    return sorted(touched & set(stacks))


def changed_files(cwd: Path, base: str) -> list[str]:
    """Files changed between the merge base of `base` and HEAD (a pull request's own changes)."""
    done = subprocess.run(["git", "-C", str(cwd), "diff", "--name-only", f"{base}...HEAD"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pgfleet-preview: cannot compare with {base!r}: {done.stderr.strip()} "
                         f"(check out with history: fetch-depth 0)")
    return [line for line in done.stdout.splitlines() if line]


def touched_since(cwd: Path, base: str) -> list[str]:
    stacks = all_stacks(cwd)
    if NO_COMMIT.match(base):
        return stacks
    return stacks_touched(changed_files(cwd, base), stacks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m pgfleet.operations.preview.touched", description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit or ref the change is compared with")
    parser.add_argument("--cwd", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    for stack in touched_since(args.cwd, args.base):
        print(stack)
    return 0


if __name__ == "__main__":
    sys.exit(main())
