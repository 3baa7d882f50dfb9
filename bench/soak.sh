#!/usr/bin/env bash
# Soak: the full test suite N times in a row beside a CPU load, as issue 11 asked
# ("10 consecutive full-suite runs with two busy loops; does the browser hang recur?").
#
#   bash bench/soak.sh [RUNS=10] [BUSY_LOOPS=2]
#
# Run from a checkout where `bash scripts/install.sh --dev` has been run. Each run starts
# BUSY_LOOPS shell busy loops, runs the README's test command (`.venv/bin/python -m pytest`,
# quiet; pyproject's -ra names failures) under a one-hour cap, stops the loops and appends one line to
# runs/soak/summary.txt: rc, minutes, pytest's last line and how many times Chromium's
# ERR_CONTENT_LENGTH_MISMATCH (the old hang's symptom) appears in the log. A file
# runs/soak/pause holds the loop between runs. Full logs: runs/soak/run<i>.log.
set -u
RUNS=${1:-10}
LOOPS=${2:-2}
cd "$(dirname "$0")/.."
OUT=runs/soak
mkdir -p "$OUT"
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
for i in $(seq 1 "$RUNS"); do
  while [ -e "$OUT/pause" ]; do sleep 10; done
  pids=()
  for _ in $(seq 1 "$LOOPS"); do ( while :; do :; done ) & pids+=($!); done
  start=$(date +%s)
  timeout 3600 .venv/bin/python -m pytest -q -p no:cacheprovider > "$OUT/run$i.log" 2>&1
  rc=$?
  [ ${#pids[@]} -gt 0 ] && { kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null; }
  secs=$(( $(date +%s) - start ))
  mismatch=$(grep -c ERR_CONTENT_LENGTH_MISMATCH "$OUT/run$i.log")
  printf 'run %s commit %s started %s rc %s %d:%02d mismatch %s | %s\n' "$i" \
    "$(git rev-parse --short HEAD)" "$(date -d "@$start" +%FT%H:%M)" "$rc" $((secs / 60)) $((secs % 60)) \
    "$mismatch" "$(tail -1 "$OUT/run$i.log")" >> "$OUT/summary.txt"
done
