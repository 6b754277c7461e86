// gpukit/fractal/mandelbrot.cuh — escape-time images on the GPU.
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
#include <string>
#include <type_traits>

namespace gpukit::fractal {

/// How the GPU path assigns pixels to threads. Every strategy gives the same counts (and
/// the same iterations performed) as the CPU; only the speed differs.
enum class gpu_strategy {
  /// detail::choose_strategy's rule, from the scene's iteration limit, precision and extent.
  automatic,
  /// One thread per pixel, warps on 8 × 4 tiles (pixel_kernel). Nothing but the iteration:
  /// the fastest when the counts of neighbouring pixels are alike or small.
  per_pixel,
  /// Two pixels per thread, interleaved (pair_kernel): hides FP64 latency when too few
  /// warps are resident, at the cost of waiting for the slowest of 64 pixels.
  pixel_pairs,
  /// Idle lanes take new pixels while the others iterate (lane_refill_kernel): keeps the
  /// lanes busy when counts differ wildly between neighbours, for the price of warp votes
  /// and a divergent set-up phase every few iterations.
  lane_refill,
};

inline const char* to_string(gpu_strategy g) noexcept {
  switch (g) {
    case gpu_strategy::automatic: return "automatic";
    case gpu_strategy::per_pixel: return "per_pixel";
    case gpu_strategy::pixel_pairs: return "pixel_pairs";
    case gpu_strategy::lane_refill: return "lane_refill";
  }
  return "?";
}

namespace detail {

/// The automatic rule, from gpukit_bench's fractal cases on an H200 (every strategy timed on
/// the same scenes in one run; time per call):
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

inline void require_strategy(gpu_strategy g, const char* where) {
  require(g == gpu_strategy::automatic || g == gpu_strategy::per_pixel || g == gpu_strategy::pixel_pairs ||
              g == gpu_strategy::lane_refill,
          where, "argument 'strategy' = " + std::to_string(static_cast<int>(g)) + " is not a gpu_strategy");
}

}  // namespace detail

/// Escape-time image of `s` on the GPU: out[y·width + x] for pixel (x, y), row-major, in
/// device memory. Out: std::uint8_t, std::uint16_t (saturating counts), std::uint32_t
/// (counts), float (smooth count). `out` must hold width · height elements; the scene is
/// validated first (std::invalid_argument, nothing written or queued). `strategy` picks the
/// kernel (the same image either way; leave it automatic unless measuring). Queued on
/// exec.stream(); returns without waiting.
template <class Out>
void escape_time(const cuda_executor& exec, const scene& s, device_span<Out> out,
                 gpu_strategy strategy = gpu_strategy::automatic) {
  static_assert(detail::is_output_v<Out>, "gpukit::fractal::escape_time: Out must be uint8_t, uint16_t, uint32_t or float");
  const char* where = "gpukit::fractal::escape_time";
  detail::validate(s, where);
  detail::require_output(s, out.size(), where);
  detail::require_strategy(strategy, where);
  detail::dispatch_escape_time<Out, false>(exec, s, out.data(), strategy);
}

/// Iterations performed per pixel by the GPU path (see the CPU count_iterations; the two
/// agree exactly, whatever the strategy). Same contract as escape_time.
inline void count_iterations(const cuda_executor& exec, const scene& s, device_span<std::uint32_t> out,
                             gpu_strategy strategy = gpu_strategy::automatic) {
  const char* where = "gpukit::fractal::count_iterations";
  detail::validate(s, where);
  detail::require_output(s, out.size(), where);
  detail::require_strategy(strategy, where);
  detail::dispatch_escape_time<std::uint32_t, true>(exec, s, out.data(), strategy);
}

// --- the article's kernel, for comparison ---------------------------------------------------

namespace detail {

/// The article's mandel(): written as plainly as the Python, compiled with nvcc's defaults
/// (which fuse multiply-adds, so a few counts differ from the exactly rounded ones).
template <class T>
__device__ std::uint32_t plain_mandel(T real, T imag, std::uint32_t max_iters) {
  T zr = 0, zi = 0;
  for (std::uint32_t i = 0; i < max_iters; ++i) {
    const T nr = zr * zr - zi * zi + real;
    const T ni = zr * zi + zi * zr + imag;
    zr = nr;
    zi = ni;
    if (zr * zr + zi * zi >= T(4)) return i;
  }
  return max_iters;
}

/// The article's mandel_kernel: a 2-D grid-stride loop, one thread per pixel.
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
    const T real = min_x + static_cast<T>(x) * pixel_size_x;
    for (std::uint32_t y = start_y; y < height; y += grid_y) {
      const T imag = min_y + static_cast<T>(y) * pixel_size_y;
      const std::uint32_t count = plain_mandel(real, imag, max_iters);
      constexpr std::uint32_t top = static_cast<std::uint32_t>(Out(~Out(0)));
      image[static_cast<std::size_t>(y) * width + x] = static_cast<Out>(count < top ? count : top);
    }
  }
}

}  // namespace detail

