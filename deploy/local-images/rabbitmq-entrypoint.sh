#!/bin/sh
# Entrypoint of bazaar-local/rabbitmq (deploy/local-images/rabbitmq.Dockerfile): runs
# rabbitmq-server in the foreground as rabbitmq. Debian's /usr/sbin/rabbitmq-server wrapper
# would keep a shell in front of the server and send its output to /var/log/rabbitmq, so this
# execs the server's own script, which turns SIGTERM into a clean stop (exit code 0).
set -e
[ $# -gt 0 ] || set -- rabbitmq-server
if [ "$1" = rabbitmq-server ]; then
  shift
  if [ "$(id -u)" = 0 ]; then
    find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' + 2>/dev/null || true
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$0" rabbitmq-server "$@"
  fi
  cd /var/lib/rabbitmq
  exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
