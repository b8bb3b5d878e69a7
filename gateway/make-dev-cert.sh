#!/usr/bin/env bash
# Makes the gateway's development TLS certificate (gateway/certs/gateway.{crt,key}): a
# self-signed certificate for localhost, 127.0.0.1 and the gateway's container name, valid a
# year. Browsers will warn about it; that is what a development certificate is. Keeps an
# existing certificate unless given --force. The key never leaves this machine (certs/ is
# ignored by git).
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/certs"
if [ -s "$dir/gateway.crt" ] && [ -s "$dir/gateway.key" ] && [ "${1:-}" != "--force" ]; then
  echo "gateway certificate: $dir/gateway.crt (exists; --force makes a new one)"
  exit 0
fi
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=localhost/O=Bazaar development" \
  -addext "subjectAltName=DNS:localhost,DNS:gateway,IP:127.0.0.1" \
  -keyout "$dir/gateway.key" -out "$dir/gateway.crt" 2>/dev/null
# Envoy runs as its own unprivileged user inside the container and must read the key.
chmod 644 "$dir/gateway.crt" "$dir/gateway.key"
echo "gateway certificate: $dir/gateway.crt (new, valid 365 days)"
