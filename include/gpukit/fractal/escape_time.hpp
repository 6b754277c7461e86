// gpukit/fractal/escape_time.hpp — escape-time images on the CPU, and the plain reference.
//
//   gpukit::fractal::scene s;                       // the seed article's scene by default
//   std::vector<std::uint8_t> img(s.view.width * s.view.height);
//   gpukit::fractal::escape_time(gpukit::cpu_executor{}, s, gpukit::make_host_span(img));
//
// The GPU path (gpukit/fractal/mandelbrot.cuh) takes the same scene and gives the same
// counts, bit for bit, in every precision (the iteration is shared: iteration.hpp).
//
// CPU path: OpenMP threads take rows dynamically (rows differ wildly in cost); each thread
// walks its row in groups of 64 bytes of lanes (8 doubles or 16 floats) that iterate
// together with masks, in loops the compiler vectorises for whatever the user's flags
// allow (SSE2 by default, AVX2/AVX-512 with -march). Double-double runs pixel by pixel.
//
// Host-only header: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/executor.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/fractal/iteration.hpp"
#include "gpukit/fractal/scene.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

GPUKIT_STRICT_FP_BEGIN

namespace gpukit::fractal {
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

}  // namespace detail

/// Escape-time image of `s` on the CPU: out[y·width + x] for pixel (x, y), row-major.
/// Out: std::uint8_t, std::uint16_t (counts saturating at 255 / 65535, like the article's
/// uint8 image), std::uint32_t (counts), float (the smooth count; max_iters inside the set).
/// `out` must hold exactly width · height elements; the scene is validated first
/// (std::invalid_argument naming the argument, nothing written). Returns when done.
template <class Out>
void escape_time(const cpu_executor& exec, const scene& s, host_span<Out> out) {
  static_assert(detail::is_output_v<Out>, "gpukit::fractal::escape_time: Out must be uint8_t, uint16_t, uint32_t or float");
  const char* where = "gpukit::fractal::escape_time";
  detail::validate(s, where);
  detail::require_output(s, out.size(), where);
  switch (s.prec) {
    case precision::f32: detail::cpu_escape_rows<float>(exec, s, out.data()); break;
    case precision::f64: detail::cpu_escape_rows<double>(exec, s, out.data()); break;
    case precision::dd: detail::cpu_escape_rows<dd_real>(exec, s, out.data()); break;
  }
}

/// The number of iterations the work-saving algorithm performs for each pixel (0 where an
/// interior test decided, the detection point where periodicity did): what benchmarks
/// count as iterations actually iterated. Same contract as escape_time.
inline void count_iterations(const cpu_executor& exec, const scene& s, host_span<std::uint32_t> out) {
  const char* where = "gpukit::fractal::count_iterations";
  detail::validate(s, where);
  detail::require_output(s, out.size(), where);
  const auto width = s.view.width;
  const auto height = static_cast<std::ptrdiff_t>(s.view.height);
  std::uint32_t* data = out.data();
#pragma omp parallel for num_threads(exec.threads()) schedule(dynamic, 1)
  for (std::ptrdiff_t y = 0; y < height; ++y) {
    for (std::size_t x = 0; x < width; ++x) {
      const double kx = static_cast<double>(x), ky = static_cast<double>(y);
      escape_result r{};
      switch (s.prec) {
        case precision::f32: r = detail::escape_pixel<false, float>(s, kx, ky); break;
        case precision::f64: r = detail::escape_pixel<false, double>(s, kx, ky); break;
        case precision::dd: r = detail::escape_pixel<false, dd_real>(s, kx, ky); break;
      }
      data[static_cast<std::size_t>(y) * width + x] = r.executed;
    }
  }
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