/// The seed article's GPU algorithm — one thread per pixel of a 16 × 16 block, the complex
/// step as written, no work-saving — over the bounds [min_x, max_x] × [min_y, max_y] in
/// precision T (float or double). Kept as the yardstick for tests and benchmarks; use
/// escape_time. Out: std::uint8_t (saturating, like the article's image) or std::uint32_t.
template <class T, class Out>
void plain_escape_time(const cuda_executor& exec, double min_x, double max_x, double min_y, double max_y,
                       std::uint32_t max_iters, std::size_t width, std::size_t height, device_span<Out> out) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "plain_escape_time: T must be float or double");
  static_assert(std::is_same_v<Out, std::uint8_t> || std::is_same_v<Out, std::uint32_t>,
                "plain_escape_time: Out must be uint8_t or uint32_t");
  const char* where = "gpukit::fractal::plain_escape_time";
  const viewport v = bounds_view(min_x, max_x, min_y, max_y, width, height);  // checks the bounds and sizes
  scene s;
  s.view = v;
  s.max_iters = max_iters;
  detail::validate(s, where);
  detail::require_output(s, out.size(), where);
  const launch_config cfg = config_for_image(width, height, dim3(16, 16));
  launch(detail::plain_kernel<T, Out>, cfg, exec.stream(), static_cast<T>(min_x), static_cast<T>(max_x),
         static_cast<T>(min_y), static_cast<T>(max_y), out.data(), static_cast<std::uint32_t>(width),
         static_cast<std::uint32_t>(height), max_iters);
}

// --- colour ---------------------------------------------------------------------------------

namespace detail {

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

}  // namespace detail

/// out[i] = colour_of(smooth[i], max_iters, p) on the GPU. Sizes must agree.
inline void colourize(const cuda_executor& exec, device_span<const float> smooth, std::uint32_t max_iters, palette p,
                      device_span<rgb8> out) {
  detail::check_colourize(smooth.size(), out.size(), max_iters, p);
  const launch_config cfg = config_for_elements(out.size(), detail::colourize_kernel);
  launch(detail::colourize_kernel, cfg, exec.stream(), smooth, max_iters, p, out);
}

/// The coloured image of `s` with aa × aa samples per pixel (aa in [1, 16]) on the GPU (see
/// supersample.hpp for the sample positions). One thread per pixel.
inline void render_rgb(const cuda_executor& exec, const scene& s, palette p, std::uint32_t aa, device_span<rgb8> out) {
  const char* where = "gpukit::fractal::render_rgb";
  detail::validate(s, where);
  detail::require_palette(p, where);
  detail::require_supersampling(aa, where);
  detail::require_output(s, out.size(), where);
  const launch_config cfg = config_for_image(s.view.width, s.view.height, dim3(16, 16));
  switch (s.prec) {
    case precision::f32: launch(detail::render_rgb_kernel<float>, cfg, exec.stream(), s, p, aa, out.data()); break;
    case precision::f64: launch(detail::render_rgb_kernel<double>, cfg, exec.stream(), s, p, aa, out.data()); break;
    case precision::dd: launch(detail::render_rgb_kernel<dd_real>, cfg, exec.stream(), s, p, aa, out.data()); break;
  }
}

}  // namespace gpukit::fractal
