# shellcheck shell=bash
# Sourced by the CI jobs (preview.sh, up.sh): installs what previews and updates need and points
# Pulumi at the shared state. The workflow supplies, from the CI's secret store:
#   PULUMI_BACKEND_URL        s3://BUCKET?endpoint=https://HOST:PORT&use_path_style=true&region=R (any S3 store)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   the state bucket's keys
#   PULUMI_CONFIG_PASSPHRASE  the stacks' secrets provider passphrase
#   KUBECONFIG_DATA           (optional) a kubeconfig for the prod cluster
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

missing=()
for name in PULUMI_BACKEND_URL PULUMI_CONFIG_PASSPHRASE; do
  [ -n "${!name:-}" ] || missing+=("$name")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "pgfleet CI: set ${missing[*]} (see README, 'Pull request previews')" >&2
  exit 2
fi

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r requirements.txt
# The engine, the language host, the providers (kubernetes' too: the prod stack) and Docker;
# none of the local servers, images or cluster the tests use.
PGFLEET_ONLY=pulumi,langhost,docker,providers,kubernetes-provider bash setup/toolchain.sh --cluster >&2
# shellcheck source=../../setup/env.sh
source setup/env.sh

if [ -n "${KUBECONFIG_DATA:-}" ]; then
  KUBECONFIG="$(mktemp)"
  printf '%s\n' "$KUBECONFIG_DATA" >"$KUBECONFIG"
  export KUBECONFIG
fi
export PULUMI_SKIP_UPDATE_CHECK=true
pulumi login --non-interactive "$PULUMI_BACKEND_URL" >&2
