#!/bin/sh
# As oven/bun's: `docker run IMAGE run x.ts` or `docker run IMAGE -e '...'` means bun ARGS;
# a first argument that is a command on PATH runs as it is.
set -e
if [ "${1#-}" != "$1" ] || [ -z "$(command -v "$1" 2>/dev/null)" ]; then
  set -- /usr/local/bin/bun "$@"
fi
exec "$@"
