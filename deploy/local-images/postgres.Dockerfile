# Stand-in for the official postgres image, from Debian bookworm's PostgreSQL 15.
# Same interface: POSTGRES_PASSWORD (required), POSTGRES_USER (default postgres), POSTGRES_DB
# (default POSTGRES_USER), POSTGRES_INITDB_ARGS, /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh
# on first start, PGDATA=/var/lib/postgresql/data (a volume), port 5432, the server runs as
# postgres in the foreground; pg_isready and psql on PATH.
# Differences: initdb uses C.UTF-8 (the official image en_US.utf8), max_connections=200
# (official: 100) and the server's default config otherwise.
ARG BASE=bazaar-local/debian:bookworm
FROM ${BASE}
RUN set -eux; \
    # no cluster in /etc/postgresql: the entrypoint runs initdb on PGDATA itself
    mkdir -p /etc/postgresql-common/createcluster.d; \
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/docker.conf; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /var/run/postgresql /var/lib/postgresql/data /docker-entrypoint-initdb.d; \
    chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql; \
    chmod 3777 /var/run/postgresql; chmod 1777 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh; postgres --version; pg_isready --version; psql --version
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
# as the official image: SIGINT is PostgreSQL's fast shutdown (SIGTERM's smart one waits for clients)
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
