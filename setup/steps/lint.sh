# shellcheck shell=bash
# Linters the tests run on the repository's own files: actionlint for .github/workflows, and the
# Debian package of ShellCheck, which actionlint runs on every `run:` script when it is on PATH.

existing_actionlint() { # prints an actionlint on PATH at ACTIONLINT_VERSION, not built by us, or nothing
  local p v
  p="$(command -v actionlint 2>/dev/null)" || return 0
  ours "$p" && return 0
  v="$("$p" -version 2>/dev/null | head -1)" || return 0
  [ "${v#v}" = "${ACTIONLINT_VERSION#v}" ] && echo "$p"
  return 0
}

# Module github.com/rhysd/actionlint, built by a wrapper module (no patches).
step_actionlint() {
  command -v shellcheck >/dev/null 2>&1 || apt_install shellcheck
  local found; found="$(existing_actionlint)"
  if [ -n "$found" ]; then echo "found|$found ($ACTIONLINT_VERSION, not built)"; return 0; fi
  local v="$ACTIONLINT_VERSION" out="$CACHE/bin/actionlint/$ACTIONLINT_VERSION"
  if [ -x "$out/actionlint" ]; then link "$out/actionlint" actionlint; echo "cached|$out/actionlint"; return 0; fi
  local b="$CACHE/build/actionlint-$v"
  mkdir -p "$b" "$out"
  printf 'module pgfleet.local/build/actionlint\n\ngo 1.26\n\nrequire github.com/rhysd/actionlint %s\n' "$v" \
    >"$b/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/rhysd/actionlint/cmd/actionlint"\n' >"$b/tools.go"
  log "building actionlint $v (log $LOGS/actionlint.log)"
  # `actionlint -version` prints these (a wrapper module's build info carries no version).
  local pkg=github.com/rhysd/actionlint
  go_wrapper_build "$b" "$pkg/cmd/actionlint" "$out/actionlint" \
    -ldflags "-s -w -X $pkg.version=$v -X '$pkg.installedFrom=built by pgfleet setup/toolchain.sh'"
  link "$out/actionlint" actionlint
  echo "built|$out/actionlint"
}
