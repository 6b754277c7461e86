// gpukit/fractal/perturbation.hpp — the per-pixel perturbation iteration that the CPU path
// and the GPU kernel share, and its CPU path. What it reads (the reference orbit and its
// approximation tables) is made on the host by plan_deep_zoom (deep_zoom.hpp), which holds
// the front ends.
//
// A pixel c = C + dc is followed as z_n = Z_n + δ_n around the reference orbit Z_n of C:
//     δ_{n+1} = (2 Z_n + δ_n) δ_n + dc          (= 2 Z_n δ_n + δ_n² + dc)
// with three things added:
// - Bilinear approximation (bla.hpp): where a table step holds the delta, many iterations
//   are one step δ ← A δ + B dc.
// - Rebasing (Zhuoran): when z gets closer to 0 than to the reference point, here when
//   max(|Re z|, |Im z|) < max(|Re δ|, |Im δ|) by the high words of their bits (an integer
//   test, exact and the same everywhere), the pixel continues from the orbit's start
//   with δ = z. This is exact (Z_0 = 0), and it is what keeps the delta small beside the
//   reference value it is added to: a pixel that passed near 0 while the reference did
//   not would otherwise lose its digits in z = Z + δ and come out with its neighbours'
//   count (a glitch; Pauldelbrot's criterion |z| < 10^-3 |Z| detects them, and the
//   Rebase = false variant below counts those detections for tests). The same move
//   continues pixels past the end of an orbit that escaped before them.
// - Escape: the article's test |z|² >= 4 on z = Z + δ in double, its count convention (the
//   index of the iteration that escaped), and the smooth count of iteration.hpp.
//
// Deltas are doubles while the zoom lets them be (pixel sizes >= ~1e-290). Deeper, a
// delta starts in the extended-exponent form (extended_float.hpp, with the tables' and
// the orbit's extended forms) and moves to double once it has grown past 2^-400, where
// nothing it is combined with can underflow any more (a dc too small for a normal double
// is then negligible beside it), and back when it falls below 2^-450 (after a rebase
// near 0).
// Most iterations of deep pixels are either skipped by the tables or done in double.
//
// Every operation is rounded as strict_fp.hpp says (the double step and |z|² with FMAs,
// std::fma on the host), so the CPU and the GPU give the same counts, bit for bit.
//
// Host-compilable: compiles with a plain C++17 compiler; the GPU path is in
// perturbation.cuh, included from here when nvcc compiles.
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/fractal/bla.hpp"
#include "gpukit/fractal/colour.hpp"
#include "gpukit/fractal/extended_float.hpp"
#include "gpukit/fractal/iteration.hpp"
#include "gpukit/fractal/supersample.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

GPUKIT_STRICT_FP_BEGIN

