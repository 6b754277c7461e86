// gpukit/fractal/escape_time.hpp — escape-time images on either executor, and the plain
// reference.
//
//   gpukit::fractal::scene s;                       // the seed article's scene by default
//   std::vector<std::uint8_t> img(s.view.width * s.view.height);
//   gpukit::fractal::escape_time(gpukit::cpu_executor{}, s, gpukit::make_host_span(img));
//   gpukit::fractal::escape_time(gpukit::cuda_executor{stream}, s, device_img.span());   // nvcc
//
// Both executors take the same scene and give the same counts, bit for bit, in every
// precision (the iteration is shared: iteration.hpp). The front ends below check the
// arguments once and call detail::*_impl on the executor (core/dispatch.hpp); the GPU
// implementations are in mandelbrot.cuh, included from here when nvcc compiles.
//
// CPU path: OpenMP threads take rows dynamically (rows differ wildly in cost); each thread
// walks its row in groups of 64 bytes of lanes (8 doubles or 16 floats) that iterate
// together with masks, in loops the compiler vectorises for whatever the user's flags
// allow (SSE2 by default, AVX2/AVX-512 with -march). Double-double runs pixel by pixel.
// GPU path: see mandelbrot.cuh and gpu_strategy below.
//
// Host-compilable: compiles with a plain C++17 compiler; a GPU call from such a file is a
// compile error saying that it needs nvcc.
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/fractal/iteration.hpp"
#include "gpukit/fractal/scene.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

GPUKIT_STRICT_FP_BEGIN

