#!/usr/bin/env bash
# Installs what the benchmarks drive: wrk (load), nginx and php-fpm (peers) and php-cgi (gateway's php
# handler runs it), from Debian's packages. php-fpm is only run by bench/php.py, never as a service.
set -euo pipefail
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v taskset >/dev/null || missing+=(util-linux)
command -v php-cgi >/dev/null || missing+=(php-cgi)
command -v php-fpm >/dev/null || compgen -G '/usr/sbin/php-fpm*' >/dev/null || missing+=(php-fpm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y "${missing[@]}" >/dev/null
  else
    echo "bench needs: ${missing[*]} (apt-get install them as root)" >&2
    exit 1
  fi
fi
