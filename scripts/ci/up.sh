#!/usr/bin/env bash
# The merge job: `pulumi up` of every stack the merged change touches, with pgfleet's policy
# pack enforced (a mandatory violation stops the update).
# Usage: scripts/ci/up.sh BASE_REF   (the commit before the push; all zeros: every stack)
# PGFLEET_PROJECT_DIR: the Pulumi project, a git checkout (default: this repository).
set -euo pipefail
base="${1:?usage: $0 BASE_REF}"
# shellcheck source=prepare.sh
source "$(dirname "$0")/prepare.sh"

pack="$(python3 -c 'import policies; print(policies.PACK_DIR)')"
project="${PGFLEET_PROJECT_DIR:-$PWD}"
touched="$(python3 -m pgfleet.operations.preview.touched "$base" --cwd "$project")"
mapfile -t stacks <<<"$touched"
[ -n "$touched" ] || stacks=()
if [ "${#stacks[@]}" -eq 0 ]; then
  echo "pgfleet CI: the change touches no stack"
  exit 0
fi
for stack in "${stacks[@]}"; do
  echo "== pulumi up --stack $stack"
  pulumi up --yes --non-interactive --skip-preview --cwd "$project" --stack "$stack" --policy-pack "$pack"
done
