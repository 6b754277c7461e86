// Deep zooms on the CPU: the extended-exponent numbers, the approximation tables, the
// perturbed counts against a plain per-pixel MPFR iteration at pixel sizes 1e-20, 1e-60 and
// 1e-320, a scene built to glitch, the automatic strategy and the output kinds (bad input:
// deep_zoom_gpu_test.cu, on both executors). Compiled by the host compiler alone.
#include "deep_scenes.hpp"
#include "gpukit/fractal/deep_zoom.hpp"
#include "support/catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

using namespace gpukit::fractal;
using gpukit::cpu_executor;
using gpukit::make_host_span;

namespace {

template <class Out = std::uint32_t>
std::vector<Out> cpu_image(const deep_plan& p, int threads = 0) {
  std::vector<Out> out(p.reference.width * p.reference.height);
  escape_time(cpu_executor{threads}, p, make_host_span(out));
  return out;
}

/// A pixel whose plain MPFR count changes when c moves by 2^-30 of a pixel along x: its
/// count is not a function of c at the resolution that double deltas carry (see
/// require_mpfr_agreement), so no perturbed render can be held to it.
bool chaotic(const deep_plan& p, double x, double y, mpfr_prec_t bits, std::uint32_t count) {
  constexpr double jitter = 0x1p-30;
  return reference_pixel_count(p, x + jitter, y, bits) != count || reference_pixel_count(p, x - jitter, y, bits) != count;
}

/// The perturbed counts of `p` against the plain MPFR iteration of the same points (with
/// 64 bits more than the plan's precision) on a grid of n × n pixels spread over the image.
///
/// The agreement required: equal counts, except at pixels that are chaotic within the
/// precision (chaotic() above). Double deltas carry c − C to 2^-53 of itself, |c − C| is at
/// most ~2^5 pixels here, so c is known to ~2^-48 of a pixel; the orbit's own rounding and
/// the approximation steps (each dropping less than one rounding) add errors of the same
/// kind, which the orbit then amplifies as it amplifies a change of c. A pixel whose
/// count already changes at 2^-30 of a pixel — 2^18 times more than that — is decided by
/// digits no double-delta renderer has; such pixels may differ, and at most one in eight
/// of the sample may be one. Measured: 0 of 25 at 1e-20; 1 of 25 at 1e-60 and 1e-320, the
/// centre pixel, which is the reference point itself: a point a few digits off the
/// Misiurewicz point, on the boundary, whose orbit escapes one or two iterations apart at
/// the plan's precision and at 64 bits more.
void require_mpfr_agreement(const deep_plan& p, const std::vector<std::uint32_t>& counts, std::size_t n) {
  const std::size_t w = p.reference.width, h = p.reference.height;
  const mpfr_prec_t bits = p.precision_bits + 64;
  std::size_t compared = 0, chaotic_mismatches = 0;
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t x = (2 * i + 1) * w / (2 * n), y = (2 * j + 1) * h / (2 * n);
      const std::uint32_t want = reference_pixel_count(p, static_cast<double>(x), static_cast<double>(y), bits);
      const std::uint32_t got = counts[y * w + x];
      ++compared;
      if (got == want) continue;
      const bool excused = chaotic(p, static_cast<double>(x), static_cast<double>(y), bits, want);
      INFO("pixel (" << x << ", " << y << "): perturbed " << got << ", MPFR " << want
                     << (excused ? " (chaotic within the precision)" : ""));
      REQUIRE(excused);
      ++chaotic_mismatches;
    }
  }
  INFO(chaotic_mismatches << " of " << compared << " sampled pixels differ, all chaotic within the precision");
  REQUIRE(chaotic_mismatches * 8 <= compared);
}

std::uint32_t max_count(const std::vector<std::uint32_t>& v) { return *std::max_element(v.begin(), v.end()); }

}  // namespace

