#!/usr/bin/env bash
# Builds local stand-ins for the Docker images that compose.yaml runs, for machines that can
# reach Debian's package mirror and the npm registry but no image registry:
#
#   bazaar-local/debian:bookworm   debootstrap (minbase) of bookworm, imported with docker import
#   bazaar-local/bun:1.4.5         like oven/bun:1.4.5: the bun binary from npm, user bun (1000)
#   bazaar-local/postgres:15       like postgres: Debian's PostgreSQL 15 with an initdb entrypoint
#   bazaar-local/redis:7           like redis: Debian's Redis 7
#   bazaar-local/rabbitmq:3        like rabbitmq: Debian's RabbitMQ 3 with management + prometheus
#   bazaar-local/prometheus:2      like prom/prometheus: Debian's Prometheus 2
#
# Each image is built FROM bazaar-local/debian:bookworm with deploy/local-images/NAME.Dockerfile
# (apt inside docker build reaches the mirror on the default bridge network here; the script
# checks which network does, bridge or host). The debootstrapped rootfs and the bun package are
# cached in ${XDG_CACHE_HOME:-~/.cache}/bazaar/. Use the images with compose through
# scripts/containers/local-images.env:
#   docker-compose --env-file scripts/containers/local-images.env \
#     -f compose.yaml -f scripts/containers/compose.local.yaml up -d
#
# Usage: scripts/containers/build-local-images.sh [--rebuild] [--refresh-rootfs] [--verify|--verify-only] [IMAGE...]
#   IMAGE          any of: debian bun postgres redis rabbitmq prometheus (default: all of them)
#   --rebuild      build the named images again even if they exist (the debian one from the
#                  cached rootfs tarball; add --refresh-rootfs to debootstrap again). Images
#                  built FROM debian are rebuilt only when named too (or when none is named)
#   --verify       after building, run each image for real and check it (healthcheck command,
#                  a client connecting by name over a user network, docker stop); cleans up after
#   --verify-only  only the checks
# Environment: BAZAAR_DEBIAN_MIRROR overrides the mirror read from the apt sources;
#   BAZAAR_BUILD_NETWORK (bridge|host) skips the probe for the network docker build needs.
# Idempotent: an image that exists is skipped unless --rebuild.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DIR=$ROOT/deploy/local-images
BUN_VERSION=1.4.5 # the pinned one, as in scripts/setup.sh
SUITE=bookworm
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/bazaar
ALL=(debian bun postgres redis rabbitmq prometheus)
declare -A TAG=(
  [debian]=bazaar-local/debian:bookworm
  [bun]=bazaar-local/bun:$BUN_VERSION
  [postgres]=bazaar-local/postgres:15
  [redis]=bazaar-local/redis:7
  [rabbitmq]=bazaar-local/rabbitmq:3
  [prometheus]=bazaar-local/prometheus:2
)

say() { printf '\033[1mlocal-images\033[0m  %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
exists() { docker image inspect "$1" >/dev/null 2>&1; }
size_of() { docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

rebuild=0 refresh_rootfs=0 verify=0 build=1 wanted=()
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=1 ;;
    --refresh-rootfs) refresh_rootfs=1 rebuild=1 ;;
    --verify) verify=1 ;;
    --verify-only) verify=1 build=0 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    -*) die "unknown option $arg (see --help)" ;;
    *) [ -n "${TAG[$arg]:-}" ] || die "unknown image $arg (one of: ${ALL[*]})"; wanted+=("$arg") ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=("${ALL[@]}")
