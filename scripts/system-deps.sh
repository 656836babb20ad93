#!/usr/bin/env bash
# Debian packages the test suite needs. Installed only when running as root and only
# those missing; `apt-get update` runs once, and only if something must be installed.
set -euo pipefail

PACKAGES=(
    bubblewrap   # sandboxed task workers (CPU sharing)
    redis-tools  # redis-cli against the Redis-protocol front of the memory store
    chromium     # the dashboard's browser tests (Playwright drives /usr/bin/chromium)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