namespace gpukit::fractal {

/// How the GPU path assigns pixels to threads. Every strategy gives the same counts (and
/// the same iterations performed) as the CPU; only the speed differs.
enum class gpu_strategy {
  /// detail::choose_strategy's rule (mandelbrot.cuh), from the scene's iteration limit,
  /// precision and extent.
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

template <class T>
using lane_int = std::conditional_t<sizeof(T) == 8, std::int64_t, std::int32_t>;

/// One group of up to W pixels of row y starting at column x0, iterated in lock step.
/// Lanes are masked rather than refilled: a group is one cache line of output at most, and
/// its slowest lane costs only that group.
template <class T, class Out>
void cpu_lane_group(const scene& s, std::size_t y, std::size_t x0, std::size_t n, Out* row) {
  constexpr int W = static_cast<int>(64 / sizeof(T));
  constexpr bool smooth = std::is_same_v<Out, float>;
  using I = lane_int<T>;
  alignas(64) T zr[W], zi[W], x2[W], y2[W], cr[W], ci[W], sr[W], si[W];
  alignas(64) T ezr[W], ezi[W], ex2[W], ey2[W];  // z where the lane escaped (smooth only)
  alignas(64) double re[W];
  alignas(64) I live[W], count[W];
  alignas(64) int verdict[W];
  const viewport& v = s.view;
  const I max_iters = static_cast<I>(s.max_iters);
  const double im = axis_coordinate(v.origin_y, v.step_y, v.offset_y, static_cast<double>(y));
  const T im_t = static_cast<T>(im);
  const double x_first = static_cast<double>(x0);
#pragma omp simd
  for (int l = 0; l < W; ++l) re[l] = axis_coordinate(v.origin_x, v.step_x, v.offset_x, x_first + l);
  if (s.julia) {
    const T c_re = to_number<T>(s.julia_re), c_im = to_number<T>(s.julia_im);
    for (int l = 0; l < W; ++l) {
      zr[l] = static_cast<T>(re[l]);
      zi[l] = im_t;
      cr[l] = c_re;
      ci[l] = c_im;
      verdict[l] = coarse_outside;
    }
  } else {
    for (int l = 0; l < W; ++l) {
      zr[l] = zi[l] = T(0);
      cr[l] = static_cast<T>(re[l]);
      ci[l] = im_t;
      verdict[l] = coarse_outside;
    }
    const float ay = std::fabs(static_cast<float>(im_t));
    if (s.interior_checks && ay < 0.83f) {
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        const float xf = static_cast<float>(cr[l]);
        verdict[l] = static_cast<int>(in_test_box(xf, ay)) * coarse_interior(xf, ay);
      }
    }
  }
#pragma omp simd
  for (int l = 0; l < W; ++l) {
    x2[l] = mul(zr[l], zr[l]);
    y2[l] = mul(zi[l], zi[l]);
  }
  I any = 0;
  for (int l = 0; l < W; ++l) {
    bool inside = verdict[l] == coarse_inside;
    if (verdict[l] == coarse_near)
      inside = fine_interior(static_cast<double>(cr[l]), static_cast<double>(ci[l]), fine_margin_for<T>);
    const bool run = static_cast<std::size_t>(l) < n && !inside;
    live[l] = run ? ~I(0) : I(0);
    count[l] = run ? I(0) : max_iters;
    any |= live[l];
    sr[l] = zr[l];
    si[l] = zi[l];
    ezr[l] = ezi[l] = ex2[l] = ey2[l] = T(0);
  }
  // `steps` masked steps of every lane, the lane loop outside so that each lane's state
  // stays in registers: a lane that escapes stops counting, so count ends as the number of
  // iterations that did not escape, which is the escape index.
  const auto step_lanes = [&](auto steps) {
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      T a = zr[l], b = zi[l], aa = x2[l], bb = y2[l];
      I alive = live[l], n_ok = count[l];
      for (int u = 0; u < decltype(steps)::value; ++u) {
        const T t = mul(a, b);
        a = add(sub(aa, bb), cr[l]);
        b = twice_plus(t, ci[l]);
        aa = mul(a, a);
        bb = mul(b, b);
        const I out = add(aa, bb) >= T(4) ? ~I(0) : I(0);
        if constexpr (smooth) {
          const I now = alive & out;
          ezr[l] = now ? a : ezr[l];
          ezi[l] = now ? b : ezi[l];
          ex2[l] = now ? aa : ex2[l];
          ey2[l] = now ? bb : ey2[l];
        }
        n_ok += alive & ~out & I(1);
        alive &= ~out;
      }
      zr[l] = a;
      zi[l] = b;
      x2[l] = aa;
      y2[l] = bb;
      live[l] = alive;
      count[l] = n_ok;
    }
  };
  // Blocks of escape_block steps between the checks for live lanes (groups whose lanes
  // all escape early stop early), the periodicity test after every whole period.
  using block = std::integral_constant<int, static_cast<int>(escape_block)>;
  using single = std::integral_constant<int, 1>;
  const bool periodicity = periodicity_on(s);
  std::uint32_t i = 0;
  while (any && s.max_iters - i >= escape_block) {
    step_lanes(block{});
    i += escape_block;
    if (periodicity && i % period_block == 0) {
      const bool save = save_point(i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        // == rather than bits: equal up to the sign of zero is an equally certain cycle.
        const I same = live[l] & (((zr[l] == sr[l]) & (zi[l] == si[l])) ? ~I(0) : I(0));
        count[l] = same ? max_iters : count[l];
        live[l] &= ~same;
        sr[l] = save ? zr[l] : sr[l];
        si[l] = save ? zi[l] : si[l];
      }
    }
    any = 0;
#pragma omp simd reduction(| : any)
    for (int l = 0; l < W; ++l) any |= live[l];
  }
  for (; any && i < s.max_iters; ++i) step_lanes(single{});
  if constexpr (smooth) {
    for (std::size_t l = 0; l < n; ++l) {
      escape_result r{static_cast<std::uint32_t>(count[l]), 0, static_cast<float>(s.max_iters)};
      if (r.count < s.max_iters) {
        const orbit<T> o{ezr[l], ezi[l], ex2[l], ey2[l]};
        r.smooth = smooth_count(o, cr[l], ci[l], r.count, s.max_iters, r.executed);
      }
      row[l] = r.smooth;
    }
  } else {
    constexpr auto top = static_cast<std::uint32_t>(static_cast<Out>(~Out(0)));
    for (std::size_t l = 0; l < n; ++l) {
      const auto c = static_cast<std::uint32_t>(count[l]);
      row[l] = static_cast<Out>(c < top ? c : top);
    }
  }
}

template <class T, class Out>
void cpu_escape_rows(const cpu_executor& exec, const scene& s, Out* out) {
  const auto width = s.view.width;
  const auto height = static_cast<std::ptrdiff_t>(s.view.height);
#pragma omp parallel for num_threads(exec.threads()) schedule(dynamic, 1)
  for (std::ptrdiff_t y = 0; y < height; ++y) {
    Out* row = out + static_cast<std::size_t>(y) * width;
    if constexpr (std::is_same_v<T, dd_real>) {
      for (std::size_t x = 0; x < width; ++x)
        row[x] = to_output<Out>(escape_pixel<std::is_same_v<Out, float>, dd_real>(s, static_cast<double>(x),
                                                                                  static_cast<double>(y)));
    } else {
      constexpr std::size_t W = 64 / sizeof(T);
      for (std::size_t x = 0; x < width; x += W)
        cpu_lane_group<T>(s, static_cast<std::size_t>(y), x, width - x < W ? width - x : W, row + x);
    }
  }
}

