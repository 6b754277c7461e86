// The CPU escape-time path against the seed article's algorithm: known points, exact
// agreement on every scene kind and size, work-saving that changes nothing, and
// double-double (bad input: bad_input_test.cu). Compiled by the host compiler alone.
#include "gpukit/fractal/escape_time.hpp"
#include "numba_counts.hpp"
#include "scenes.hpp"
#include "support/catch.hpp"

#include <algorithm>
#include <complex>
#include <cstdint>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

using namespace gpukit::fractal;
using gpukit::cpu_executor;
using gpukit::make_host_span;

namespace {

template <class Out = std::uint32_t>
std::vector<Out> cpu_image(const scene& s, int threads = 0) {
  std::vector<Out> out(s.view.width * s.view.height);
  escape_time(cpu_executor{threads}, s, make_host_span(out));
  return out;
}

std::vector<std::uint32_t> reference_image(const scene& s) {
  std::vector<std::uint32_t> out(s.view.width * s.view.height);
  reference_escape_time(s, make_host_span(out));
  return out;
}

std::vector<std::uint32_t> work(const scene& s) {
  std::vector<std::uint32_t> out(s.view.width * s.view.height);
  count_iterations(cpu_executor{}, s, make_host_span(out));
  return out;
}

std::uint64_t total(const std::vector<std::uint32_t>& v) { return std::accumulate(v.begin(), v.end(), std::uint64_t{0}); }

/// The count of the single point c (a 1 × 1 image whose only pixel maps to c exactly).
std::uint32_t count_at(double re, double im, std::uint32_t max_iters, precision p = precision::f64) {
  scene s;
  s.view = bounds_view(re, re + 1.0, im, im + 1.0, 1, 1);
  s.max_iters = max_iters;
  s.prec = p;
  return cpu_image(s)[0];
}

/// First index where two images differ, for the failure message.
template <class A, class B>
std::string first_difference(const A& a, const B& b, std::size_t width) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i])
      return "pixel (" + std::to_string(i % width) + ", " + std::to_string(i / width) + "): " +
             std::to_string(static_cast<double>(a[i])) + " vs " + std::to_string(static_cast<double>(b[i]));
  return "none";
}

#define REQUIRE_SAME_IMAGE(a, b, width)                        \
  do {                                                         \
    INFO("first difference: " << first_difference(a, b, width)); \
    REQUIRE((a) == (b));                                       \
  } while (0)

}  // namespace

TEST_CASE("known points: c = 0 and c = -1 never escape, c = 1, -2, 0.5 escape where they must", "[fractal][cpu]") {
  for (std::uint32_t iters : {1u, 3u, 20u, 64u, 1000u, 100000u}) {
    CHECK(count_at(0.0, 0.0, iters) == iters);
    CHECK(count_at(-1.0, 0.0, iters) == iters);
    CHECK(count_at(0.0, 1.0, iters) == iters);  // i: pre-periodic, bounded
  }
  // c = 1: z = 1, 2 -> |z|² = 4 at index 1. c = -2: z = -2 -> index 0.
  CHECK(count_at(1.0, 0.0, 20) == 1);
  CHECK(count_at(-2.0, 0.0, 20) == 0);
  CHECK(count_at(1.0, 0.0, 1) == 1);  // saturates at max_iters
  // c = 0.5: 0.5, 0.75, 1.0625, 1.62890625, 3.153... escapes at index 4.
  CHECK(count_at(0.5, 0.0, 20) == 4);
  for (auto p : {precision::f32, precision::dd}) {
    CHECK(count_at(0.5, 0.0, 20, p) == 4);
    CHECK(count_at(0.0, 0.0, 500, p) == 500);
  }
}

