#!/usr/bin/env bash
# Runs molecule scenarios stage by stage and prints each stage's time, so CI logs show
# where the time goes: [timing] molecule <scenario> <stage>: N s
# The stages are the scenario's own test_sequence (molecule.yml), destroy aside.
# Usage: tests/molecule_timed.sh SCENARIO...
set -euo pipefail
status=0
for scenario in "$@"; do
  scenario_start=$(date +%s)
  stages=$(python3 -c 'import sys, yaml
seq = yaml.safe_load(open(sys.argv[1]))["scenario"]["test_sequence"]
print(" ".join(s for s in seq if s != "destroy"))' "molecule/$scenario/molecule.yml")
  molecule destroy -s "$scenario" >/dev/null
  for stage in $stages; do
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
