"""TEST STAND-IN for building xformers from source (facebookresearch/xformers), used only by
sparkfleet's tests: the real build compiles CUDA kernels for tens of minutes and needs a GPU
toolchain these machines lack.

What it keeps from the real build, because sparkfleet depends on it:
- it imports torch at build time, so it fails under build isolation (uv and pip must be told
  `no-build-isolation`), exactly like the real setup.py;
- it reads TORCH_CUDA_ARCH_LIST and MAX_JOBS and refuses an unset arch list; it records what it
  saw in xformers/_build_info.py, and the build log says it, so tests can prove which arch
  list reached the build;
- every build appends a line to $XFORMERS_STANDIN_BUILD_LOG when set (tests count builds).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from setuptools import setup

try:
    import torch
except ImportError as error:  # what happens under build isolation
    raise SystemExit(
        "xformers stand-in: torch is not importable at build time; build with --no-build-isolation"
    ) from error

arch_list = os.environ.get("TORCH_CUDA_ARCH_LIST", "")
if not arch_list:
    raise SystemExit("xformers stand-in: TORCH_CUDA_ARCH_LIST is not set")
info = {
    "torch_cuda_arch_list": arch_list,
    "max_jobs": os.environ.get("MAX_JOBS", ""),
    "built_against_torch": torch.__version__,
    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
}
here = Path(__file__).resolve().parent
(here / "xformers" / "_build_info.py").write_text(f"BUILD_INFO = {json.dumps(info)!r}\n")
print(f"xformers stand-in: building for TORCH_CUDA_ARCH_LIST={arch_list!r} MAX_JOBS={info['max_jobs']!r}")
log = os.environ.get("XFORMERS_STANDIN_BUILD_LOG")
if log:
    with open(log, "a") as handle:
        handle.write(json.dumps(info) + "\n")

setup(
    name="xformers",
    version="0.0.33+standin",
    description="TEST STAND-IN for xformers (sparkfleet tests only)",
    packages=["xformers"],
    python_requires=">=3.9",
)
