#!/usr/bin/env bash
# GPU evidence for plugins/module_utils/_venv_builder.py (see docs/gpu-evidence.md).
#
# Sent as-is to a machine with one NVIDIA GPU, CUDA torch installed, nvcc, no network and
# no Docker, and run from the repository root there:
#
#     set -o pipefail; PYTHONUNBUFFERED=1 bash tests/gpu/run_evidence.sh 2>&1 | tee "$OUT/evidence.log"
#
# with the uv binary carried in .gpu-carry/uv (and, only in case the base interpreter has no
# Python headers, .gpu-carry/py312-include.tar.gz). It shows, with that machine's Python:
#   1. `build`: a uv venv with system site packages whose [tool.uv] overrides keep the CUDA
#      torch (torch.cuda.is_available() is True inside the venv, torch resolves outside it);
#   2. `build-wheel`: a small CUDA extension (tests/gpu/cuda_ext) built with
#      TORCH_CUDA_ARCH_LIST set from the GPU's own compute capability, that loads in the venv
#      and computes what torch computes; cuobjdump lists only that GPU's sm;
#   3. `probe` before and after, and `build --wheel --verify-import` (the role's path).
#
# The torch of the lent machine lives in a venv (/opt/torch/.venv), not in the system
# site-packages the NGC image has, and a venv's "system site-packages" are its BASE
# interpreter's. To reproduce the NGC layout, step 1 adds a .pth file to the base
# interpreter's site-packages that names the torch venv's site-packages, and the builder
# then runs with the base interpreter, as the image's python3 would be.
#
# Every command is echoed ("+ ...") before it runs; the script goes on after a failed step so
# the log shows as much as possible, and ends with a PASS/FAIL summary (exit 1 on any FAIL).
set -uo pipefail
export PYTHONUNBUFFERED=1

REPO=$(pwd)
OUT=${OUT:-/tmp/gpu-evidence-out}
WORK=${EVIDENCE_WORK:-/tmp/gpu-evidence}
TORCH_PY=${TORCH_PY:-$(command -v python3)}   # the interpreter that has torch
SCRIPT=$REPO/plugins/module_utils/_venv_builder.py
CARRY=$REPO/.gpu-carry
# The broad list NGC PyTorch images set (docs: DESIGN "Facts"); exported before
# build-wheel so that a builder that used the environment's list would show it.
NGC_ARCH_LIST="8.0 8.6 9.0 10.0 11.0 12.0+PTX"

mkdir -p "$OUT"
rm -rf "$WORK"
mkdir -p "$WORK"

declare -a SUMMARY=()
check() {  # check NAME COMMAND...: record PASS/FAIL of a command's exit status
  local name=$1
  shift
  if "$@"; then SUMMARY+=("PASS  $name"); else SUMMARY+=("FAIL  $name"); fi
}
x() {  # echo a command (to stderr, so `x cmd >file` keeps file clean), then run it
  {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  } >&2
  "$@"
}
step() { printf '\n========== %s\n' "$*"; }
pretty() { "$TORCH_PY" -m json.tool --sort-keys "$1" 2>/dev/null || cat "$1"; }

step "0. The machine"
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=$PATH:/usr/local/cuda/bin
fi
x uname -srm
x nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
x nvcc --version
echo "+ command -v nvcc gcc cuobjdump ninja; gcc --version | head -n 1"
command -v nvcc gcc cuobjdump ninja
gcc --version | head -n 1
CUDA_ROOT=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
echo "+ ls $CUDA_ROOT/lib64/libcudart.so* $CUDA_ROOT/include/cuda_runtime_api.h"
ls "$CUDA_ROOT"/lib64/libcudart.so* "$CUDA_ROOT/include/cuda_runtime_api.h"
echo "+ env | grep -E '^(PATH|VIRTUAL_ENV|PYTHON[A-Z]*|TORCH_CUDA_ARCH_LIST|CUDA_HOME|UV_[A-Z_]*)='"
env | grep -E '^(PATH|VIRTUAL_ENV|PYTHON[A-Z]*|TORCH_CUDA_ARCH_LIST|CUDA_HOME|UV_[A-Z_]*)=' | sort
# Nothing from the caller's environment may put torch on sys.path for us.
x unset PYTHONPATH VIRTUAL_ENV PYTHONHOME
x "$TORCH_PY" -c 'import sys, torch; print(sys.executable, sys.prefix, sys.base_prefix); print(torch.__version__, "cuda", torch.version.cuda, torch.__file__, torch.cuda.is_available())'
echo "+ cat $(dirname "$(dirname "$TORCH_PY")")/pyvenv.cfg"
cat "$(dirname "$(dirname "$TORCH_PY")")/pyvenv.cfg" 2>/dev/null || echo "(no pyvenv.cfg: $TORCH_PY is not a venv's)"
GPU_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' ')
echo "GPU compute capability: $GPU_CAP"