want() { local w; for w in "${wanted[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine is not running (start it: dockerd > /tmp/dockerd.log 2>&1 &)"

# --- the machine's Debian mirror -------------------------------------------------------------
# Reads the apt sources (deb822 *.sources and classic *.list), prints "KIND URI" lines where
# KIND is main (a source of $SUITE), updates ($SUITE-updates) or security ($SUITE-security).
apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    # one stanza per blank-line-separated block; keep Types: deb ones
    awk -v suite="$SUITE" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled !~ /^[Nn][Oo]/) {
          n = split(uris, u, " "); m = split(suites, s, " ")
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) {
            if (s[j] == suite) print "main", u[i]
            else if (s[j] == suite "-updates") print "updates", u[i]
            else if (s[j] == suite "-security" || s[j] == suite "/updates") print "security", u[i]
          }
        }
        types = uris = suites = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:"   { $1 = ""; types = $0 }
      tolower($1) == "uris:"    { $1 = ""; uris = $0 }
      tolower($1) == "suites:"  { $1 = ""; suites = $0 }
      tolower($1) == "enabled:" { enabled = $2 }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    # deb [options] URI SUITE COMPONENT...
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '
      $1 == "deb" {
        if ($3 == suite) print "main", $2
        else if ($3 == suite "-updates") print "updates", $2
        else if ($3 == suite "-security" || $3 == suite "/updates") print "security", $2
      }'
  done
}
SOURCES=$(apt_sources | awk '{ sub(/\/+$/, "", $2); print }' | awk '!seen[$0]++')
MIRROR=${BAZAAR_DEBIAN_MIRROR:-$(awk '$1 == "main" { print $2; exit }' <<<"$SOURCES")}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=$(awk '$1 == "security" { print $2; exit }' <<<"$SOURCES")
UPDATES=$(awk '$1 == "updates" { print $2; exit }' <<<"$SOURCES")
[ -z "$UPDATES" ] || UPDATES=$MIRROR # the same mirror, suite $SUITE-updates

# --- 1. bazaar-local/debian:bookworm ------------------------------------------------------------
# The rootfs is configured on the host (no chroot needed) before it is packed: apt sources on
# the mirror, no services started by package installs, no docs/man/locales installed (as in
# Debian's slim images), apt caches cleaned after each install.
configure_rootfs() {
  local r=$1
  rm -f "$r/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s%s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$MIRROR" "$SUITE" "${UPDATES:+ $SUITE-updates}"
    [ -z "$SECURITY" ] || printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$SECURITY" "$SUITE"
  } >"$r/etc/apt/sources.list.d/debian.sources"
  printf '#!/bin/sh\n# no services start during a docker build (see invoke-rc.d(8))\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  mkdir -p "$r/etc/dpkg/dpkg.cfg.d" "$r/etc/apt/apt.conf.d"
  cat >"$r/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# as in Debian's slim images: no documentation (but the copyright files), manuals or translations
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
  cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
# as in Debian's images: keep no downloaded packages, no translated package lists
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
  find "$r/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$r/usr/share/man/"* "$r/usr/share/info/"* "$r/usr/share/locale/"*
  rm -rf "$r/var/lib/apt/lists/"* "$r/var/cache/apt/"*.bin "$r/var/cache/apt/archives/"*.deb "$r/var/log/"*.log "$r/var/log/apt/"*
  : >"$r/etc/resolv.conf"
  echo localhost >"$r/etc/hostname"
}

build_debian() {
  local tag=${TAG[debian]} key tarball t0
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
  # the tarball depends on the mirror setup and on configure_rootfs: both go into its name
  key=$( { echo "$MIRROR|$UPDATES|$SECURITY"; declare -f configure_rootfs; } | sha256sum | cut -c1-12)
  tarball=$CACHE/debian-$SUITE-minbase-$key.tar
  if [ -s "$tarball" ] && [ $refresh_rootfs -eq 0 ]; then
    say "debian: using the cached rootfs $tarball"
  else
    local rootfs
    mkdir -p "$CACHE"
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'as_root rm -rf "$rootfs"' EXIT
    t0=$(now)
    say "debian: debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes)"
    as_root debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$rootfs" "$MIRROR" \
      >"$CACHE/debootstrap.log" 2>&1 || { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    say "debian: debootstrap done in $(since "$t0")"
    as_root bash -c "$(declare -f configure_rootfs); MIRROR='$MIRROR' UPDATES='$UPDATES' SECURITY='$SECURITY' SUITE='$SUITE' configure_rootfs '$rootfs'"
    as_root tar --numeric-owner -C "$rootfs" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    as_root rm -rf "$rootfs"
    trap - EXIT
    say "debian: cached the rootfs as $tarball ($(du -h "$tarball" | cut -f1))"
  fi
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase $SUITE $MIRROR" \
    "$tarball" "$tag" >/dev/null
}

