# pgfleet-secrets.sh: secrets given as files, sourced by docker-entrypoint.sh and pgfleet-backup.
#
# Each secret NAME may come as NAME_FILE (a path: the platform's way on Docker, so no value shows
# in the container's config) or as NAME itself (Kubernetes' secretKeyRef, older deployments).
# NAME_FILE wins when both are set. The files are handed on as files where the program reads
# one: pgBackRest's options as a config file in its include path, the libpq password as a
# password file (PGPASSFILE), the dump passphrase to openssl as `-pass file:`.

PGFLEET_SECRETS="POSTGRES_PASSWORD PGPASSWORD PGFLEET_DUMP_PASSPHRASE PGBACKREST_REPO1_CIPHER_PASS PGBACKREST_REPO1_S3_KEY PGBACKREST_REPO1_S3_KEY_SECRET"
#: pgBackRest reads conf.d beside its config by default: no variable needed, also in `docker exec`.
PGFLEET_PGBACKREST_SECRETS=/etc/pgbackrest/conf.d/pgfleet-secrets.conf
#: The postgres user's default libpq password file (its home), also found by `docker exec -u postgres`.
PGFLEET_PGPASS=/var/lib/postgresql/.pgpass

# secrets_own USER: as root, each NAME_FILE becomes USER's, readable by nobody else (0400).
# A read-only mount (a Kubernetes secret volume) is left as it is.
secrets_own() {
  local name file
  for name in $PGFLEET_SECRETS; do
    file="$(printenv "${name}_FILE" || true)"
    if [ -n "$file" ] && [ -f "$file" ]; then
      chown "$1:$1" "$file" 2>/dev/null && chmod 0400 "$file" 2>/dev/null || true
    fi
  done
}

# secrets_render: pgBackRest's secret options and the libpq password as the files those
# programs read, made by (or, as root, for) the postgres user, mode 0600. The PGBACKREST_*_FILE
# variables go afterwards: pgBackRest warns about variables that are not its options.
secrets_render() {
  local name file key tmp lines=""
  for name in PGBACKREST_REPO1_CIPHER_PASS PGBACKREST_REPO1_S3_KEY PGBACKREST_REPO1_S3_KEY_SECRET; do
    file="$(printenv "${name}_FILE" || true)"
    [ -n "$file" ] || continue
    [ -r "$file" ] || { echo "pgfleet-secrets: ${name}_FILE ($file) is not readable" >&2; return 1; }
    key="${name#PGBACKREST_}"; key="${key,,}"; key="${key//_/-}"
    lines+="$key=$(cat "$file")"$'\n'
    unset "${name}_FILE"
  done
  if [ -n "$lines" ]; then
    tmp="$(umask 077 && mktemp "$PGFLEET_PGBACKREST_SECRETS.XXXXXX")"
    printf '[global]\n%s' "$lines" > "$tmp"
    [ "$(id -u)" != 0 ] || chown postgres:postgres "$tmp"
    mv -f "$tmp" "$PGFLEET_PGBACKREST_SECRETS"
  fi
  file="${PGPASSWORD_FILE:-}"
  if [ -n "$file" ]; then
    [ -r "$file" ] || { echo "pgfleet-secrets: PGPASSWORD_FILE ($file) is not readable" >&2; return 1; }
    tmp="$(umask 077 && mktemp "$PGFLEET_PGPASS.XXXXXX")"
    # password-file format: any host, port, database and user; ':' and '\' escaped
    sed -e 's/[\\:]/\\&/g' -e 's/^/*:*:*:*:/' "$file" > "$tmp"
    [ "$(id -u)" != 0 ] || chown postgres:postgres "$tmp"
    mv -f "$tmp" "$PGFLEET_PGPASS"
    export PGPASSFILE="$PGFLEET_PGPASS"
    unset PGPASSWORD
  fi
}

# secret_value NAME: the secret's value (from NAME_FILE, else NAME), for the few places that need
# the value itself (initdb's password file, ALTER ROLE through stdin). Never exported.
secret_value() {
  local file
  file="$(printenv "${1}_FILE" || true)"
  if [ -n "$file" ]; then cat "$file"; else printenv "$1" || true; fi
}
