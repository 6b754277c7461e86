// Must NOT compile: a host-only (g++) file rendering a deep-zoom plan with a cuda_executor.
// The GPU path (perturbation.cuh) needs nvcc, and gpukit says so at compile time instead
// of "no matching function".
//   bad_input<compile error>("gpukit::fractal::escape_time", "exec", "a cuda_executor with a deep plan, in a file compiled by the host compiler")
#include "gpukit/fractal/deep_zoom.hpp"

#include <cstdint>

void misuse(const gpukit::fractal::deep_plan& plan, gpukit::device_buffer<std::uint32_t>& image) {
  gpukit::fractal::escape_time(gpukit::cuda_executor{}, plan, image.span());
}
