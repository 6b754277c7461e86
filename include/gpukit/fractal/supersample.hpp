// gpukit/fractal/supersample.hpp — coloured images on either executor: colouring a
// smooth-count image, and rendering with N × N supersampling (anti-aliasing).
//
// Supersampling: pixel (x, y) takes the samples at x + (2i + 1 − N)/(2N), y + (2j + 1 − N)/(2N)
// for i, j in [0, N) — a regular grid centred on the pixel's own coordinate, so N = 1 gives
// exactly the unsupersampled image — colours each sample and averages the colours.
//
// The front ends check the arguments and call detail::*_impl on the executor
// (core/dispatch.hpp); the GPU implementations are in gpukit/fractal/mandelbrot.cuh,
// included from here when nvcc compiles. Colours computed on the CPU and on the GPU may
// differ by one step per channel (the logarithms of the smooth count are not correctly
// rounded on either side); the counts underneath are identical.
//
// Host-compilable: compiles with a plain C++17 compiler; a GPU call from such a file is a
// compile error saying that it needs nvcc.
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/fractal/colour.hpp"
#include "gpukit/fractal/iteration.hpp"
#include "gpukit/fractal/scene.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace gpukit::fractal {

/// Largest supersampling factor (N × N samples per pixel).
inline constexpr std::uint32_t max_supersampling = 16;

namespace detail {

inline void require_supersampling(std::uint32_t aa, const char* where) {
  require(aa >= 1 && aa <= max_supersampling, where,
          "argument 'aa' = " + std::to_string(aa) + " is outside [1, " + std::to_string(max_supersampling) + "]");
}

/// The colour of pixel (x, y) from aa × aa samples, `smooth_at(kx, ky)` giving the smooth
/// count at fractional pixel coordinates (the sample positions of the header comment).
template <class SmoothAt>
GPUKIT_HOST_DEVICE inline rgb8 supersample(std::uint32_t max_iters, palette p, std::uint32_t aa, std::uint32_t x,
                                           std::uint32_t y, SmoothAt&& smooth_at) {
  float r = 0.0f, g = 0.0f, b = 0.0f;
  const double inv = 1.0 / (2.0 * aa);
  for (std::uint32_t j = 0; j < aa; ++j) {
    const double ky = static_cast<double>(y) + static_cast<double>(2 * j + 1) * inv - 0.5;
    for (std::uint32_t i = 0; i < aa; ++i) {
      const double kx = static_cast<double>(x) + static_cast<double>(2 * i + 1) * inv - 0.5;
      const rgbf c = colour_of_f(smooth_at(kx, ky), max_iters, p);
      r += c.r;
      g += c.g;
      b += c.b;
    }
  }
  const float n = static_cast<float>(aa * aa);
  return {to_byte(r / n), to_byte(g / n), to_byte(b / n)};
}

/// The colour of pixel (x, y) of scene s from aa × aa samples.
template <class T>
GPUKIT_HOST_DEVICE inline rgb8 supersampled_pixel(const scene& s, palette p, std::uint32_t aa, std::uint32_t x,
                                                  std::uint32_t y) {
  return supersample(s.max_iters, p, aa, x, y,
                     [&](double kx, double ky) { return escape_pixel<true, T>(s, kx, ky).smooth; });
}

inline void require_palette(palette p, const char* where) {
  require(p == palette::gray || p == palette::classic || p == palette::fire || p == palette::ocean, where,
          "argument 'p' = " + std::to_string(static_cast<int>(p)) + " is not a palette");
}

/// The argument checks both colourize paths share (before anything is written).
inline void check_colourize(std::size_t smooth_size, std::size_t out_size, std::uint32_t max_iters, palette p) {
  const char* where = "gpukit::fractal::colourize";
  require_palette(p, where);
  require(smooth_size == out_size, where,
          "arguments 'smooth' and 'out' have " + std::to_string(smooth_size) + " and " + std::to_string(out_size) +
              " elements");
  require(max_iters >= 1, where, "argument 'max_iters' = 0 must be >= 1");
}

/// The checks render_rgb's paths share (before anything is written or queued).
inline void check_render_rgb(const scene& s, palette p, std::uint32_t aa, std::size_t out_size) {
  const char* where = "gpukit::fractal::render_rgb";
  validate(s, where);
  require_palette(p, where);
  require_supersampling(aa, where);
  require_output(s, out_size, where);
}

// --- the CPU path ---------------------------------------------------------------------------

inline void colourize_impl(const cpu_executor& exec, host_span<const float> smooth, std::uint32_t max_iters, palette p,
                           host_span<rgb8> out) {
  const auto n = static_cast<std::ptrdiff_t>(out.size());
#pragma omp parallel for num_threads(exec.threads()) schedule(static)
  for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = colour_of(smooth[i], max_iters, p);
}

inline void render_rgb_impl(const cpu_executor& exec, const scene& s, palette p, std::uint32_t aa, rgb8* out) {
  const auto width = static_cast<std::uint32_t>(s.view.width);
  const auto height = static_cast<std::ptrdiff_t>(s.view.height);
#pragma omp parallel for num_threads(exec.threads()) schedule(dynamic, 1)
  for (std::ptrdiff_t y = 0; y < height; ++y) {
    for (std::uint32_t x = 0; x < width; ++x) {
      const auto yy = static_cast<std::uint32_t>(y);
      rgb8 c{};
      switch (s.prec) {
        case precision::f32: c = supersampled_pixel<float>(s, p, aa, x, yy); break;
        case precision::f64: c = supersampled_pixel<double>(s, p, aa, x, yy); break;
        case precision::dd: c = supersampled_pixel<dd_real>(s, p, aa, x, yy); break;
      }
      out[static_cast<std::size_t>(y) * width + x] = c;
    }
  }
}

// --- the GPU path: defined in mandelbrot.cuh ------------------------------------------------

#if defined(__CUDACC__)
inline void colourize_impl(const cuda_executor& exec, device_span<const float> smooth, std::uint32_t max_iters,
                           palette p, device_span<rgb8> out);
inline void render_rgb_impl(const cuda_executor& exec, const scene& s, palette p, std::uint32_t aa, rgb8* out);
#else
GPUKIT_GPU_ONLY_STUB(colourize_impl)
GPUKIT_GPU_ONLY_STUB(render_rgb_impl)
#endif

}  // namespace detail

/// out[i] = colour_of(smooth[i], max_iters, p), in the executor's memory (host_span for
/// cpu_executor, device_span for cuda_executor). Sizes must agree (std::invalid_argument
/// otherwise, nothing written). GPU: queued on exec.stream().
template <class Exec>
void colourize(const Exec& exec, span_for<Exec, const float> smooth, std::uint32_t max_iters, palette p,
               span_for<Exec, rgb8> out) {
  detail::check_colourize(smooth.size(), out.size(), max_iters, p);
  detail::colourize_impl(exec, smooth, max_iters, p, out);
}

/// The coloured image of `s` with aa × aa samples per pixel (aa in [1, 16]), row-major, in
/// the executor's memory. `out` must hold width · height pixels; everything is validated
/// first. CPU: OpenMP over rows; GPU: one thread per pixel, queued on exec.stream().
template <class Exec>
void render_rgb(const Exec& exec, const scene& s, palette p, std::uint32_t aa, span_for<Exec, rgb8> out) {
  detail::check_render_rgb(s, p, aa, out.size());
  detail::render_rgb_impl(exec, s, p, aa, out.data());
}

}  // namespace gpukit::fractal

#if defined(__CUDACC__)
#include "gpukit/fractal/mandelbrot.cuh"
#endif
