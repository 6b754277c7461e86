// gpukit/fractal/deep_zoom.hpp — Mandelbrot zooms to any depth: a centre with any number of
// digits, a pixel size down to 1e-100000, and the arithmetic chosen from the pixel size.
//
//   gpukit::fractal::deep_scene s;
//   s.center_re = "-0.743643887037158704752191506114774";     // decimal text, any length
//   s.center_im = "0.131825904205311970493132056385139";
//   s.pixel_size = "1e-20";
//   s.max_iters = 20000;                                      // 1024 × 1024 by default
//   gpukit::fractal::escape_time(gpukit::cpu_executor{}, s, gpukit::make_host_span(img));
//
// The strategies (zoom_strategy; their names are the benchmarks' variant names):
//   float, double, double-double  the escape-time renderer of escape_time.hpp on the scene
//                                 centred at the centre rounded to a double-double
//   perturbation                  one reference orbit at the centre in MPFR, every pixel a
//                                 double delta from it with rebasing and bilinear
//                                 approximation (perturbation.hpp, bla.hpp)
//   perturbation-extended         the same with extended-exponent deltas while they are
//                                 below double's range (pixel sizes below ~1e-290)
// `automatic` picks one from the pixel size (choose_zoom_strategy). A plan (plan_deep_zoom)
// holds what a render needs — for perturbation the reference orbit and its tables, the
// expensive host part — so that renders of one view can reuse it.
//
// Pixel (x, y) is the point centre + ((x − offset_x) · p, (y − offset_y) · p), p the pixel
// size, (offset_x, offset_y) = (width/2, height/2) (+1/2 for odd sizes) as centered_view
// places them. The perturbation strategies compute it as C + dc: C the centre rounded to
// the plan's MPFR precision (precision_bits: the bits of the pixel size below the centre's
// magnitude, plus 64), dc each product (x − offset_x) · p rounded once to a double's
// mantissa, with p itself rounded to one. reference_pixel_count iterates that same point
// plainly in MPFR, which is what the tests hold the perturbed counts to.
//
// Errors: every argument is checked before anything is computed or written;
// std::invalid_argument names the function, the argument ('scene.pixel_size', ...) and
// its value.
//
// GPU: the plan is computed on the host (MPFR), then copied to the device on the executor's
// stream for each call; copies from pageable memory wait for the stream's earlier work
// (the CUDA runtime's rule) and return once staged, and the kernel is queued without
// waiting for it.
//
// Host-compilable: compiles with a plain C++17 compiler; needs MPFR (detail/mpfr.hpp). A
// GPU call from a host-compiled file is a compile error saying that it needs nvcc.
#pragma once

#include "gpukit/fractal/detail/mpfr.hpp"

#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/fractal/bla.hpp"
#include "gpukit/fractal/escape_time.hpp"
#include "gpukit/fractal/extended_float.hpp"
#include "gpukit/fractal/perturbation.hpp"
#include "gpukit/fractal/reference_orbit.hpp"
#include "gpukit/fractal/scene.hpp"
#include "gpukit/fractal/supersample.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

