// gpukit/fractal/scene.hpp — what to render: the image plane (viewport), the iteration
// limit, the precision, Mandelbrot or Julia, and which work-saving tests may run.
//
// Pixel (x, y) of a width × height image maps to the complex point
//     re = origin_x + (x − offset_x) · step_x,   im = origin_y + (y − offset_y) · step_y
// (y is the image row, row 0 first in memory). bounds_view() gives the seed article's
// convention exactly: offset 0, origin = (min_x, min_y), step = (max − min) / size, so
// re = min_x + x · ((max_x − min_x) / width) rounded like the article's float64 code.
// centered_view() puts the centre at pixel (width/2, height/2) with a given pixel size.
// Origins and steps are double-doubles so that deep zooms keep their digits; float and
// double renders use the leading double (computing the coordinate in double, then rounding
// to float for float renders).
//
// Host-only header: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/fractal/double_double.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace gpukit::fractal {

/// Arithmetic of the iteration. dd = double-double (~32 digits), for pixel sizes below
/// ~1e-13 where double runs out of digits; about 10–20× slower than double.
enum class precision { f32, f64, dd };

inline const char* to_string(precision p) noexcept {
  switch (p) {
    case precision::f32: return "float";
    case precision::f64: return "double";
    case precision::dd: return "double-double";
  }
  return "?";
}

/// "float"/"f32", "double"/"f64", "dd"/"double-double"; std::invalid_argument otherwise.
inline precision parse_precision(const std::string& name) {
  if (name == "float" || name == "f32") return precision::f32;
  if (name == "double" || name == "f64") return precision::f64;
  if (name == "dd" || name == "double-double") return precision::dd;
  throw std::invalid_argument("gpukit::fractal::parse_precision: argument 'name' = '" + name +
                              "' is not one of float, double, dd");
}

/// The image plane. Defaults: the seed article's 1536 × 1024 view of [-2, 1] × [-1, 1].
struct viewport {
  std::size_t width = 1536;
  std::size_t height = 1024;
  dd_real origin_x{-2.0, 0.0};
  dd_real origin_y{-1.0, 0.0};
  dd_real step_x{3.0 / 1536, 0.0};  ///< pixel width; step_x.hi is what float and double renders use
  dd_real step_y{2.0 / 1024, 0.0};
  double offset_x = 0.0;  ///< an integer or half-integer (so that x − offset is exact)
  double offset_y = 0.0;
};

/// Largest |coordinate| a view may reach: keeps the first squares finite even in float, so
/// no NaN can ever appear before the escape test (which would make results depend on how
/// a NaN compares).
inline constexpr double max_coordinate = 1152921504606846976.0;  // 2^60

/// Everything one render needs. Trivially copyable: passed to kernels by value.
struct scene {
  viewport view;
  std::uint32_t max_iters = 20;  ///< 1 ..= max_iters_limit
  precision prec = precision::f64;
  bool julia = false;  ///< false: Mandelbrot (z0 = 0, c = pixel); true: Julia (z0 = pixel, c = julia_re + i·julia_im)
  dd_real julia_re{-0.8, 0.0};  ///< the Julia constant c = julia_re + i·julia_im
  dd_real julia_im{0.156, 0.0};
  /// Skip points proven to lie inside the main cardioid, the period-2 bulb or a few disks
  /// inside period-3/4 components (Mandelbrot only). Never changes a result.
  bool interior_checks = true;
  /// Stop when the orbit repeats a value bit for bit (it can then never escape). Never
  /// changes a result.
  bool periodicity = true;
};

inline constexpr std::uint32_t max_iters_limit = 0x7fffffffu;

