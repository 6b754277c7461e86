// gpukit/fractal/mandelbrot.cuh — the GPU path of the fractal layer: the implementations
// behind escape_time, count_iterations, plain_escape_time (escape_time.hpp), colourize and
// render_rgb (supersample.hpp), which include this file themselves when nvcc compiles them;
// including it directly is the same as including both.
//
//   gpukit::stream s;
//   gpukit::fractal::scene sc;                                   // the seed article's scene
//   gpukit::device_buffer<std::uint8_t> img(sc.view.width * sc.view.height, s);
//   gpukit::fractal::escape_time(gpukit::cuda_executor(s), sc, img.span());
//
// Same scenes, same counts (bit for bit) as the CPU path in escape_time.hpp: every kernel
// runs the per-pixel iteration of iteration.hpp — 7 FP64 operations per iteration, each
// rounded once like the article's complex arithmetic, the escape test on the integer pipe
// with one branch per 4 iterations, 8 iterations between periodicity checks.
//
// The FP64 pipe is the limit (64 lanes per SM per clock on H100/H200, half the FP32 rate):
// what decides the speed is how many of a warp's lanes iterate a live orbit, and how few
// other instructions sit between the iterations. Escape counts near the set range from 1
// to max_iters within a few pixels, so one thread per pixel leaves lanes idle while its
// warp finishes the slowest; the kernels (detail/escape_kernels.cuh) trade that against
// overhead differently, and gpu_strategy says when each one is used.
// Every call is queued on the executor's stream; nothing synchronises.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/fractal/mandelbrot.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu), or include only gpukit's .hpp headers"
#endif

#include "gpukit/core.cuh"
#include "gpukit/fractal/colour.hpp"
#include "gpukit/fractal/detail/escape_kernels.cuh"
#include "gpukit/fractal/escape_time.hpp"
#include "gpukit/fractal/iteration.hpp"
#include "gpukit/fractal/scene.hpp"
#include "gpukit/fractal/supersample.hpp"

#include <cstdint>

