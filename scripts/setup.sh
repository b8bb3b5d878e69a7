#!/usr/bin/env bash
# Installs everything Bazaar needs on a Debian machine with Node and npm (the quick start's
# first step, and CI's): Bun, the workspace's packages, the Debian packages the tests use,
# and starts Postgres, Redis and RabbitMQ where they are installed but not running.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

BUN_VERSION=1.4.5
say() { printf '\033[1msetup\033[0m  %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: Chromium for the browser tests, python3-grpcio (an independent, strict gRPC
# implementation) for the protocol tests, wrk for the benchmark; for the container test a
# Docker engine, the compose tool and debootstrap (local base images), Prometheus (and promtool)
# and Alertmanager (and amtool) for the rules' tests, the alerting test and `bun run dev`, the
# Postgres, Redis and node exporters `bun run dev` runs beside them, openssl for the gateway's
# development certificate.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
/usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null || missing+=(python3-grpcio python3-protobuf)
command -v wrk >/dev/null || missing+=(wrk)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v promtool >/dev/null || missing+=(prometheus)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
command -v prometheus-postgres-exporter >/dev/null || missing+=(prometheus-postgres-exporter)
command -v prometheus-redis-exporter >/dev/null || missing+=(prometheus-redis-exporter)
command -v prometheus-node-exporter >/dev/null || missing+=(prometheus-node-exporter)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Bun, from npm (the package ships the binary).
if ! command -v bun >/dev/null || [ "$(bun --version)" != "$BUN_VERSION" ]; then
  say "installing bun@$BUN_VERSION with npm"
  as_root npm install -g --silent "bun@$BUN_VERSION"
fi

say "installing packages (bun install --frozen-lockfile)"
bun install --frozen-lockfile --silent

# The gateway's development TLS certificate (gateway/certs/, never committed).
bash gateway/make-dev-cert.sh

# Local infrastructure: install from Debian's packages what the machine lacks, then start what
# is down (the commands of this machine kind, which has no systemd).
servers=()
fresh_postgres=0
command -v pg_ctlcluster >/dev/null || { servers+=(postgresql); fresh_postgres=1; }
command -v redis-server >/dev/null || servers+=(redis-server)
command -v rabbitmq-server >/dev/null || servers+=(rabbitmq-server)
if [ ${#servers[@]} -gt 0 ]; then
  say "installing servers: ${servers[*]}"
  as_root apt-get update -qq
  # policy-rc.d 101: the packages must not try to start services through an init system.
  printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null && as_root chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${servers[@]}" >/dev/null
  as_root rm -f /usr/sbin/policy-rc.d
fi
if [ "$fresh_postgres" -eq 1 ]; then
  # A PostgreSQL this script installed trusts connections from this machine, as the local
  # defaults (postgres://postgres@127.0.0.1:5432) expect. An existing one is left as it is.
  hba="/etc/postgresql/$(ls /etc/postgresql | head -n1)/main/pg_hba.conf"
  as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/; s/^(local\s+all\s+postgres\s+)\S+/\1trust/' "$hba"
fi

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 60); do up "$2" && return 0; sleep 1; done; say "$1 did not come up on port $2"; return 1; }
if ! up 5432 && command -v pg_ctlcluster >/dev/null; then
  say "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_for PostgreSQL 5432
fi
if ! up 6379 && command -v redis-server >/dev/null; then
  say "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 6379
fi
if ! up 5672 && command -v rabbitmq-server >/dev/null; then
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached
  wait_for RabbitMQ 5672
fi
# Prometheus scrapes RabbitMQ's own metrics on :15692 (the plugin ships with the server).
if up 5672 && ! up 15692 && command -v rabbitmq-plugins >/dev/null; then
  say "enabling RabbitMQ's Prometheus plugin"
  as_root rabbitmq-plugins enable --quiet rabbitmq_prometheus >/dev/null || say "could not enable rabbitmq_prometheus (run: rabbitmq-plugins enable rabbitmq_prometheus)"
fi
say "ready"
