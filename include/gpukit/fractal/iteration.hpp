// gpukit/fractal/iteration.hpp — the per-pixel escape-time iteration that the CPU path and
// the GPU kernels share: one orbit step, the escape test, the interior shortcuts, the
// periodicity schedule and the smooth count.
//
// The count convention is the seed article's: z = z·z + c first, then test |z|² ≥ 4; the
// count is the index i (0-based) of the iteration that escaped, or max_iters.
//
// One step keeps z and its two squares x2 = zr², y2 = zi², rounded exactly as the
// article's complex arithmetic rounds them, so that |z|² = x2 + y2 of this step is reused
// as the next step's zr² − zi²:
//     t = zr·zi;  zr = (x2 − y2) + cr;  zi = (t + t) + ci;  x2 = zr²;  y2 = zi²;  |z|² = x2 + y2
// Seven operations, each rounded once (strict_fp.hpp), give the article's bits on the CPU
// and on the GPU alike: results are identical, not merely close.
//
// Work-saving that never changes a count:
// - interior tests (Mandelbrot only): a point inside the main cardioid, the period-2 bulb
//   or one of a few disks inside period-3/4 components never escapes. The tests keep a
//   margin from each boundary (2^-10 of the size of the test expression in float, then a
//   double re-test with 2^-24 inside the band for double and double-double renders), so a
//   point that passes has an attracting cycle with room to spare: the rounded orbit is
//   trapped just like the exact one. The disks were chosen where the cycle's multiplier
//   stays below 0.9 (checked by the tests).
// - periodicity (for max_iters >= 64): every 8th iteration z is compared, bit for bit,
//   with a saved z (saved at iterations 8, 16, 32, 64, ...). The same bits give the same
//   future, so a repeat means the orbit is a cycle that has not escaped and never will:
//   count = max_iters.
//
// Double-double follows the same scheme with its own arithmetic (double_double.hpp); it
// has no "article" rounding to reproduce, only CPU/GPU agreement, which it keeps.
//
// Host-only header: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/fractal/detail/strict_fp.hpp"
#include "gpukit/fractal/double_double.hpp"
#include "gpukit/fractal/scene.hpp"

#include <cmath>
#include <cstdint>
#include <type_traits>

GPUKIT_STRICT_FP_BEGIN