namespace gpukit::fractal {

/// Everything a perturbed render reads, in host memory (plan_deep_zoom makes it).
struct perturbation_reference {
  std::vector<dcomplex> orbit;    ///< Z_0 .. Z_length in double
  std::vector<xcomplex> orbit_x;  ///< the same, extended (only when `extended`)
  bla_table bla;                  ///< steps_x filled only when `extended`
  std::uint32_t length = 0;       ///< the orbit's last index (reference_orbit::length)
  bool extended = false;          ///< deltas start in the extended form (pixel sizes below ~1e-290)
  std::uint32_t width = 1, height = 1;
  std::uint32_t max_iters = 1;
  xfloat pixel;                        ///< the pixel size, rounded to a double's mantissa
  double offset_x = 0.0, offset_y = 0.0;  ///< the reference point's pixel coordinates
  double center_re = 0.0, center_im = 0.0;  ///< the reference point in double (smooth count only)
};

/// A perturbation_reference as pointers (host or device memory) and scalars: what the
/// per-pixel function reads. Trivially copyable: passed to kernels by value.
struct perturbation_view {
  const dcomplex* orbit = nullptr;
  const xcomplex* orbit_x = nullptr;
  const bla_step* bla = nullptr;
  const bla_step_x* bla_x = nullptr;
  bla_levels levels;
  std::uint32_t bla_reach_key = 0;  ///< magnitude_key(bla_table::reach): above it no table step holds a delta
  std::uint32_t length = 0, max_iters = 1, width = 1, height = 1;
  xfloat pixel;
  double offset_x = 0.0, offset_y = 0.0, center_re = 0.0, center_im = 0.0;
};

/// The view of a reference in host memory.
inline perturbation_view host_view(const perturbation_reference& r) {
  perturbation_view v;
  v.orbit = r.orbit.data();
  v.orbit_x = r.extended ? r.orbit_x.data() : nullptr;
  v.bla = r.bla.steps.data();
  v.bla_x = r.extended ? r.bla.steps_x.data() : nullptr;
  v.levels = r.bla.levels;
  v.bla_reach_key = static_cast<std::uint32_t>(detail::bits(r.bla.reach) >> 32) & 0x7fffffffu;  // magnitude_key
  v.length = r.length;
  v.max_iters = r.max_iters;
  v.width = r.width;
  v.height = r.height;
  v.pixel = r.pixel;
  v.offset_x = r.offset_x;
  v.offset_y = r.offset_y;
  v.center_re = r.center_re;
  v.center_im = r.center_im;
  return v;
}

/// What one pixel's perturbed iteration produced.
struct perturbed_result {
  escape_result r;             ///< count, steps performed (table steps count one each), smooth count
  std::uint32_t rebases = 0;   ///< moves back to the orbit's start (reference ends included)
  std::uint32_t glitches = 0;  ///< Pauldelbrot detections; counted only with rebasing off
};

namespace detail {

/// Pauldelbrot's criterion, squared: |z|² < 10^-6 |Z|².
inline constexpr double glitch_tolerance2 = 1e-6;
/// An extended delta moves to double at |δ| >= 2^-400 (largest part) ...
inline constexpr std::int32_t double_phase_exponent = -400;
/// ... and back below 2^-450.
inline constexpr double extended_phase_below = 0x1p-450;
/// The double phase adds dc only from 2^-960 up.
inline constexpr std::int32_t double_dc_exponent = -960;

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double largest_part(double re, double im) {
  const double a = std::fabs(re), b = std::fabs(im);
  return a > b ? a : b;
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xfloat largest_part(const xcomplex& z) {
  if (is_zero(z)) return {};
  return {largest_part(z.re, z.im), z.e};
}

/// The high word of |v|'s bits: monotone in |v|, so key(a) < key(b) implies |a| < |b| (and
/// |a| < |b| implies key(a) <= key(b)). The loop's size tests compare these on the integer
/// pipe, leaving the FP64 pipe to the arithmetic.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::uint32_t magnitude_key(double v) {
#if GPUKIT_DEVICE_PASS
  return static_cast<std::uint32_t>(__double2hiint(v)) & 0x7fffffffu;
#else
  return static_cast<std::uint32_t>(bits(v) >> 32) & 0x7fffffffu;
#endif
}
/// The key of the largest part of (re, im).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::uint32_t magnitude_key(double re, double im) {
  const std::uint32_t a = magnitude_key(re), b = magnitude_key(im);
  return a > b ? a : b;
}

/// Z_m: one 16-byte load on the device (the orbit's entries are 16-byte aligned).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dcomplex orbit_at(const dcomplex* orbit, std::uint32_t m) {
#if GPUKIT_DEVICE_PASS
  const double2 z = __ldg(reinterpret_cast<const double2*>(orbit) + m);
  return {z.x, z.y};
#else
  return orbit[m];
#endif
}

/// One perturbation step in double: (2Z + δ)δ + dc, with FMAs (the same on both executors).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dcomplex perturb(dcomplex z, dcomplex d, dcomplex dc) {
  const double tr = twice_plus(z.re, d.re), ti = twice_plus(z.im, d.im);  // 2Z + δ
  return {add(fused(tr, d.re, -mul(ti, d.im)), dc.re), add(fused(tr, d.im, mul(ti, d.re)), dc.im)};
}

/// |z|² with one FMA.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double squared_magnitude(double zr, double zi) { return fused(zr, zr, mul(zi, zi)); }

/// The rebase test: z has come closer to 0 than the delta is large (largest parts, by key).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool closer_to_zero(double zr, double zi, dcomplex d) {
  return magnitude_key(zr, zi) < magnitude_key(d.re, d.im);
}

/// dc of the point at pixel coordinates (kx, ky) (fractional for supersampling):
/// ((kx − offset_x) · pixel, (ky − offset_y) · pixel), each product rounded once.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xcomplex pixel_delta(const perturbation_view& v, double kx, double ky) {
  return to_xcomplex(sub(kx, v.offset_x), sub(ky, v.offset_y)) * v.pixel;
}

