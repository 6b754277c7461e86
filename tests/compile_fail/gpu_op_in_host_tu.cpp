// Must NOT compile: a host-only (g++) file calling an op with a cuda_executor. The GPU path
// needs nvcc, and gpukit says so at compile time instead of failing at run time.
//   bad_input<compile error>("gpukit::exp", "exec", "a cuda_executor in a file compiled by the host compiler")
#include "gpukit/gpukit.hpp"

void misuse(gpukit::device_buffer<float>& a, gpukit::device_buffer<float>& out) {
  gpukit::exp(gpukit::cuda_executor{}, a, out);
}
