# Stand-in for the official rabbitmq:3 image, from Debian bookworm's RabbitMQ 3.10 (Erlang 25).
# Same interface: rabbitmq-server in the foreground as rabbitmq (SIGTERM stops it cleanly),
# RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS / RABBITMQ_DEFAULT_VHOST (read by the server
# itself, as with the official image) for the user made on first start, the guest user allowed
# from other hosts as in the official image, logs on stdout, data in /var/lib/rabbitmq (a
# volume; the node is rabbit@HOSTNAME, so give the container a fixed hostname), plugins
# rabbitmq_management (15672) and rabbitmq_prometheus (15692, /metrics) enabled, ports 5672,
# 4369 and 25672; rabbitmq-diagnostics / rabbitmqctl work as root (docker exec, healthchecks).
ARG BASE=bazaar-local/debian:bookworm
FROM ${BASE}
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server; \
    rm -rf /var/lib/apt/lists/*; \
    # no cookie baked into the image: the server makes one on first start, in the volume
    rm -f /var/lib/rabbitmq/.erlang.cookie; \
    ln -sf /var/lib/rabbitmq/.erlang.cookie /root/.erlang.cookie; \
    mkdir -p /etc/rabbitmq/conf.d; \
    printf '%s\n' \
      '# bazaar-local/rabbitmq: as the official image' \
      'loopback_users.guest = false' \
      'listeners.tcp.default = 5672' \
      'management.tcp.port = 15672' \
      'prometheus.tcp.port = 15692' \
      'log.console = true' \
      'log.console.level = info' \
      'log.file = false' \
      > /etc/rabbitmq/rabbitmq.conf; \
    rabbitmq-plugins enable --offline rabbitmq_management rabbitmq_prometheus; \
    rm -f /var/lib/rabbitmq/.erlang.cookie; \
    chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
COPY rabbitmq-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
# as the official image: any --user finds the cookie, CLI tools read it too
ENV HOME=/var/lib/rabbitmq LANG=C.UTF-8 LC_ALL=C.UTF-8
VOLUME /var/lib/rabbitmq
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 4369 5671 5672 15672 15692 25672
CMD ["rabbitmq-server"]