inline void require_strategy(gpu_strategy g, const char* where) {
  require(g == gpu_strategy::automatic || g == gpu_strategy::per_pixel || g == gpu_strategy::pixel_pairs ||
              g == gpu_strategy::lane_refill,
          where, "argument 'strategy' = " + std::to_string(static_cast<int>(g)) + " is not a gpu_strategy");
}

/// The checks escape_time and count_iterations share (before anything is written or queued).
template <class Out>
void check_escape_time(const scene& s, std::size_t out_size, const char* where) {
  static_assert(is_output_v<Out>, "gpukit::fractal::escape_time: Out must be uint8_t, uint16_t, uint32_t or float");
  validate(s, where);
  require_output(s, out_size, where);
}

template <class Exec>
constexpr void require_gpu_for_strategy() {
  static_assert(is_gpu_executor_v<Exec>,
                "gpukit::fractal: a gpu_strategy picks among the GPU's kernels; the CPU path takes none");
}

// --- the CPU path (one path: the strategy, always automatic here, is not used) -------------

template <class Out>
void escape_time_impl(const cpu_executor& exec, const scene& s, Out* out, gpu_strategy) {
  switch (s.prec) {
    case precision::f32: cpu_escape_rows<float>(exec, s, out); break;
    case precision::f64: cpu_escape_rows<double>(exec, s, out); break;
    case precision::dd: cpu_escape_rows<dd_real>(exec, s, out); break;
  }
}

inline void count_iterations_impl(const cpu_executor& exec, const scene& s, std::uint32_t* out, gpu_strategy) {
  const auto width = s.view.width;
  const auto height = static_cast<std::ptrdiff_t>(s.view.height);
#pragma omp parallel for num_threads(exec.threads()) schedule(dynamic, 1)
  for (std::ptrdiff_t y = 0; y < height; ++y) {
    for (std::size_t x = 0; x < width; ++x) {
      const double kx = static_cast<double>(x), ky = static_cast<double>(y);
      escape_result r{};
      switch (s.prec) {
        case precision::f32: r = escape_pixel<false, float>(s, kx, ky); break;
        case precision::f64: r = escape_pixel<false, double>(s, kx, ky); break;
        case precision::dd: r = escape_pixel<false, dd_real>(s, kx, ky); break;
      }
      out[static_cast<std::size_t>(y) * width + x] = r.executed;
    }
  }
}

// --- the article's kernel: numba-cuda's arithmetic ------------------------------------------

/// The article's mandel() as numba-cuda compiles it for the GPU, rounding for rounding:
///     t = zr·zi, y2 = zi·zi                                   rounded
///     zr' = c_re + fma(zr, zr, −y2)                           Re(z·z) fused by ptxas
///     zi' = c_im + fma(zr, zi, t)                             Im(z·z) fused by numba's NVVM
///     escape when fma(zr', zr', zi'·zi') >= 4                  |z|² fused by numba's NVVM
/// numba's PTX (benchmarks/peers/numba_mandelbrot.py writes it) holds the last two FMAs;
/// its remaining mul.f64/sub.f64 carry no rounding modifier, which lets ptxas fuse zr·zr
/// into the subtraction — the pattern that reproduces every stored numba count.
/// y2 is the previous escape test's zi'·zi', so one step is seven FP operations.
/// Python's complex arithmetic on the CPU rounds every operation (reference_escape_time);
/// the two agree on every pixel of the article's scene at its 20 iterations, not beyond.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::uint32_t numba_article_count(T c_re, T c_im, std::uint32_t max_iters) {
  T zr = 0, zi = 0, y2 = 0;
  for (std::uint32_t i = 0; i < max_iters; ++i) {
    const T t = mul(zr, zi);
    const T re = fused(zr, zr, -y2);
    const T im = fused(zr, zi, t);
    zr = add(c_re, re);
    zi = add(c_im, im);
    y2 = mul(zi, zi);
    if (fused(zr, zr, y2) >= T(4)) return i;
  }
  return max_iters;
}

/// The article's pixel coordinate as numba-cuda compiles it: min + k·size contracted into
/// one FMA (size = (max − min) / n rounded, computed once per image).
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T numba_article_coordinate(T min, T size, std::uint32_t k) {
  return fused(static_cast<T>(k), size, min);
}

