#!/bin/bash
# Before/after: no-op and check-mode runs of site.yml with two trees' roles, alternating on one
# simulated Spark of the test bed (converged first by this checkout's roles).
#
#   git worktree add /tmp/wt-old <commit>
#   bench/before_after.sh /tmp/wt-old [RUNS]
#
# Prints one line per run: wall seconds and control-node CPU (user + sys of ansible-playbook and
# its children: its forks and every `docker exec` client), and the host's recap line.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: bench/before_after.sh OLD_TREE [RUNS]}
RUNS=${2:-2}
SPARK=sparkfleet-perf-1
WORK=$(mktemp -d)
export SPARKFLEET_TESTBED_STATE=${SPARKFLEET_TESTBED_STATE:-$REPO/.testbed}
trap 'docker rm -f $SPARK >/dev/null 2>&1; rm -rf "$WORK"' EXIT
"$REPO/.venv/bin/python" "$REPO/tests/testbed/testbed.py" spark up $SPARK >/dev/null
mkdir -p "$WORK/inv" && ln -s "$REPO/tests/testbed/inventory/group_vars" "$WORK/inv/group_vars"
cat > "$WORK/inv/hosts.yml" <<YML
sparks:
  hosts:
    $SPARK:
      ansible_connection: community.docker.docker
      sparkfleet_testbed_state: $SPARKFLEET_TESTBED_STATE
YML
run() { # TREE LABEL [ansible-playbook args]
  local tree=$1 label=$2 rc recap wall user sys
  shift 2
  (cd "$tree" && /usr/bin/time -f "%e %U %S" -o "$WORK/time" env PATH="$REPO/.venv/bin:$PATH" ANSIBLE_NOCOLOR=1 \
    ansible-playbook -i "$WORK/inv/hosts.yml" site.yml "$@" > "$WORK/log" 2>&1)
  rc=$?
  recap=$(grep -E "^$SPARK " "$WORK/log" | tail -1 | tr -s ' ')
  read -r wall user sys < "$WORK/time"
  echo "$label rc=$rc wall=$wall cpu=$(python3 -c "print(round($user + $sys, 2))") :: $recap"
}
run "$REPO" first-converge-after
for _ in $(seq "$RUNS"); do
  run "$OLD" noop-before
  run "$REPO" noop-after
done
run "$OLD" check-before --check --diff
run "$REPO" check-after --check --diff
