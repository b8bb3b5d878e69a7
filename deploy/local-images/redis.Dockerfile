# Stand-in for the official redis image, from Debian bookworm's Redis 7.
# Same interface: redis-server and redis-cli on PATH, data in /data (a volume, the working
# directory), port 6379, the server runs as redis; a command starting with redis-server (or
# with an option, or a .conf file) is run by the entrypoint as redis.
# As the official build (whose redis-server defaults to protected-mode no), the entrypoint adds
# --protected-mode no to a redis-server command that does not set protected-mode itself.
ARG BASE=bazaar-local/debian:bookworm
FROM ${BASE}
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /data; chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh; redis-server --version; redis-cli --version
VOLUME /data
WORKDIR /data
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
