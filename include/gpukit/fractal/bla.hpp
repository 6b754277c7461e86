// gpukit/fractal/bla.hpp — bilinear approximation (BLA, Zhuoran's method) of the
// perturbation iteration: tables that let a pixel skip many iterations at once.
//
// A pixel near the reference point C is z_n = Z_n + δ_n, and one iteration is
//     δ_{n+1} = 2 Z_n δ_n + δ_n² + dc                      (dc = c − C)
// While |δ_n| is tiny beside |Z_n| the square is negligible and the step is linear in δ_n
// and dc; l steps compose into one:
//     δ_{m+l} = A δ_m + B dc,   valid while |δ_m| < R
// One step from m: A = 2 Z_m, B = 1, R = 2^-53 · |2 Z_m| (the dropped δ² stays below one
// rounding of the kept 2 Z_m δ_m). Step x (from m) followed by step y merges into
//     A = A_y A_x,  B = A_y B_x + B_y,  R = min(R_x, max(0, (R_y − |B_x| · |dc|max) / |A_x|))
// (the second bound keeps the delta valid where y starts, for every pixel of the image,
// whose |dc| is at most |dc|max).
//
// Level 0 holds the single steps from m = 1 .. length − 1; level k the merged steps of 2^k
// iterations from m = 1 + j · 2^k. A pixel at reference index m takes the longest step
// whose start grid contains m and whose radius holds its delta (a merged step's radius
// is at most that of its first half, so holding is monotone in the level: find_bla_step
// bisects).
//
// The radii are stored for the largest part, max(|Re δ|, |Im δ|) < R / √2 (which implies
// |δ| < R): no squares, so nothing underflows however small the delta is.
//
// Tables are built on the host in extended-exponent arithmetic (extended_float.hpp) and
// stored in double, and for zooms past double's range also in the extended form.
//
// Host-only header: compiles with a plain C++17 compiler; the look-up and the step are
// also device functions.
#pragma once

#include "gpukit/core/config.hpp"
#include "gpukit/fractal/detail/strict_fp.hpp"
#include "gpukit/fractal/extended_float.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

GPUKIT_STRICT_FP_BEGIN