namespace gpukit::fractal {

/// z and its rounded squares.
template <class T>
struct orbit {
  T zr, zi, x2, y2;
};

/// What one pixel's iteration produced.
struct escape_result {
  std::uint32_t count;     ///< the article's count: escape index, or max_iters
  std::uint32_t executed;  ///< iterations this algorithm performed (0 when an interior test decided)
  float smooth;            ///< normalised iteration count (only filled when asked for)
};

namespace detail {

// --- number types -----------------------------------------------------------------------

template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T to_number(dd_real v);
template <>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE float to_number<float>(dd_real v) {
  return static_cast<float>(v.hi);
}
template <>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double to_number<double>(dd_real v) {
  return v.hi;
}
template <>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real to_number<dd_real>(dd_real v) {
  return v;
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double leading(float v) { return v; }
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double leading(double v) { return v; }
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double leading(dd_real v) { return v.hi; }

/// The coordinate of pixel index k along one axis in precision T (float: computed in
/// double, then rounded once).
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T pixel_coordinate(dd_real origin, dd_real step, double offset, double k) {
  if constexpr (std::is_same_v<T, dd_real>) {
    return axis_coordinate_dd(origin, step, offset, k);
  } else {
    return static_cast<T>(axis_coordinate(origin, step, offset, k));
  }
}

// --- one step ---------------------------------------------------------------------------

template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE orbit<T> start_orbit(T zr, T zi) {
  return {zr, zi, mul(zr, zr), mul(zi, zi)};
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE orbit<dd_real> start_orbit(dd_real zr, dd_real zi) {
  return {zr, zi, sqr(zr), sqr(zi)};
}

template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void step(orbit<T>& o, T cr, T ci) {
  const T t = mul(o.zr, o.zi);
  o.zr = add(sub(o.x2, o.y2), cr);
  o.zi = twice_plus(t, ci);
  o.x2 = mul(o.zr, o.zr);
  o.y2 = mul(o.zi, o.zi);
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void step(orbit<dd_real>& o, dd_real cr, dd_real ci) {
  const dd_real t = o.zr * o.zi;
  o.zr = add_fast(sub_fast(o.x2, o.y2), cr);
  o.zi = add_fast(twice(t), ci);
  o.x2 = sqr(o.zr);
  o.y2 = sqr(o.zi);
}

/// mag ≥ 4. |z|² is never NaN (views stay within ±2^60), so on the device the test can
/// compare the high word as a signed integer — exact for every non-NaN double, since 4.0's
/// low word is zero — and leave the FP64 pipe to the arithmetic.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool at_least_four(double mag) {
#if GPUKIT_DEVICE_PASS
  return __double2hiint(mag) >= 0x40100000;
#else
  return mag >= 4.0;
#endif
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool escaped(const orbit<double>& o) { return at_least_four(add(o.x2, o.y2)); }
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool escaped(const orbit<float>& o) { return add(o.x2, o.y2) >= 4.0f; }
/// For double-double only the threshold matters, not the last digits of |z|²: a double sum
/// of the parts (the same on every device) decides.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double magnitude2(dd_real x2, dd_real y2) {
  return add(add(x2.hi, y2.hi), add(x2.lo, y2.lo));
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool escaped(const orbit<dd_real>& o) {
  return at_least_four(magnitude2(o.x2, o.y2));
}

/// |z|² as a double (for the smooth count).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double magnitude2(const orbit<float>& o) { return add(o.x2, o.y2); }
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double magnitude2(const orbit<double>& o) { return add(o.x2, o.y2); }
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double magnitude2(const orbit<dd_real>& o) { return magnitude2(o.x2, o.y2); }

/// Same z, bit for bit.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool same_point(const orbit<float>& a, const orbit<float>& b) {
  return bits(a.zr) == bits(b.zr) && bits(a.zi) == bits(b.zi);
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool same_point(const orbit<double>& a, const orbit<double>& b) {
  return bits(a.zr) == bits(b.zr) && bits(a.zi) == bits(b.zi);
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool same_point(const orbit<dd_real>& a, const orbit<dd_real>& b) {
  return bits(a.zr.hi) == bits(b.zr.hi) && bits(a.zr.lo) == bits(b.zr.lo) && bits(a.zi.hi) == bits(b.zi.hi) &&
         bits(a.zi.lo) == bits(b.zi.lo);
}

/// Block length of the periodicity schedule: iterations between two comparisons. Every 8
/// rather than every 4 halves the GPU's instructions spent on the comparison (and on
/// saving z), which compete with the FP64 operations for issue slots; a cycle is still
/// seen within 8 iterations of the first repeat after a save.
inline constexpr std::uint32_t period_block = 8;
/// Steps between two escape branches (step_block); period_block is a multiple of it.
inline constexpr std::uint32_t escape_block = 4;
static_assert(period_block % escape_block == 0, "a period is a whole number of escape blocks");

/// Periodicity is checked only for max_iters >= 64: shorter orbits rarely close a cycle
/// in time, and the check would cost more than it saves.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool periodicity_on(const scene& s) {
  return s.periodicity && s.max_iters >= 64;
}

/// Whether z is saved after `done` iterations (done a multiple of period_block): 8, 16, 32, ...
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool save_point(std::uint32_t done) { return (done & (done - 1)) == 0; }

// --- interior tests ---------------------------------------------------------------------

/// Margin of the float tests, relative to the size of the tested expression.
inline constexpr float coarse_margin = 1.0f / 1024;

/// The re-test in double: main cardioid and period-2 bulb with relative margin `margin`.
/// (Written with the strict operations so that the CPU and the GPU skip the same pixels.)
GPUKIT_HOST_DEVICE inline bool fine_interior(double x, double y, double margin) {
  const double y2 = mul(y, y);
  const double b = add(x, 1.0);
  const double r = mul(0.25, sub(1.0, margin));
  if (add(mul(b, b), y2) < mul(r, r)) return true;
  const double a = sub(x, 0.25);
  const double q = add(mul(a, a), y2);
  const double quarter_y2 = mul(0.25, y2);
  // Away from the cusp point 1/4 by 2^-20: the rounding of the test stays far below the margin.
  return q > 0x1p-40 && sub(quarter_y2, mul(q, add(q, a))) > mul(margin, add(mul(q, q), quarter_y2));
}

/// Every region the coarse test can accept lies in this box; most of a wide view is
/// rejected here. `ay` = |im c|.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool in_test_box(float x, float ay) {
  return (x > -1.36f) & (x < 0.4f) & (ay < 0.83f);
}

enum : int { coarse_outside = 0, coarse_inside = 1, coarse_near = 2 };

/// The float tests, without branches (the CPU evaluates them for a vector of lanes):
/// coarse_inside when c = (x, ±ay) lies, with the coarse margin, inside the period-2 bulb,
/// the main cardioid (except within 1/16 of its cusp, where the float rounding grows
/// relative to the margin) or one of the disks; coarse_near when it is close enough to the
/// cardioid or the bulb for the double re-test to decide; coarse_outside otherwise.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE int coarse_interior(float x, float ay) {
  const float y2 = mul(ay, ay);
  // Period-2 bulb |c + 1| < 1/4.
  const float b = add(x, 1.0f);
  const float r2 = add(mul(b, b), y2);
  constexpr float bulb_in = (0.25f * (1.0f - coarse_margin)) * (0.25f * (1.0f - coarse_margin));
  constexpr float bulb_near = (0.25f * (1.0f + 2 * coarse_margin)) * (0.25f * (1.0f + 2 * coarse_margin));
  // Main cardioid q(q + a) < y²/4 with a = x − 1/4, q = a² + y².
  const float a = sub(x, 0.25f);
  const float q = add(mul(a, a), y2);
  const float quarter_y2 = mul(0.25f, y2);
  const float slack = sub(quarter_y2, mul(q, add(q, a)));
  const float scale = add(mul(q, q), quarter_y2);
  const bool cusp = q <= 1.0f / 256;
  // Disks inside the period-3 bulbs (±), the period-4 bulb on the real axis and the
  // period-4 bulbs (±) on the cardioid; their multipliers stay below 0.9.
  const auto dist2 = [](float dx, float dy) { return add(mul(dx, dx), mul(dy, dy)); };
  const float d1 = dist2(add(x, 0.124561f), sub(ay, 0.744862f));
  const float d2 = dist2(add(x, 1.308703f), ay);
  const float d3 = dist2(sub(x, 0.280271f), sub(ay, 0.530061f));
  const float margin = mul(coarse_margin, scale);
  const bool inside = (r2 < bulb_in) | (!cusp & (slack > margin)) | (d1 < 0.080f * 0.080f) | (d2 < 0.048f * 0.048f) |
                      (d3 < 0.034f * 0.034f);
  const bool near = (r2 < bulb_near) | (slack > -2.0f * margin) | cusp;
  return static_cast<int>(inside) * coarse_inside + static_cast<int>(near & !inside) * coarse_near;
}

/// True when c = (x, y) provably never escapes (in the given iteration precision).
/// `fine_margin`: margin of the double re-test near the cardioid and the bulb (2^-24 for
/// double and double-double orbits; float orbits need the coarse 2^-10 to stay trapped).
GPUKIT_HOST_DEVICE inline bool known_interior(double x, double y, double fine_margin) {
  const float xf = static_cast<float>(x);
  const float ay = std::fabs(static_cast<float>(y));
  if (!in_test_box(xf, ay)) return false;
  const int verdict = coarse_interior(xf, ay);
  return verdict == coarse_inside || (verdict == coarse_near && fine_interior(x, y, fine_margin));
}

template <class T>
inline constexpr double fine_margin_for = std::is_same_v<T, float> ? 1.0 / 1024 : 1.0 / 16777216;

// --- finishing a pixel ------------------------------------------------------------------

/// The normalised count of a point that escaped at index `index`: a few more steps until
/// |z| ≥ 2^8 (so the estimate is smooth), then k − 1 − log2(log2|z_k|), which equals the
/// count when |z_k| is exactly 2 and moves continuously between neighbouring counts.
template <class T>
GPUKIT_HOST_DEVICE inline float smooth_count(orbit<T> o, T cr, T ci, std::uint32_t index, std::uint32_t max_iters,
                                             std::uint32_t& executed) {
  std::uint32_t k = index + 1;
  double mag = magnitude2(o);
  for (int extra = 0; extra < 8 && mag < 65536.0; ++extra) {
    step(o, cr, ci);
    ++k;
    ++executed;
    mag = magnitude2(o);
  }
  if (!(mag < 1e300)) return static_cast<float>(index);  // absurdly far views: no estimate
  double v = static_cast<double>(k) - 1.0 - std::log2(0.5 * std::log2(mag));
  if (v < 0.0) v = 0.0;
  if (v > static_cast<double>(max_iters)) v = static_cast<double>(max_iters);
  return static_cast<float>(v);
}

template <bool Smooth, class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE escape_result escaped_result(const orbit<T>& o, T cr, T ci, std::uint32_t index,
                                                                   std::uint32_t max_iters) {
  escape_result r{index, index + 1, 0.0f};
  if constexpr (Smooth) r.smooth = smooth_count(o, cr, ci, index, max_iters, r.executed);
  return r;
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE escape_result interior_result(std::uint32_t max_iters, std::uint32_t executed) {
  return {max_iters, executed, static_cast<float>(max_iters)};
}

// --- one pixel, start to end ------------------------------------------------------------

/// The first set flag of a block's escape tests (at least one is set).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::uint32_t first_escape(const bool (&out)[escape_block]) {
  std::uint32_t first = escape_block - 1;
  for (std::uint32_t u = escape_block - 1; u-- > 0;) first = out[u] ? u : first;
  return first;
}

/// escape_block steps of `o`, testing every step but branching once: whether any step
/// escaped, with each step's test in `out` (first_escape finds the first). Steps after an
/// escape still run and may overflow to inf or NaN; nothing reads them (the caller re-runs
/// the block from its start when it needs z at the escape), and IEEE arithmetic does not
/// trap. Why: with a branch per step the GPU's inner loop issued more than one other
/// instruction per FP64 instruction and could not keep the FP64 pipe busy.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool step_block(orbit<T>& o, T cr, T ci, bool (&out)[escape_block]) {
  bool any = false;
  for (std::uint32_t u = 0; u < escape_block; ++u) {
    step(o, cr, ci);
    out[u] = escaped(o);
    any = any | out[u];
  }
  return any;
}

/// The result of an orbit that escaped at step `index` of the block that started at
/// `start` after `done` iterations (re-run up to the escape when the smooth count needs z
/// there).
template <bool Smooth, class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE escape_result block_escape_result(orbit<T> start, T cr, T ci, std::uint32_t done,
                                                                       std::uint32_t index, std::uint32_t max_iters) {
  if constexpr (Smooth) {
    for (std::uint32_t u = 0; u <= index; ++u) step(start, cr, ci);
  }
  return escaped_result<Smooth>(start, cr, ci, done + index, max_iters);
}

/// One period of the schedule, period_block steps after `done` iterations: true when the
/// orbit escaped in it, with its result in `r`.
template <bool Smooth, class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool escapes_in_period(orbit<T>& o, T cr, T ci, std::uint32_t done,
                                                             std::uint32_t max_iters, escape_result& r) {
  for (std::uint32_t b = 0; b < period_block; b += escape_block) {
    const orbit<T> start = o;
    bool out[escape_block];
    if (step_block(o, cr, ci, out)) {
      r = block_escape_result<Smooth>(start, cr, ci, done + b, first_escape(out), max_iters);
      return true;
    }
  }
  return false;
}

/// The last partial period (fewer than period_block iterations left after `done`): a
/// block while one fits, then single steps. Always decides the pixel.
template <bool Smooth, class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE escape_result finish(orbit<T>& o, T cr, T ci, std::uint32_t done,
                                                           std::uint32_t max_iters) {
  std::uint32_t i = done;
  if (max_iters - i >= escape_block) {
    const orbit<T> start = o;
    bool out[escape_block];
    if (step_block(o, cr, ci, out)) return block_escape_result<Smooth>(start, cr, ci, i, first_escape(out), max_iters);
    i += escape_block;
  }
  for (; i < max_iters; ++i) {
    step(o, cr, ci);
    if (escaped(o)) return escaped_result<Smooth>(o, cr, ci, i, max_iters);
  }
  return interior_result(max_iters, max_iters);
}

/// Iterates one orbit with the periodicity schedule. The kernels' and the CPU lanes' loops
/// follow the same schedule, so they stop at the same iteration as this function.
template <bool Smooth, class T>
GPUKIT_HOST_DEVICE inline escape_result iterate(orbit<T> o, T cr, T ci, std::uint32_t max_iters, bool periodicity) {
  orbit<T> saved = o;
  std::uint32_t i = 0;
  while (max_iters - i >= period_block) {
    escape_result r{};
    if (escapes_in_period<Smooth>(o, cr, ci, i, max_iters, r)) return r;
    i += period_block;
    if (periodicity) {
      if (same_point(o, saved)) return interior_result(max_iters, i);
      if (save_point(i)) saved = o;
    }
  }
  return finish<Smooth>(o, cr, ci, i, max_iters);
}

/// An orbit in progress, for the lane-refill kernel, which hands a lane from pixel to pixel
/// between periods: where it is, the point saved for the periodicity test, its constant
/// and the iterations done (a multiple of period_block until the last period).
template <class T>
struct orbit_run {
  orbit<T> o, saved;
  T cr, ci;
  std::uint32_t done;
};

/// iterate() one period at a time: runs one period of the schedule — or, with fewer than
/// period_block iterations left, the rest of the orbit. Returns true when the pixel is
/// decided, with its result in `r`.
template <bool Smooth, class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool advance(orbit_run<T>& run, std::uint32_t max_iters, bool periodicity,
                                                   escape_result& r) {
  if (max_iters - run.done < period_block) {
    r = finish<Smooth>(run.o, run.cr, run.ci, run.done, max_iters);
    return true;
  }
  if (escapes_in_period<Smooth>(run.o, run.cr, run.ci, run.done, max_iters, r)) return true;
  run.done += period_block;
  if (periodicity) {
    if (same_point(run.o, run.saved)) {
      r = interior_result(max_iters, run.done);
      return true;
    }
    if (save_point(run.done)) run.saved = run.o;
  }
  return false;
}

/// The orbit of plane point (re, im), before its first iteration.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE orbit_run<T> start_at(const scene& s, T re, T im) {
  const orbit<T> o = s.julia ? start_orbit(re, im) : start_orbit(T{}, T{});
  if (s.julia) return {o, o, to_number<T>(s.julia_re), to_number<T>(s.julia_im), 0};
  return {o, o, re, im, 0};
}

/// Whether an interior test proves that plane point (re, im) never escapes.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool decided_interior(const scene& s, T re, T im) {
  return !s.julia && s.interior_checks && known_interior(leading(re), leading(im), fine_margin_for<T>);
}

