#!/usr/bin/env bash
# Local install from the same files a Hugging Face Space is built from: the Debian
# packages in packages.txt, then `pip install -r requirements.txt` into ./.venv
# (idempotent). With --dev, requirements-dev.txt (the test tools) and Debian's Chromium
# for the browser tests. No model weights are downloaded here: the metrics fetch their
# parameters on first use (metrics/fetch.py), the models come from the hub when used.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

# packages.txt: one Debian package per line, as the Hub reads it.
apt_pkgs=$(tr -s ' \t\r' '\n' < packages.txt | grep -v '^$' | tr '\n' ' ')
[ $dev = 1 ] && apt_pkgs="$apt_pkgs chromium chromium-driver"
missing=""
for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "please install with your package manager:$missing" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
req=requirements.txt
[ $dev = 1 ] && req=requirements-dev.txt
.venv/bin/pip install -q --disable-pip-version-check -r "$req"
