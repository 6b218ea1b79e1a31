"""The GitHub workflows (.github/workflows) against actionlint and the repository.

actionlint (built by setup/toolchain.sh, which also installs the shellcheck it runs on `run:`
scripts) must accept every workflow and must refuse a broken one; every repository script a
`run:` step calls must exist and parse (`bash -n` for shell, `compile` for Python).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.support.program import ROOT

WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])
# a repository path (optionally ./-prefixed) under scripts/, setup/ or operations/ ending in .sh or .py
SCRIPT = re.compile(r"(?<![\w./-])(?:\./)?((?:scripts|setup|operations)/[\w./-]*\.(?:sh|py))(?![\w./-])")


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("actionlint")
    assert binary, "actionlint is not on PATH: run `bash setup/toolchain.sh` (it builds and links it)"
    command = [binary, "-no-color", *map(str, files)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def scripts_run_by(workflow: Path) -> set[str]:
    document = yaml.safe_load(workflow.read_text()) or {}
    runs = [step.get("run") or "" for job in (document.get("jobs") or {}).values() for step in job.get("steps") or []]
    return {path for run in runs for path in SCRIPT.findall(run)}


def test_actionlint_accepts_every_workflow() -> None:
    assert WORKFLOWS, f"no workflow in {WORKFLOW_DIR}"
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, f"actionlint (exit {result.returncode}):\n{result.stdout}{result.stderr}"


def test_actionlint_refuses_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  test:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo \"${{ github.nope }}\"\n"
    )
    result = actionlint(broken)
    assert result.returncode == 1, f"actionlint (exit {result.returncode}):\n{result.stdout}{result.stderr}"
    assert 'property "nope" is not defined' in result.stdout, result.stdout


def test_every_script_a_workflow_runs_exists_and_parses() -> None:
    scripts = {path for workflow in WORKFLOWS for path in scripts_run_by(workflow)}
    if WORKFLOWS:
        assert scripts, f"no `run:` step in {WORKFLOW_DIR} calls a script under scripts/, setup/ or operations/"
    for script in sorted(scripts):
        path = ROOT / script
        assert path.is_file(), f"a workflow runs {script}, which is not in the repository"
        if path.suffix == ".sh":
            check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
            assert check.returncode == 0, f"bash -n {script}:\n{check.stderr}"
        else:
            compile(path.read_text(), str(path), "exec")
