#!/bin/sh
# Entrypoint of bazaar-local/redis (deploy/local-images/redis.Dockerfile), like the official one.
set -e
[ $# -gt 0 ] || set -- redis-server
# `docker run IMAGE --port 7000` or `docker run IMAGE /etc/redis.conf` means redis-server ARGS
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac

if [ "$1" = redis-server ]; then
  case " $* " in *protected-mode*) ;; *) set -- "$@" --protected-mode no ;; esac
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
  # as the official entrypoint: keep what redis writes private unless a umask was set
  [ "$(umask)" != 0022 ] || umask 0077
fi
exec "$@"
