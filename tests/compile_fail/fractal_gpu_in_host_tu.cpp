// Must NOT compile: a host-only (g++) file calling a fractal function with a cuda_executor.
// The GPU path (mandelbrot.cuh) needs nvcc, and gpukit says so at compile time instead of
// "no matching function".
//   bad_input<compile error>("gpukit::fractal::escape_time", "exec", "a cuda_executor in a file compiled by the host compiler")
#include "gpukit/fractal/escape_time.hpp"

#include <cstdint>

void misuse(gpukit::device_buffer<std::uint8_t>& image) {
  gpukit::fractal::escape_time(gpukit::cuda_executor{}, gpukit::fractal::scene{}, image.span());
}