TEST_CASE("the seed scene reproduces the article's algorithm exactly", "[fractal][cpu]") {
  const scene s = fractal_test::seed();
  const auto ref = reference_image(s);
  const auto got = cpu_image(s);
  REQUIRE_SAME_IMAGE(got, ref, s.view.width);
  // uint8 is the article's image: counts fit, so it equals the reference byte for byte.
  const auto bytes = cpu_image<std::uint8_t>(s);
  REQUIRE(std::equal(bytes.begin(), bytes.end(), ref.begin(), [](std::uint8_t a, std::uint32_t b) { return a == b; }));
  // The thread count changes nothing.
  REQUIRE(cpu_image(s, 1) == got);
  // Spot checks against the convention written out by hand: pixel (0, 0) is c = -2 - i.
  CHECK(got[0] == 0);
  const std::size_t centre_row = 512;  // imag = -1 + 512 * 2/1024 = 0 exactly
  const std::size_t origin_col = 1024;  // real = -2 + 1024 * 3/1536 = 0 exactly
  CHECK(got[centre_row * s.view.width + origin_col] == 20);
}

TEST_CASE("the article mode equals numba-cuda's image at 20, 255 and 1000 iterations", "[fractal][cpu]") {
  // plain_escape_time rounds as numba-cuda compiles the article's kernel (two FMAs); its
  // CPU path must give numba's counts on every pixel, at any iteration limit.
  for (const std::uint32_t iters : fractal_test::numba_iteration_limits) {
    INFO("max_iters " << iters);
    const auto numba = fractal_test::numba_seed_counts(iters);
    std::vector<std::uint32_t> plain(numba.size());
    plain_escape_time<double, std::uint32_t>(cpu_executor{}, -2.0, 1.0, -1.0, 1.0, iters, 1536, 1024,
                                             make_host_span(plain));
    REQUIRE(fractal_test::differing(plain, numba) == 0);
    // Python's rounding (every operation once: gpukit's escape_time and the reference)
    // equals numba's image at the article's 20 iterations; past that, FMA rounding moves a
    // few boundary pixels.
    scene s = fractal_test::seed();
    s.max_iters = iters;
    const auto python = cpu_image(s);
    if (iters == 20) {
      REQUIRE(fractal_test::differing(python, numba) == 0);
    } else {
      const std::size_t n = fractal_test::differing(python, numba);
      CHECK(n > 0);
      CHECK(n < numba.size() / 10000);
    }
  }
}

TEST_CASE("the article mode's float variant and its uint8 image", "[fractal][cpu]") {
  // Float follows the same rounding pattern; uint8 saturates the same counts at 255.
  std::vector<std::uint32_t> wide(96 * 64);
  std::vector<std::uint8_t> bytes(96 * 64);
  plain_escape_time<float, std::uint32_t>(cpu_executor{}, -2.0, 1.0, -1.0, 1.0, 1000, 96, 64, make_host_span(wide));
  plain_escape_time<float, std::uint8_t>(cpu_executor{}, -2.0, 1.0, -1.0, 1.0, 1000, 96, 64, make_host_span(bytes));
  std::size_t saturated = 0;
  for (std::size_t i = 0; i < wide.size(); ++i) {
    REQUIRE(bytes[i] == std::min<std::uint32_t>(wide[i], 255));
    saturated += wide[i] > 255;
  }
  CHECK(saturated > 100);
  // Pixel (64, 32) is c = 0 (exact in float): never escapes; pixel (0, 0) is c = -2 - i.
  CHECK(wide[32 * 96 + 64] == 1000);
  CHECK(wide[0] == 0);
}