/// plain_escape_time's CPU path: rows in parallel, the same per-pixel function as the GPU.
template <class T, class Out>
void plain_escape_time_impl(const cpu_executor& exec, T min_x, T max_x, T min_y, T max_y, std::uint32_t max_iters,
                            std::uint32_t width, std::uint32_t height, Out* out) {
  const T size_x = (max_x - min_x) / static_cast<T>(width);
  const T size_y = (max_y - min_y) / static_cast<T>(height);
  constexpr std::uint32_t top = static_cast<std::uint32_t>(Out(~Out(0)));
#pragma omp parallel for num_threads(exec.threads()) schedule(dynamic, 1)
  for (std::int64_t y = 0; y < static_cast<std::int64_t>(height); ++y) {
    const T imag = numba_article_coordinate(min_y, size_y, static_cast<std::uint32_t>(y));
    Out* row = out + static_cast<std::size_t>(y) * width;
    for (std::uint32_t x = 0; x < width; ++x) {
      const std::uint32_t count = numba_article_count(numba_article_coordinate(min_x, size_x, x), imag, max_iters);
      row[x] = static_cast<Out>(count < top ? count : top);
    }
  }
}

// --- the GPU path: defined in mandelbrot.cuh ------------------------------------------------

#if defined(__CUDACC__)
template <class Out>
void escape_time_impl(const cuda_executor& exec, const scene& s, Out* out, gpu_strategy g);
inline void count_iterations_impl(const cuda_executor& exec, const scene& s, std::uint32_t* out, gpu_strategy g);
template <class T, class Out>
void plain_escape_time_impl(const cuda_executor& exec, T min_x, T max_x, T min_y, T max_y, std::uint32_t max_iters,
                            std::uint32_t width, std::uint32_t height, Out* out);
#else
GPUKIT_GPU_ONLY_STUB(escape_time_impl)
GPUKIT_GPU_ONLY_STUB(count_iterations_impl)
GPUKIT_GPU_ONLY_STUB(plain_escape_time_impl)
#endif

}  // namespace detail

/// Escape-time image of `s`: out[y·width + x] for pixel (x, y), row-major, in the
/// executor's memory (host_span for cpu_executor, device_span for cuda_executor).
/// Out: std::uint8_t, std::uint16_t (counts saturating at 255 / 65535, like the article's
/// uint8 image), std::uint32_t (counts), float (the smooth count; max_iters inside the set).
/// `out` must hold exactly width · height elements; the scene is validated first
/// (std::invalid_argument naming the argument, nothing written or queued). CPU: returns
/// when done; GPU: queued on exec.stream(), returns without waiting.
template <class Exec, class Out>
void escape_time(const Exec& exec, const scene& s, span_for<Exec, Out> out) {
  detail::check_escape_time<Out>(s, out.size(), "gpukit::fractal::escape_time");
  detail::escape_time_impl(exec, s, out.data(), gpu_strategy::automatic);
}

/// escape_time on the GPU with the kernel `strategy` picks (the same image either way;
/// leave it automatic unless measuring).
template <class Exec, class Out>
void escape_time(const Exec& exec, const scene& s, span_for<Exec, Out> out, gpu_strategy strategy) {
  detail::require_gpu_for_strategy<Exec>();
  const char* where = "gpukit::fractal::escape_time";
  detail::check_escape_time<Out>(s, out.size(), where);
  detail::require_strategy(strategy, where);
  detail::escape_time_impl(exec, s, out.data(), strategy);
}

/// The number of iterations the work-saving algorithm performs for each pixel (0 where an
/// interior test decided, the detection point where periodicity did): what benchmarks
/// count as iterations actually iterated. The CPU and the GPU agree exactly, whatever the
/// strategy. Same contract as escape_time.
template <class Exec>
void count_iterations(const Exec& exec, const scene& s, span_for<Exec, std::uint32_t> out) {
  detail::check_escape_time<std::uint32_t>(s, out.size(), "gpukit::fractal::count_iterations");
  detail::count_iterations_impl(exec, s, out.data(), gpu_strategy::automatic);
}

/// count_iterations on the GPU with the kernel `strategy` picks.
template <class Exec>
void count_iterations(const Exec& exec, const scene& s, span_for<Exec, std::uint32_t> out, gpu_strategy strategy) {
  detail::require_gpu_for_strategy<Exec>();
  const char* where = "gpukit::fractal::count_iterations";
  detail::check_escape_time<std::uint32_t>(s, out.size(), where);
  detail::require_strategy(strategy, where);
  detail::count_iterations_impl(exec, s, out.data(), strategy);
}

