#!/bin/sh
# promtool of bazaar-local/prometheus (deploy/local-images/prometheus.Dockerfile), first on PATH:
# Debian bookworm's promtool is 2.42, which lacks `promtool check healthy` and `check ready`
# (added in 2.43, there in the official images), the healthcheck compose.yaml uses. This adds
# those two with busybox wget (GET URL/-/healthy or URL/-/ready, exit 0 when it answers 200);
# everything else goes to Debian's promtool.
if [ "$1" = check ] && { [ "$2" = healthy ] || [ "$2" = ready ]; }; then
  what=$2 url=http://localhost:9090
  shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --url=*) url=${1#--url=} ;;
      --url) url=$2; shift ;;
      *) echo "promtool check $what: only --url is supported here (bazaar-local shim), not $1" >&2; exit 2 ;;
    esac
    shift
  done
  # (no -T: this busybox wget crashes with it; the healthcheck has its own timeout)
  if body=$(timeout 10 wget -q -O - "${url%/}/-/$what" 2>&1); then
    printf '%s\n' "$body"
    exit 0
  fi
  printf '  FAILED: %s/-/%s: %s\n' "${url%/}" "$what" "$body" >&2
  exit 1
fi
exec /usr/bin/promtool "$@"