TEST_CASE("extended floats: products and sums round like double's, beyond double's range too", "[fractal][cpu]") {
  auto rng = gpukit_test::rng();
  std::uniform_real_distribution<double> mantissa(-4.0, 4.0);
  std::uniform_int_distribution<int> power(-60, 60);
  for (int k = 0; k < 2000; ++k) {
    const double a = std::ldexp(mantissa(rng), power(rng)), b = std::ldexp(mantissa(rng), power(rng));
    // Far from double's range in both directions: the exponents carry the difference.
    const int shift = k % 2 ? -5000 : 3000;
    const xfloat xa = scaled(to_xfloat(a), shift), xb = scaled(to_xfloat(b), shift);
    CHECK(to_double(scaled(xa * xb, -2 * shift)) == a * b);
    CHECK(to_double(scaled(xa + xb, -shift)) == a + b);
    CHECK(to_double(scaled(xa - xb, -shift)) == a - b);
    CHECK(less_nonnegative(scaled(to_xfloat(std::fabs(a)), shift), scaled(to_xfloat(std::fabs(b)), shift)) ==
          (std::fabs(a) < std::fabs(b)));
  }
  // Complex numbers share one exponent, so a part is exact relative to the larger part of
  // its number (normwise, as complex products are anyway): the parts of each number here
  // lie within 2^±8 of each other, and the operands within 2^±24, so that double's
  // componentwise results are reached exactly.
  std::uniform_int_distribution<int> base(-12, 12), spread(-4, 4);
  for (int k = 0; k < 2000; ++k) {
    const int shift = k % 2 ? -5000 : 3000;
    const int bx = base(rng), by = base(rng);
    const double a = std::ldexp(mantissa(rng), bx + spread(rng)), b = std::ldexp(mantissa(rng), bx + spread(rng));
    const double c = std::ldexp(mantissa(rng), by + spread(rng)), d = std::ldexp(mantissa(rng), by + spread(rng));
    const xcomplex x = scaled(to_xcomplex(a, b), shift), y = scaled(to_xcomplex(c, d), shift);
    const xcomplex p = scaled(x * y, -2 * shift);
    CHECK(real_double(p) == a * c - b * d);
    CHECK(imag_double(p) == a * d + b * c);
    const xcomplex s = scaled(x + y, -shift);
    CHECK(real_double(s) == a + c);
    CHECK(imag_double(s) == b + d);
    const xcomplex q = scaled(sqr(x), -2 * shift);
    CHECK(real_double(q) == a * a - b * b);
    CHECK(imag_double(q) == 2 * (a * b));
    // Parts far apart: the error stays below an ulp of the larger part.
    const double tiny = std::ldexp(mantissa(rng), -300);
    const xcomplex w = scaled(to_xcomplex(a, tiny), shift) + scaled(to_xcomplex(tiny, d), shift);
    const double scale = std::max(std::fabs(a), std::fabs(d));
    CHECK(std::fabs(to_double(scaled(xfloat{w.re, w.e}, -shift)) - a) <= 0x1p-52 * scale);
    CHECK(std::fabs(to_double(scaled(xfloat{w.im, w.e}, -shift)) - d) <= 0x1p-52 * scale);
  }
  // Zero is the neutral element, and sums that cancel give zero.
  const xcomplex z{};
  const xcomplex one = to_xcomplex(1.0, -2.0);
  CHECK(real_double(z + one) == 1.0);
  CHECK(imag_double(one + z) == -2.0);
  CHECK(is_zero(one + (-one)));
  CHECK(is_zero(z * one));
  // Conversions: subnormal doubles in, values below and above double's range out.
  CHECK(to_double(to_xfloat(0x1p-1070)) == 0x1p-1070);
  CHECK(to_double(scaled(to_xfloat(1.5), -1100)) == 0.0);
  CHECK(std::isinf(to_double(scaled(to_xfloat(1.5), 1100))));
  CHECK(to_double(scaled(to_xfloat(1.5), -1074)) == 0x1p-1074 * 2);  // 1.5 · 2^-1074 rounds to even
  CHECK(log2_abs(scaled(to_xfloat(1.0), -3322)) == -3322.0);
}

