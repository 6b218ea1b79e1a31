# shellcheck shell=bash
# The Pulumi engine: the CLI and its Python and YAML language hosts. A pulumi already on PATH, at
# least as new as the Python SDK pin and not built by us, is used as it is.

existing_pulumi() { # prints a user's adequate pulumi, or nothing
  local p v
  p="$(command -v pulumi 2>/dev/null)" || return 0
  ours "$p" && return 0
  v="$(PULUMI_SKIP_UPDATE_CHECK=true "$p" version 2>/dev/null)" || return 0
  version_at_least "$v" "$PULUMI_MIN_VERSION" && echo "$p"
  return 0
}

# Module github.com/pulumi/pulumi/pkg/v3, built by a wrapper module.
step_pulumi() {
  local found; found="$(existing_pulumi)"
  if [ -n "$found" ]; then
    echo "found|$found ($(PULUMI_SKIP_UPDATE_CHECK=true "$found" version), not built)"
    return 0
  fi
  local v="$PULUMI_CLI_VERSION" out="$CACHE/bin/pulumi/$PULUMI_CLI_VERSION" status=cached
  if [ ! -x "$out/pulumi" ]; then
    status=built
    local b="$CACHE/build/pulumi-cli-$v"
    mkdir -p "$b" "$out"
    # pkg/v3's own replaces (sdk/v3 => ../sdk, and the clipboard fork) are restated here.
    cat >"$b/go.mod" <<MOD
module pgfleet.local/build/pulumicli

go 1.26

require (
	github.com/pulumi/pulumi/pkg/v3 $v
	github.com/pulumi/pulumi/sdk/v3 $v
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >"$b/tools.go"
    log "building pulumi CLI $v (several minutes on 2 cores; log $LOGS/pulumi-cli.log)"
    go_wrapper_build "$b" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$out/pulumi" -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$v"
  fi
  link "$out/pulumi" pulumi
  echo "$status|$out/pulumi"
}

# setup/go/langhost (own code) + the exec scripts from sdk/v3 of the pip SDK's version.
step_langhost() {
  local found; found="$(existing_pulumi)"
  if [ -n "$found" ] && [ -x "$(dirname "$(readlink -f "$found")")/pulumi-language-python" ]; then
    echo "found|beside $found"
    return 0
  fi
  local h out
  h="$(hash_of "$SETUP_DIR/go/langhost")"
  h="$(printf '%s %s %s' "$h" "$LANGHOST_SDK_VERSION" "$PULUMI_PY_EXEC_VERSION" | sha256sum | cut -c1-12)"
  out="$CACHE/bin/langhost/${LANGHOST_SDK_VERSION}-$h"
  local status=cached
  if [ ! -x "$out/pulumi-language-python" ] || [ ! -x "$out/pulumi-language-python-exec" ]; then
    status=built
    local b="$CACHE/build/langhost-${LANGHOST_SDK_VERSION}-$h"
    mkdir -p "$b" "$out"
    cp "$SETUP_DIR/go/langhost/main.go" "$b/main.go"
    printf 'module pgfleet.local/build/langhost\n\ngo 1.26\n\nrequire github.com/pulumi/pulumi/sdk/v3 %s\n' \
      "$LANGHOST_SDK_VERSION" >"$b/go.mod"
    log "building python language host against sdk/v3 $LANGHOST_SDK_VERSION"
    go_wrapper_build "$b" . "$out/pulumi-language-python" -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X main.version=${LANGHOST_SDK_VERSION#v}"
    local sdk
    sdk="$(moddir "github.com/pulumi/pulumi/sdk/v3@$PULUMI_PY_EXEC_VERSION")"
    install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$out/pulumi-language-python-exec"
    install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$out/pulumi-resource-pulumi-python"
  fi
  prune_siblings "$out" "$CACHE/bin/langhost/${LANGHOST_SDK_VERSION}-*"
  prune_siblings "$CACHE/build/langhost-${LANGHOST_SDK_VERSION}-$h" "$CACHE/build/langhost-${LANGHOST_SDK_VERSION}-*"
  # Installed beside the pulumi binary (where the engine looks first), not on PATH: a second
  # copy on PATH makes the engine warn "using pulumi-language-python from $PATH".
  local f
  for f in pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
    rm -f "$BIN_DIR/$f"
    if [ -d "$CACHE/bin/pulumi/$PULUMI_CLI_VERSION" ]; then
      ln -sfn "$out/$f" "$CACHE/bin/pulumi/$PULUMI_CLI_VERSION/$f"
    fi
  done
  echo "$status|$out"
}

existing_yamlhost() { # prints a pulumi-language-yaml the machine already has, not built by us, or nothing
  local p c
  # beside the pulumi on PATH (where the engine looks for a bundled language host), ...
  if p="$(command -v pulumi 2>/dev/null)"; then
    c="$(dirname "$(readlink -f "$p")")/pulumi-language-yaml"
    if [ -x "$c" ] && ! ours "$c"; then echo "$c"; return 0; fi
  fi
  # ... else on PATH
  if c="$(command -v pulumi-language-yaml 2>/dev/null)" && ! ours "$c"; then echo "$c"; fi
  return 0
}

# Module github.com/pulumi/pulumi-yaml (cmd/pulumi-language-yaml), built by a wrapper module. The
# module has no replace directives; its pkg/v3 and sdk/v3 requirement (v3.206.0 at v1.25.0) is left
# to Go's MVS: the host talks to the engine over gRPC only, so it need not match the CLI's pkg/v3,
# and v1.25.0 does not compile against pkg/v3 v3.274.1 (schema.NewPluginLoader and
# plugin.NewContextWithRoot changed).
step_yamlhost() {
  local found; found="$(existing_yamlhost)"
  if [ -n "$found" ]; then
    # The engine finds a host on PATH only when PULUMI_IGNORE_AMBIENT_PLUGINS is unset (env.sh sets
    # it): a user's host on PATH is linked beside our CLI, where it is found either way.
    if [ "$(dirname "$found")" != "$CACHE/bin/pulumi/$PULUMI_CLI_VERSION" ] \
      && [ -d "$CACHE/bin/pulumi/$PULUMI_CLI_VERSION" ] && ours "$(pulumi_cli)"; then
      ln -sfn "$found" "$CACHE/bin/pulumi/$PULUMI_CLI_VERSION/pulumi-language-yaml"
    fi
    echo "found|$found (not built)"
    return 0
  fi
  local v="$PULUMI_YAML_VERSION" out="$CACHE/bin/yamlhost/$PULUMI_YAML_VERSION" status=cached
  if [ ! -x "$out/pulumi-language-yaml" ]; then
    status=built
    local b="$CACHE/build/yamlhost-$v"
    mkdir -p "$b" "$out"
    printf 'module pgfleet.local/build/yamlhost\n\ngo 1.26\n\nrequire github.com/pulumi/pulumi-yaml %s\n' "$v" \
      >"$b/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml"\n' \
      >"$b/tools.go"
    log "building pulumi-language-yaml $v (log $LOGS/yamlhost.log)"
    # upstream's release flags (.goreleaser.yml): the version is what GetPluginInfo reports
    go_wrapper_build "$b" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml "$out/pulumi-language-yaml" \
      -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=$v"
    # report which pulumi pkg/v3 and sdk/v3 MVS chose
    (cd "$b" && go list -m github.com/pulumi/pulumi/pkg/v3 github.com/pulumi/pulumi/sdk/v3) >&2
  fi
  # Beside the pulumi binary (the engine looks there first for a bundled language host such as
  # yaml), not on PATH: a second copy on PATH makes the engine warn "using pulumi-language-yaml
  # from $PATH", as with pulumi-language-python. A hard link, not a symlink: the YAML host loads
  # package schemas with a plugin host of its own, which looks for the other bundled hosts (the
  # python one, for a Python component provider under `packages:`) beside its own executable
  # with symlinks resolved; through a symlink that is $out, where there is none ("no language
  # plugin 'pulumi-language-python' found in the workspace").
  if ours "$BIN_DIR/pulumi-language-yaml"; then rm -f "$BIN_DIR/pulumi-language-yaml"; fi
  local where="$out (not linked: no pulumi CLI of ours)" cli="$CACHE/bin/pulumi/$PULUMI_CLI_VERSION"
  if [ -d "$cli" ]; then
    ln -f "$out/pulumi-language-yaml" "$cli/pulumi-language-yaml"
    where="$out, hard-linked beside $cli/pulumi"
  fi
  echo "$status|$where"
}