/// The seed article's GPU kernel — one thread per pixel of a 16 × 16 block, no
/// work-saving — with the arithmetic numba-cuda gives the article's float64 code
/// (numba_article_count: two FMAs, every other operation rounded once; pixel coordinates by
/// FMA), over the bounds [min_x, max_x] × [min_y, max_y] in precision T (float or double;
/// float follows the same pattern). In double its counts equal the article's numba-cuda
/// image at any iteration limit. Kept as the yardstick for tests and benchmarks; use
/// escape_time for speed. Out: std::uint8_t (saturating at 255) or std::uint32_t, in the
/// executor's memory; `out` holds exactly width · height elements, row-major. Arguments
/// are checked first (std::invalid_argument naming the argument, nothing written or
/// queued). CPU: returns when done; GPU: queued on exec.stream().
template <class T, class Out, class Exec>
void plain_escape_time(const Exec& exec, double min_x, double max_x, double min_y, double max_y,
                       std::uint32_t max_iters, std::size_t width, std::size_t height, span_for<Exec, Out> out) {
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
  detail::plain_escape_time_impl(exec, static_cast<T>(min_x), static_cast<T>(max_x), static_cast<T>(min_y),
                                 static_cast<T>(max_y), max_iters, static_cast<std::uint32_t>(width),
                                 static_cast<std::uint32_t>(height), out.data());
}

namespace detail {
/// The article's mandel(): z = z*z + c with Python's complex product, then |z|² ≥ 4.
template <class T>
std::uint32_t article_count(T z_re, T z_im, T c_re, T c_im, std::uint32_t max_iters) {
  for (std::uint32_t i = 0; i < max_iters; ++i) {
    const T re = z_re * z_re - z_im * z_im + c_re;
    const T im = z_re * z_im + z_im * z_re + c_im;
    z_re = re;
    z_im = im;
    if (z_re * z_re + z_im * z_im >= T(4)) return i;
  }
  return max_iters;
}
/// In double-double: the products exact to ~2^-106, the sums Dekker's, the threshold on a
/// double sum of the parts (what "the article's algorithm" means in this arithmetic).
inline std::uint32_t article_count(dd_real z_re, dd_real z_im, dd_real c_re, dd_real c_im, std::uint32_t max_iters) {
  for (std::uint32_t i = 0; i < max_iters; ++i) {
    const dd_real re = add_fast(sub_fast(z_re * z_re, z_im * z_im), c_re);
    const dd_real im = add_fast(add_fast(z_re * z_im, z_im * z_re), c_im);
    z_re = re;
    z_im = im;
    if (magnitude2(z_re * z_re, z_im * z_im) >= 4.0) return i;
  }
  return max_iters;
}
}  // namespace detail

/// The seed article's algorithm as it stands — one thread, no shortcuts, the complex
/// product written out — for tests and as the benchmarks' yardstick. Counts (uint32) of
/// `s` (its view, max_iters, precision and Julia settings; the work-saving flags are
/// ignored). Same output contract as escape_time.
inline void reference_escape_time(const scene& s, host_span<std::uint32_t> out) {
  const char* where = "gpukit::fractal::reference_escape_time";
  detail::validate(s, where);
  detail::require_output(s, out.size(), where);
  const viewport& v = s.view;
  const auto run = [&](auto zero) {
    using T = decltype(zero);
    for (std::size_t y = 0; y < v.height; ++y) {
      const T im = detail::pixel_coordinate<T>(v.origin_y, v.step_y, v.offset_y, static_cast<double>(y));
      for (std::size_t x = 0; x < v.width; ++x) {
        const T re = detail::pixel_coordinate<T>(v.origin_x, v.step_x, v.offset_x, static_cast<double>(x));
        out[y * v.width + x] =
            s.julia ? detail::article_count(re, im, detail::to_number<T>(s.julia_re), detail::to_number<T>(s.julia_im),
                                            s.max_iters)
                    : detail::article_count(T{}, T{}, re, im, s.max_iters);
      }
    }
  };
  switch (s.prec) {
    case precision::f32: run(0.0f); break;
    case precision::f64: run(0.0); break;
    case precision::dd: run(dd_real{}); break;
  }
}

}  // namespace gpukit::fractal

GPUKIT_STRICT_FP_END

#if defined(__CUDACC__)
#include "gpukit/fractal/mandelbrot.cuh"
#endif