namespace gpukit::fractal::detail {

/// The automatic rule (gpu_strategy::automatic, escape_time.hpp), from gpukit_bench's
/// fractal cases on an H200 (every strategy timed on the same scenes in one run; time per
/// call):
///
/// - max_iters <= per_pixel_max_iters: per_pixel. A warp waits at most that many
///   iterations for its slowest pixel, while lane refill pays its votes and its divergent
///   set-up on every pixel: seed scene (20 iterations) 0.015 ms against 0.080 ms; whole set
///   at 2048², 64 and 256 iterations, 0.036 and 0.053 ms against 0.108 and 0.122 ms;
///   seahorse valley at 2048² and 256 iterations, 0.253 ms against 0.329 ms.
/// - double-double above it: lane_refill. An iteration is 63 FP64 operations, so the
///   refill machinery is small beside it and busy lanes are all that counts (deep zoom at
///   1024², 20000 iterations: 12.1 ms against 12.6 ms).
/// - float and double above it: per_pixel, except for zooms (the view spans at most
///   refill_max_extent) with at least refill_min_iters iterations, which get lane_refill.
///   Where a view shows large regions of alike pixels — the interior, the far exterior —
///   per_pixel's warps finish together and refill's overhead is pure loss (whole set at
///   8192² and 4096 iterations: 2.07 ms against 2.41 ms; at 2048² and 1024 iterations,
///   0.120 ms against 0.215 ms). Zooms worth rendering sit on the boundary, where
///   neighbouring counts differ by thousands and per_pixel keeps only about half its lanes
///   busy: seahorse valley at 4096² and 4096 iterations, 1.42 ms against 1.58 ms; at 2048²
///   and 1024 iterations, 0.400 ms against 0.434 ms; at 512 iterations the two are even.
///   The extent is a proxy: a zoom into a uniform region would rather have per_pixel, but
///   costs little either way.
/// pixel_pairs never won: hiding one orbit's FP64 latency behind the other's does not make
/// up for the warp waiting on the slowest of 64 pixels instead of 32.
inline constexpr std::uint32_t per_pixel_max_iters = 256;
inline constexpr std::uint32_t refill_min_iters = 1024;
inline constexpr double refill_max_extent = 0.1;  ///< in the complex plane; the whole set spans about 3

inline gpu_strategy choose_strategy(const scene& s) {
  if (s.max_iters <= per_pixel_max_iters) return gpu_strategy::per_pixel;
  if (s.prec == precision::dd) return gpu_strategy::lane_refill;
  const double extent_x = static_cast<double>(s.view.width) * s.view.step_x.hi;
  const double extent_y = static_cast<double>(s.view.height) * s.view.step_y.hi;
  const bool zoom = extent_x <= refill_max_extent && extent_y <= refill_max_extent;
  return zoom && s.max_iters >= refill_min_iters ? gpu_strategy::lane_refill : gpu_strategy::per_pixel;
}

template <class T, class Out, bool Work>
void launch_tiled(const cuda_executor& exec, const scene& s, Out* out, gpu_strategy g) {
  const bool pairs = g == gpu_strategy::pixel_pairs;
  launch_config cfg;
  cfg.block = dim3(static_cast<unsigned>(tile_block_threads));
  const tiling t = make_tiling(s, pairs ? 2 : 1, cfg.grid);
  if (pairs)
    launch(pair_kernel<T, Out, Work>, cfg, exec.stream(), s, out, t);
  else
    launch(pixel_kernel<T, Out, Work>, cfg, exec.stream(), s, out, t);
}

/// Above this many pixel-iterations (pixels × max_iters) the refill kernel takes batches
/// from an atomic counter (the slowest warps are not known in advance); below it batches
/// are assigned statically, and the memset that zeroes the counter is saved.
inline constexpr std::uint64_t dynamic_batches_from = std::uint64_t{1} << 28;

template <class T, class Out, bool Work>
void launch_lane_refill(const cuda_executor& exec, const scene& s, Out* out) {
  const auto pixels = static_cast<std::uint32_t>(s.view.width * s.view.height);
  const auto kernel = lane_refill_kernel<T, Out, Work>;
  const launch_config cfg = config_for_elements(pixels, kernel, lane_block_threads);
  const bool dynamic = static_cast<std::uint64_t>(pixels) * s.max_iters >= dynamic_batches_from;
  if (!dynamic) {
    // One pixel per lane per batch: the first batches cover the image like a grid-stride loop.
    launch(kernel, cfg, exec.stream(), s, out, pixels, 32u, static_cast<std::uint32_t*>(nullptr));
    return;
  }
  // One warp-sized batch per atomic where the image is small enough for the tail to matter;
  // four for huge images, so the counter sees at most a few hundred thousand atomics.
  const std::uint32_t batch = pixels >= (1u << 24) ? 128u : 32u;
  device_buffer<std::uint32_t> counter(1, exec.stream(), zero_init);
  launch(kernel, cfg, exec.stream(), s, out, pixels, batch, counter.data());
}  // the counter is freed on the stream after the kernel

template <class T, class Out, bool Work>
void launch_escape_time(const cuda_executor& exec, const scene& s, Out* out, gpu_strategy g) {
  if (g == gpu_strategy::automatic) g = choose_strategy(s);
  if (g == gpu_strategy::lane_refill)
    launch_lane_refill<T, Out, Work>(exec, s, out);
  else
    launch_tiled<T, Out, Work>(exec, s, out, g);
}

template <class Out, bool Work>
void dispatch_escape_time(const cuda_executor& exec, const scene& s, Out* out, gpu_strategy g) {
  switch (s.prec) {
    case precision::f32: launch_escape_time<float, Out, Work>(exec, s, out, g); break;
    case precision::f64: launch_escape_time<double, Out, Work>(exec, s, out, g); break;
    case precision::dd: launch_escape_time<dd_real, Out, Work>(exec, s, out, g); break;
  }
}

/// escape_time's GPU path (arguments checked by the front end in escape_time.hpp).
template <class Out>
void escape_time_impl(const cuda_executor& exec, const scene& s, Out* out, gpu_strategy g) {
  dispatch_escape_time<Out, false>(exec, s, out, g);
}

/// count_iterations' GPU path: the same kernels, counting the iterations performed.
inline void count_iterations_impl(const cuda_executor& exec, const scene& s, std::uint32_t* out, gpu_strategy g) {
  dispatch_escape_time<std::uint32_t, true>(exec, s, out, g);
}

// --- the article's kernel, for comparison ---------------------------------------------------

/// The article's mandel_kernel: a 2-D grid-stride loop, one thread per pixel, with
/// numba-cuda's rounding (numba_article_count, shared with the CPU path in escape_time.hpp).
template <class T, class Out>
__global__ void plain_kernel(T min_x, T max_x, T min_y, T max_y, Out* image, std::uint32_t width,
                             std::uint32_t height, std::uint32_t max_iters) {
  const T pixel_size_x = (max_x - min_x) / static_cast<T>(width);
  const T pixel_size_y = (max_y - min_y) / static_cast<T>(height);
  const std::uint32_t start_x = blockIdx.x * blockDim.x + threadIdx.x;
  const std::uint32_t start_y = blockIdx.y * blockDim.y + threadIdx.y;
  const std::uint32_t grid_x = gridDim.x * blockDim.x;
  const std::uint32_t grid_y = gridDim.y * blockDim.y;
  for (std::uint32_t x = start_x; x < width; x += grid_x) {
    const T real = numba_article_coordinate(min_x, pixel_size_x, x);
    for (std::uint32_t y = start_y; y < height; y += grid_y) {
      const T imag = numba_article_coordinate(min_y, pixel_size_y, y);
      const std::uint32_t count = numba_article_count(real, imag, max_iters);
      constexpr std::uint32_t top = static_cast<std::uint32_t>(Out(~Out(0)));
      image[static_cast<std::size_t>(y) * width + x] = static_cast<Out>(count < top ? count : top);
    }
  }
}

/// plain_escape_time's GPU path (arguments checked by the front end in escape_time.hpp).
template <class T, class Out>
void plain_escape_time_impl(const cuda_executor& exec, T min_x, T max_x, T min_y, T max_y, std::uint32_t max_iters,
                            std::uint32_t width, std::uint32_t height, Out* out) {
  const launch_config cfg = config_for_image(width, height, dim3(16, 16));
  launch(plain_kernel<T, Out>, cfg, exec.stream(), min_x, max_x, min_y, max_y, out, width, height, max_iters);
}

// --- colour ---------------------------------------------------------------------------------

static __global__ void colourize_kernel(device_span<const float> smooth, std::uint32_t max_iters, palette p,
                                 device_span<rgb8> out) {
  for (std::size_t i : grid_stride_range(out.size())) out[i] = colour_of(smooth[i], max_iters, p);
}

template <class T>
__global__ void render_rgb_kernel(const scene s, palette p, std::uint32_t aa, rgb8* out) {
  const std::uint32_t x = blockIdx.x * blockDim.x + threadIdx.x;
  const std::uint32_t y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= s.view.width || y >= s.view.height) return;
  out[static_cast<std::size_t>(y) * s.view.width + x] = supersampled_pixel<T>(s, p, aa, x, y);
}

/// colourize's GPU path: one thread per element (grid-stride).
inline void colourize_impl(const cuda_executor& exec, device_span<const float> smooth, std::uint32_t max_iters,
                           palette p, device_span<rgb8> out) {
  const launch_config cfg = config_for_elements(out.size(), colourize_kernel);
  launch(colourize_kernel, cfg, exec.stream(), smooth, max_iters, p, out);
}

/// render_rgb's GPU path: one thread per pixel (see supersample.hpp for the sample positions).
inline void render_rgb_impl(const cuda_executor& exec, const scene& s, palette p, std::uint32_t aa, rgb8* out) {
  const launch_config cfg = config_for_image(s.view.width, s.view.height, dim3(16, 16));
  switch (s.prec) {
    case precision::f32: launch(render_rgb_kernel<float>, cfg, exec.stream(), s, p, aa, out); break;
    case precision::f64: launch(render_rgb_kernel<double>, cfg, exec.stream(), s, p, aa, out); break;
    case precision::dd: launch(render_rgb_kernel<dd_real>, cfg, exec.stream(), s, p, aa, out); break;
  }
}

}  // namespace gpukit::fractal::detail
