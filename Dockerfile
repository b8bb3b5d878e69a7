# One image for every Bazaar process: `docker run bazaar <name>` starts the process of the
# service catalog (platform/src/service-catalog.ts) with that name — identity, catalog,
# inventory, cart, orders, payments, notifications or bff.
#
# BUN_IMAGE is the base: the official Bun image at the version setup.sh pins. A machine that
# cannot pull images builds on a local stand-in instead (scripts/containers/build-local-images.sh):
#   docker build --build-arg BUN_IMAGE=bazaar-local/bun:1.4.5 -t bazaar .
ARG BUN_IMAGE=oven/bun:1.4.5

# Stage 1: production packages only, exactly as the lockfile has them. The manifests are copied
# before the sources so this layer is rebuilt only when a manifest or the lockfile changes.
FROM ${BUN_IMAGE} AS packages
WORKDIR /app
COPY package.json bun.lock bunfig.toml ./
# Patches bun applies to dependencies at install (package.json's patchedDependencies).
COPY patches patches
COPY proto/package.json proto/
COPY platform/package.json platform/
# The test kit is a workspace too, so its manifest is needed for the frozen lockfile; its code is not copied.
COPY testkit/package.json testkit/
COPY services/identity/package.json services/identity/
COPY services/catalog/package.json services/catalog/
COPY services/inventory/package.json services/inventory/
COPY services/cart/package.json services/cart/
COPY services/orders/package.json services/orders/
COPY services/payments/package.json services/payments/
COPY services/notifications/package.json services/notifications/
COPY bff/package.json bff/
RUN bun install --frozen-lockfile --production --ignore-scripts

# Stage 2: the runtime. Sources and packages owned by root, read-only to the process; the
# process runs as the base image's unprivileged `bun` user and writes nowhere but /tmp, so the
# container runs with a read-only root filesystem.
FROM ${BUN_IMAGE}
WORKDIR /app
ENV NODE_ENV=production \
    # Bun caches transpiled sources on disk by default; the root filesystem is read-only.
    BUN_RUNTIME_TRANSPILER_CACHE_PATH=0 \
    TMPDIR=/tmp \
    # A container's own network is the boundary: listen on all of its interfaces (the chassis
    # defaults to loopback, for development on a shared machine).
    BIND_HOST=0.0.0.0
COPY --from=packages /app /app
COPY tsconfig.json bunfig.toml ./
COPY proto proto
COPY platform platform
COPY services services
COPY bff bff
USER bun
# Bun is PID 1 (exec form, no shell in between), so `docker stop`'s SIGTERM reaches the
# chassis, which reports NOT_SERVING, drains in-flight calls and exits.
ENTRYPOINT ["bun", "platform/src/run-process.ts"]
CMD ["bff"]
# The command compose and Kubernetes run as a healthcheck: gRPC health on GRPC_PORT, or the
# BFF's /healthz on HTTP_PORT.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 CMD ["bun", "platform/src/health-probe.ts"]
