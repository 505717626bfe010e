"""saxpy (out = a * x + y) on float32 CUDA tensors, and the __CUDA_ARCH__ the kernels were built for."""

import torch  # noqa: F401  (loads libc10/libtorch, which _C links against)

from ._C import compiled_arch, saxpy

__all__ = ["compiled_arch", "saxpy"]