namespace detail {

using gpukit::detail::require;

inline std::string num(double v) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

inline bool within_limit(double v) { return std::isfinite(v) && std::fabs(v) <= max_coordinate; }

/// The view's extreme coordinate along one axis must stay within ±2^60. Messages name the
/// origin and step as the caller's arguments (`origin_name`, `step_name`) or, by default, as
/// the viewport's fields.
inline void require_axis(const char* where, const char* axis, dd_real origin, dd_real step, double offset,
                         std::size_t size, const char* origin_name = nullptr, const char* step_name = nullptr) {
  const std::string o = origin_name ? origin_name : std::string("view.origin_") + axis;
  const std::string s = step_name ? step_name : std::string("view.step_") + axis;
  require(within_limit(origin.hi) && std::isfinite(origin.lo), where,
          "argument '" + o + "' = " + num(origin.hi) + " is not finite or beyond 2^60");
  require(std::isfinite(step.hi) && step.hi > 0.0 && std::isfinite(step.lo), where,
          "argument '" + s + "' = " + num(step.hi) + " must be finite and > 0");
  require(std::isfinite(offset) && std::floor(2.0 * offset) == 2.0 * offset && std::fabs(offset) <= 4503599627370496.0,
          where, std::string("argument 'view.offset_") + axis + "' = " + num(offset) + " must be an integer or half-integer");
  const double lo = origin.hi + (0.0 - offset) * step.hi;
  const double hi = origin.hi + (static_cast<double>(size) - offset) * step.hi;
  require(within_limit(lo) && within_limit(hi), where,
          "arguments '" + o + "' and '" + s + "' make the view span " + axis + " in [" + num(lo) + ", " + num(hi) +
              "], beyond ±2^60");
}

}  // namespace detail

/// The article's convention: pixel (x, y) → (min_x + x·(max_x−min_x)/width,
/// min_y + y·(max_y−min_y)/height). Requires width, height ≥ 1 and finite bounds with
/// min < max within ±2^60; std::invalid_argument naming the argument otherwise.
inline viewport bounds_view(double min_x, double max_x, double min_y, double max_y, std::size_t width,
                            std::size_t height) {
  const char* where = "gpukit::fractal::bounds_view";
  using detail::num;
  detail::require(width >= 1, where, "argument 'width' = 0 must be >= 1");
  detail::require(height >= 1, where, "argument 'height' = 0 must be >= 1");
  detail::require(detail::within_limit(min_x), where, "argument 'min_x' = " + num(min_x) + " is not finite or beyond 2^60");
  detail::require(detail::within_limit(max_x), where, "argument 'max_x' = " + num(max_x) + " is not finite or beyond 2^60");
  detail::require(detail::within_limit(min_y), where, "argument 'min_y' = " + num(min_y) + " is not finite or beyond 2^60");
  detail::require(detail::within_limit(max_y), where, "argument 'max_y' = " + num(max_y) + " is not finite or beyond 2^60");
  detail::require(min_x < max_x, where, "bounds are inverted: 'min_x' = " + num(min_x) + " >= 'max_x' = " + num(max_x));
  detail::require(min_y < max_y, where, "bounds are inverted: 'min_y' = " + num(min_y) + " >= 'max_y' = " + num(max_y));
  viewport v;
  v.width = width;
  v.height = height;
  v.origin_x = dd_from(min_x);
  v.origin_y = dd_from(min_y);
  // hi: the article's rounded pixel size; lo: what the exact span / size adds to it.
  const auto step = [](double lo_edge, double hi_edge, std::size_t n) {
    const double rounded = (hi_edge - lo_edge) / static_cast<double>(n);
    const dd_real exact = (dd_from(hi_edge) - dd_from(lo_edge)) / static_cast<double>(n);
    return dd_real{rounded, (exact - dd_from(rounded)).hi};
  };
  v.step_x = step(min_x, max_x, width);
  v.step_y = step(min_y, max_y, height);
  return v;
}