namespace gpukit::fractal {

/// How a deep scene is rendered.
enum class zoom_strategy { automatic, f32, f64, dd, perturbation, perturbation_extended };

inline const char* to_string(zoom_strategy z) noexcept {
  switch (z) {
    case zoom_strategy::automatic: return "automatic";
    case zoom_strategy::f32: return "float";
    case zoom_strategy::f64: return "double";
    case zoom_strategy::dd: return "double-double";
    case zoom_strategy::perturbation: return "perturbation";
    case zoom_strategy::perturbation_extended: return "perturbation-extended";
  }
  return "?";
}

/// The names of to_string (and "f32", "f64", "dd"); std::invalid_argument otherwise.
inline zoom_strategy parse_zoom_strategy(const std::string& name) {
  for (zoom_strategy z : {zoom_strategy::automatic, zoom_strategy::f32, zoom_strategy::f64, zoom_strategy::dd,
                          zoom_strategy::perturbation, zoom_strategy::perturbation_extended})
    if (name == to_string(z)) return z;
  if (name == "f32") return zoom_strategy::f32;
  if (name == "f64") return zoom_strategy::f64;
  if (name == "dd") return zoom_strategy::dd;
  throw std::invalid_argument("gpukit::fractal::parse_zoom_strategy: argument 'name' = '" + name +
                              "' is not one of automatic, float, double, double-double, perturbation, "
                              "perturbation-extended");
}

/// A view of the Mandelbrot set at any depth. Plain data; checked where it is used.
struct deep_scene {
  std::string center_re = "-0.75";  ///< decimal numbers (sign, digits, point, exponent), any length
  std::string center_im = "0.1";
  std::string pixel_size = "1e-3";  ///< > 0, at least min_pixel_size, decimal like the centre
  std::size_t width = 1024;         ///< >= 1, width × height < 2^32
  std::size_t height = 1024;
  std::uint32_t max_iters = 1000;   ///< 1 ..= max_iters_limit; perturbation: ..= max_perturbation_iters
  zoom_strategy strategy = zoom_strategy::automatic;
};

/// The smallest pixel size a deep scene may have (the extended exponents' range and an
/// MPFR precision of a third of a million bits).
inline constexpr const char* min_pixel_size = "1e-100000";
/// Perturbation stores the reference orbit and its tables, on the host and again on the
/// device for GPU renders: ~100 bytes per iteration with double deltas, ~250 with extended
/// ones (up to 4 GiB at this limit), so at most this many iterations.
inline constexpr std::uint32_t max_perturbation_iters = 1u << 24;
/// Below this pixel size (2^-960) a double delta would be too close to underflow for the
/// `perturbation` strategy, and the pixel size is no double for the escape-time ones.
inline constexpr double double_delta_min_pixel = 0x1p-960;

/// The automatic rule, from the pixel size p and m = max(1, |Re centre|, |Im centre|):
///   p >= 2^-10 m: float (an ulp of float is then 2^-13 of a pixel or less);
///   p >= 2^-42 m: double (2^-10 of a pixel; below that the orbit's rounding shows, as blocks);
///   p >= 2^-960: perturbation, otherwise perturbation-extended.
/// double-double is never the automatic choice: perturbation costs fewer operations per
/// iteration (about 20 against 63) and skips most of them at depth (measured on the CPU:
/// docs/ARCHITECTURE.md); it stays available for comparison.
inline zoom_strategy choose_zoom_strategy(xfloat pixel_size, double center_magnitude) {
  const double scale = center_magnitude > 1.0 ? center_magnitude : 1.0;
  const double log2_pixel = log2_abs(pixel_size);
  const double log2_scale = std::log2(scale);
  if (log2_pixel >= log2_scale - 10.0) return zoom_strategy::f32;
  if (log2_pixel >= log2_scale - 42.0) return zoom_strategy::f64;
  return log2_pixel >= -960.0 ? zoom_strategy::perturbation : zoom_strategy::perturbation_extended;
}

/// What a render of a deep scene needs, made by plan_deep_zoom; reuse it for several
/// renders of the same scene. Do not edit its fields.
struct deep_plan {
  zoom_strategy strategy = zoom_strategy::automatic;  ///< the strategy in use (automatic only before planning)
  deep_scene source;                            ///< the scene as given
  mpfr_prec_t precision_bits = 0;               ///< MPFR precision of the centre and the orbit
  scene flat;                                   ///< float, double, double-double: the scene drawn
  /// perturbation strategies: the orbit and its tables; every strategy: the geometry.
  perturbation_reference reference;
};

namespace detail {

inline bool is_flat(zoom_strategy z) {
  return z == zoom_strategy::f32 || z == zoom_strategy::f64 || z == zoom_strategy::dd;
}

inline std::string quoted(const std::string& text) {
  // Long centres are cut in messages: enough to recognise them.
  return "'" + (text.size() <= 60 ? text : text.substr(0, 57) + "...") + "'";
}

/// A decimal argument parsed with `bits` of precision; std::invalid_argument naming it
/// unless it is a decimal number.
inline void parse_argument(mpfr_ptr out, const std::string& text, const char* name, const char* where) {
  require(parse_decimal(out, text), where,
          std::string("argument '") + name + "' = " + quoted(text) + " is not a decimal number");
}

inline xfloat xfloat_of(mpfr_srcptr v) {
  if (mpfr_zero_p(v)) return {};
  long e = 0;
  const double d = mpfr_get_d_2exp(&e, v, MPFR_RNDN);
  return normalized(d, static_cast<std::int32_t>(e));
}

/// The checked numbers of a scene.
struct deep_numbers {
  xfloat pixel;                 ///< the pixel size, rounded to a double's mantissa
  double center_magnitude = 0;  ///< max(|Re|, |Im|) of the centre
  zoom_strategy strategy = zoom_strategy::f64;
  mpfr_prec_t bits = 0;
};

/// Checks everything about `s` (before anything is computed or written); `where` names
/// the calling function.
inline deep_numbers check_deep_scene(const deep_scene& s, const char* where) {
  require(s.width >= 1, where, "argument 'scene.width' = 0 must be >= 1");
  require(s.height >= 1, where, "argument 'scene.height' = 0 must be >= 1");
  require(s.width <= 0xffffffffu / s.height, where,
          "arguments 'scene.width' x 'scene.height' = " + std::to_string(s.width) + " x " + std::to_string(s.height) +
              " is more than 2^32 - 1 pixels");
  require(s.max_iters >= 1 && s.max_iters <= max_iters_limit, where,
          "argument 'scene.max_iters' = " + std::to_string(s.max_iters) + " is outside [1, 2^31 - 1]");
  const int strategy = static_cast<int>(s.strategy);
  require(strategy >= static_cast<int>(zoom_strategy::automatic) &&
              strategy <= static_cast<int>(zoom_strategy::perturbation_extended),
          where, "argument 'scene.strategy' = " + std::to_string(strategy) + " is not a zoom_strategy");
  deep_numbers n;
  mpfr_number v(64), smallest(64);
  parse_argument(v.get(), s.pixel_size, "scene.pixel_size", where);
  require(mpfr_sgn(v.get()) > 0, where, "argument 'scene.pixel_size' = " + quoted(s.pixel_size) + " must be > 0");
  parse_decimal(smallest.get(), min_pixel_size);
  require(mpfr_cmp(v.get(), smallest.get()) >= 0, where,
          "argument 'scene.pixel_size' = " + quoted(s.pixel_size) + " is below " + min_pixel_size +
              ", the smallest pixel size");
  n.pixel = xfloat_of(v.get());
  using named_text = std::pair<const std::string*, const char*>;
  for (const auto& [text, name] : {named_text{&s.center_re, "scene.center_re"}, named_text{&s.center_im, "scene.center_im"}}) {
    parse_argument(v.get(), *text, name, where);
    const double magnitude = std::fabs(mpfr_get_d(v.get(), MPFR_RNDN));
    require(magnitude <= max_coordinate, where,
            std::string("argument '") + name + "' = " + quoted(*text) + " is beyond 2^60");
    n.center_magnitude = magnitude > n.center_magnitude ? magnitude : n.center_magnitude;
  }
  const double extent = std::ldexp(n.pixel.m * static_cast<double>(s.width > s.height ? s.width : s.height),
                                   n.pixel.e > 100 ? 100 : n.pixel.e);
  require(n.center_magnitude + extent <= max_coordinate, where,
          "arguments 'scene.center_re', 'scene.center_im' and 'scene.pixel_size' = " + quoted(s.pixel_size) +
              " make the view reach beyond 2^60");
  n.strategy = s.strategy == zoom_strategy::automatic ? choose_zoom_strategy(n.pixel, n.center_magnitude) : s.strategy;
  const bool below_double = log2_abs(n.pixel) < -960.0;
  require(!(below_double && n.strategy != zoom_strategy::perturbation_extended), where,
          std::string("argument 'scene.strategy' = '") + to_string(n.strategy) + "' cannot render pixel size " +
              quoted(s.pixel_size) + " (below 2^-960, about 1e-289): use perturbation-extended or automatic");
  const bool perturbed = !is_flat(n.strategy);
  require(!perturbed || s.max_iters <= max_perturbation_iters, where,
          "argument 'scene.max_iters' = " + std::to_string(s.max_iters) +
              " is above 2^24, the longest reference orbit a perturbed render stores");
  // The pixel size's bits below the centre's magnitude, and 64 more for the orbit's rounding.
  const double magnitude_bits = n.center_magnitude > 1.0 ? std::ceil(std::log2(n.center_magnitude)) : 0.0;
  n.bits = static_cast<mpfr_prec_t>(64.0 + magnitude_bits + std::ceil(-log2_abs(n.pixel)));
  if (n.bits < 64) n.bits = 64;
  return n;
}

/// The centre part `text` rounded to `bits`, with digits below 2^-64 of a pixel dropped
/// (they cannot move a pixel; dropping them keeps every exponent of the orbit in range).
inline void center_part(mpfr_ptr out, const std::string& text, xfloat pixel) {
  parse_decimal(out, text);
  if (!mpfr_zero_p(out) && static_cast<double>(mpfr_get_exp(out)) < log2_abs(pixel) - 64.0) mpfr_set_zero(out, 1);
}

inline dd_real to_dd(mpfr_srcptr v) {
  mpfr_number rest(mpfr_get_prec(v));
  const double hi = mpfr_get_d(v, MPFR_RNDN);
  mpfr_sub_d(rest.get(), v, hi, MPFR_RNDN);
  return {hi, mpfr_get_d(rest.get(), MPFR_RNDN)};
}

inline deep_plan make_plan(const deep_scene& s, const char* where) {
  const deep_numbers n = check_deep_scene(s, where);
  deep_plan plan;
  plan.strategy = n.strategy;
  plan.source = s;
  plan.precision_bits = n.bits;
  perturbation_reference& ref = plan.reference;
  ref.width = static_cast<std::uint32_t>(s.width);
  ref.height = static_cast<std::uint32_t>(s.height);
  ref.max_iters = s.max_iters;
  ref.pixel = n.pixel;
  ref.offset_x = static_cast<double>(s.width / 2) + (s.width % 2 ? 0.5 : 0.0);
  ref.offset_y = static_cast<double>(s.height / 2) + (s.height % 2 ? 0.5 : 0.0);
  mpfr_number c_re(n.bits), c_im(n.bits);
  center_part(c_re.get(), s.center_re, n.pixel);
  center_part(c_im.get(), s.center_im, n.pixel);
  ref.center_re = mpfr_get_d(c_re.get(), MPFR_RNDN);
  ref.center_im = mpfr_get_d(c_im.get(), MPFR_RNDN);
  if (is_flat(n.strategy)) {
    plan.flat.view = centered_view(to_dd(c_re.get()), to_dd(c_im.get()), to_double(n.pixel), s.width, s.height);
    plan.flat.max_iters = s.max_iters;
    plan.flat.prec = n.strategy == zoom_strategy::f32   ? precision::f32
                     : n.strategy == zoom_strategy::f64 ? precision::f64
                                                        : precision::dd;
    return plan;
  }
  reference_orbit orbit = compute_reference_orbit(c_re.get(), c_im.get(), n.bits, s.max_iters);
  ref.extended = n.strategy == zoom_strategy::perturbation_extended;
  ref.length = orbit.length;
  // The largest |dc| of the image, half a pixel beyond its edge pixels for supersampling.
  const double half_w = static_cast<double>(s.width) / 2 + 1, half_h = static_cast<double>(s.height) / 2 + 1;
  const xfloat dc_max = n.pixel * to_xfloat(std::sqrt(half_w * half_w + half_h * half_h));
  ref.bla = build_bla_table(orbit.z_x, orbit.length, dc_max, ref.extended);
  ref.orbit = std::move(orbit.z);
  if (ref.extended) ref.orbit_x = std::move(orbit.z_x);
  return plan;
}

/// The checks of a plan and an output before a render.
inline void check_plan_output(const deep_plan& plan, std::size_t out_size, const char* where,
                              const char* name = "out") {
  const perturbation_reference& r = plan.reference;
  require(plan.strategy != zoom_strategy::automatic &&
              (is_flat(plan.strategy) || r.orbit.size() == static_cast<std::size_t>(r.length) + 1),
          where, "argument 'plan' was not made by plan_deep_zoom");
  const std::size_t pixels = static_cast<std::size_t>(r.width) * r.height;
  require(out_size == pixels, where,
          std::string("argument '") + name + "' has " + std::to_string(out_size) + " elements, the " +
              std::to_string(r.width) + " x " + std::to_string(r.height) + " image needs " + std::to_string(pixels));
}

}  // namespace detail

/// Checks `s` and computes what rendering it needs: for the perturbation strategies the
/// reference orbit at the centre (MPFR, max_iters iterations at precision_bits) and its
/// approximation tables, which is the costly part. std::invalid_argument naming the
/// argument and its value for anything invalid.
inline deep_plan plan_deep_zoom(const deep_scene& s) { return detail::make_plan(s, "gpukit::fractal::plan_deep_zoom"); }

/// The escape-time image of a planned scene: out[y·width + x] for pixel (x, y), in the
/// executor's memory. Out: std::uint8_t, std::uint16_t, std::uint32_t (counts, saturating)
/// or float (the smooth count; max_iters inside the set), as escape_time(exec, scene, out).
/// `out` must hold exactly width · height elements (std::invalid_argument otherwise,
/// nothing written). CPU: returns when done; GPU: the plan's copies and the kernel are
/// queued on exec.stream() (see the header comment for what waits).
template <class Exec, class Out>
void escape_time(const Exec& exec, const deep_plan& plan, span_for<Exec, Out> out) {
  static_assert(detail::is_output_v<Out>, "gpukit::fractal::escape_time: Out must be uint8_t, uint16_t, uint32_t or float");
  detail::check_plan_output(plan, out.size(), "gpukit::fractal::escape_time");
  if (detail::is_flat(plan.strategy))
    escape_time(exec, plan.flat, out);
  else
    detail::perturbation_escape_time_impl(exec, plan.reference, out.data());
}

/// plan_deep_zoom(s), then escape_time with the plan; every argument is checked before
/// the plan is computed.
template <class Exec, class Out>
void escape_time(const Exec& exec, const deep_scene& s, span_for<Exec, Out> out) {
  static_assert(detail::is_output_v<Out>, "gpukit::fractal::escape_time: Out must be uint8_t, uint16_t, uint32_t or float");
  const char* where = "gpukit::fractal::escape_time";
  detail::check_deep_scene(s, where);
  detail::require(out.size() == s.width * s.height, where,
                  "argument 'out' has " + std::to_string(out.size()) + " elements, the " + std::to_string(s.width) +
                      " x " + std::to_string(s.height) + " image needs " + std::to_string(s.width * s.height));
  escape_time(exec, detail::make_plan(s, where), out);
}

/// The steps each pixel's iteration performed (an approximation step counts one, however
/// many iterations it covers; for the escape-time strategies, count_iterations of the
/// scene). The CPU and the GPU agree exactly. Same contract as escape_time.
template <class Exec>
void count_iterations(const Exec& exec, const deep_plan& plan, span_for<Exec, std::uint32_t> out) {
  detail::check_plan_output(plan, out.size(), "gpukit::fractal::count_iterations");
  if (detail::is_flat(plan.strategy))
    count_iterations(exec, plan.flat, out);
  else
    detail::perturbation_count_iterations_impl(exec, plan.reference, out.data());
}

/// The coloured image of a planned scene with aa × aa samples per pixel (aa in [1, 16];
/// supersample.hpp's sample positions), row-major, in the executor's memory. Same
/// contract as escape_time.
template <class Exec>
void render_rgb(const Exec& exec, const deep_plan& plan, palette p, std::uint32_t aa, span_for<Exec, rgb8> out) {
  const char* where = "gpukit::fractal::render_rgb";
  detail::check_plan_output(plan, out.size(), where);
  detail::require_palette(p, where);
  detail::require_supersampling(aa, where);
  if (detail::is_flat(plan.strategy))
    render_rgb(exec, plan.flat, p, aa, out);
  else
    detail::perturbation_render_rgb_impl(exec, plan.reference, p, aa, out.data());
}

/// The count of the point the perturbation strategies render at pixel coordinates
/// (kx, ky) of `plan` (see the header comment), iterated plainly in MPFR with `bits` of
/// precision (at least the plan's precision_bits for a fair yardstick). Slow: for tests.
inline std::uint32_t reference_pixel_count(const deep_plan& plan, double kx, double ky, mpfr_prec_t bits) {
  using detail::mpfr_number;
  const perturbation_reference& r = plan.reference;
  mpfr_number c_re(plan.precision_bits), c_im(plan.precision_bits), x(bits), y(bits);
  detail::center_part(c_re.get(), plan.source.center_re, r.pixel);
  detail::center_part(c_im.get(), plan.source.center_im, r.pixel);
  const xcomplex dc = detail::pixel_delta(host_view(r), kx, ky);
  // dc's parts are exactly representable: mantissa × 2^e.
  mpfr_set_d(x.get(), dc.re, MPFR_RNDN);
  mpfr_mul_2si(x.get(), x.get(), dc.e, MPFR_RNDN);
  mpfr_add(x.get(), x.get(), c_re.get(), MPFR_RNDN);
  mpfr_set_d(y.get(), dc.im, MPFR_RNDN);
  mpfr_mul_2si(y.get(), y.get(), dc.e, MPFR_RNDN);
  mpfr_add(y.get(), y.get(), c_im.get(), MPFR_RNDN);
  return reference_count(x.get(), y.get(), bits, r.max_iters);
}

}  // namespace gpukit::fractal
