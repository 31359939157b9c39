#!/usr/bin/env bash
# Install the Debian packages the portal needs, only those that are missing.
#   scripts/ensure-system-packages.sh run   # WeasyPrint libraries + Cyrillic fonts
#   scripts/ensure-system-packages.sh test  # the above + chromium, postgresql, poppler-utils, redis-server, zbar-tools, npm
#   scripts/ensure-system-packages.sh bench # wrk, the HTTP load generator of bench/http.py
# Called by the Makefile (which keeps a stamp so the check runs once).
set -euo pipefail

mode="${1:-run}"
case "$mode" in
  run|test|bench) ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core fonts-dejavu-extra)
if [ "$mode" = test ]; then
  packages+=(chromium poppler-utils redis-server zbar-tools)
fi
if [ "$mode" = bench ]; then
  packages=()
  command -v wrk >/dev/null 2>&1 || packages+=(wrk)
fi

missing=()
is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

for pkg in "${packages[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

# python3 -m venv needs ensurepip (Debian's system python ships it separately).
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi

if [ "$mode" = test ]; then
  # PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/<ver>/bin.
  if ! is_installed postgresql && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(postgresql)
  fi
  # npm fetches htmx for the browser tests; Node may come from elsewhere than Debian.
  if ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
  fi
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "Installing missing system packages: ${missing[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not found: please install ${missing[*]} by hand" >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "not root and no sudo: please install ${missing[*]} by hand" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