/// Double deltas take table steps of 2^3 iterations or more. A shorter table step costs a
/// dependent read of the tables (their entries are 40 bytes; for a pixel alone on its SM
/// each read is a round trip to L2) to save at most a few perturbation steps, which need
/// only Z_m, already in registers: at a pixel size of 1e-14 (1024², 20,000 iterations) the
/// few pixels near the reference that took single table steps kept the kernel running long
/// after the rest of the image (on an H100, 2026-12-06: 16.1 ms with steps of any length,
/// 10.2 ms from 2^3 up).
inline constexpr std::uint32_t double_table_min_level = 3;

/// The longest table step that holds the double delta d at reference index m after i
/// iterations: applies it (advancing m and i) and returns true, or returns false. The key
/// test skips the table where no step can hold d (bla_table::reach; at shallow zooms nothing
/// ever does).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool table_step(const perturbation_view& v, dcomplex& d, dcomplex dc,
                                                      std::uint32_t& m, std::uint32_t& i) {
  if (m == 0 || magnitude_key(d.re, d.im) > v.bla_reach_key) return false;
  const bla_step* s = nullptr;
  const std::uint32_t l =
      find_bla_step(v.levels, v.bla, m, v.max_iters - i, largest_part(d.re, d.im), s, double_table_min_level);
  if (l == 0) return false;
  d = apply(*s, d, dc);
  m += l;
  i += l;
  return true;
}

/// One step of a double delta: a table step, or one perturbation step from Z_m (`zm`).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void step_double(const perturbation_view& v, dcomplex& d, dcomplex dc,
                                                       dcomplex zm, std::uint32_t& m, std::uint32_t& i) {
  if (table_step(v, d, dc, m, i)) return;
  d = perturb(zm, d, dc);
  ++m;
  ++i;
}

/// The same for an extended delta.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void step_extended(const perturbation_view& v, xcomplex& d, const xcomplex& dc,
                                                         std::uint32_t& m, std::uint32_t& i) {
  if (m >= 1) {
    const bla_step_x* s = nullptr;
    const std::uint32_t l = find_bla_step(v.levels, v.bla_x, m, v.max_iters - i, largest_part(d), s);
    if (l != 0) {
      d = apply(*s, d, dc);
      m += l;
      i += l;
      return;
    }
  }
  d = (scaled(v.orbit_x[m], 1) + d) * d + dc;
  ++m;
  ++i;
}

/// The result of a pixel whose z = (zr, zi) escaped after i iterations.
template <bool Smooth>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE escape_result escaped_at(const perturbation_view& v, double zr, double zi,
                                                               const xcomplex& dc, std::uint32_t i,
                                                               std::uint32_t executed) {
  escape_result r{i - 1, executed, 0.0f};
  if constexpr (Smooth) {
    // A few more plain steps in double: z is large now, and c needs no more digits than
    // the smooth count's float result has.
    const double cr = add(v.center_re, real_double(dc)), ci = add(v.center_im, imag_double(dc));
    r.smooth = smooth_count(start_orbit(zr, zi), cr, ci, r.count, v.max_iters, r.executed);
  }
  return r;
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE perturbed_result not_escaped(std::uint32_t max_iters) {
  perturbed_result p;
  p.r = interior_result(max_iters, 0);
  return p;
}

/// The table's steps start only where m − 1 is a multiple of 2^double_table_min_level:
/// the plain_block steps in between are perturbation steps for every pixel.
inline constexpr std::uint32_t plain_block = (1u << double_table_min_level) - 1;

/// The plain_block perturbation steps from m (m − 1 ≡ 1 modulo the table's grid), testing
/// each for escape and rebasing but branching once: true, with d, zm and m advanced, when
/// none escaped or rebased; false, with nothing changed, otherwise (the caller then takes
/// them one by one). The steps are exactly those the one-by-one loop takes when nothing
/// happens. Why: a branch per step and the tests' selects made that loop ~54 warp
/// instructions per step on the GPU.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool plain_block_steps(const perturbation_view& v, dcomplex& d, dcomplex dc,
                                                             dcomplex& zm, std::uint32_t& m) {
  dcomplex bd = d, bz = zm;
  bool event = false;
  for (std::uint32_t u = 1; u <= plain_block; ++u) {
    bd = perturb(bz, bd, dc);
    bz = orbit_at(v.orbit, m + u);
    const double zr = add(bz.re, bd.re), zi = add(bz.im, bd.im);
    event = event | at_least_four(squared_magnitude(zr, zi)) | (m + u == v.length) | closer_to_zero(zr, zi, bd);
  }
  if (event) return false;
  d = bd;
  zm = bz;
  m += plain_block;
  return true;
}