# uv, carried (no network here).
UV=$WORK/uv
x cp "$CARRY/uv" "$UV"
x chmod 755 "$UV"
x "$UV" --version
export UV_OFFLINE=1 UV_CACHE_DIR=$WORK/uv-cache UV_NO_PROGRESS=1

# The project, as roles/workspace/templates/pyproject.toml.j2 renders it with no extra
# dependencies and xformers off (requires-python: "==<image python>.*", as the role sets it).
PYVER=$("$TORCH_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
make_project() {
  mkdir -p "$1"
  cat >"$1/pyproject.toml" <<EOF
# Rendered like roles/workspace/templates/pyproject.toml.j2 (no extra dependencies, xformers off).
[project]
name = "gpu-evidence"
version = "0.1.0"
requires-python = "==$PYVER.*"
dependencies = [
]

[tool.uv]
# The image provides these builds; uv must never install its own.
override-dependencies = [
    "torch; python_version < '0'",
    "triton; python_version < '0'",
    "torchvision; python_version < '0'",
]
EOF
}

step "1a. Negative control: the builder run by the torch VENV's python (before any .pth)"
# uv bases a venv made from a venv's python on that venv's base interpreter, whose site-packages
# do not hold torch: the builder's verification must refuse the result.
NEG=$WORK/negative-control
make_project "$NEG"
x "$TORCH_PY" "$SCRIPT" build --project "$NEG" --uv "$UV" --stamp '{"image_id": "negative-control"}' >"$OUT/negative-control.json"
echo "negative control exit status: $?"
pretty "$OUT/negative-control.json"

step "1b. Make the base interpreter see the torch venv's site-packages, like NGC's system python"
TORCH_SITE=$("$TORCH_PY" -c 'import os, torch; print(os.path.dirname(os.path.dirname(os.path.realpath(torch.__file__))))')
BASE_PY=$("$TORCH_PY" -c '
import os, sys
name = "python%d.%d" % sys.version_info[:2]
for candidate in (os.path.join(sys.base_prefix, "bin", name), getattr(sys, "_base_executable", "")):
    if candidate and os.path.isfile(candidate):
        print(candidate)
        break
')
echo "torch venv site-packages: $TORCH_SITE"
echo "base interpreter:         $BASE_PY"
x "$BASE_PY" -c 'import sys; print("prefix", sys.prefix, "base_prefix", sys.base_prefix, "is a venv:", sys.prefix != sys.base_prefix)'
echo "+ $BASE_PY -c 'import torch'    # before: expected to fail"
"$BASE_PY" -c 'import torch' 2>&1 | tail -n 1
BASE_SITE=$("$BASE_PY" -c 'import site; print(site.getsitepackages()[0])')
PTH=$BASE_SITE/sparkfleet-gpu-evidence-image-torch.pth
LAYOUT=pth
echo "+ mkdir -p $BASE_SITE && echo $TORCH_SITE > $PTH"
if mkdir -p "$BASE_SITE" && echo "$TORCH_SITE" >"$PTH"; then
  x cat "$PTH"
else
  # Fallback (weaker: PYTHONPATH reaches the venv's python too, so step 2's "resolves outside
  # the venv" no longer proves that system site-packages carried it).
  LAYOUT=pythonpath
  echo "!! $BASE_SITE is not writable: falling back to PYTHONPATH=$TORCH_SITE"
  export PYTHONPATH=$TORCH_SITE
fi
echo "layout: $LAYOUT"
x "$BASE_PY" -c 'import sys, torch; print(torch.__version__, torch.__file__, "cuda", torch.cuda.is_available()); print("\n".join(sys.path))'
echo "+ $BASE_PY -m pip --version; import setuptools, wheel; which ninja"
"$BASE_PY" -m pip --version
"$BASE_PY" -c 'import setuptools, wheel; print("setuptools", setuptools.__version__, setuptools.__file__); print("wheel", wheel.__version__)'
command -v ninja || echo "ninja: not on PATH (torch falls back to a slower non-ninja build)"
INCLUDE=$("$BASE_PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if [ -f "$INCLUDE/Python.h" ]; then
  echo "Python headers: $INCLUDE/Python.h present"
else
  echo "!! Python headers missing ($INCLUDE/Python.h): using the carried libpython$PYVER-dev headers"
  x mkdir -p "$WORK/pyinclude"
  x tar -C "$WORK/pyinclude" -xzf "$CARRY/py312-include.tar.gz"
  export CPATH=$WORK/pyinclude/include/python$PYVER:$WORK/pyinclude/include
  echo "CPATH=$CPATH"
fi

P=$WORK/project
make_project "$P"
echo "+ cat $P/pyproject.toml"
cat "$P/pyproject.toml"

step "2. probe before any build"
x "$BASE_PY" "$SCRIPT" probe --project "$P" >"$OUT/probe-before.json"
pretty "$OUT/probe-before.json"

step "3. build: uv venv --system-site-packages + uv sync (offline), verify, stamp, swap"
STAMP1='{"image_id": "sha256:none-device-run-without-docker", "repo_digest": null, "wheels": []}'
x "$BASE_PY" "$SCRIPT" build --project "$P" --uv "$UV" --stamp "$STAMP1" >"$OUT/build-1.json"
echo "build exit status: $?"
pretty "$OUT/build-1.json"
check "build: venv built, verified and swapped" "$BASE_PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r.get("changed") and not r.get("failed") else 1)' "$OUT/build-1.json"
x ls -la "$P" "$P/.venvs"
x cat "$P/.venv/pyvenv.cfg"
echo "+ ls $P/.venv/lib/python$PYVER/site-packages    # the venv's own packages: no torch here"
ls "$P/.venv/lib/python$PYVER/site-packages"

step "4. torch inside the venv"
VENV_PY=$P/.venv/bin/python
x "$VENV_PY" -c "import torch, sys; print(sys.prefix, torch.__file__, torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0), torch.cuda.get_device_capability())"
check "venv: torch.cuda.is_available() and torch outside the venv" "$VENV_PY" -c '
import os, sys, torch
inside = os.path.realpath(torch.__file__).startswith(os.path.realpath(sys.prefix) + os.sep)
x = torch.ones(1024, device="cuda") * 2
sys.exit(0 if torch.cuda.is_available() and not inside and float(x.sum()) == 2048.0 else 1)'

step "5. probe after the build (stamp, interpreter_ok)"
x "$BASE_PY" "$SCRIPT" probe --project "$P" >"$OUT/probe-after.json"
pretty "$OUT/probe-after.json"
check "probe: interpreter_ok and stamp present" "$BASE_PY" -c 'import json,sys; v=json.load(open(sys.argv[1]))["venv"]; sys.exit(0 if v["interpreter_ok"] and v["managed"] and v["stamp"] else 1)' "$OUT/probe-after.json"

step "6. build-wheel: the CUDA extension, arch list from nvidia-smi (image's list in the env)"
x cp -r "$REPO/tests/gpu/cuda_ext" "$WORK/cuda_ext"
x export TORCH_CUDA_ARCH_LIST="$NGC_ARCH_LIST"
WHEELS=$WORK/wheels
start=$(date +%s)
# PIP_VERBOSE=1 only makes pip show the compiler command lines (the -gencode flags).
x env PIP_VERBOSE=1 "$BASE_PY" "$SCRIPT" build-wheel --source "$WORK/cuda_ext" --out "$WHEELS" \
  --arch-list "$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader)" >"$OUT/build-wheel.json"
echo "build-wheel exit status: $? ($(($(date +%s) - start)) s)"
unset TORCH_CUDA_ARCH_LIST
pretty "$OUT/build-wheel.json"
WHEEL=$("$BASE_PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("wheel", ""))' "$OUT/build-wheel.json")
check "build-wheel: a wheel was built" test -f "$WHEEL"
# (no unzip on the lent machine: Python's zipfile lists and unpacks the wheel)
x "$BASE_PY" -m zipfile -l "$WHEEL"
x "$BASE_PY" -m zipfile -e "$WHEEL" "$WORK/unpacked"
SO=$(find "$WORK/unpacked" -name '_C*.so' | head -n 1)
x cuobjdump --list-elf "$SO"
x cuobjdump --list-ptx "$SO"
PTX=$(cuobjdump --list-ptx "$SO" 2>/dev/null)
echo "PTX entries in the .so: ${PTX:-none}"
SMS=$(cuobjdump --list-elf "$SO" 2>/dev/null | grep -o 'sm_[0-9]*a\?' | sort -u | tr '\n' ' ')
WANT="sm_${GPU_CAP//./}"
echo "sm list in the .so: $SMS  (this GPU: $WANT)"
check "cuobjdump: only $WANT in the .so" test "$SMS" = "$WANT "
check "cuobjdump: no PTX in the .so" test -n "$SO" -a -z "$PTX"

# The extension test, run with a venv's python from / (so the source tree cannot be imported).
cat >"$WORK/ext_test.py" <<'EOF'
import os, sys
import torch
import sparkfleet_cuda_ext as ext
print("python   ", sys.executable, "prefix", sys.prefix)
print("torch    ", torch.__version__, os.path.realpath(torch.__file__))
print("extension", os.path.realpath(ext.__file__))
torch.manual_seed(0)
a = 2.5
x = torch.randn(1 << 20, device="cuda")
y = torch.randn_like(x)
out = ext.saxpy(a, x, y)
ref = a * x + y  # torch's own kernels
torch.cuda.synchronize()
diff = (out - ref).abs().max().item()
print("saxpy(2.5, x, y) on", out.device, out.dtype, tuple(out.shape), "| first 3:", out[:3].tolist())
print("a*x + y by torch                                        | first 3:", ref[:3].tolist())
print("max |ext - torch| =", diff, "| bitwise equal:", torch.equal(out, ref),
      "| allclose:", torch.allclose(out, ref, rtol=1e-6, atol=1e-6))
arch = ext.compiled_arch()
cap = torch.cuda.get_device_capability()
print("__CUDA_ARCH__ of the kernel that ran:", arch, "| device capability:", cap)
ok = torch.allclose(out, ref, rtol=1e-6, atol=1e-6) and arch == cap[0] * 100 + cap[1] * 10
print("EXTENSION TEST", "OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
EOF

step "7. install the wheel into the venv and run it"
x "$UV" pip install --python "$VENV_PY" --no-deps --offline "$WHEEL"
x cd /
check "extension in the venv (uv pip install): result matches torch, ran as $WANT" x "$VENV_PY" "$WORK/ext_test.py"
x cd "$REPO"

step "8. the role's path: build again with --wheel and --verify-import, then probe"
WHEEL_NAME=$(basename "$WHEEL")
STAMP2="{\"image_id\": \"sha256:none-device-run-without-docker\", \"repo_digest\": null, \"wheels\": [\"$WHEEL_NAME\"]}"
x "$BASE_PY" "$SCRIPT" build --project "$P" --uv "$UV" --stamp "$STAMP2" \
  --wheel "$WHEEL" --verify-import sparkfleet_cuda_ext >"$OUT/build-2.json"
echo "build exit status: $?"
pretty "$OUT/build-2.json"
check "build --wheel --verify-import: swapped, old venv removed" "$BASE_PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if r.get("changed") and r["imports"]["sparkfleet_cuda_ext"]["ok"] and len(r["removed"]) == 1 else 1)' "$OUT/build-2.json"
x cd /
check "extension in the rebuilt venv: result matches torch, ran as $WANT" x "$VENV_PY" "$WORK/ext_test.py"
x cd "$REPO"
x "$BASE_PY" "$SCRIPT" probe --project "$P" >"$OUT/probe-final.json"
pretty "$OUT/probe-final.json"
check "final probe: interpreter_ok, stamp lists the wheel" "$BASE_PY" -c '
import json, sys
v = json.load(open(sys.argv[1]))["venv"]
sys.exit(0 if v["interpreter_ok"] and v["stamp"]["wheels"] == [sys.argv[2]] else 1)' "$OUT/probe-final.json" "$WHEEL_NAME"
x ls -la "$P/.venvs"

step "Summary (layout: $LAYOUT)"
printf '%s\n' "${SUMMARY[@]}"
case " ${SUMMARY[*]} " in
*"FAIL  "*) exit 1 ;;
*) exit 0 ;;
esac