/// One pixel (or one supersample) at pixel coordinate (kx, ky) (fractional for
/// supersampling) with every work-saving the scene allows.
template <bool Smooth, class T>
GPUKIT_HOST_DEVICE inline escape_result escape_pixel(const scene& s, double kx, double ky) {
  const viewport& v = s.view;
  const T re = pixel_coordinate<T>(v.origin_x, v.step_x, v.offset_x, kx);
  const T im = pixel_coordinate<T>(v.origin_y, v.step_y, v.offset_y, ky);
  if (decided_interior(s, re, im)) return interior_result(s.max_iters, 0);
  const orbit_run<T> run = start_at(s, re, im);
  return iterate<Smooth>(run.o, run.cr, run.ci, s.max_iters, periodicity_on(s));
}

// --- output element types ---------------------------------------------------------------

/// Converts a result to an output element: integer counts saturate (uint8 like the article:
/// min(count, 255)); float receives the smooth count.
template <class Out>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE Out to_output(const escape_result& r) {
  if constexpr (std::is_same_v<Out, float>) {
    return r.smooth;
  } else {
    constexpr std::uint32_t top = static_cast<std::uint32_t>(Out(~Out(0)));
    return static_cast<Out>(r.count < top ? r.count : top);
  }
}

template <class Out>
inline constexpr bool is_output_v = std::is_same_v<Out, std::uint8_t> || std::is_same_v<Out, std::uint16_t> ||
                                    std::is_same_v<Out, std::uint32_t> || std::is_same_v<Out, float>;

}  // namespace detail
}  // namespace gpukit::fractal

GPUKIT_STRICT_FP_END