/// A pixel with double deltas. Rebase = false turns the |z| < |δ| rebasing off (the
/// orbit's end still rebases) and counts Pauldelbrot's detections instead: tests use it to
/// show that a scene glitches without rebasing.
template <bool Smooth, bool Rebase = true>
GPUKIT_HOST_DEVICE inline perturbed_result perturbed_pixel_double(const perturbation_view& v, double kx, double ky) {
  const xcomplex dcx = pixel_delta(v, kx, ky);
  const dcomplex dc{real_double(dcx), imag_double(dcx)};
  perturbed_result p = not_escaped(v.max_iters);
  dcomplex d{};
  dcomplex zm{};  // Z_m, carried from one step to the next (Z_0 = 0)
  std::uint32_t m = 0, i = 0, executed = 0;
  while (i < v.max_iters) {
    if constexpr (Rebase) {
      constexpr std::uint32_t grid_mask = (1u << double_table_min_level) - 1;
      if (m >= 1 && ((m - 1) & grid_mask) == 1 && v.max_iters - i >= plain_block && v.length - m >= plain_block &&
          plain_block_steps(v, d, dc, zm, m)) {
        i += plain_block;
        executed += plain_block;
        continue;
      }
      // Off the block's start, near the end, or something happens in it: one step.
    }
    step_double(v, d, dc, zm, m, i);
    ++executed;
    zm = orbit_at(v.orbit, m);
    const double zr = add(zm.re, d.re), zi = add(zm.im, d.im);
    const double mag = squared_magnitude(zr, zi);
    if (at_least_four(mag)) {
      p.r = escaped_at<Smooth>(v, zr, zi, dcx, i, executed);
      return p;
    }
    bool rebase = m == v.length;
    if constexpr (Rebase) {
      rebase = rebase || closer_to_zero(zr, zi, d);
    } else if (mag < mul(glitch_tolerance2, squared_magnitude(zm.re, zm.im))) {
      ++p.glitches;
    }
    if (rebase) {
      d = {zr, zi};
      m = 0;
      zm = {};
      ++p.rebases;
    }
  }
  p.r.executed = executed;
  return p;
}

/// A pixel whose deltas start in the extended form (see the header comment).
template <bool Smooth>
GPUKIT_HOST_DEVICE inline perturbed_result perturbed_pixel_extended(const perturbation_view& v, double kx, double ky) {
  const xcomplex dcx = pixel_delta(v, kx, ky);
  // The double phase adds dc where it is a normal double with room to spare; below that
  // (|dc| < 2^-960) it is far below any rounding beside a double-phase delta (>= 2^-450),
  // while its subnormal double would carry few correct bits.
  const dcomplex dc = dcx.e >= double_dc_exponent ? dcomplex{real_double(dcx), imag_double(dcx)} : dcomplex{};
  perturbed_result p = not_escaped(v.max_iters);
  xcomplex dx{};
  dcomplex d{};
  bool extended = true;
  std::uint32_t m = 0, i = 0, executed = 0;
  while (i < v.max_iters) {
    double zr, zi;
    bool rebase;
    if (extended) {
      step_extended(v, dx, dcx, m, i);
      const xcomplex z = v.orbit_x[m] + dx;
      zr = real_double(z);
      zi = imag_double(z);
      rebase = m == v.length || less_nonnegative(largest_part(z), largest_part(dx));
      if (rebase) dx = z;
    } else {
      step_double(v, d, dc, orbit_at(v.orbit, m), m, i);
      const dcomplex zm = orbit_at(v.orbit, m);
      zr = add(zm.re, d.re);
      zi = add(zm.im, d.im);
      rebase = m == v.length || closer_to_zero(zr, zi, d);
      if (rebase) d = {zr, zi};
    }
    ++executed;
    if (at_least_four(squared_magnitude(zr, zi))) {
      p.r = escaped_at<Smooth>(v, zr, zi, dcx, i, executed);
      return p;
    }
    if (rebase) {
      m = 0;
      ++p.rebases;
    }
    if (extended && dx.e >= double_phase_exponent) {
      d = {real_double(dx), imag_double(dx)};
      extended = false;
    } else if (!extended && largest_part(d.re, d.im) < extended_phase_below) {
      dx = to_xcomplex(d.re, d.im);
      extended = true;
    }
  }
  p.r.executed = executed;
  return p;
}

/// The pixel at pixel coordinates (kx, ky), with the delta form the reference asks for.
template <bool Extended, bool Smooth>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE perturbed_result perturbed_pixel(const perturbation_view& v, double kx,
                                                                       double ky) {
  if constexpr (Extended) {
    return perturbed_pixel_extended<Smooth>(v, kx, ky);
  } else {
    return perturbed_pixel_double<Smooth>(v, kx, ky);
  }
}

