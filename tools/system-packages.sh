#!/usr/bin/env bash
# The Debian packages the example sites and the tests run for real (php-cgi, perl, htpasswd,
# and chromium with its driver for the headless browser test).
# Installs what is missing when we are root and have apt-get; otherwise says what to install.
# Under CI=true the tests fail (never skip) when a program is missing, so this must succeed there.
set -euo pipefail

declare -A PACKAGES=(
  [php-cgi]="php-cgi php-sqlite3"
  [perl]="perl"
  [htpasswd]="apache2-utils"
  [chromium]="chromium chromium-driver"
  [chromedriver]="chromium-driver"
)

missing=()
for program in "${!PACKAGES[@]}"; do
  command -v "$program" >/dev/null 2>&1 || missing+=(${PACKAGES[$program]})
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
else
  echo "warning: missing ${missing[*]}; install them (sudo apt-get install ${missing[*]})," \
       "or the tests that need them are skipped (and fail under CI=true)" >&2
fi