TEST_CASE("approximation tables: a merged step equals the iterations it skips", "[fractal][cpu]") {
  const deep_plan p = plan_deep_zoom(fractal_test::deep_1e60(32));
  REQUIRE(p.strategy == zoom_strategy::perturbation);
  const perturbation_reference& r = p.reference;
  const bla_levels& lv = r.bla.levels;
  REQUIRE(lv.count >= 8);
  // Rebuild the orbit's extended form and follow a delta for 2^k plain steps from m = 1.
  const deep_plan px = plan_deep_zoom(fractal_test::deep_at(fractal_test::misiurewicz_re, fractal_test::misiurewicz_im,
                                                            "1e-60", 32, 5000, zoom_strategy::perturbation_extended));
  const std::vector<xcomplex>& orbit = px.reference.orbit_x;
  const xcomplex dc = to_xcomplex(7.0, -3.0) * r.pixel;
  for (std::uint32_t k = 1; k < lv.count; ++k) {
    const bla_step_x& s = px.reference.bla.steps_x[lv.offset[k]];
    const bla_step& sd = r.bla.steps[lv.offset[k]];
    REQUIRE(sd.r <= r.bla.steps[lv.offset[k - 1]].r);  // a merged radius never exceeds its first half's
    if (is_zero(s.r)) continue;
    const xcomplex d0 = to_xcomplex(0.5, 0.25) * s.r;
    xcomplex d = d0;
    for (std::uint32_t m = 1; m < 1 + (1u << k); ++m) d = (scaled(orbit[m], 1) + d) * d + dc;
    const xcomplex approx = apply(s, d0, dc);
    const double error = to_double(magnitude(approx + (-d)) / magnitude(d));
    INFO("level " << k);
    CHECK(error < 0x1p-53 * std::ldexp(8.0, static_cast<int>(k)));
  }
}

TEST_CASE("perturbation at pixel size 1e-20 equals plain MPFR iteration", "[fractal][cpu]") {
  const deep_plan p = plan_deep_zoom(fractal_test::deep_1e20());
  REQUIRE(p.strategy == zoom_strategy::perturbation);
  const auto counts = cpu_image(p);
  CHECK(max_count(counts) == p.reference.max_iters);  // the minibrot at the centre
  require_mpfr_agreement(p, counts, 5);
}

TEST_CASE("perturbation at pixel size 1e-60 equals plain MPFR iteration, past the reference's escape", "[fractal][cpu]") {
  const deep_plan p = plan_deep_zoom(fractal_test::deep_1e60());
  REQUIRE(p.strategy == zoom_strategy::perturbation);
  REQUIRE(p.reference.length < p.reference.max_iters);  // the reference point escapes ...
  const auto counts = cpu_image(p);
  CHECK(max_count(counts) > p.reference.length);  // ... before some pixels, which rebase to go on
  require_mpfr_agreement(p, counts, 5);
}

TEST_CASE("extended deltas at pixel size 1e-320 equal plain MPFR iteration", "[fractal][cpu]") {
  const deep_plan p = plan_deep_zoom(fractal_test::deep_1e320());
  REQUIRE(p.strategy == zoom_strategy::perturbation_extended);
  REQUIRE(p.reference.extended);
  const auto counts = cpu_image(p);
  require_mpfr_agreement(p, counts, 5);
  // The tables skip most iterations at this depth.
  std::vector<std::uint32_t> work(counts.size());
  count_iterations(cpu_executor{}, p, make_host_span(work));
  double steps = 0, iterations = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    steps += work[i];
    iterations += std::min<double>(counts[i] + 1.0, p.reference.max_iters);
  }
  INFO(steps << " steps for " << iterations << " iterations");
  CHECK(steps * 5 < iterations);
}

