# shellcheck shell=bash
# Source me: `source setup/env.sh` (bash/zsh). Sets PATH and the offline Pulumi engine env.
# setup/toolchain.sh links every binary into ${PGFLEET_BIN_DIR:-/usr/local/bin}.
_pgfleet_bin="${PGFLEET_BIN_DIR:-/usr/local/bin}"
case ":$PATH:" in *":$_pgfleet_bin:"*) ;; *) export PATH="$_pgfleet_bin:$PATH" ;; esac
unset _pgfleet_bin
# never try to download plugins or check for CLI updates (no internet here)
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
# local state (override PULUMI_BACKEND_URL before sourcing to keep state elsewhere)
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://${PGFLEET_STATE_DIR:-$HOME/.pulumi-local}}"
case "$PULUMI_BACKEND_URL" in file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;; esac
# Secrets on the file backend: bring your own PULUMI_CONFIG_PASSPHRASE(_FILE); scripts/dev-up.sh
# makes a random one per machine. No default: a known passphrase would be no protection.
# use the plugins toolchain.sh installed into the plugin cache ($PULUMI_HOME/plugins), not the
# copies linked on PATH (those work too, but make the engine print a warning per plugin)
export PULUMI_IGNORE_AMBIENT_PLUGINS="${PULUMI_IGNORE_AMBIENT_PLUGINS:-true}"