/// Pixel (x, y) coloured from aa × aa samples (supersample.hpp's sample positions).
template <bool Extended>
GPUKIT_HOST_DEVICE inline rgb8 perturbed_colour(const perturbation_view& v, palette p, std::uint32_t aa,
                                                std::uint32_t x, std::uint32_t y) {
  return supersample(v.max_iters, p, aa, x, y,
                     [&](double kx, double ky) { return perturbed_pixel<Extended, true>(v, kx, ky).r.smooth; });
}

// --- the CPU path ---------------------------------------------------------------------------

/// Every pixel, rows shared out dynamically (their costs differ wildly). Work: write the
/// steps performed instead of the output element.
template <bool Extended, class Out, bool Work>
void perturbation_rows(const cpu_executor& exec, const perturbation_view& v, Out* out) {
  constexpr bool smooth = std::is_same_v<Out, float> && !Work;
  const std::size_t width = v.width;
  const auto height = static_cast<std::ptrdiff_t>(v.height);
#pragma omp parallel for num_threads(exec.threads()) schedule(dynamic, 1)
  for (std::ptrdiff_t y = 0; y < height; ++y) {
    Out* row = out + static_cast<std::size_t>(y) * width;
    for (std::size_t x = 0; x < width; ++x) {
      const perturbed_result p = perturbed_pixel<Extended, smooth>(v, static_cast<double>(x), static_cast<double>(y));
      if constexpr (Work) {
        row[x] = p.r.executed;
      } else {
        row[x] = to_output<Out>(p.r);
      }
    }
  }
}

template <class Out, bool Work>
void perturbation_dispatch(const cpu_executor& exec, const perturbation_reference& ref, Out* out) {
  const perturbation_view v = host_view(ref);
  if (ref.extended)
    perturbation_rows<true, Out, Work>(exec, v, out);
  else
    perturbation_rows<false, Out, Work>(exec, v, out);
}

/// escape_time's CPU path for perturbed plans (arguments checked by deep_zoom.hpp).
template <class Out>
void perturbation_escape_time_impl(const cpu_executor& exec, const perturbation_reference& ref, Out* out) {
  perturbation_dispatch<Out, false>(exec, ref, out);
}

/// count_iterations' CPU path for perturbed plans.
inline void perturbation_count_iterations_impl(const cpu_executor& exec, const perturbation_reference& ref,
                                               std::uint32_t* out) {
  perturbation_dispatch<std::uint32_t, true>(exec, ref, out);
}

/// render_rgb's CPU path for perturbed plans.
inline void perturbation_render_rgb_impl(const cpu_executor& exec, const perturbation_reference& ref, palette p,
                                         std::uint32_t aa, rgb8* out) {
  const perturbation_view v = host_view(ref);
  const auto height = static_cast<std::ptrdiff_t>(v.height);
#pragma omp parallel for num_threads(exec.threads()) schedule(dynamic, 1)
  for (std::ptrdiff_t y = 0; y < height; ++y) {
    const auto yy = static_cast<std::uint32_t>(y);
    for (std::uint32_t x = 0; x < v.width; ++x)
      out[static_cast<std::size_t>(y) * v.width + x] =
          ref.extended ? perturbed_colour<true>(v, p, aa, x, yy) : perturbed_colour<false>(v, p, aa, x, yy);
  }
}

// --- the GPU path: defined in perturbation.cuh ----------------------------------------------

#if defined(__CUDACC__)
template <class Out>
void perturbation_escape_time_impl(const cuda_executor& exec, const perturbation_reference& ref, Out* out);
inline void perturbation_count_iterations_impl(const cuda_executor& exec, const perturbation_reference& ref,
                                               std::uint32_t* out);
inline void perturbation_render_rgb_impl(const cuda_executor& exec, const perturbation_reference& ref, palette p,
                                         std::uint32_t aa, rgb8* out);
#else
GPUKIT_GPU_ONLY_STUB(perturbation_escape_time_impl)
GPUKIT_GPU_ONLY_STUB(perturbation_count_iterations_impl)
GPUKIT_GPU_ONLY_STUB(perturbation_render_rgb_impl)
#endif

}  // namespace detail
}  // namespace gpukit::fractal

GPUKIT_STRICT_FP_END

#if defined(__CUDACC__)
#include "gpukit/fractal/perturbation.cuh"
#endif