/// Centre (center_x, center_y) at pixel (width/2, height/2), square pixels of side
/// `pixel_size`. Requires width, height ≥ 1, a finite pixel_size > 0 and a view within ±2^60.
inline viewport centered_view(dd_real center_x, dd_real center_y, double pixel_size, std::size_t width,
                              std::size_t height) {
  const char* where = "gpukit::fractal::centered_view";
  detail::require(width >= 1, where, "argument 'width' = 0 must be >= 1");
  detail::require(height >= 1, where, "argument 'height' = 0 must be >= 1");
  detail::require(std::isfinite(pixel_size) && pixel_size > 0.0, where,
                  "argument 'pixel_size' = " + detail::num(pixel_size) + " must be finite and > 0");
  detail::require(detail::within_limit(center_x.hi) && std::isfinite(center_x.lo), where,
                  "argument 'center_x' = " + detail::num(center_x.hi) + " is not finite or beyond 2^60");
  detail::require(detail::within_limit(center_y.hi) && std::isfinite(center_y.lo), where,
                  "argument 'center_y' = " + detail::num(center_y.hi) + " is not finite or beyond 2^60");
  viewport v;
  v.width = width;
  v.height = height;
  v.origin_x = center_x;
  v.origin_y = center_y;
  v.step_x = dd_from(pixel_size);
  v.step_y = dd_from(pixel_size);
  v.offset_x = static_cast<double>(width / 2) + (width % 2 ? 0.5 : 0.0);
  v.offset_y = static_cast<double>(height / 2) + (height % 2 ? 0.5 : 0.0);
  detail::require_axis(where, "x", v.origin_x, v.step_x, v.offset_x, width, "center_x", "pixel_size");
  detail::require_axis(where, "y", v.origin_y, v.step_y, v.offset_y, height, "center_y", "pixel_size");
  return v;
}

namespace detail {

/// Checks a scene before anything is written; `where` names the calling function.
inline void validate(const scene& s, const char* where) {
  require(s.view.width >= 1, where, "argument 'scene.view.width' = 0 must be >= 1");
  require(s.view.height >= 1, where, "argument 'scene.view.height' = 0 must be >= 1");
  require(s.view.width <= 0xffffffffu / s.view.height, where,
          "arguments 'scene.view.width' x 'scene.view.height' = " + std::to_string(s.view.width) + " x " +
              std::to_string(s.view.height) + " is more than 2^32 - 1 pixels");
  require(s.max_iters >= 1 && s.max_iters <= max_iters_limit, where,
          "argument 'scene.max_iters' = " + std::to_string(s.max_iters) + " is outside [1, 2^31 - 1]");
  require(s.prec == precision::f32 || s.prec == precision::f64 || s.prec == precision::dd, where,
          "argument 'scene.prec' = " + std::to_string(static_cast<int>(s.prec)) + " is not a precision");
  require_axis(where, "x", s.view.origin_x, s.view.step_x, s.view.offset_x, s.view.width);
  require_axis(where, "y", s.view.origin_y, s.view.step_y, s.view.offset_y, s.view.height);
  if (s.julia) {
    require(within_limit(s.julia_re.hi) && std::isfinite(s.julia_re.lo), where,
            "argument 'scene.julia_re' = " + num(s.julia_re.hi) + " is not finite or beyond 2^60");
    require(within_limit(s.julia_im.hi) && std::isfinite(s.julia_im.lo), where,
            "argument 'scene.julia_im' = " + num(s.julia_im.hi) + " is not finite or beyond 2^60");
  }
}

/// An output of `size` elements must hold exactly the scene's pixels.
inline void require_output(const scene& s, std::size_t size, const char* where, const char* name = "out") {
  const std::size_t pixels = s.view.width * s.view.height;
  require(size == pixels, where,
          std::string("argument '") + name + "' has " + std::to_string(size) + " elements, the " +
              std::to_string(s.view.width) + " x " + std::to_string(s.view.height) + " image needs " +
              std::to_string(pixels));
}

}  // namespace detail

GPUKIT_STRICT_FP_BEGIN

/// The coordinate of pixel index k (a column or a row; k may be fractional for
/// supersampling) along one axis, in double: fl(origin + fl((k − offset) · step)), the
/// article's rounding for the bounds convention (offset 0).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double axis_coordinate(dd_real origin, dd_real step, double offset, double k) {
  return detail::add(origin.hi, detail::mul(detail::sub(k, offset), step.hi));
}

/// The same in double-double: origin + (k − offset) · step with ~32 digits.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE dd_real axis_coordinate_dd(dd_real origin, dd_real step, double offset, double k) {
  return origin + step * detail::sub(k, offset);
}

GPUKIT_STRICT_FP_END

}  // namespace gpukit::fractal
