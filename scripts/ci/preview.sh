#!/usr/bin/env bash
# The pull request job: preview every stack the change touches against the shared state, with
# pgfleet's policy pack, and post the report as the PR's comment and the job summary.
# Usage: scripts/ci/preview.sh BASE_REF   (e.g. origin/main)
# PGFLEET_ALLOW_DATA_LOSS=true (the PR's pgfleet:allow-data-loss label) lets data-losing changes pass.
# Without GITHUB_TOKEN (a run outside GitHub) the report is printed and not posted.
# PGFLEET_PROJECT_DIR: the Pulumi project, a git checkout (default: this repository).
set -euo pipefail
base="${1:?usage: $0 BASE_REF}"
# shellcheck source=prepare.sh
source "$(dirname "$0")/prepare.sh"

project="${PGFLEET_PROJECT_DIR:-$PWD}"
args=(--cwd "$project" --changed-since "$base" --output "$project/preview-report.md" --summary)
[ -n "${GITHUB_TOKEN:-}" ] && args+=(--comment)
[ "${PGFLEET_ALLOW_DATA_LOSS:-false}" = true ] && args+=(--allow-data-loss)
python3 -m pgfleet.operations.preview "${args[@]}"
