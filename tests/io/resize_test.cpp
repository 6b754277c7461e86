// Bilinear resizing against hand-computed values, identity, constants, and argument checks.
#include "gpukit/io/resize.hpp"
#include "io_support.hpp"
#include "support/catch.hpp"

#include <vector>

using namespace gpukit::io;
using gpukit::make_host_span;
using gpukit_test::require_throws_naming;

namespace {
image make(std::size_t w, std::size_t h, pixel_format f, std::vector<std::uint8_t> px) {
  image img;
  img.width = w;
  img.height = h;
  img.format = f;
  img.pixels = std::move(px);
  return img;
}
}  // namespace

TEST_CASE("2x2 to 4x4 matches the half-pixel convention by hand", "[io][resize]") {
  // Output x samples source x = (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to
  // [0, 1]: weights of the right pixel 0, 0.25, 0.75, 1; the same for rows.
  const image src = make(2, 2, pixel_format::gray8, {0, 100, 200, 40});
  const std::vector<std::uint8_t> want = {0,   25,  75, 100,  // row 0
                                          50,  59,  76, 85,   // 0.75·row 0 + 0.25·row 1 (58.75, 76.25 rounded)
                                          150, 126, 79, 55,   // 0.25·row 0 + 0.75·row 1 (126.25, 78.75 rounded)
                                          200, 160, 80, 40};  // row 1
  const image out = resize_bilinear(src, 4, 4);
  CHECK(out.width == 4);
  CHECK(out.height == 4);
  CHECK(out.format == pixel_format::gray8);
  CHECK(out.pixels == want);
  // RGB: each channel on its own.
  std::vector<std::uint8_t> rgb(12);
  for (int i = 0; i < 4; ++i) rgb[3 * i] = src.pixels[i], rgb[3 * i + 1] = 255 - src.pixels[i], rgb[3 * i + 2] = 9;
  const image out_rgb = resize_bilinear(make(2, 2, pixel_format::rgb8, rgb), 4, 4);
  for (int i = 0; i < 16; ++i) {
    CHECK(out_rgb.pixels[3 * i] == want[i]);
    CHECK(out_rgb.pixels[3 * i + 1] == 255 - want[i]);
    CHECK(out_rgb.pixels[3 * i + 2] == 9);
  }
}

TEST_CASE("4x2 to 2x1 averages neighbour pairs", "[io][resize]") {
  // Output x samples source x = (x + 0.5)·2 − 0.5 = 0.5, 2.5; the single row samples y = 0.5.
  const image src = make(4, 2, pixel_format::gray8, {10, 20, 30, 41, 50, 60, 70, 80});
  const image out = resize_bilinear(src, 2, 1);
  // (10 + 20 + 50 + 60) / 4 = 35; (30 + 41 + 70 + 80) / 4 = 55.25
  CHECK(out.pixels == std::vector<std::uint8_t>{35, 55});
}

TEST_CASE("resizing to the same size is the identity; a constant image stays constant", "[io][resize]") {
  auto rng = gpukit_test::rng(3);
  for (auto f : {pixel_format::gray8, pixel_format::rgb8}) {
    const image src = make(37, 23, f, io_test::noise_bytes(37 * 23 * channels(f), rng));
    CHECK(resize_bilinear(src, 37, 23).pixels == src.pixels);
    for (std::uint8_t value : {0, 1, 127, 254, 255}) {
      const image flat = make(13, 29, f, std::vector<std::uint8_t>(13 * 29 * channels(f), value));
      for (auto wh : {std::pair<std::size_t, std::size_t>{1, 1}, {64, 64}, {7, 100}, {13, 29}, {200, 3}}) {
        const image out = resize_bilinear(flat, wh.first, wh.second);
        REQUIRE(out.pixels == std::vector<std::uint8_t>(wh.first * wh.second * channels(f), value));
      }
    }
  }
}

TEST_CASE("resized values stay within their neighbours' range", "[io][resize]") {
  auto rng = gpukit_test::rng(4);
  const image src = make(50, 40, pixel_format::gray8, io_test::noise_bytes(2000, rng));
  const image out = resize_bilinear(src, 64, 64);
  for (std::size_t y = 0; y < 64; ++y)
    for (std::size_t x = 0; x < 64; ++x) {
      const double sx = std::clamp((x + 0.5) * 50 / 64 - 0.5, 0.0, 49.0),
                   sy = std::clamp((y + 0.5) * 40 / 64 - 0.5, 0.0, 39.0);
      const std::size_t x0 = std::size_t(sx), y0 = std::size_t(sy);
      const std::size_t x1 = std::min<std::size_t>(x0 + 1, 49), y1 = std::min<std::size_t>(y0 + 1, 39);
      const std::uint8_t n[4] = {src.pixels[y0 * 50 + x0], src.pixels[y0 * 50 + x1], src.pixels[y1 * 50 + x0],
                                 src.pixels[y1 * 50 + x1]};
      const double fx = sx - double(x0), fy = sy - double(y0);
      const double ref = (1 - fy) * ((1 - fx) * n[0] + fx * n[1]) + fy * ((1 - fx) * n[2] + fx * n[3]);
      INFO("x " << x << " y " << y << " ref " << ref);
      REQUIRE(std::abs(double(out.pixels[y * 64 + x]) - ref) <= 0.5 + 1e-3);
    }
}

TEST_CASE("resize_bilinear checks its arguments before writing", "[io][resize]") {
  const image src = make(2, 2, pixel_format::gray8, {1, 2, 3, 4});
  require_throws_naming<std::invalid_argument>([&] { (void)resize_bilinear(src, 0, 4); },
                                               {"resize_bilinear", "'width'", "0 x 4"});
  require_throws_naming<std::invalid_argument>([&] { (void)resize_bilinear(src, 4, 0); }, {"'height'", "4 x 0"});
  require_throws_naming<std::invalid_argument>(
      [&] { (void)resize_bilinear(src, std::size_t(1) << 15, std::size_t(1) << 15); }, {"max_image_pixels"});
  require_throws_naming<std::invalid_argument>(
      [&] {
        (void)resize_bilinear(make(2, 2, pixel_format::rgb8, {1, 2, 3}), 4, 4);
      },
      {"'src'", "3 bytes"});
  require_throws_naming<std::invalid_argument>(
      [&] { (void)resize_bilinear(make(0, 2, pixel_format::gray8, {}), 4, 4); }, {"'src'", "0 x 2"});
  require_throws_naming<std::invalid_argument>(
      [&] { (void)resize_bilinear(make(2, 2, static_cast<pixel_format>(4), std::vector<std::uint8_t>(16)), 4, 4); },
      {"'src'", "format 4"});
  std::vector<std::uint8_t> out(15, 77);
  require_throws_naming<std::invalid_argument>([&] { resize_bilinear(src, 4, 4, make_host_span(out)); },
                                               {"'out'", "15 bytes", "16"});
  CHECK(out == std::vector<std::uint8_t>(15, 77));
  image self = make(2, 2, pixel_format::gray8, {1, 2, 3, 4});
  require_throws_naming<std::invalid_argument>([&] { resize_bilinear(self, 2, 2, make_host_span(self.pixels)); },
                                               {"'out'", "overlaps"});
}
