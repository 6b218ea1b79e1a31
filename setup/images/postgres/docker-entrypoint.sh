#!/bin/bash
# pgfleet postgres entrypoint (own implementation, behaviour modelled on the official image).
set -Eeuo pipefail

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
# Secrets may come as files (NAME_FILE, the platform's way on Docker) or values (NAME).
# shellcheck source=pgfleet-secrets.sh
. /usr/local/lib/pgfleet/secrets.sh
POSTGRES_PASSWORD="$(secret_value POSTGRES_PASSWORD)"
POSTGRES_HOST_AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
POSTGRES_INITDB_ARGS="${POSTGRES_INITDB_ARGS:-}"

log() { echo "entrypoint: $*" >&2; }

# `docker run IMAGE -c foo=bar` means `postgres -c foo=bar`
if [ "$#" -eq 0 ] || [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

# informational invocations never initialise anything
wants_info() {
  local a
  for a in "$@"; do
    case "$a" in -V|--version|-'?'|--help|--describe-config|-C|-C*) return 0 ;; esac
  done
  return 1
}

# Any command started as root (the server, a backup job's cron): the secret files become the
# postgres user's alone, and pgBackRest's and libpq's own files are written from them.
if [ "$(id -u)" = 0 ] && ! wants_info "${@:2}"; then
  secrets_own postgres
  secrets_render
fi

if [ "$1" != postgres ] || wants_info "${@:2}"; then
  exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
  # PGDATA may sit one level below a volume's root (clear of lost+found), and that root may
  # belong to root with no access for others (a host-path volume ignores fsGroup).
  data_root="$(dirname "$PGDATA")"
  if [ "$data_root" != / ] && [ "$(stat -c %u "$data_root" 2>/dev/null)" = 0 ]; then
    chown postgres:postgres "$data_root"
  fi
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA" 2>/dev/null || true
  chown postgres:postgres "$PGDATA" /var/run/postgresql 2>/dev/null || true
  # a fresh bind mount may hold files owned by root
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' + 2>/dev/null || true
  chmod 3777 /var/run/postgresql
  # a new repository volume for archive_command (pgBackRest, posix) is created by root
  if [ "${PGBACKREST_REPO1_TYPE:-}" = posix ] && [ -n "${PGBACKREST_REPO1_PATH:-}" ]; then
    mkdir -p "$PGBACKREST_REPO1_PATH"
    chown postgres:postgres "$PGBACKREST_REPO1_PATH" "$(dirname "$PGBACKREST_REPO1_PATH")"
  fi
  # its own HOME: libpq looks there for client certificates (and finds root's unreadable)
  HOME=/var/lib/postgresql exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

# started as postgres (a pod run as that user): the files are made here
secrets_render

psql_init() {
  psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --username "$POSTGRES_USER" "$@"
}

run_initdb_scripts() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        # shellcheck disable=SC1090
        if [ -x "$f" ]; then log "running $f"; "$f"; else log "sourcing $f"; . "$f"; fi ;;
      *.sql)    log "running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB" ;;
      *.sql.xz) log "running $f"; xz -dc "$f" | psql_init --dbname "$POSTGRES_DB" ;;
      *)        log "ignoring $f" ;;
    esac
  done
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    log "error: database is uninitialised and POSTGRES_PASSWORD is not set"
    log "       (set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust for throwaway use)"
    exit 1
  fi
  log "initialising $PGDATA"
  pwfile="$(mktemp)"
  printf '%s\n' "${POSTGRES_PASSWORD:-postgres}" > "$pwfile"
  # shellcheck disable=SC2086
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
         --auth-host="$POSTGRES_HOST_AUTH_METHOD" --encoding=UTF8 --locale=C.UTF-8 \
         -D "$PGDATA" $POSTGRES_INITDB_ARGS
  rm -f "$pwfile"
  {
    echo
    echo "# pgfleet: network access"
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
    echo "host replication all all $POSTGRES_HOST_AUTH_METHOD"
  } >> "$PGDATA/pg_hba.conf"
  {
    echo
    echo "listen_addresses = '*'"
    echo "password_encryption = scram-sha-256"
  } >> "$PGDATA/postgresql.conf"

  # temporary server on the unix socket only, for database creation and init scripts
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
  if [ "$POSTGRES_DB" != postgres ]; then
    exists="$(psql_init --dbname postgres -tA -v db="$POSTGRES_DB" <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
    if [ -z "$exists" ]; then
      log "creating database $POSTGRES_DB"
      psql_init --dbname postgres -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
  fi
  export PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB"
  run_initdb_scripts
  unset PGUSER PGDATABASE
  pg_ctl -D "$PGDATA" -m fast -w stop
  log "initialisation done"
elif [ -n "$POSTGRES_PASSWORD" ] && [ ! -e "$PGDATA/standby.signal" ] && [ ! -e "$PGDATA/recovery.signal" ]; then
  # The platform holds the superuser's password, not the volume: a data directory kept from an
  # earlier deployment gets the current password before it serves. Single-user mode reads the
  # statement from stdin, so the password shows in no process list. Not while a standby or a
  # point-in-time recovery is pending: recovery belongs to the real server.
  log "setting the password of $POSTGRES_USER"
  sql_user="${POSTGRES_USER//\"/\"\"}"
  sql_password="${POSTGRES_PASSWORD//\'/\'\'}"
  printf "ALTER ROLE \"%s\" WITH PASSWORD '%s';\n" "$sql_user" "$sql_password" \
    | postgres --single -D "$PGDATA" postgres >/dev/null
fi

shift  # drop "postgres"
# The server's environment never holds the password (given as a value, it came through the
# environment: init scripts still see it, as in the official image).
export -n POSTGRES_PASSWORD
# Rotated certificates are re-read without a restart (PGFLEET_RELOAD_WATCH: their directory).
if [ -n "${PGFLEET_RELOAD_WATCH:-}" ]; then
  pgfleet-reload-on-change "$PGFLEET_RELOAD_WATCH" $$ &
fi
exec postgres "$@"