namespace gpukit::fractal {

/// A complex number in double, laid out as two doubles (the reference orbit on the GPU).
struct dcomplex {
  double re = 0.0;
  double im = 0.0;
};

/// One approximation step in double: δ ← a·δ + b·dc, valid while max(|Re δ|, |Im δ|) < r.
struct bla_step {
  dcomplex a, b;
  double r = 0.0;  ///< 0: never valid
};

/// The same with extended exponents.
struct bla_step_x {
  xcomplex a, b;
  xfloat r;  ///< zero: never valid
};

/// Levels of 2^0, 2^1, ... iterations; more than enough for any orbit a scene allows.
inline constexpr std::uint32_t max_bla_levels = 32;

/// Where each level starts in the flat arrays: level k is [offset[k], offset[k + 1]).
/// Trivially copyable: passed to kernels by value.
struct bla_levels {
  std::uint32_t offset[max_bla_levels + 1] = {};
  std::uint32_t count = 0;  ///< levels present (0 when the orbit is too short)
};

/// The tables of one reference orbit.
struct bla_table {
  bla_levels levels;
  std::vector<bla_step> steps;      ///< every level, flat
  std::vector<bla_step_x> steps_x;  ///< the same, extended (empty unless asked for)
  /// The largest level-0 radius of `steps`: a delta at or above it fails every step's test
  /// (a merged step's radius never exceeds its first single step's), so a pixel compares
  /// it in a register before reading the table — at shallow zooms nothing ever holds.
  double reach = 0.0;
};

namespace detail {

/// Relative size of the dropped δ² term that a step tolerates: one rounding of a double.
inline constexpr double bla_tolerance = 0x1p-53;

struct bla_build_step {
  xcomplex a, b;
  xfloat r;
};

/// R/√2, rounded down a little so that the stored radius never exceeds the exact one.
inline xfloat largest_part_radius(xfloat r) { return r * to_xfloat(0.70710678118654752 * (1.0 - 0x1p-50)); }

inline bla_step to_double_step(const bla_build_step& s) {
  bla_step d;
  d.a = {real_double(s.a), imag_double(s.a)};
  d.b = {real_double(s.b), imag_double(s.b)};
  d.r = to_double(largest_part_radius(s.r));
  if (!std::isfinite(d.a.re) || !std::isfinite(d.a.im) || !std::isfinite(d.r)) return bla_step{};
  // B beyond double's range only arises where |dc| underflows in double, so B·dc is zero
  // there anyway; storing 0 keeps inf · 0 from making a NaN.
  if (!std::isfinite(d.b.re) || !std::isfinite(d.b.im)) d.b = {};
  return d;
}

inline bla_step_x to_extended_step(const bla_build_step& s) { return {s.a, s.b, largest_part_radius(s.r)}; }

}  // namespace detail

/// Builds the tables of the orbit Z_0 .. Z_length (`orbit` holds at least length + 1
/// values) for a view whose deltas dc are at most `dc_max` in magnitude. `extended`: also
/// fill steps_x. Host only; O(length) time and memory.
inline bla_table build_bla_table(const std::vector<xcomplex>& orbit, std::uint32_t length, xfloat dc_max,
                                 bool extended) {
  using detail::bla_build_step;
  bla_table t;
  std::vector<bla_build_step> level;
  const std::uint32_t singles = length >= 2 ? length - 1 : 0;
  level.reserve(singles);
  const xfloat tolerance = to_xfloat(detail::bla_tolerance);
  for (std::uint32_t m = 1; m <= singles; ++m) {
    const xcomplex a = scaled(orbit[m], 1);
    level.push_back({a, to_xcomplex(1.0, 0.0), magnitude(a) * tolerance});
  }
  std::vector<bla_build_step> all;
  all.reserve(2 * static_cast<std::size_t>(singles));
  std::uint32_t k = 0;
  while (!level.empty() && k < max_bla_levels) {
    t.levels.offset[k] = static_cast<std::uint32_t>(all.size());
    all.insert(all.end(), level.begin(), level.end());
    ++k;
    std::vector<bla_build_step> next;
    next.reserve(level.size() / 2);
    for (std::size_t j = 0; j + 1 < level.size(); j += 2) {
      const bla_build_step& x = level[j];
      const bla_build_step& y = level[j + 1];
      bla_build_step s;
      s.a = y.a * x.a;
      s.b = y.a * x.b + y.b;
      const xfloat ax = magnitude(x.a);
      xfloat reach;  // the largest |δ| that x keeps inside y's radius for every pixel
      const xfloat room = y.r - magnitude(x.b) * dc_max;
      if (!is_zero(ax) && room.m > 0.0) reach = room / ax;
      s.r = min_nonnegative(x.r, reach);
      next.push_back(s);
    }
    level.swap(next);
  }
  t.levels.count = k;
  t.levels.offset[k] = static_cast<std::uint32_t>(all.size());
  t.steps.reserve(all.size());
  for (const bla_build_step& s : all) t.steps.push_back(detail::to_double_step(s));
  for (std::uint32_t j = 0; j < singles; ++j) t.reach = std::fmax(t.reach, t.steps[j].r);
  if (extended) {
    t.steps_x.reserve(all.size());
    for (const bla_build_step& s : all) t.steps_x.push_back(detail::to_extended_step(s));
  }
  return t;
}

namespace detail {

/// Trailing zero bits of j != 0.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::uint32_t trailing_zeros(std::uint32_t j) {
#if GPUKIT_DEVICE_PASS
  return static_cast<std::uint32_t>(__ffs(static_cast<int>(j)) - 1);
#else
  return static_cast<std::uint32_t>(__builtin_ctz(j));
#endif
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool holds(const bla_step& s, double size) { return size < s.r; }
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool holds(const bla_step_x& s, xfloat size) {
  return less_nonnegative(size, s.r);
}

}  // namespace detail

/// The longest step of at least 2^min_level and at most `limit` (>= 1) iterations that
/// starts at reference index m (>= 1) and holds a delta whose largest part is `size`: its
/// length, with the step in `found`; 0 when none does (found untouched).
///
/// Holding is monotone in the level: a merged step's radius is at most that of its first
/// half (the step one level down at the same start), and the grid and the limit only
/// shrink going up. So the search reads the highest candidate level first (deep zooms:
/// it usually holds, one read), then the lowest (shallow zooms: it usually fails, two
/// reads), and bisects in between. Each read is a dependent table access, for a pixel
/// alone on its SM a round trip to L2, so the count of reads is what this minimises. It
/// reads nothing where m's start grid lacks min_level.
template <class Step, class Size>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::uint32_t find_bla_step(const bla_levels& levels, const Step* steps,
                                                                  std::uint32_t m, std::uint32_t limit, Size size,
                                                                  const Step*& found, std::uint32_t min_level = 0) {
  const std::uint32_t j = m - 1;
  if (levels.count <= min_level || j >= levels.offset[1]) return 0;
  const std::uint32_t top_grid = j == 0 ? levels.count - 1 : detail::trailing_zeros(j);
  std::uint32_t top = top_grid < levels.count - 1 ? top_grid : levels.count - 1;
  while (top > 0 && (std::uint32_t{1} << top) > limit) --top;
  if (top < min_level || (std::uint32_t{1} << min_level) > limit) return 0;
  // The step of level k at this start, or null past the level's last whole group.
  const auto at = [&](std::uint32_t k) -> const Step* {
    const std::uint32_t index = levels.offset[k] + (j >> k);
    return index < levels.offset[k + 1] ? &steps[index] : nullptr;
  };
  const auto holds_at = [&](std::uint32_t k) {
    const Step* s = at(k);
    return s != nullptr && detail::holds(*s, size);
  };
  std::uint32_t lo;  // a level that holds
  if (holds_at(top)) {
    lo = top;
  } else {
    if (top == min_level || !holds_at(min_level)) return 0;
    lo = min_level;
    std::uint32_t hi = top;  // a level that fails
    while (hi - lo > 1) {
      const std::uint32_t mid = lo + (hi - lo) / 2;
      if (holds_at(mid)) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
  }
  found = at(lo);
  return std::uint32_t{1} << lo;
}

/// a·δ + b·dc in double.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dcomplex apply(const bla_step& s, dcomplex d, dcomplex dc) {
  using namespace detail;
  const double re = add(sub(mul(s.a.re, d.re), mul(s.a.im, d.im)), sub(mul(s.b.re, dc.re), mul(s.b.im, dc.im)));
  const double im = add(add(mul(s.a.re, d.im), mul(s.a.im, d.re)), add(mul(s.b.re, dc.im), mul(s.b.im, dc.re)));
  return {re, im};
}

/// a·δ + b·dc with extended exponents.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE xcomplex apply(const bla_step_x& s, const xcomplex& d, const xcomplex& dc) {
  return s.a * d + s.b * dc;
}

}  // namespace gpukit::fractal

GPUKIT_STRICT_FP_END
