// gpukit/fractal/mandelbrot.cuh — escape-time images on the GPU.
//
//   gpukit::stream s;
//   gpukit::fractal::scene sc;                                   // the seed article's scene
//   gpukit::device_buffer<std::uint8_t> img(sc.view.width * sc.view.height, s);
//   gpukit::fractal::escape_time(gpukit::cuda_executor(s), sc, img.span());
//
// Same scenes, same counts (bit for bit) as the CPU path in escape_time.hpp: both run the
// per-pixel iteration of iteration.hpp.
//
// How the kernel spends the chip (the FP64 pipe is the limit: 64 FMA/clk/SM on H100/H200,
// half the FP32 rate):
// - 7 FP64 operations per iteration (the article's rounding, reusing |z|²'s squares and
//   one exact FMA for 2t + ci), the escape test on the integer pipe (high word of |z|²),
//   4 iterations unrolled between periodicity checks.
// - Lane refill: each warp takes batches of consecutive pixels; a lane whose pixel is done
//   (escaped, periodic, or decided by an interior test) writes it, and once a quarter of
//   the warp is idle (or after 32 iterations) the idle lanes take the next pixels while
//   the busy ones keep their orbits. Escape counts near the set range from 1 to max_iters
//   within a few pixels, so a warp that waits for its slowest pixel (one thread per pixel)
//   idles most of its lanes.
// - Batches come from a global atomic counter for large scenes (the slowest warps are not
//   known in advance) and are assigned statically for small ones, which then need no
//   counter (on the seed scene, zeroing one would be a visible share of the call).
// Every call is queued on the executor's stream; nothing synchronises.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/fractal/mandelbrot.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu), or include only gpukit's .hpp headers"
#endif

#include "gpukit/core.cuh"
#include "gpukit/fractal/colour.hpp"
#include "gpukit/fractal/escape_time.hpp"
#include "gpukit/fractal/iteration.hpp"
#include "gpukit/fractal/scene.hpp"
#include "gpukit/fractal/supersample.hpp"

#include <cstdint>
#include <type_traits>