# --- the network docker build's RUN steps need to reach the mirror --------------------------
BUILD_NETWORK=${BAZAAR_BUILD_NETWORK:-}
build_network() {
  [ -z "$BUILD_NETWORK" ] || return 0
  local hostport host port net
  hostport=${MIRROR#*://}; hostport=${hostport%%/*}
  host=${hostport%%:*}; port=80
  [ "$hostport" = "$host" ] || port=${hostport#*:}
  case "$MIRROR" in https://*) [ "$hostport" != "$host" ] || port=443 ;; esac
  for net in bridge host; do
    if timeout 20 docker run --rm --network "$net" "${TAG[debian]}" \
         bash -c "exec 3<>/dev/tcp/$host/$port" >/dev/null 2>&1; then
      BUILD_NETWORK=$net
      say "docker build: containers on the $net network reach $host:$port, building with --network $net"
      return 0
    fi
    say "docker build: containers on the $net network do not reach $host:$port"
  done
  die "no docker network reaches the mirror $host:$port"
}

# docker build for one image; $2 is the build context (default: deploy/local-images)
docker_build() {
  local name=$1 context=${2:-$DIR}
  build_network
  DOCKER_BUILDKIT=0 docker build --network "$BUILD_NETWORK" --force-rm \
    --build-arg "BASE=${TAG[debian]}" \
    -f "$DIR/$name.Dockerfile" -t "${TAG[$name]}" "$context" >"$CACHE/build-$name.log" 2>&1 \
    || { tail -n 30 "$CACHE/build-$name.log" >&2; die "docker build of $name failed (log: $CACHE/build-$name.log)"; }
}

# --- 2. bazaar-local/bun:1.4.5: the binary from npm ------------------------------------------
# @oven/bun-linux-x64 needs AVX2; @oven/bun-linux-x64-baseline runs on any x86-64.
bun_package() {
  case "$(uname -m)" in
    x86_64) if grep -qw avx2 /proc/cpuinfo; then echo @oven/bun-linux-x64; else echo @oven/bun-linux-x64-baseline; fi ;;
    aarch64) echo @oven/bun-linux-aarch64 ;;
    *) die "no bun build for $(uname -m)" ;;
  esac
}
build_bun() {
  local pkg tgz ctx
  command -v npm >/dev/null || die "npm is not installed"
  pkg=$(bun_package)
  tgz=$CACHE/${pkg#@oven/}-$BUN_VERSION.tgz
  mkdir -p "$CACHE"
  if [ ! -s "$tgz" ]; then
    say "bun: npm pack $pkg@$BUN_VERSION"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$pkg@$BUN_VERSION" >/dev/null)
    mv "$tmp"/*.tgz "$tgz"; rmdir "$tmp"
  fi
  ctx=$(mktemp -d)
  tar -xzf "$tgz" -C "$ctx" package/bin/bun
  mv "$ctx/package/bin/bun" "$ctx/bun"; rm -rf "$ctx/package"
  chmod 755 "$ctx/bun"
  [ "$("$ctx/bun" --version)" = "$BUN_VERSION" ] || die "$pkg@$BUN_VERSION's binary does not say $BUN_VERSION"
  cp "$DIR/bun-entrypoint.sh" "$ctx/"
  # The machine's own extra certificate authorities (a proxy's, say), so that `bun install` in
  # an image built on this base trusts what the machine trusts.
  mkdir "$ctx/extra-ca"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/" 2>/dev/null || true
  docker_build bun "$ctx"
  rm -rf "$ctx"
}

# --- build ------------------------------------------------------------------------------------
if [ $build -eq 1 ]; then
  say "mirror $MIRROR${UPDATES:+ (+ $SUITE-updates)}${SECURITY:+, security $SECURITY}; cache $CACHE"
  mkdir -p "$CACHE"
  for name in "${ALL[@]}"; do
    tag=${TAG[$name]}
    # the others are built FROM the debian image: it is made when missing even if not asked for
    if want "$name" && [ $rebuild -eq 1 ]; then :
    elif exists "$tag"; then
      want "$name" && say "$tag exists ($(size_of "$tag")), skipped (--rebuild builds it again)"
      continue
    elif [ "$name" != debian ] && ! want "$name"; then continue
    fi
    t0=$(now)
    old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    say "building $tag"
    case "$name" in
      debian) build_debian ;;
      bun) build_bun ;;
      *) docker_build "$name" ;;
    esac
    say "built $tag in $(since "$t0") ($(size_of "$tag"))"
    # the image it replaced, unless something still uses it (images built FROM it, containers)
    if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
      docker rmi "$old" >/dev/null 2>&1 || true
    fi
  done
fi

[ $verify -eq 1 ] || exit 0

# --- 4. checks: each image for real ------------------------------------------------------------
NET=bazaar-local-verify-$$
containers=()
cleanup() {
  [ ${#containers[@]} -eq 0 ] || docker rm -f -v "${containers[@]}" >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
}
trap cleanup EXIT
docker network create "$NET" >/dev/null
failures=0
ok() { say "  ok    $*"; }
bad() { say "  FAIL  $*"; failures=$((failures + 1)); }
# start NAME IMAGE [docker run options...] [-- command...]: a container on the test network,
# reachable there by NAME without its bl- prefix (its hostname too)
start() {
  local name=$1 image=$2 opts=(); shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -eq 0 ] || shift
  containers+=("$name")
  docker run -d --name "$name" --hostname "${name#bl-}" --network "$NET" --network-alias "${name#bl-}" \
    "${opts[@]}" "$image" "$@" >/dev/null
}
# wait_healthy NAME SECONDS CMD...: runs CMD in the container until it succeeds
wait_healthy() {
  local name=$1 limit=$2 t0; shift 2
  t0=$(now)
  while ! docker exec "$name" "$@" >/dev/null 2>&1; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$name")" != true ]; then
      docker logs --tail 20 "$name" >&2; bad "$name exited before it was healthy"; return 1
    fi
    if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      docker logs --tail 20 "$name" >&2; bad "$name not healthy after ${limit}s: $*"; return 1
    fi
    sleep 0.5
  done
  ok "$name healthy after $(since "$t0"): $*"
}
# stop_check NAME: docker stop within 10 s, exit code 0 (or the server's normal one)
stop_check() {
  local name=$1 t0 code; t0=$(now)
  docker stop -t 10 "$name" >/dev/null
  code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
  if [ "$code" = 0 ]; then ok "$name stopped by docker stop in $(since "$t0"), exit code 0"
  else docker logs --tail 10 "$name" >&2; bad "$name stopped in $(since "$t0") with exit code $code"; fi
}
check() { local what=$1; shift; if out=$("$@" 2>&1); then ok "$what"; else printf '%s\n' "$out" >&2; bad "$what"; fi; }

t_all=$(now)
for name in "${wanted[@]}"; do
  tag=${TAG[$name]}
  exists "$tag" || { bad "$tag does not exist"; continue; }
  say "checking $tag"
  case "$name" in
    debian)
      check "apt sources and ca-certificates" docker run --rm "$tag" bash -c \
        'grep -q "^URIs:" /etc/apt/sources.list.d/debian.sources && test -s /etc/ssl/certs/ca-certificates.crt'
      ;;
    bun)
      check "bun --version is $BUN_VERSION as user bun, in /home/bun/app" docker run --rm --user bun "$tag" \
        sh -c "test \"\$(bun --version)\" = $BUN_VERSION && test \"\$(id -u):\$(id -g)\" = 1000:1000 && test \"\$PWD\" = /home/bun/app && bunx --version >/dev/null"
      check "bun runs a script (docker run IMAGE -e ...)" docker run --rm "$tag" -e 'if (Bun.version !== "'$BUN_VERSION'") process.exit(1)'
      ;;
    postgres)
      check "refuses to start without POSTGRES_PASSWORD, saying so" bash -c \
        "out=\$(docker run --rm '$tag' 2>&1) && exit 1; grep -q POSTGRES_PASSWORD <<<\"\$out\""
      start bl-postgres "$tag" -e POSTGRES_PASSWORD=verify-secret -e POSTGRES_USER=bazaar
      if wait_healthy bl-postgres 60 pg_isready -h 127.0.0.1 -U bazaar; then
        check "psql from another container connects to postgres:5432 by name with the password" \
          docker run --rm --network "$NET" -e PGPASSWORD=verify-secret "$tag" \
          psql -h postgres -U bazaar -d bazaar -Atc 'select 1'
        check "a wrong password is refused over TCP" bash -c \
          "! docker run --rm --network '$NET' -e PGPASSWORD=wrong '$tag' psql -h postgres -U bazaar -d bazaar -Atc 'select 1' >/dev/null 2>&1"
        check "max_connections is 200, runs as postgres" docker exec bl-postgres bash -c \
          'test "$(psql -U bazaar -d postgres -Atc "show max_connections")" = 200 && test "$(stat -c %U /proc/1)" = postgres'
        check "bun (Bun.sql) connects by name" docker run --rm --network "$NET" "${TAG[bun]}" -e \
          'const sql = new Bun.SQL("postgres://bazaar:verify-secret@postgres:5432/bazaar"); const [r] = await sql`select 41 + 1 as n`; if (r.n !== 42) process.exit(1); await sql.close()'
        docker exec bl-postgres psql -U bazaar -d bazaar -qc 'create table kept (n int); insert into kept values (7)'
        stop_check bl-postgres
        docker start bl-postgres >/dev/null
        if wait_healthy bl-postgres 60 pg_isready -h 127.0.0.1 -U bazaar; then
          check "a restart keeps the data (no second initdb)" bash -c \
            "test \"\$(docker exec bl-postgres psql -U bazaar -d bazaar -Atc 'select n from kept')\" = 7"
          stop_check bl-postgres
        fi
      fi
      ;;
    redis)
      start bl-redis "$tag" -- redis-server --save '' --appendonly no
      if wait_healthy bl-redis 30 redis-cli ping; then
        check "redis-cli from another container connects to redis:6379 by name" bash -c \
          "test \"\$(docker run --rm --network '$NET' '$tag' redis-cli -h redis ping)\" = PONG"
        check "runs as redis" docker exec bl-redis sh -c 'test "$(stat -c %U /proc/1)" = redis'
        stop_check bl-redis
      fi
      ;;
    rabbitmq)
      start bl-rabbitmq "$tag" -e RABBITMQ_DEFAULT_USER=bazaar -e RABBITMQ_DEFAULT_PASS=verify-secret
      # ping answers once the Erlang node is up, seconds before the broker (the rabbit app and
      # its listeners) is; check_port_connectivity waits for the listeners
      if wait_healthy bl-rabbitmq 120 rabbitmq-diagnostics -q ping &&
         wait_healthy bl-rabbitmq 120 rabbitmq-diagnostics -q check_port_connectivity; then
        check "the management API on rabbitmq:15672 takes the default user from another container" \
          docker run --rm --network "$NET" "${TAG[bun]}" -e \
          'const r = await fetch("http://rabbitmq:15672/api/whoami", { headers: { authorization: "Basic " + btoa("bazaar:verify-secret") } }); if (r.status !== 200) { console.error(r.status, await r.text()); process.exit(1) }'
        check "guest is refused (only the default user exists)" docker run --rm --network "$NET" "${TAG[bun]}" -e \
          'const r = await fetch("http://rabbitmq:15672/api/whoami", { headers: { authorization: "Basic " + btoa("guest:guest") } }); if (r.status !== 401) process.exit(1)'
        check "an AMQP 0-9-1 connection with the default user opens (rabbitmq:5672)" docker run --rm --network "$NET" "${TAG[bun]}" -e "$(cat <<'JS'
// the AMQP 0-9-1 handshake by hand: header, Start -> Start-Ok (PLAIN), Tune -> Tune-Ok, Open -> Open-Ok
const frame = (type, ch, payload) => { const b = Buffer.alloc(8 + payload.length); b.writeUInt8(type, 0); b.writeUInt16BE(ch, 1); b.writeUInt32BE(payload.length, 3); payload.copy(b, 7); b.writeUInt8(0xce, 7 + payload.length); return b };
const method = (cls, m, args) => Buffer.concat([Buffer.from([cls >> 8, cls & 255, m >> 8, m & 255]), args]);
const short = (s) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
const long = (b) => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); return Buffer.concat([l, b]) };
let buf = Buffer.alloc(0), step = 0, ok = false;
const timer = setTimeout(() => { console.error("timeout at step", step); process.exit(1) }, 10000);
Bun.connect({ hostname: "rabbitmq", port: 5672, socket: {
  open(s) { s.write(Buffer.from("AMQP\x00\x00\x09\x01", "latin1")) },
  data(s, d) {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 8 && buf.length >= 8 + buf.readUInt32BE(3)) {
      const size = buf.readUInt32BE(3), p = buf.subarray(7, 7 + size); buf = buf.subarray(8 + size);
      const id = p.readUInt16BE(0) + "." + p.readUInt16BE(2);
      if (id === "10.10") s.write(frame(1, 0, method(10, 11, Buffer.concat([long(Buffer.alloc(0)), short("PLAIN"), long(Buffer.from("\0bazaar\0verify-secret")), short("en_US")]))));
      else if (id === "10.30") { const t = Buffer.alloc(8); t.writeUInt16BE(p.readUInt16BE(4)); t.writeUInt32BE(p.readUInt32BE(6), 2); s.write(frame(1, 0, method(10, 31, t))); s.write(frame(1, 0, method(10, 40, Buffer.concat([short("/"), short(""), Buffer.from([0])])))) }
      else if (id === "10.41") { ok = true; s.end(); process.exit(0) }
      else { console.error("unexpected method", id, p.toString("latin1")); process.exit(1) }
      step++;
    }
  },
  close() { if (ok) process.exit(0); console.error("closed at step", step); process.exit(1) },
} });
JS
)"
        check "the prometheus endpoint rabbitmq:15692/metrics answers" docker run --rm --network "$NET" "${TAG[bun]}" -e \
          'const r = await fetch("http://rabbitmq:15692/metrics"); const t = await r.text(); if (r.status !== 200 || !t.includes("rabbitmq_")) process.exit(1)'
        check "runs as rabbitmq, node rabbit@rabbitmq" docker exec bl-rabbitmq bash -c \
          'rabbitmq-diagnostics -q status | grep -q "rabbit@rabbitmq" && ps -eo user=,comm= | grep -q "^rabbitmq *beam"'
        stop_check bl-rabbitmq
        docker start bl-rabbitmq >/dev/null
        if wait_healthy bl-rabbitmq 120 rabbitmq-diagnostics -q check_port_connectivity; then
          check "a restart on the same volume and hostname keeps the default user" bash -c \
            "docker exec bl-rabbitmq rabbitmqctl -q list_users | grep -q '^bazaar'"
          stop_check bl-rabbitmq
        fi
      fi
      ;;
    prometheus)
      start bl-prometheus "$tag"
      # Debian's promtool 2.42 has no `check healthy`: the image's /usr/local/bin/promtool adds it
      if wait_healthy bl-prometheus 60 promtool check healthy --url=http://127.0.0.1:9090; then
        check "busybox wget -q -O /dev/null http://127.0.0.1:9090/-/ready (as in the official image)" \
          docker exec bl-prometheus wget -q -O /dev/null http://127.0.0.1:9090/-/ready
        check "promtool check healthy fails for a port nothing listens on" bash -c \
          "! docker exec bl-prometheus promtool check healthy --url=http://127.0.0.1:9 >/dev/null 2>&1"
        check "promtool query instant http://localhost:9090 up (the other healthcheck both images have)" \
          docker exec bl-prometheus promtool query instant http://localhost:9090 up
        check "prometheus:9090/-/ready answers another container" docker run --rm --network "$NET" "${TAG[bun]}" -e \
          'const r = await fetch("http://prometheus:9090/-/ready"); if (r.status !== 200) process.exit(1)'
        check "runs as nobody" docker exec bl-prometheus sh -c 'test "$(id -un)" = nobody && test "$(stat -c %U /proc/1)" = nobody'
        stop_check bl-prometheus
      fi
      ;;
  esac
done
say "checks done in $(since "$t_all"): $failures failed"
[ $failures -eq 0 ]