TEST_CASE("every precision, view and kind of scene matches the reference exactly", "[fractal][cpu]") {
  SECTION("boundary zoom, double and float") {
    for (auto p : {precision::f64, precision::f32}) {
      scene s = fractal_test::boundary(96, 3000);
      s.prec = p;
      REQUIRE_SAME_IMAGE(cpu_image(s), reference_image(s), s.view.width);
    }
  }
  SECTION("the whole set with its interior, double and float") {
    for (auto p : {precision::f64, precision::f32}) {
      scene s = fractal_test::full(160, 500);
      s.prec = p;
      REQUIRE_SAME_IMAGE(cpu_image(s), reference_image(s), s.view.width);
    }
  }
  SECTION("Julia set") {
    for (auto p : {precision::f64, precision::f32}) {
      scene s = fractal_test::julia(120, 75, 400);
      s.prec = p;
      REQUIRE_SAME_IMAGE(cpu_image(s), reference_image(s), s.view.width);
    }
  }
  SECTION("double-double") {
    scene s = fractal_test::boundary(40, 1500);
    s.prec = precision::dd;
    REQUIRE_SAME_IMAGE(cpu_image(s), reference_image(s), s.view.width);
  }
}

TEST_CASE("1 x 1 and odd sizes, both view conventions", "[fractal][cpu]") {
  const std::size_t sizes[][2] = {{1, 1}, {1, 37}, {37, 1}, {7, 5}, {17, 33}, {65, 3}};
  for (const auto& wh : sizes) {
    for (auto p : {precision::f64, precision::f32, precision::dd}) {
      scene s;
      s.max_iters = 200;
      s.prec = p;
      s.view = bounds_view(-2.0, 0.6, -1.1, 1.1, wh[0], wh[1]);
      INFO(wh[0] << " x " << wh[1] << ", " << to_string(p));
      REQUIRE_SAME_IMAGE(cpu_image(s), reference_image(s), s.view.width);
      s.view = centered_view(dd_from(-0.75), dd_from(0.1), 0.013, wh[0], wh[1]);
      REQUIRE_SAME_IMAGE(cpu_image(s), reference_image(s), s.view.width);
    }
  }
}

TEST_CASE("centered views put the centre on pixel (width/2, height/2)", "[fractal][cpu]") {
  const viewport v = centered_view(dd_from(-0.5), dd_from(0.25), 0.125, 8, 6);
  CHECK(axis_coordinate(v.origin_x, v.step_x, v.offset_x, 4.0) == -0.5);
  CHECK(axis_coordinate(v.origin_y, v.step_y, v.offset_y, 3.0) == 0.25);
  CHECK(axis_coordinate(v.origin_x, v.step_x, v.offset_x, 0.0) == -1.0);
  const viewport odd = centered_view(dd_from(0.0), dd_from(0.0), 1.0, 5, 5);
  CHECK(axis_coordinate(odd.origin_x, odd.step_x, odd.offset_x, 2.0) == -0.5);
  // The bounds convention keeps the article's rounded pixel size in the leading double.
  const viewport b = bounds_view(-2.0, 1.0, -1.0, 1.0, 1000, 700);
  CHECK(b.step_x.hi == 3.0 / 1000);
  CHECK(b.step_y.hi == 2.0 / 700);
}

TEST_CASE("interior tests skip work and change no count", "[fractal][cpu]") {
  for (auto p : {precision::f64, precision::f32}) {
    scene with = fractal_test::full(200, 2000);
    with.prec = p;
    scene without = with;
    without.interior_checks = false;
    INFO(to_string(p));
    const auto a = cpu_image(with), b = cpu_image(without);
    REQUIRE_SAME_IMAGE(a, b, with.view.width);
    const auto wa = work(with), wb = work(without);
    const auto skipped = std::count(wa.begin(), wa.end(), 0u);
    CHECK(skipped > static_cast<long>(a.size() / 8));  // the cardioid and bulb cover ~1/7 of this view
    CHECK(total(wa) < total(wb) / 2);
  }
}

