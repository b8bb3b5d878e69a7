# Stand-in for prom/prometheus (v2), from Debian bookworm's Prometheus 2.
# Same interface: ENTRYPOINT /bin/prometheus with the official default arguments, promtool on
# PATH, /etc/prometheus/prometheus.yml (a minimal one scraping prometheus itself), data in
# /prometheus (a volume, the working directory), port 9090, runs as nobody; busybox's wget on
# PATH, as in the official (busybox-based) image. Debian's promtool is 2.42, without
# `promtool check healthy|ready` (2.43+): /usr/local/bin/promtool adds those two (with wget)
# in front of it, so `promtool check healthy --url=http://127.0.0.1:9090` works as a
# healthcheck in both images, as does `wget -q -O /dev/null http://127.0.0.1:9090/-/healthy`.
ARG BASE=bazaar-local/debian:bookworm
FROM ${BASE}
RUN set -eux; \
    # the web UI's moment-timezone dependency comes with 214 MB of per-zone data it does not use
    echo 'path-exclude /usr/share/javascript/moment-timezone/data/*' > /etc/dpkg/dpkg.cfg.d/no-moment-timezone-data; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus busybox; \
    ln -s /bin/busybox /usr/local/bin/wget; \
    rm -rf /var/lib/apt/lists/*; \
    # Debian's own service setup is not used: no defaults file, no data in /var/lib/prometheus
    rm -rf /etc/default/prometheus /var/lib/prometheus/*; \
    mkdir -p /prometheus /etc/prometheus; \
    chown -R nobody:nogroup /prometheus /etc/prometheus; \
    test -x /bin/prometheus; prometheus --version; promtool --version; wget --help 2>&1 | head -n1
COPY --chown=nobody:nogroup prometheus.yml /etc/prometheus/prometheus.yml
COPY prometheus-promtool.sh /usr/local/bin/promtool
RUN chmod 755 /usr/local/bin/promtool; promtool --version >/dev/null
USER nobody
WORKDIR /prometheus
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
