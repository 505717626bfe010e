// Python binding for the kernels in saxpy.cu.
#include <torch/extension.h>

at::Tensor saxpy_cuda(double a, const at::Tensor& x, const at::Tensor& y);
int64_t compiled_arch_cuda();

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("saxpy", &saxpy_cuda, "out = a * x + y for float32 CUDA tensors of one shape",
        py::arg("a"), py::arg("x"), py::arg("y"));
  m.def("compiled_arch", &compiled_arch_cuda,
        "__CUDA_ARCH__ of the device code that ran (900 for sm_90, 1210 for sm_121)");
}