TEST_CASE("extended deltas forced at shallow depths give the double deltas' counts", "[fractal][cpu]") {
  for (const char* pixel : {"1e-3", "1e-20"}) {
    INFO("pixel size " << pixel);
    auto s = fractal_test::deep_at(fractal_test::seahorse_re, fractal_test::seahorse_im, pixel, 24, 5000,
                                   zoom_strategy::perturbation);
    const deep_plan d = plan_deep_zoom(s);
    s.strategy = zoom_strategy::perturbation_extended;
    const deep_plan x = plan_deep_zoom(s);
    const auto a = cpu_image(d), b = cpu_image(x);
    std::size_t differing = 0;
    for (std::size_t i = 0; i < a.size(); ++i) differing += a[i] != b[i];
    // Both round differently (extended sums align exponents), so chaotic pixels may differ.
    CHECK(differing * 50 <= a.size());
  }
}

TEST_CASE("a scene built to glitch: without rebasing the glitches are detected, with it the counts are right",
          "[fractal][cpu]") {
  const deep_plan p = plan_deep_zoom(fractal_test::glitching());
  const perturbation_view v = host_view(p.reference);
  const auto counts = cpu_image(p);
  const std::size_t w = v.width;
  // Pixels where perturbation without rebasing differs from the renderer and Pauldelbrot's
  // criterion fired.
  std::vector<std::size_t> detected;
  std::size_t differing = 0;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    const double x = static_cast<double>(k % w), y = static_cast<double>(k / w);
    const perturbed_result plain = detail::perturbed_pixel_double<false, false>(v, x, y);
    if (plain.r.count == counts[k]) continue;
    ++differing;
    if (plain.glitches > 0) detected.push_back(k);
  }
  INFO(differing << " pixels differ without rebasing, " << detected.size() << " with Pauldelbrot's criterion firing");
  REQUIRE(detected.size() >= counts.size() / 20);
  CHECK(detected.size() * 10 >= differing * 8);  // the criterion catches most of what goes wrong
  // A sample of the detected pixels against MPFR: the glitch was real, rebasing fixed it.
  const mpfr_prec_t bits = p.precision_bits + 64;
  std::size_t fixed = 0, sampled = 0;
  for (std::size_t n = 0; n < detected.size() && sampled < 12; n += detected.size() / 12 + 1, ++sampled) {
    const std::size_t k = detected[n];
    const double x = static_cast<double>(k % w), y = static_cast<double>(k / w);
    const std::uint32_t want = reference_pixel_count(p, x, y, bits);
    const perturbed_result plain = detail::perturbed_pixel_double<false, false>(v, x, y);
    const perturbed_result rebased = detail::perturbed_pixel_double<false, true>(v, x, y);
    INFO("pixel (" << x << ", " << y << "): without rebasing " << plain.r.count << ", rebased " << rebased.r.count
                   << " after " << rebased.rebases << " rebases, MPFR " << want);
    CHECK(rebased.r.count == counts[k]);
    CHECK(rebased.rebases > 0);
    if (plain.r.count != want && rebased.r.count == want) ++fixed;
    if (rebased.r.count != want) CHECK(chaotic(p, x, y, bits, want));
  }
  INFO(fixed << " of " << sampled << " sampled glitches were wrong without rebasing and right with it");
  CHECK(fixed * 4 >= sampled * 3);
}

