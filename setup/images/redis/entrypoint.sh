#!/bin/bash
# Like the official image: without a config file, redis-server listens on all
# interfaces with protected mode off (containers are reached over a network).
set -Eeuo pipefail
if [ "$#" -eq 0 ] || [ "${1:0:1}" = '-' ]; then
  set -- redis-server "$@"
fi
# Started as root (as the official image is), the server's data directory is made its own
# (a fresh volume may belong to root: a host-path volume ignores fsGroup), then redis runs as
# user redis.
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis:redis '{}' + 2>/dev/null || true
  exec setpriv --reuid=redis --regid=redis --init-groups "${BASH_SOURCE[0]}" "$@"
fi
if [ "$1" = redis-server ]; then
  has_conf=0; has_pm=0
  for a in "${@:2}"; do
    case "$a" in *.conf) has_conf=1 ;; --protected-mode) has_pm=1 ;; esac
  done
  if [ "$has_conf" = 0 ] && [ "$has_pm" = 0 ]; then
    set -- "$@" --protected-mode no
  fi
fi
exec "$@"
