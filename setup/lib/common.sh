# shellcheck shell=bash
# Helpers shared by setup/toolchain.sh and its steps (setup/steps/*.sh): logging, content
# hashes, the per-step runner and summary, links into BIN_DIR, the engine's plugin cache.

CACHE="${PGFLEET_CACHE:-/var/cache/pgfleet}"
BIN_DIR="${PGFLEET_BIN_DIR:-/usr/local/bin}"
LOGS="$CACHE/logs"
mkdir -p "$CACHE/bin" "$CACHE/build" "$LOGS" "$BIN_DIR"

export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
export DEBIAN_FRONTEND=noninteractive
NICE="nice -n 10"

declare -a SUMMARY=()
declare -a IMAGE_BUILD_ARGS=()
declare -a IMAGE_KEY_ARGS=()
FAILED=0

log() { printf '[toolchain %s] %s\n' "$(date +%H:%M:%S)" "$*" >&3; }

hash_of() { # hash_of FILE|DIR... : short content hash (names + contents)
  # Names relative to the argument, never the checkout's path: a clone elsewhere (CI's, a
  # worktree) finds the same cache entries.
  local p
  for p in "$@"; do
    if [ -d "$p" ]; then
      (cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    elif [ -e "$p" ]; then
      printf '%s  %s\n' "$(sha256sum <"$p" | cut -d' ' -f1)" "${p##*/}"
    else
      echo "$p"
    fi
  done | sha256sum | cut -c1-12
}

# record NAME STATUS SECONDS DETAIL
record() { SUMMARY+=("$(printf '%-34s %-12s %6ss  %s' "$1" "$2" "$3" "$4")"); }

# run_step NAME LOGFILE FUNC ARGS... : time FUNC, classify its result
run_step() {
  local name="$1" logf="$2"; shift 2
  local t0=$SECONDS rc=0 out
  : >"$logf"   # a fresh log per run, so the 403 check below only sees this run
  # each step runs in a child process so that `set -e` applies inside it
  out="$(bash "$SETUP_DIR/toolchain.sh" __step "$@" 2>>"$logf")" || rc=$?
  local dt=$((SECONDS - t0))
  if [ "$rc" = 0 ]; then
    record "$name" "${out%%|*}" "$dt" "${out#*|}"
  elif grep -qE '403 Forbidden|This module version is not available' "$logf" 2>/dev/null; then
    record "$name" UNAVAILABLE "$dt" "module proxy refuses a required module version (see $logf)"
    log "$name: UNAVAILABLE from the module proxy (log: $logf)"
  else
    record "$name" FAILED "$dt" "exit $rc (see $logf)"
    log "$name: FAILED (log: $logf)"
    FAILED=1
  fi
}

link() { # link TARGET NAME : symlink into BIN_DIR
  ln -sfn "$1" "$BIN_DIR/$2"
}

ours() { # ours PATH : is PATH (after links) something this toolchain built?
  case "$(readlink -f "$1" 2>/dev/null)" in "$CACHE"/*) return 0 ;; esac
  return 1
}

version_at_least() { # version_at_least HAVE WANT (with or without a leading v)
  [ "$(printf '%s\n%s\n' "${1#v}" "${2#v}" | sort -V | head -1)" = "${2#v}" ]
}

prune_siblings() { # prune_siblings KEEP GLOB: drop superseded builds (older content hashes)
  local keep="$1" d
  for d in $2; do
    if [ -e "$d" ] && [ "$d" != "$keep" ]; then rm -rf "$d"; fi
  done
}

moddir() { # moddir MOD@VER : download a module through the proxy, print its directory
  local d
  d="$(cd "$CACHE/build" && go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -n "$d" ] && [ -d "$d" ] || { echo "cannot download $1" >&2; return 1; }
  echo "$d"
}

# go_wrapper_build DIR PKG OUT [GO BUILD ARGS...]: `go mod tidy` then `go build` in a wrapper
# module, writing OUT atomically.
go_wrapper_build() {
  local dir="$1" pkg="$2" out="$3"; shift 3
  (cd "$dir" && go mod tidy && $NICE go build -trimpath "$@" -o "$out.tmp" "$pkg") >&2
  mv "$out.tmp" "$out"
}

pulumi_cli() { # the pulumi this toolchain uses: a user's adequate one, else ours
  command -v pulumi 2>/dev/null || echo "$CACHE/bin/pulumi/$PULUMI_CLI_VERSION/pulumi"
}

# foreign_plugin NAME VERSION: the engine's plugin cache holds resource NAME at VERSION, put there
# by someone else (`pulumi plugin install`, a Pulumi install): used as it is, never overwritten.
foreign_plugin() {
  local dir="${PULUMI_HOME:-$HOME/.pulumi}/plugins/resource-$1-v$2"
  [ -x "$dir/pulumi-resource-$1" ] && [ ! -e "$dir/pgfleet-build" ] \
    && ! compgen -G "$CACHE/bin/providers/$1*/$2*" >/dev/null
}

# install_plugin NAME VERSION DIR [FILE...]: put DIR's pulumi-resource-NAME (and the FILEs beside
# it, e.g. schema.json) into the engine's plugin cache as resource-NAME-vVERSION, so it is found
# without the $PATH lookup (which prints "using pulumi-resource-NAME from $PATH" warnings). A
# marker file says it is ours, so a later run may replace it.
install_plugin() {
  local name="$1" ver="$2" dir="$3"; shift 3
  local home="${PULUMI_HOME:-$HOME/.pulumi}" f same=1
  local dest="$home/plugins/resource-$name-v$ver"
  echo "$dir" >"$dir/pgfleet-build"
  for f in "pulumi-resource-$name" pgfleet-build "$@"; do cmp -s "$dir/$f" "$dest/$f" || same=0; done
  [ "$same" = 1 ] && return 0
  local pulumi_bin; pulumi_bin="$(pulumi_cli)"
  [ -x "$pulumi_bin" ] || { echo "no pulumi CLI: plugin $name not installed in $home" >&2; return 1; }
  local tgz="$CACHE/build/plugin-$name-$ver.tar.gz"
  tar -C "$dir" -czf "$tgz" "pulumi-resource-$name" pgfleet-build "$@"
  PULUMI_SKIP_UPDATE_CHECK=true "$pulumi_bin" plugin install resource "$name" "$ver" --file "$tgz" --reinstall >&2
  rm -f "$tgz"
}

apt_install() { # apt_install PACKAGE... : install the missing ones (one apt-get update per run)
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [ "${#missing[@]}" = 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ ! -e "$CACHE/.apt-updated" ] || [ -n "$(find "$CACHE/.apt-updated" -mmin +1440)" ]; then
    apt-get update -qq >&2 && touch "$CACHE/.apt-updated"
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