TEST_CASE("the automatic strategy follows the pixel size", "[fractal][cpu]") {
  const auto strategy_at = [](const char* pixel, const char* re = "-0.75") {
    return plan_deep_zoom(fractal_test::deep_at(re, "0.1", pixel, 8, 100)).strategy;
  };
  CHECK(strategy_at("2e-3") == zoom_strategy::f32);
  CHECK(strategy_at("1e-5") == zoom_strategy::f64);
  CHECK(strategy_at("1e-13") == zoom_strategy::perturbation);
  CHECK(strategy_at("1e-288") == zoom_strategy::perturbation);
  CHECK(strategy_at("1e-290") == zoom_strategy::perturbation_extended);
  CHECK(strategy_at("1e-3000") == zoom_strategy::perturbation_extended);
  CHECK(strategy_at("1e-3", "3000") == zoom_strategy::f64);  // relative to the centre's magnitude
  for (zoom_strategy z : {zoom_strategy::automatic, zoom_strategy::f32, zoom_strategy::f64, zoom_strategy::dd,
                          zoom_strategy::perturbation, zoom_strategy::perturbation_extended})
    CHECK(parse_zoom_strategy(to_string(z)) == z);
}

TEST_CASE("escape-time strategies render the scene centred at the double-double centre", "[fractal][cpu]") {
  const std::pair<zoom_strategy, precision> cases[] = {
      {zoom_strategy::f32, precision::f32}, {zoom_strategy::f64, precision::f64}, {zoom_strategy::dd, precision::dd}};
  for (const auto& [z, prec] : cases) {
    INFO(to_string(z));
    const deep_plan p = plan_deep_zoom(fractal_test::deep_at(fractal_test::seahorse_re, fractal_test::seahorse_im,
                                                             "2e-9", 40, 3000, z));
    REQUIRE(p.strategy == z);
    REQUIRE(p.flat.prec == prec);
    CHECK(p.flat.view.origin_x.hi == parse_dd(fractal_test::seahorse_re).hi);
    CHECK(p.flat.view.origin_y.hi == parse_dd(fractal_test::seahorse_im).hi);
    CHECK(p.flat.view.step_x.hi == 2e-9);
    CHECK(p.flat.view.offset_x == 20.0);
    CHECK(p.flat.max_iters == 3000u);
    std::vector<std::uint32_t> want(40 * 40);
    escape_time(cpu_executor{}, p.flat, make_host_span(want));
    CHECK(cpu_image(p) == want);
  }
}

TEST_CASE("perturbed outputs: uint8 saturates, float is the smooth count, colours, any thread count",
          "[fractal][cpu]") {
  const deep_plan p = plan_deep_zoom(fractal_test::deep_1e60(24));
  const auto counts = cpu_image(p);
  CHECK(cpu_image(p, 1) == counts);
  const auto bytes = cpu_image<std::uint8_t>(p);
  const auto halves = cpu_image<std::uint16_t>(p);
  const auto smooth = cpu_image<float>(p);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    CHECK(bytes[i] == std::min<std::uint32_t>(counts[i], 255));
    CHECK(halves[i] == std::min<std::uint32_t>(counts[i], 65535));
    if (counts[i] == p.reference.max_iters) {
      CHECK(smooth[i] == static_cast<float>(p.reference.max_iters));
    } else {
      CHECK(std::fabs(smooth[i] - static_cast<float>(counts[i])) < 2.0f);
    }
  }
  std::vector<rgb8> rgb(counts.size()), from_smooth(counts.size());
  render_rgb(cpu_executor{}, p, palette::classic, 1, make_host_span(rgb));
  colourize(cpu_executor{}, make_host_span(std::as_const(smooth)), p.reference.max_iters, palette::classic,
            make_host_span(from_smooth));
  for (std::size_t i = 0; i < rgb.size(); ++i) {
    CHECK(rgb[i].r == from_smooth[i].r);
    CHECK(rgb[i].g == from_smooth[i].g);
    CHECK(rgb[i].b == from_smooth[i].b);
  }
  std::vector<rgb8> aa(counts.size());
  render_rgb(cpu_executor{}, p, palette::fire, 3, make_host_span(aa));  // supersampled: runs, stays in bounds
  // The one-call form plans and renders the same image.
  std::vector<std::uint32_t> direct(counts.size());
  escape_time(cpu_executor{}, fractal_test::deep_1e60(24), make_host_span(direct));
  CHECK(direct == counts);
}
