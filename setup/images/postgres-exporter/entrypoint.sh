#!/bin/sh
# pgfleet postgres-exporter entrypoint: runs prometheus-postgres-exporter as user prometheus.
# The exporter reads DATA_SOURCE_NAME, or DATA_SOURCE_URI + DATA_SOURCE_USER + DATA_SOURCE_PASS,
# and each of the last three also as a file itself (DATA_SOURCE_*_FILE): the password is best
# given as DATA_SOURCE_PASS_FILE. Started as root, those files (and the custom queries,
# PG_EXPORTER_EXTEND_QUERY_PATH, which Docker uploads as root's) become user prometheus's alone
# (0400) before root is dropped. DATA_SOURCE_NAME_FILE (a whole URL in a file; the exporter has
# no such option) is read here and exported just before exec, into the exporter's own
# environment only.
set -eu

if [ "$(id -u)" = 0 ]; then
  for name in DATA_SOURCE_NAME_FILE DATA_SOURCE_PASS_FILE DATA_SOURCE_USER_FILE DATA_SOURCE_URI_FILE \
      PG_EXPORTER_EXTEND_QUERY_PATH; do
    file="$(printenv "$name" 2>/dev/null || true)"
    if [ -n "$file" ] && [ -f "$file" ]; then
      chown prometheus:prometheus "$file" 2>/dev/null && chmod 0400 "$file" 2>/dev/null || true
    fi
  done
  exec setpriv --reuid=prometheus --regid=prometheus --init-groups "$0" "$@"
fi

if [ -n "${DATA_SOURCE_NAME_FILE:-}" ]; then
  DATA_SOURCE_NAME="$(cat "$DATA_SOURCE_NAME_FILE")"
  export DATA_SOURCE_NAME
  unset DATA_SOURCE_NAME_FILE
fi

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- /usr/bin/prometheus-postgres-exporter "$@"
fi
exec "$@"
