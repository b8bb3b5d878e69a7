# Stand-in for oven/bun:1.4.5 (Debian bookworm flavour), built by
# scripts/containers/build-local-images.sh from a context holding the bun binary that the npm
# package @oven/bun-linux-x64[-baseline]@1.4.5 ships (package/bin/bun).
# As in the official image: bun at /usr/local/bin/bun with a bunx link, a user bun (uid/gid 1000,
# home /home/bun) that Dockerfiles switch to with USER bun, WORKDIR /home/bun/app, root by
# default, an entrypoint that runs `bun ARGS` when the first argument is no command.
ARG BASE=bazaar-local/debian:bookworm
FROM ${BASE}
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates tini; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --gid 1000 bun; \
    useradd --uid 1000 --gid bun --shell /bin/sh --create-home --home-dir /home/bun bun; \
    mkdir -p /home/bun/app; chown bun:bun /home/bun/app
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY bun /usr/local/bin/bun
COPY bun-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN set -eux; \
    ln -s /usr/local/bin/bun /usr/local/bin/bunx; \
    chmod 755 /usr/local/bin/docker-entrypoint.sh; \
    bun --version; su bun -c 'bun --version'
ENV BUN_RUNTIME_TRANSPILER_CACHE_PATH=0 BUN_INSTALL_BIN=/usr/local/bin
WORKDIR /home/bun/app
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["/usr/local/bin/bun"]
