#!/usr/bin/env bash
# [tool.uv] override-dependencies exercised offline (no GPU needed; see docs/gpu-evidence.md).
#
#     bash tests/gpu/override_demo.sh BASE_PY UV
#
# BASE_PY: a Python whose own site-packages hold torch (the image's python3); UV: a uv binary.
# The project depends on "needs-torch", a local wheel that requires torch, triton and
# torchvision. With the role's overrides, `_venv_builder.py build` resolves it offline and the
# venv keeps the system torch; without them, uv must find a torch of its own and, offline, fails.
set -uo pipefail
BASE_PY=$1
UV=$(readlink -f "$2")   # absolute: the builder runs uv from the project directory
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPT=$REPO/plugins/module_utils/_venv_builder.py
WORK=$(mktemp -d /tmp/override-demo.XXXXXX)
export UV_OFFLINE=1 UV_CACHE_DIR=$WORK/uv-cache UV_NO_PROGRESS=1 PYTHONUNBUFFERED=1
x() {
  {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  } >&2
  "$@"
}
PYVER=$("$BASE_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
x "$BASE_PY" -c 'import torch; print("system torch", torch.__version__, torch.__file__)'

# A pure-Python wheel that requires what the image provides.
mkdir -p "$WORK/needs-torch/needs_torch"
cat >"$WORK/needs-torch/pyproject.toml" <<'EOF'
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "needs-torch"
version = "0.1.0"
dependencies = ["torch>=2.0", "triton>=3.0", "torchvision>=0.20"]
EOF
echo 'import torch  # noqa: F401' >"$WORK/needs-torch/needs_torch/__init__.py"
x "$BASE_PY" -m pip wheel -q --no-build-isolation --no-deps -w "$WORK/wheels" "$WORK/needs-torch"
WHEEL=$(ls "$WORK"/wheels/needs_torch-*.whl)

project() {  # project DIR OVERRIDES(yes|no)
  mkdir -p "$1"
  {
    printf '[project]\nname = "override-demo"\nversion = "0.1.0"\n'
    printf 'requires-python = "==%s.*"\ndependencies = [\n    "needs-torch",\n]\n\n[tool.uv]\n' "$PYVER"
    if [ "$2" = yes ]; then
      printf '# The image provides these builds; uv must never install its own.\n'
      printf 'override-dependencies = [\n'
      printf '    "%s; python_version < '"'0'"'",\n' torch triton torchvision
      printf ']\n'
    fi
    printf '\n[tool.uv.sources]\nneeds-torch = { path = "%s" }\n' "$WHEEL"
  } >"$1/pyproject.toml"
  echo "+ cat $1/pyproject.toml"
  cat "$1/pyproject.toml"
}

for overrides in yes no; do
  printf '\n========== overrides: %s\n' "$overrides"
  P=$WORK/project-$overrides
  project "$P" "$overrides"
  x "$BASE_PY" "$SCRIPT" build --project "$P" --uv "$UV" --stamp '{"image_id": "override-demo"}' >"$WORK/build-$overrides.json"
  echo "build exit status: $?"
  "$BASE_PY" -m json.tool --sort-keys "$WORK/build-$overrides.json"
  if [ -e "$P/.venv" ]; then
    echo "+ ls $P/.venv/lib/python$PYVER/site-packages"
    ls "$P/.venv/lib/python$PYVER/site-packages"
    x "$P/.venv/bin/python" -c 'import needs_torch, torch; print("needs_torch imports; torch", torch.__version__, torch.__file__)'
  fi
done
