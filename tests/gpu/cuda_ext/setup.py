# A tiny CUDA extension for docs/gpu-evidence.md: built by
# `_venv_builder.py build-wheel` (pip wheel --no-build-isolation against the interpreter's
# torch, TORCH_CUDA_ARCH_LIST from --arch-list), the code path the workspace role uses for
# xformers. Needs torch, setuptools and nvcc at build time; nothing is downloaded.
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CUDAExtension

setup(
    name="sparkfleet-cuda-ext",
    version="0.1.0",
    description="saxpy on the GPU: evidence that an extension built by sparkfleet's builder loads and runs",
    packages=["sparkfleet_cuda_ext"],
    ext_modules=[
        CUDAExtension(
            name="sparkfleet_cuda_ext._C",
            sources=["csrc/binding.cpp", "csrc/saxpy.cu"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
    python_requires=">=3.9",
)
