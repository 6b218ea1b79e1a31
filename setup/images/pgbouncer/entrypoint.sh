#!/bin/bash
# pgfleet pgbouncer entrypoint.
# If /etc/pgbouncer/pgbouncer.ini exists (e.g. mounted), it is used untouched.
# Otherwise it is written from these env vars:
#   DB_HOST (required), DB_PORT=5432, DB_NAME='*' (one name, or * for all databases),
#   DB_USER / DB_PASSWORD (written to userlist.txt; the backend login too),
#   LISTEN_ADDR=0.0.0.0, LISTEN_PORT=6432, AUTH_TYPE=scram-sha-256, POOL_MODE=transaction,
#   MAX_CLIENT_CONN=200, DEFAULT_POOL_SIZE=20, ADMIN_USERS=$DB_USER, STATS_USERS='',
#   SERVER_TLS_SSLMODE=prefer, IGNORE_STARTUP_PARAMETERS=extra_float_digits,
#   PGBOUNCER_EXTRA (raw lines appended to [pgbouncer]).
# A mounted /etc/pgbouncer/userlist.txt is kept when DB_USER is unset.
# DB_PASSWORD may come as a file, DB_PASSWORD_FILE (it wins over DB_PASSWORD).
# Started as root, the config files (which hold passwords) and DB_PASSWORD_FILE become user
# postgres's alone before root is dropped; pgbouncer runs as postgres.
set -Eeuo pipefail
INI=/etc/pgbouncer/pgbouncer.ini
USERLIST=/etc/pgbouncer/userlist.txt

if [ "$(id -u)" = 0 ]; then
  for f in "$INI" "$USERLIST" "${DB_PASSWORD_FILE:-}"; do
    # a read-only mount (a Kubernetes secret volume) stays as it is
    if [ -n "$f" ] && [ -f "$f" ]; then chown postgres:postgres "$f" 2>/dev/null && chmod 0400 "$f" 2>/dev/null || true; fi
  done
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ -n "${DB_PASSWORD_FILE:-}" ]; then
  DB_PASSWORD="$(cat "$DB_PASSWORD_FILE")"
  unset DB_PASSWORD_FILE
fi
export -n DB_PASSWORD 2>/dev/null || true

if [ ! -f "$INI" ]; then
  : "${DB_HOST:?DB_HOST is required when no pgbouncer.ini is mounted}"
  db_name="${DB_NAME:-*}"
  conn="host=${DB_HOST} port=${DB_PORT:-5432}"
  [ "$db_name" != "*" ] && conn="$conn dbname=${db_name}"
  if [ -n "${DB_USER:-}" ]; then
    conn="$conn user=${DB_USER}"
    esc_pw="${DB_PASSWORD:-}"; esc_pw="${esc_pw//\"/\"\"}"
    printf '"%s" "%s"\n' "$DB_USER" "$esc_pw" > "$USERLIST"
    chmod 600 "$USERLIST"
  fi
  touch "$USERLIST"
  cat > "$INI" <<INI
[databases]
${db_name} = ${conn}

[pgbouncer]
listen_addr = ${LISTEN_ADDR:-0.0.0.0}
listen_port = ${LISTEN_PORT:-6432}
unix_socket_dir = /var/run/pgbouncer
auth_type = ${AUTH_TYPE:-scram-sha-256}
auth_file = ${USERLIST}
pool_mode = ${POOL_MODE:-transaction}
max_client_conn = ${MAX_CLIENT_CONN:-200}
default_pool_size = ${DEFAULT_POOL_SIZE:-20}
admin_users = ${ADMIN_USERS:-${DB_USER:-postgres}}
stats_users = ${STATS_USERS:-}
server_tls_sslmode = ${SERVER_TLS_SSLMODE:-prefer}
ignore_startup_parameters = ${IGNORE_STARTUP_PARAMETERS:-extra_float_digits}
logfile =
pidfile =
${PGBOUNCER_EXTRA:-}
INI
fi

# Rotated certificates are re-read without a restart (PGFLEET_RELOAD_WATCH: their directory).
if [ -n "${PGFLEET_RELOAD_WATCH:-}" ]; then
  pgfleet-reload-on-change "$PGFLEET_RELOAD_WATCH" $$ &
fi
exec "$@"