namespace gpukit::fractal {
namespace detail {

inline constexpr unsigned full_warp = 0xffffffffu;
inline constexpr int lane_block_threads = 256;
/// A pass iterates at most this many blocks of period_block iterations before the warp
/// refills its idle lanes...
inline constexpr int pass_blocks = 8;
/// ...and ends early once this many lanes are idle.
inline constexpr int refill_threshold = 8;

/// What a lane writes for a finished pixel: the output element, or (Work) the number of
/// iterations performed.
template <class Out, bool Work>
__device__ __forceinline__ void store(Out* out, std::uint32_t pixel, const escape_result& r) {
  if constexpr (Work) {
    out[pixel] = r.executed;
  } else {
    out[pixel] = to_output<Out>(r);
  }
}

/// The lane-refill escape-time kernel; see the file comment. `counter` (zeroed) hands out
/// batches of `batch` pixels; nullptr assigns warp w the batches w, w + warps, w + 2·warps...
template <class T, class Out, bool Work>
__global__ void __launch_bounds__(lane_block_threads)
    escape_time_kernel(const scene s, Out* __restrict__ out, const std::uint32_t pixels, const std::uint32_t batch,
                       std::uint32_t* __restrict__ counter) {
  constexpr bool smooth = std::is_same_v<Out, float> && !Work;
  const unsigned lane = threadIdx.x & 31u;
  const unsigned lanes_below = (1u << lane) - 1u;
  const std::uint32_t warps = (gridDim.x * blockDim.x) >> 5;
  const std::uint32_t width = static_cast<std::uint32_t>(s.view.width);
  const std::uint32_t max_iters = s.max_iters;
  const bool periodicity = periodicity_on(s);

  // The warp's current batch [next, end) — the same in every lane.
  std::uint32_t next = 0, end = 0;
  std::uint32_t static_batch = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  bool exhausted = false;

  // This lane's pixel.
  bool busy = false;
  std::uint32_t pixel = 0, i = 0;
  orbit<T> o{}, saved{};
  T cr{}, ci{};

  for (;;) {
    // Refill idle lanes from the batch (taking new batches as needed); pixels an interior
    // test decides are written at once and their lanes go round again.
    for (;;) {
      const unsigned need = __ballot_sync(full_warp, !busy);
      if (need == 0u || exhausted) break;
      if (next == end) {
        std::uint32_t b = static_batch;
        if (counter != nullptr) {
          if (lane == 0) b = atomicAdd(counter, 1u);
          b = __shfl_sync(full_warp, b, 0);
        } else {
          static_batch += warps;
        }
        const std::uint64_t first = static_cast<std::uint64_t>(b) * batch;
        if (first >= pixels) {
          exhausted = true;
          break;
        }
        next = static_cast<std::uint32_t>(first);
        end = static_cast<std::uint32_t>(first + batch < pixels ? first + batch : pixels);
      }
      const unsigned avail = end - next;
      const unsigned rank = __popc(need & lanes_below);
      if (!busy && rank < avail) {
        pixel = next + rank;
        const std::uint32_t y = pixel / width, x = pixel - y * width;
        const pixel_start<T> p = start_pixel<T>(s, static_cast<double>(x), static_cast<double>(y));
        if (p.interior) {
          store<Out, Work>(out, pixel, interior_result(max_iters, 0));
        } else {
          o = p.o;
          saved = p.o;
          cr = p.cr;
          ci = p.ci;
          i = 0;
          busy = true;
        }
      }
      const unsigned taken = __popc(need);
      next += taken < avail ? taken : avail;
    }
    if (__ballot_sync(full_warp, busy) == 0u) return;

    // A pass: blocks of period_block iterations, each lane on its own pixel.
    for (int blk = 0; blk < pass_blocks; ++blk) {
      if (busy) {
        constexpr std::uint32_t running = 0xffffffffu;
        std::uint32_t escape = running;  // the index of the escaping iteration, once known
        bool done = false;
        escape_result r{};
        if (max_iters - i >= period_block) {
#pragma unroll
          for (std::uint32_t u = 0; u < period_block; ++u) {
            step(o, cr, ci);
            if (escaped(o)) {
              escape = i + u;
              break;
            }
          }
          if (escape == running) {
            i += period_block;
            if (periodicity) {
              if (same_point(o, saved)) {
                r = interior_result(max_iters, i);
                done = true;
              } else if (save_point(i)) {
                saved = o;
              }
            }
          }
        } else {
          for (; i < max_iters; ++i) {
            step(o, cr, ci);
            if (escaped(o)) {
              escape = i;
              break;
            }
          }
          if (escape == running) r = interior_result(max_iters, max_iters);
          done = true;
        }
        if (escape != running) {
          r = escaped_result<smooth>(o, cr, ci, escape, max_iters);
          done = true;
        }
        if (done) {
          store<Out, Work>(out, pixel, r);
          busy = false;
        }
      }
      const unsigned idle = __ballot_sync(full_warp, !busy);
      if (idle == full_warp || (!exhausted && __popc(idle) >= refill_threshold)) break;
    }
  }
}

/// Above this many pixel-iterations (pixels × max_iters) batches come from the atomic
/// counter; below it the memset that zeroes the counter would cost more than balancing saves.
inline constexpr std::uint64_t dynamic_batches_from = std::uint64_t{1} << 28;

template <class T, class Out, bool Work>
void launch_escape_time(const cuda_executor& exec, const scene& s, Out* out) {
  const auto pixels = static_cast<std::uint32_t>(s.view.width * s.view.height);
  const auto kernel = escape_time_kernel<T, Out, Work>;
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

template <class Out, bool Work>
void dispatch_escape_time(const cuda_executor& exec, const scene& s, Out* out) {
  switch (s.prec) {
    case precision::f32: launch_escape_time<float, Out, Work>(exec, s, out); break;
    case precision::f64: launch_escape_time<double, Out, Work>(exec, s, out); break;
    case precision::dd: launch_escape_time<dd_real, Out, Work>(exec, s, out); break;
  }
}

}  // namespace detail

/// Escape-time image of `s` on the GPU: out[y·width + x] for pixel (x, y), row-major, in
/// device memory. Out: std::uint8_t, std::uint16_t (saturating counts), std::uint32_t
/// (counts), float (smooth count). `out` must hold width · height elements; the scene is
/// validated first (std::invalid_argument, nothing written or queued). Queued on
/// exec.stream(); returns without waiting.
template <class Out>
void escape_time(const cuda_executor& exec, const scene& s, device_span<Out> out) {
  static_assert(detail::is_output_v<Out>, "gpukit::fractal::escape_time: Out must be uint8_t, uint16_t, uint32_t or float");
  const char* where = "gpukit::fractal::escape_time";
  detail::validate(s, where);
  detail::require_output(s, out.size(), where);
  detail::dispatch_escape_time<Out, false>(exec, s, out.data());
}

/// Iterations performed per pixel by the GPU path (see the CPU count_iterations; the two
/// agree exactly). Same contract as escape_time.
inline void count_iterations(const cuda_executor& exec, const scene& s, device_span<std::uint32_t> out) {
  const char* where = "gpukit::fractal::count_iterations";
  detail::validate(s, where);
  detail::require_output(s, out.size(), where);
  detail::dispatch_escape_time<std::uint32_t, true>(exec, s, out.data());
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
  const char* where = "gpukit::fractal::colourize";
  detail::require(smooth.size() == out.size(), where,
                  "arguments 'smooth' and 'out' have " + std::to_string(smooth.size()) + " and " +
                      std::to_string(out.size()) + " elements");
  detail::require(max_iters >= 1, where, "argument 'max_iters' = 0 must be >= 1");
  const launch_config cfg = config_for_elements(out.size(), detail::colourize_kernel);
  launch(detail::colourize_kernel, cfg, exec.stream(), smooth, max_iters, p, out);
}

/// The coloured image of `s` with aa × aa samples per pixel (aa in [1, 16]) on the GPU (see
/// supersample.hpp for the sample positions). One thread per pixel.
inline void render_rgb(const cuda_executor& exec, const scene& s, palette p, std::uint32_t aa, device_span<rgb8> out) {
  const char* where = "gpukit::fractal::render_rgb";
  detail::validate(s, where);
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