TEST_CASE("points the interior tests accept never escape, even right at their margins", "[fractal][cpu]") {
  // Multipliers near 1 are where rounding could matter: sample the main cardioid and the
  // period-2 bulb by multiplier λ (c = λ/2 − λ²/4 and c = −1 + λ/4) up to |λ| → 1, keep
  // the points the tests accept, and iterate them far longer than a render would.
  auto rng = gpukit_test::rng(7);
  std::uniform_real_distribution<double> angle(0.0, 6.283185307179586), radius(0.97, 1.03);
  int accepted = 0;
  for (int k = 0; k < 4000 && accepted < 150; ++k) {
    const std::complex<double> lambda = std::polar(radius(rng), angle(rng));
    const std::complex<double> c = k % 2 ? lambda / 2.0 - lambda * lambda / 4.0 : -1.0 + lambda / 4.0;
    for (auto p : {precision::f64, precision::f32}) {
      const double margin = p == precision::f32 ? detail::fine_margin_for<float> : detail::fine_margin_for<double>;
      const double re = p == precision::f32 ? static_cast<float>(c.real()) : c.real();
      const double im = p == precision::f32 ? static_cast<float>(c.imag()) : c.imag();
      if (!detail::known_interior(re, im, margin)) continue;
      ++accepted;
      INFO("c = " << re << " + " << im << "i, " << to_string(p));
      scene s;
      s.view = bounds_view(re, re + 1.0, im, im + 1.0, 1, 1);
      s.max_iters = 60000;
      s.prec = p;
      s.interior_checks = false;
      s.periodicity = false;
      REQUIRE(cpu_image(s)[0] == s.max_iters);
    }
  }
  CHECK(accepted >= 40);
}

TEST_CASE("the disks tested inside period-3 and period-4 components hold attracting cycles", "[fractal][cpu]") {
  // On each disk's rim the orbit settles on a p-cycle whose multiplier 2^p·z1···zp stays
  // well below 1 (so, by the maximum principle, inside the whole disk).
  struct disk {
    double x, y, r;
    int period;
  };
  const disk disks[] = {{-0.124561, 0.744862, 0.080, 3}, {-1.308703, 0.0, 0.048, 4}, {0.280271, 0.530061, 0.034, 4}};
  for (const auto& d : disks) {
    double worst = 0.0;
    for (int k = 0; k < 360; ++k) {
      const std::complex<double> c = std::complex<double>(d.x, d.y) + std::polar(d.r, 6.283185307179586 * k / 360);
      std::complex<double> z = 0.0;
      for (int n = 0; n < 20000; ++n) z = z * z + c;
      std::complex<double> multiplier = 1.0;
      for (int j = 0; j < d.period; ++j) {
        multiplier *= 2.0 * z;
        z = z * z + c;
      }
      worst = std::max(worst, std::abs(multiplier));
      // A little inside the rim the float test accepts every point.
      const std::complex<double> inner =
          std::complex<double>(d.x, d.y) + std::polar(0.97 * d.r, 6.283185307179586 * k / 360);
      REQUIRE(detail::known_interior(inner.real(), inner.imag(), detail::fine_margin_for<double>));
    }
    INFO("disk at " << d.x << " + " << d.y << "i");
    CHECK(worst < 0.95);
  }
}

TEST_CASE("periodicity checking skips work and changes no count", "[fractal][cpu]") {
  for (auto p : {precision::f64, precision::f32, precision::dd}) {
    scene with = fractal_test::full(p == precision::dd ? 48 : 120, 3000);
    with.prec = p;
    with.interior_checks = false;  // leave the interior to periodicity
    scene without = with;
    without.periodicity = false;
    INFO(to_string(p));
    REQUIRE_SAME_IMAGE(cpu_image(with), cpu_image(without), with.view.width);
    CHECK(total(work(with)) < total(work(without)) / 2);
  }
}

TEST_CASE("count_iterations counts what the article's loop would iterate, minus the skipped work", "[fractal][cpu]") {
  scene s = fractal_test::full(64, 300);
  s.interior_checks = false;
  s.periodicity = false;
  const auto counts = reference_image(s);
  const auto w = work(s);
  for (std::size_t i = 0; i < counts.size(); ++i) REQUIRE(w[i] == std::min(counts[i] + 1, s.max_iters));
}

