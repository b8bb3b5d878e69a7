#!/usr/bin/env bash
# Entrypoint of bazaar-local/postgres (deploy/local-images/postgres.Dockerfile): initialises
# PGDATA on first start the way the official postgres image does, then execs postgres.
set -Eeuo pipefail

log() { echo "postgres-entrypoint: $*" >&2; }
# `docker run IMAGE -c x=y` means postgres -c x=y
[ $# -gt 0 ] || set -- postgres
case "$1" in -*) set -- postgres "$@" ;; esac

if [ "$1" != postgres ]; then exec "$@"; fi

# started as root (the default): own the data and socket directories, then run as postgres
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  find "$PGDATA" \! -user postgres -exec chown postgres '{}' + 2>/dev/null || true
  chmod 700 "$PGDATA"
  chown postgres:postgres /var/run/postgresql; chmod 3777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

# *_FILE variants, as in the official image (Docker secrets)
for var in POSTGRES_PASSWORD POSTGRES_USER POSTGRES_DB POSTGRES_INITDB_ARGS; do
  file_var=${var}_FILE
  if [ -n "${!file_var:-}" ]; then
    [ -z "${!var:-}" ] || { log "both $var and $file_var are set (but are exclusive)"; exit 1; }
    export "$var"="$(<"${!file_var}")"
  fi
done
export POSTGRES_USER=${POSTGRES_USER:-postgres}
export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       (POSTGRES_HOST_AUTH_METHOD=trust allows all connections without a password.)
MSG
    exit 1
  fi
  host_auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  log "initialising $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
  pwfile=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a string of options, as in the official image
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host="$host_auth" \
    --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  cat >>"$PGDATA/postgresql.conf" <<CONF

# bazaar-local/postgres
listen_addresses = '*'
max_connections = 200
CONF
  printf '\nhost all all all %s\n' "$host_auth" >>"$PGDATA/pg_hba.conf"

  # a server on the socket only, for POSTGRES_DB and the init scripts
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql=(psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --username "$POSTGRES_USER")
  if [ "$POSTGRES_DB" != postgres ]; then
    "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >/dev/null
  fi
  psql+=(--dbname "$POSTGRES_DB")
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) if [ -x "$f" ]; then log "running $f"; "$f"; else log "sourcing $f"; . "$f"; fi ;;
      *.sql) log "running $f"; "${psql[@]}" -f "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | "${psql[@]}" ;;
      *.sql.xz) log "running $f"; xzcat "$f" | "${psql[@]}" ;;
      *"/*") ;;
      *) log "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  log "init done; starting postgres"
fi

exec "$@"
