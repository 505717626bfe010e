// Two small kernels: saxpy, and one that reports the __CUDA_ARCH__ it was compiled for,
// so the test can show which of the wheel's cubins the GPU actually ran.
// Only ATen and c10/cuda headers: ATen/cuda/CUDAContext.h would also need the cuBLAS,
// cuSPARSE and cuSOLVER headers, which a bare nvcc install may lack.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

namespace {

__global__ void saxpy_kernel(int64_t n, float a, const float* __restrict__ x,
                             const float* __restrict__ y, float* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    // Round the product and the sum separately (no fused multiply-add), as torch's
    // `a * x + y` does in two kernels, so the results can be compared bit for bit.
    out[i] = __fadd_rn(__fmul_rn(a, x[i]), y[i]);
  }
}

__global__ void arch_kernel(int* out) {
#ifdef __CUDA_ARCH__
  *out = __CUDA_ARCH__;
#endif
}

}  // namespace

at::Tensor saxpy_cuda(double a, const at::Tensor& x, const at::Tensor& y) {
  TORCH_CHECK(x.is_cuda() && y.is_cuda(), "saxpy: x and y must be CUDA tensors");
  TORCH_CHECK(x.scalar_type() == at::kFloat && y.scalar_type() == at::kFloat,
              "saxpy: x and y must be float32");
  TORCH_CHECK(x.sizes() == y.sizes(), "saxpy: x and y must have the same shape");
  TORCH_CHECK(x.device() == y.device(), "saxpy: x and y must be on the same device");
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const at::Tensor yc = y.contiguous();
  at::Tensor out = at::empty_like(xc);
  const int64_t n = xc.numel();
  if (n == 0) {
    return out;
  }
  const int threads = 256;
  const unsigned int blocks = static_cast<unsigned int>((n + threads - 1) / threads);
  saxpy_kernel<<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      n, static_cast<float>(a), xc.data_ptr<float>(), yc.data_ptr<float>(), out.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

int64_t compiled_arch_cuda() {
  at::Tensor result = at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(at::kCUDA));
  const c10::cuda::CUDAGuard guard(result.device());
  arch_kernel<<<1, 1, 0, c10::cuda::getCurrentCUDAStream()>>>(result.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return result.item<int>();
}
