"""pgfleet-preview: what a change would do to each stack, as a report a pull request can show.

    pgfleet-preview [--cwd DIR] [--stack STACK ... | --changed-since REF] [--policy-pack DIR ... | --no-policy]
                    [--allow-data-loss] [--output FILE] [--summary] [--comment [--pr N]]

Runs `pulumi preview --json` of each stack (the selected one by default; with --changed-since,
the stacks the changes since REF touch: see touched.py) with pgfleet's policy
pack, and prints one Markdown report: per stack the counts, the changes grouped by service and
server, and at the top whatever loses data (a database, role, schema, volume, claim, StatefulSet
or namespace replaced or deleted) and every policy violation. --output writes it to a file,
--summary adds it to the workflow run's summary, --comment posts it on the pull request as one
comment that later runs update. Exit status 1 when a preview fails, a mandatory policy is
violated, or data would be lost without --allow-data-loss (the PR's override); 2 when the report
cannot be posted.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pgfleet.policies import PACK_DIR

from . import digest
from .github import GitHubError, PullRequest, append_job_summary
from .report import assess
from .touched import touched_since


def ensure_stacks(stacks: Sequence[str], cwd: Path) -> None:
    """Create the stacks the backend does not hold yet (a pull request that adds a stack): its
    preview is then all creates."""
    listed = subprocess.run(["pulumi", "stack", "ls", "--json", "--cwd", str(cwd), "--non-interactive"],
                            capture_output=True, text=True, check=False)
    known = {s.get("name") for s in json.loads(listed.stdout or "[]")} if listed.returncode == 0 else set()
    for stack in stacks:
        if stack not in known:
            subprocess.run(["pulumi", "stack", "init", stack, "--cwd", str(cwd), "--non-interactive",
                            "--no-select"], capture_output=True, text=True, check=False)


def preview_stack(stack: str, cwd: Path, policy_packs: Sequence[Path] = (PACK_DIR,)) -> digest.Preview:
    """Run `pulumi preview` of one stack and read what it would do."""
    with tempfile.TemporaryDirectory(prefix="pgfleet-preview-") as scratch:
        events = Path(scratch) / "events.jsonl"
        command = ["pulumi", "preview", "--stack", stack, "--cwd", str(cwd), "--json", "--show-sames",
                   "--non-interactive", "--event-log", str(events)]
        for pack in policy_packs:
            command += ["--policy-pack", str(pack)]
        # --event-log (the policy results the JSON digest leaves out) is offered only with this
        # set, as the Automation API sets it.
        env = {**os.environ, "PULUMI_DEBUG_COMMANDS": "true"}
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        preview = digest.read(stack, done.stdout, events.read_text() if events.exists() else "")
    if done.returncode != 0 and not preview.errors and not preview.violations:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        preview.errors.append(lines[-1] if lines else f"pulumi preview exited with {done.returncode}")
    return preview


def _selected_stack(cwd: Path) -> str:
    done = subprocess.run(["pulumi", "stack", "--show-name", "--cwd", str(cwd), "--non-interactive"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit("pgfleet-preview: no stack selected in this project: pass --stack")
    return done.stdout.strip()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgfleet-preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the Pulumi project's directory")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--stack", action="append", default=[], help="a stack to preview (repeatable)")
    chosen.add_argument("--changed-since", metavar="REF", help="preview the stacks the changes since REF touch")
    packs = parser.add_mutually_exclusive_group()
    packs.add_argument("--policy-pack", type=Path, action="append", help="policy packs (default: pgfleet's)")
    packs.add_argument("--no-policy", action="store_true", help="preview without a policy pack")
    parser.add_argument("--allow-data-loss", action="store_true",
                        help="the PR's override: data-losing changes do not fail the check")
    parser.add_argument("--output", type=Path, help="write the report to this file too")
    parser.add_argument("--summary", action="store_true", help="append the report to $GITHUB_STEP_SUMMARY")
    parser.add_argument("--comment", action="store_true", help="post or update the report on the pull request")
    parser.add_argument("--pr", type=int, help="the pull request's number (default: from the workflow event)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    packs: list[Path] = [] if args.no_policy else (args.policy_pack or [PACK_DIR])
    if args.changed_since:
        stacks = touched_since(args.cwd, args.changed_since)
    else:
        stacks = args.stack or [_selected_stack(args.cwd)]
    ensure_stacks(stacks, args.cwd)
    previews = [preview_stack(stack, args.cwd, packs) for stack in stacks]
    assessment = assess(previews, args.allow_data_loss)
    body = assessment.body
    print(body, end="")
    if args.output:
        args.output.write_text(body)
    if args.summary:
        append_job_summary(body)
    if args.comment:
        try:
            print(f"pgfleet-preview: report at {PullRequest.from_environment(args.pr).upsert_report(body)}",
                  file=sys.stderr)
        except GitHubError as failure:
            print(f"pgfleet-preview: {failure}", file=sys.stderr)
            return 2
    for reason in assessment.reasons:
        print(f"pgfleet-preview: {reason}", file=sys.stderr)
    return 1 if assessment.reasons else 0

