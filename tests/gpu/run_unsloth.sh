#!/usr/bin/env bash
# GPU evidence of the main job (docs/gpu-evidence.md, "Unsloth on the builder's venv").
#
# On a machine with one NVIDIA GPU, CUDA torch, no network and no Docker, from the repository
# root there. The wheels travel in .gpu-carry/b1 ... b4 (64 MiB per call), one call each:
#     bash tests/gpu/run_unsloth.sh stage          # copies .gpu-carry/b*/ into $STAGE
#     bash tests/gpu/run_unsloth.sh run            # after the last batch
# `run`: the base interpreter is made to see the CUDA torch as NGC's system python does (a .pth,
# as in run_evidence.sh); a project with the role's default workspace_dependencies (read from
# roles/workspace/defaults/main.yml) is built by plugins/module_utils/_venv_builder.py (uv venv
# --system-site-packages + uv sync, offline, from the staged wheels); then
# tests/gpu/unsloth_steps.py trains a tiny Llama with Unsloth's LoRA in that venv.
set -uo pipefail
export PYTHONUNBUFFERED=1
REPO=$(pwd)
STAGE=${STAGE:-/tmp/sparkfleet-wheels}
WORK=${EVIDENCE_WORK:-/tmp/unsloth-evidence}
OUT=${OUT:-/tmp/unsloth-evidence-out}
TORCH_PY=${TORCH_PY:-$(command -v python3)}
SCRIPT=$REPO/plugins/module_utils/_venv_builder.py
mkdir -p "$STAGE" "$OUT"
x() { { printf '+'; printf ' %q' "$@"; printf '\n'; } >&2; "$@"; }

if [ "${1:-}" = stage ]; then
  x cp -n "$REPO"/.gpu-carry/b*/* "$STAGE"/
  echo "staged: $(ls "$STAGE" | wc -l) files, $(du -sh "$STAGE" | cut -f1)"
  exit 0
fi

echo "========== 0. The machine"
x nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
unset PYTHONPATH VIRTUAL_ENV PYTHONHOME
x "$TORCH_PY" -c 'import sys, torch; print(sys.executable, sys.prefix, sys.base_prefix); print(torch.__version__, torch.version.cuda, torch.__file__, torch.cuda.is_available())'
echo "staged wheels: $(ls "$STAGE" | wc -l)"
UVDIR=$STAGE.uv   # uv, unpacked from its carried wheel once per warm machine
[ -d "$UVDIR" ] || [ ! -d "$WORK/uvwheel" ] || cp -a "$WORK/uvwheel" "$UVDIR"
rm -rf "$WORK" && mkdir -p "$WORK"
if [ ! -d "$UVDIR" ]; then
  x "$TORCH_PY" -c "import zipfile, glob; zipfile.ZipFile(glob.glob('$STAGE/uv-*.whl')[0]).extractall('$UVDIR')"
fi
UV=$(ls "$UVDIR"/uv-*.data/scripts/uv) && chmod 755 "$UV" && x "$UV" --version

echo "========== 1. The base interpreter sees the CUDA torch (NGC's layout)"
TORCH_SITE=$("$TORCH_PY" -c 'import os, torch; print(os.path.dirname(os.path.dirname(os.path.realpath(torch.__file__))))')
BASE_PY=$("$TORCH_PY" -c '
import os, sys
name = "python%d.%d" % sys.version_info[:2]
for c in (os.path.join(sys.base_prefix, "bin", name), getattr(sys, "_base_executable", "")):
    if c and os.path.isfile(c):
        print(c); break
')
BASE_SITE=$("$BASE_PY" -c 'import site; print(site.getsitepackages()[0])')
mkdir -p "$BASE_SITE" && echo "$TORCH_SITE" >"$BASE_SITE/sparkfleet-gpu-evidence-image-torch.pth"
x "$BASE_PY" -c 'import torch; print("base interpreter sees", torch.__version__, torch.__file__)'
PYVER=$("$BASE_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
MACHINE=$("$BASE_PY" -c 'import platform; print(platform.machine())')

echo "========== 2. The project: the role's default pins, the image's builds never installed"
P=$WORK/project
mkdir -p "$P"
"$BASE_PY" - "$REPO/roles/workspace/defaults/main.yml" "$P/pyproject.toml" "$PYVER" "$MACHINE" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = re.search(r"^workspace_dependencies:\n((?:  - .*\n)+)", text, re.M).group(1)
pins = [line.strip()[2:] for line in block.splitlines()]
deps = "\n".join(f'    "{p}",' for p in pins)
overrides = "\n".join(f'    "{n}; python_version < \'0\'",' for n in ("torch", "triton", "torchvision", "xformers"))
open(sys.argv[2], "w").write(f'''[project]
name = "unsloth-evidence"
version = "0.1.0"
requires-python = "=={sys.argv[3]}.*"
dependencies = [
{deps}
]

[tool.uv]
# The image's torch, triton and torchvision are never installed; xformers is built from source
# on a Spark (container_wheel) and is not part of this run.
override-dependencies = [
{overrides}
]
# Only the machine that exists: Linux on this architecture.
environments = ["sys_platform == 'linux' and platform_machine == '{sys.argv[4]}' and implementation_name == 'cpython'"]
''')
PY
x cat "$P/pyproject.toml"

echo "========== 3. The builder: uv venv --system-site-packages + uv sync, offline, from the staged wheels"
export UV_OFFLINE=1 UV_NO_INDEX=1 UV_FIND_LINKS=$STAGE UV_CACHE_DIR=$WORK/uv-cache UV_NO_PROGRESS=1
STAMP='{"image_id": "sha256:none-device-run-without-docker", "repo_digest": null, "wheels": []}'
x "$BASE_PY" "$SCRIPT" build --project "$P" --uv "$UV" --stamp "$STAMP" \
  --verify-import unsloth --verify-import unsloth_zoo --verify-import transformers --verify-import peft --verify-import trl \
  --verify-import datasets --verify-import bitsandbytes >"$OUT/build.json"
echo "build exit status: $?"
"$BASE_PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); r.pop("log_tail", None); print(json.dumps(r, indent=1, sort_keys=True)[:4000])' "$OUT/build.json"
x ls "$P/.venv/lib/python$PYVER/site-packages" | tr '\n' ' ' | head -c 3000; echo
echo "venv packages: $(ls "$P"/.venv/lib/python$PYVER/site-packages/*.dist-info -d | wc -l) (torch among them: $(ls -d "$P"/.venv/lib/python$PYVER/site-packages/torch-* 2>/dev/null | wc -l))"

echo "========== 4. Unsloth LoRA steps in that venv"
x "$P/.venv/bin/python" "$REPO/tests/gpu/unsloth_steps.py" 2>&1 | tee "$OUT/unsloth.log" | grep -v "^\s*$" | tail -n 40
exit "${PIPESTATUS[0]}"
