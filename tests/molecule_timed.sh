#!/usr/bin/env bash
# Runs molecule scenarios stage by stage and prints each stage's time, so CI logs show
# where the time goes: [timing] molecule <scenario> <stage>: N s
# Usage: tests/molecule_timed.sh SCENARIO...
set -euo pipefail
status=0
for scenario in "$@"; do
  scenario_start=$(date +%s)
  molecule destroy -s "$scenario" >/dev/null
  for stage in create prepare converge idempotence verify; do
    start=$(date +%s)
    if ! molecule "$stage" -s "$scenario"; then
      echo "[timing] molecule $scenario $stage: FAILED after $(( $(date +%s) - start )) s"
      status=1
      break
    fi
    echo "[timing] molecule $scenario $stage: $(( $(date +%s) - start )) s"
  done
  molecule destroy -s "$scenario" >/dev/null
  echo "[timing] molecule $scenario total: $(( $(date +%s) - scenario_start )) s"
  [ "$status" -eq 0 ] || exit "$status"
done
