// Counts of the seed article's numba-cuda kernel, as benchmarks/peers/numba_mandelbrot.py
// stored them from a run on an NVIDIA H100 (its PTX is in benchmarks/results/
// h100-2026-12-06/numba): the article's scene, 1536 × 1024 over [-2, 1] × [-1, 1], at 20,
// 255 and 1000 iterations, one RGB PNG each with count = red + 256 · green.
#pragma once

#include "gpukit/io/png.hpp"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef GPUKIT_FRACTAL_TEST_DATA
#error "GPUKIT_FRACTAL_TEST_DATA must name tests/fractal/data"
#endif

namespace fractal_test {

inline constexpr std::uint32_t numba_iteration_limits[] = {20, 255, 1000};

/// numba-cuda's counts of the article's scene at `max_iters` (one of numba_iteration_limits).
/// The folder is tests/fractal/data of the source tree, or $GPUKIT_FRACTAL_TEST_DATA where
/// the test program runs away from its sources.
inline std::vector<std::uint32_t> numba_seed_counts(std::uint32_t max_iters) {
  const char* moved = std::getenv("GPUKIT_FRACTAL_TEST_DATA");
  const std::string folder = moved ? moved : GPUKIT_FRACTAL_TEST_DATA;
  const gpukit::io::image img =
      gpukit::io::read_png(folder + "/numba_seed_" + std::to_string(max_iters) + ".png");
  if (img.width != 1536 || img.height != 1024 || img.format != gpukit::io::pixel_format::rgb8)
    throw std::runtime_error("numba_seed_" + std::to_string(max_iters) + ".png is not a 1536 x 1024 RGB image");
  std::vector<std::uint32_t> counts(img.width * img.height);
  for (std::size_t i = 0; i < counts.size(); ++i)
    counts[i] = img.pixels[3 * i] + 256u * img.pixels[3 * i + 1];
  return counts;
}

/// How many elements differ.
inline std::size_t differing(const std::vector<std::uint32_t>& a, const std::vector<std::uint32_t>& b) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

}  // namespace fractal_test