TEST_CASE("double-double agrees with double where double is exact and stays detailed where it fails",
          "[fractal][cpu]") {
  scene s = fractal_test::seed();
  const auto d = cpu_image(s);
  s.prec = precision::dd;
  REQUIRE_SAME_IMAGE(cpu_image(s), d, s.view.width);

  // Pixel size 2e-17: double rounds neighbouring pixels onto the same coordinate.
  scene deep = fractal_test::deep(32, 20000);
  const auto dd_img = cpu_image(deep);
  deep.prec = precision::f64;
  const auto double_img = cpu_image(deep);
  const auto repeated_columns = [&](const std::vector<std::uint32_t>& img) {
    int same = 0;
    for (std::size_t x = 1; x < 32; ++x) {
      bool equal = true;
      for (std::size_t y = 0; y < 32; ++y) equal = equal && img[y * 32 + x] == img[y * 32 + x - 1];
      same += equal;
    }
    return same;
  };
  CHECK(repeated_columns(double_img) >= 16);
  CHECK(repeated_columns(dd_img) <= 2);
  CHECK(std::set<std::uint32_t>(dd_img.begin(), dd_img.end()).size() >
        2 * std::set<std::uint32_t>(double_img.begin(), double_img.end()).size());
}

TEST_CASE("double-double parsing and arithmetic", "[fractal][cpu]") {
  const dd_real tenth = parse_dd("0.1");
  CHECK(tenth.hi == 0.1);
  CHECK(tenth.lo != 0.0);
  CHECK(std::abs(tenth.lo - (-5.551115123125783e-18)) < 1e-31);  // 0.1 − fl(0.1)
  const dd_real third = dd_from(1.0) / 3.0;
  const dd_real one = third * 3.0;
  CHECK(std::abs((one - dd_from(1.0)).hi) < 1e-31);
  CHECK(parse_dd("-1.5e-3").hi == -1.5e-3);
  CHECK(parse_dd("+2").hi == 2.0);
  CHECK(to_string(parse_dd("-0.743643887037158704752191506114774"), 30).substr(0, 32) ==
        "-7.43643887037158704752191506114");
  // malformed numbers: tests/fractal/bad_input_test.cu
}

TEST_CASE("smooth counts stay next to the integer counts", "[fractal][cpu]") {
  // |z| at the escape lies in [2, 4 + |c|), so log2(log2|z|) is in [0, ~1.3]; the extra
  // steps after the escape add a little either way.
  for (auto p : {precision::f64, precision::f32, precision::dd}) {
    scene s = fractal_test::boundary(48, 800);
    s.prec = p;
    const auto counts = cpu_image(s);
    const auto smooth = cpu_image<float>(s);
    for (std::size_t i = 0; i < counts.size(); ++i) {
      INFO("pixel " << i << " count " << counts[i] << " smooth " << smooth[i] << " " << to_string(p));
      if (counts[i] == s.max_iters) {
        REQUIRE(smooth[i] == static_cast<float>(s.max_iters));
      } else {
        REQUIRE(std::abs(smooth[i] - static_cast<float>(counts[i])) < 1.5f);
      }
    }
  }
}

TEST_CASE("uint8 and uint16 outputs saturate like the article's image", "[fractal][cpu]") {
  scene s = fractal_test::full(64, 70000);
  const auto counts = cpu_image(s);
  const auto u8 = cpu_image<std::uint8_t>(s);
  const auto u16 = cpu_image<std::uint16_t>(s);
  REQUIRE(std::find(counts.begin(), counts.end(), 70000u) != counts.end());
  for (std::size_t i = 0; i < counts.size(); ++i) {
    REQUIRE(u8[i] == std::min<std::uint32_t>(counts[i], 255));
    REQUIRE(u16[i] == std::min<std::uint32_t>(counts[i], 65535));
  }
}
