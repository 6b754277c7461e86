// examples/vector_add/vector_add.cuh — the article's first demo, C = A + B, on either
// executor. Both paths call the same per-element function, so the CPU loop is the
// reference the kernel is tested against.
#pragma once

#include "gpukit/core.cuh"

#include <string>

namespace vector_add_demo {

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE float add_element(float a, float b) { return a + b; }

namespace detail {
template <class A, class B, class C>
void check_sizes(const A& a, const B& b, const C& c) {
  gpukit::detail::require(a.size() == b.size() && a.size() == c.size(), "vector_add",
                          "arguments 'a', 'b', 'c' have " + std::to_string(a.size()) + ", " +
                              std::to_string(b.size()) + ", " + std::to_string(c.size()) + " elements");
}

// One thread per grid-stride slot: unlike the article's <<<1, N>>>, any N works.
__global__ void vector_add_kernel(gpukit::device_span<const float> a, gpukit::device_span<const float> b,
                                  gpukit::device_span<float> c) {
  for (std::size_t i : gpukit::grid_stride_range(c.size())) c[i] = add_element(a[i], b[i]);
}
}  // namespace detail

/// c[i] = a[i] + b[i] on the CPU (OpenMP). Sizes must agree; c may alias a or b.
inline void vector_add(const gpukit::cpu_executor& exec, gpukit::host_span<const float> a,
                       gpukit::host_span<const float> b, gpukit::host_span<float> c) {
  detail::check_sizes(a, b, c);
  const auto n = static_cast<std::ptrdiff_t>(c.size());
#pragma omp parallel for num_threads(exec.threads()) schedule(static)
  for (std::ptrdiff_t i = 0; i < n; ++i) c[i] = add_element(a[i], b[i]);
}

/// c[i] = a[i] + b[i] on the GPU, queued on the executor's stream (no synchronisation).
inline void vector_add(const gpukit::cuda_executor& exec, gpukit::device_span<const float> a,
                       gpukit::device_span<const float> b, gpukit::device_span<float> c) {
  detail::check_sizes(a, b, c);
  const auto cfg = gpukit::config_for_elements(c.size(), detail::vector_add_kernel);
  gpukit::launch(detail::vector_add_kernel, cfg, exec.stream(), a, b, c);
}

}  // namespace vector_add_demo
