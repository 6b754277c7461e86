// Palettes, colouring and supersampling on the CPU.
#include "gpukit/fractal/escape_time.hpp"
#include "gpukit/fractal/supersample.hpp"
#include "scenes.hpp"
#include "support/catch.hpp"

#include <cstdint>
#include <vector>

using namespace gpukit::fractal;
using gpukit::cpu_executor;
using gpukit::make_host_span;

TEST_CASE("palettes: gray is the article's image stretched, the others black inside", "[fractal][colour]") {
  const rgb8 black = colour_of(0.0f, 20, palette::gray);
  CHECK((black.r == 0 && black.g == 0 && black.b == 0));
  const rgb8 white = colour_of(20.0f, 20, palette::gray);
  CHECK((white.r == 255 && white.g == 255 && white.b == 255));
  const rgb8 half = colour_of(10.0f, 20, palette::gray);
  CHECK(half.r == 128);
  for (auto p : {palette::classic, palette::fire, palette::ocean}) {
    const rgb8 inside = colour_of(500.0f, 500, p);
    CHECK((inside.r == 0 && inside.g == 0 && inside.b == 0));
    // Continuous: a small step in the count moves each channel by a little (away from 0,
    // where sqrt is steep).
    for (float v = 1.0f; v < 400.0f; v += 0.37f) {
      const rgb8 a = colour_of(v, 500, p), b = colour_of(v + 0.01f, 500, p);
      INFO(to_string(p) << " at " << v);
      REQUIRE(std::abs(a.r - b.r) <= 4);
      REQUIRE(std::abs(a.g - b.g) <= 4);
      REQUIRE(std::abs(a.b - b.b) <= 4);
    }
  }
  CHECK(parse_palette("grey") == palette::gray);
  CHECK(parse_palette("ocean") == palette::ocean);
}

TEST_CASE("render_rgb without supersampling colours the smooth image", "[fractal][colour]") {
  for (auto prec : {precision::f64, precision::f32}) {
    scene s = fractal_test::boundary(40, 600);
    s.prec = prec;
    const std::size_t n = s.view.width * s.view.height;
    std::vector<float> smooth(n);
    escape_time(cpu_executor{}, s, make_host_span(smooth));
    std::vector<rgb8> expected(n), got(n);
    colourize(cpu_executor{}, make_host_span(std::as_const(smooth)), s.max_iters, palette::classic,
              make_host_span(expected));
    render_rgb(cpu_executor{}, s, palette::classic, 1, make_host_span(got));
    for (std::size_t i = 0; i < n; ++i) {
      INFO("pixel " << i);
      REQUIRE((got[i].r == expected[i].r && got[i].g == expected[i].g && got[i].b == expected[i].b));
    }
  }
}

TEST_CASE("supersampling averages the samples around each pixel", "[fractal][colour]") {
  // Inside the cardioid every sample is black; along the boundary a 3x3 pixel is the mean of
  // nine colours, so it lies between the darkest and the brightest of a 3x finer image.
  scene s = fractal_test::full(24, 200);
  std::vector<rgb8> aa(24 * 24);
  render_rgb(cpu_executor{}, s, palette::gray, 3, make_host_span(aa));
  scene fine = s;
  fine.view = bounds_view(-2.0 - 1.0 / 24, 1.0 - 1.0 / 24, -1.5 - 1.0 / 24, 1.5 - 1.0 / 24, 72, 72);
  std::vector<rgb8> samples(72 * 72);
  render_rgb(cpu_executor{}, fine, palette::gray, 1, make_host_span(samples));
  int mixed = 0;
  for (std::size_t y = 0; y < 24; ++y) {
    for (std::size_t x = 0; x < 24; ++x) {
      int lo = 255, hi = 0;
      for (std::size_t j = 0; j < 3; ++j)
        for (std::size_t i = 0; i < 3; ++i) {
          const int v = samples[(3 * y + j) * 72 + 3 * x + i].r;
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
      const int v = aa[y * 24 + x].r;
      INFO("pixel " << x << ", " << y);
      REQUIRE(v >= lo - 1);
      REQUIRE(v <= hi + 1);
      mixed += hi - lo > 32 && v > lo + 4 && v < hi - 4;
    }
  }
  CHECK(mixed > 10);
}
