#!/bin/bash
# pgfleet versitygw entrypoint (own script): S3 over HTTPS on :7070, posix backend on
# /var/lib/versitygw, runs as user versitygw.
#   ROOT_ACCESS_KEY / ROOT_SECRET_KEY  root credentials (required; versitygw's own names
#                                      ROOT_ACCESS_KEY_ID / ROOT_SECRET_ACCESS_KEY work too), or
#                                      files: ROOT_ACCESS_KEY_FILE / ROOT_SECRET_KEY_FILE (they
#                                      win; made user versitygw's alone, 0400, at start as root)
#   S3_BUCKET        bucket created through the S3 API at start if it does not exist (optional)
#   VGW_REGION       region (default us-east-1): clients must sign for the same region
#   VGW_CERT/VGW_KEY TLS certificate and key (default /etc/versitygw/tls/{cert,key}.pem; a
#                    self-signed pair is generated there when neither file exists)
#   TLS_HOSTNAMES    extra DNS names for the generated certificate, comma-separated (it always
#                    covers the container hostname, localhost and 127.0.0.1)
# Every other versitygw env variable (VGW_*, see `versitygw --help` / `versitygw posix --help`)
# is read by versitygw itself. Arguments starting with '-' are extra global versitygw flags;
# any other command is run as is. `versitygw-entrypoint.sh healthcheck` is the HEALTHCHECK.
set -Eeuo pipefail

DATA_DIR=/var/lib/versitygw
TLS_DIR=/etc/versitygw/tls
export VGW_CERT="${VGW_CERT:-$TLS_DIR/cert.pem}" VGW_KEY="${VGW_KEY:-$TLS_DIR/key.pem}"
export VGW_REGION="${VGW_REGION:-us-east-1}"
# Keys from files are read into shell variables, never exported: only versitygw gets them
# (it reads its keys from its environment or flags only), in its own environment.
ACCESS="${ROOT_ACCESS_KEY_ID:-${ROOT_ACCESS_KEY:-}}"
SECRET="${ROOT_SECRET_ACCESS_KEY:-${ROOT_SECRET_KEY:-}}"
if [ -n "${ROOT_ACCESS_KEY_FILE:-}" ] && [ -r "$ROOT_ACCESS_KEY_FILE" ]; then ACCESS="$(cat "$ROOT_ACCESS_KEY_FILE")"; fi
if [ -n "${ROOT_SECRET_KEY_FILE:-}" ] && [ -r "$ROOT_SECRET_KEY_FILE" ]; then SECRET="$(cat "$ROOT_SECRET_KEY_FILE")"; fi
PORT="${VGW_PORT:-:7070}"; PORT="${PORT##*:}"
URL="https://127.0.0.1:$PORT"

log() { echo "versitygw-entrypoint: $*" >&2; }

# s3 METHOD PATH [curl args...]: a SigV4-signed request as the root user; prints the HTTP status.
# The keys reach curl as its config on stdin, not in its argv (which `ps` shows).
s3() {
  local method="$1" path="$2"; shift 2
  printf 'user = "%s:%s"\n' "$ACCESS" "$SECRET" \
    | curl -sk -K - -o /dev/null -w '%{http_code}' --max-time 3 -X "$method" \
      --aws-sigv4 "aws:amz:$VGW_REGION:s3" \
      -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@" "$URL/$path" || true
}

healthy() { # serving, the root credentials work, and S3_BUCKET (if any) exists
  if [ -n "${S3_BUCKET:-}" ]; then
    [ "$(s3 HEAD "$S3_BUCKET" -I)" = 200 ]
  else
    [ "$(s3 GET "")" = 200 ]
  fi
}

if [ "${1:-}" = healthcheck ]; then healthy; exit $?; fi

if [ "$#" -gt 0 ] && [ "${1:0:1}" != '-' ]; then
  exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
  for f in "${ROOT_ACCESS_KEY_FILE:-}" "${ROOT_SECRET_KEY_FILE:-}"; do
    # a read-only mount (a Kubernetes secret volume) stays as it is
    if [ -n "$f" ] && [ -f "$f" ]; then chown versitygw:versitygw "$f" 2>/dev/null && chmod 0400 "$f" 2>/dev/null || true; fi
  done
  mkdir -p "$DATA_DIR" "$TLS_DIR"
  chown versitygw:versitygw "$DATA_DIR" 2>/dev/null || true
  # a fresh bind mount may hold files owned by root
  find "$DATA_DIR" \! -user versitygw -exec chown versitygw:versitygw '{}' + 2>/dev/null || true
  if [ ! -e "$VGW_CERT" ] && [ ! -e "$VGW_KEY" ]; then chown versitygw:versitygw "$TLS_DIR" 2>/dev/null || true; fi
  exec setpriv --reuid=versitygw --regid=versitygw --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ -z "$ACCESS" ] || [ -z "$SECRET" ]; then
  log "ROOT_ACCESS_KEY and ROOT_SECRET_KEY (or ROOT_ACCESS_KEY_FILE and ROOT_SECRET_KEY_FILE) must be set"
  exit 1
fi

if [ ! -e "$VGW_CERT" ] && [ ! -e "$VGW_KEY" ]; then
  san="DNS:$HOSTNAME,DNS:localhost,IP:127.0.0.1"
  IFS=',' read -r -a extra <<<"${TLS_HOSTNAMES:-}"
  for n in ${extra[@]+"${extra[@]}"}; do [ -n "$n" ] && san="$san,DNS:$n"; done
  log "generating a self-signed certificate ($san)"
  mkdir -p "$(dirname "$VGW_CERT")" "$(dirname "$VGW_KEY")"
  (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$HOSTNAME" \
    -addext "subjectAltName=$san" -keyout "$VGW_KEY" -out "$VGW_CERT" 2>/dev/null)
  chmod 644 "$VGW_CERT"
elif [ ! -r "$VGW_CERT" ] || [ ! -r "$VGW_KEY" ]; then
  log "TLS certificate $VGW_CERT or key $VGW_KEY missing or unreadable"
  exit 1
fi

ROOT_ACCESS_KEY_ID="$ACCESS" ROOT_SECRET_ACCESS_KEY="$SECRET" versitygw "$@" posix "$DATA_DIR" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT

# S3_BUCKET: created through the API (so it gets versitygw's owner/ACL attributes, unlike a
# plain mkdir, which the root user could use but other accounts would not see)
if [ -n "${S3_BUCKET:-}" ]; then
  code=000
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    code="$(s3 HEAD "$S3_BUCKET" -I)"
    case "$code" in 200|404) break ;; esac
    sleep 0.2
  done
  if [ "$code" = 404 ]; then
    code="$(s3 PUT "$S3_BUCKET")"
    if [ "$code" = 200 ]; then log "created bucket $S3_BUCKET"; fi
  elif [ "$code" = 200 ]; then
    log "bucket $S3_BUCKET exists"
  fi
  if [ "$code" != 200 ]; then
    log "could not create or find bucket $S3_BUCKET (HTTP $code)"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    exit 1
  fi
fi

rc=0
while :; do
  wait "$pid" && rc=0 || rc=$?
  kill -0 "$pid" 2>/dev/null || break
done
exit "$rc"
