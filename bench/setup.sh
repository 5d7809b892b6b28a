#!/usr/bin/env bash
# Installs what the benchmarks drive: wrk (load) and nginx (a peer), from Debian's packages.
set -euo pipefail
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v taskset >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y "${missing[@]}" >/dev/null
  else
    echo "bench needs: ${missing[*]} (apt-get install them as root)" >&2
    exit 1
  fi
fi
