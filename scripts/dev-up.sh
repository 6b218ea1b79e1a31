#!/usr/bin/env bash
# Sets up the offline toolchain (idempotent, cached) and brings the dev stack up on Docker,
# with state in a local file backend and a passphrase secrets provider: no cloud account.
#   PGFLEET_STATE_DIR   where state and the generated passphrase live (default ~/.pgfleet)
#   PGFLEET_STACK       the stack to bring up (default dev)
set -euo pipefail
cd "$(dirname "$0")/.."

bash setup/toolchain.sh
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r requirements.txt

state="${PGFLEET_STATE_DIR:-$HOME/.pgfleet}"
mkdir -p "$state/backend"
chmod 700 "$state"
# A passphrase of this machine's own, made once: state secrets are never under a known key.
if [ ! -s "$state/passphrase" ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 > "$state/passphrase")
fi
export PULUMI_BACKEND_URL="file://$state/backend"
export PULUMI_CONFIG_PASSPHRASE_FILE="$state/passphrase"
unset PULUMI_CONFIG_PASSPHRASE
# shellcheck source=../setup/env.sh
source setup/env.sh

stack="${PGFLEET_STACK:-dev}"
# The passphrase's salt belongs to this machine's state, not to the project: Pulumi needs it in
# the stack file while it runs, so it is put there from $state and taken back out on exit, and
# the committed file stays as it is (the tests check that it carries no salt).
config="Pulumi.$stack.yaml" salt="$state/$stack.encryptionsalt"
if [ -s "$salt" ] && ! grep -q '^encryptionsalt:' "$config" 2>/dev/null; then cat "$salt" >>"$config"; fi
keep_salt() {
  if grep -q '^encryptionsalt:' "$config" 2>/dev/null; then
    (umask 077 && grep '^encryptionsalt:' "$config" >"$salt")
    sed -i '/^encryptionsalt:/d' "$config"
  fi
}
trap keep_salt EXIT
pulumi stack select --create "$stack" --non-interactive
# pgfleet's invariants (policies/) are enforced here as in CI.
pulumi up --yes --non-interactive --stack "$stack" --policy-pack policies
