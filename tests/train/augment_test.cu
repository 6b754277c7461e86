// Augmentation: the draws (seeded, in range, per image), a flip that mirrors exactly, no
// transform that is exactly rescale, the sample maps against Keras' matrices composed
// independently in double, and the GPU kernel against the CPU path on random parameters.
#include "gpukit/gpukit.cuh"
#include "gpukit/train/augment.hpp"
#include "train/train_support.hpp"

#include <cmath>
#include <cstring>

using namespace gpukit;
using gpukit_test::require_throws_naming;
using train::augment_batch;
using train::sample_map;

namespace {

const cpu_executor cpu{};

/// Keras' transform written out independently: the matrix shear · zoom acting on (x, y)
/// around the centre ((w-1)/2, (h-1)/2), order-1 sampling with 'nearest' fill, then the
/// horizontal flip of the result; in double.
double keras_reference(const std::uint8_t* img, int w, int h, int c, const train::augmentation& a, int xo, int yo, int k) {
  const double x = a.flip ? w - 1 - xo : xo, y = yo;
  const double s = a.shear_degrees * 3.14159265358979323846 / 180.0;
  const double m00 = a.zoom_x, m01 = -std::sin(s) * a.zoom_y, m10 = 0, m11 = std::cos(s) * a.zoom_y;
  const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
  double sx = m00 * (x - cx) + m01 * (y - cy) + cx, sy = m10 * (x - cx) + m11 * (y - cy) + cy;
  sx = std::min(std::max(sx, 0.0), double(w - 1));
  sy = std::min(std::max(sy, 0.0), double(h - 1));
  const int x0 = int(std::floor(sx)), y0 = int(std::floor(sy));
  const int x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
  const double tx = sx - x0, ty = sy - y0;
  const auto p = [&](int xx, int yy) { return double(img[(std::size_t(yy) * w + xx) * c + k]); };
  return (1 - ty) * ((1 - tx) * p(x0, y0) + tx * p(x1, y0)) + ty * ((1 - tx) * p(x0, y1) + tx * p(x1, y1));
}

std::vector<float> run_cpu(const train_test::random_images& set, const std::vector<std::uint32_t>& rows,
                           const std::vector<sample_map>& maps, float scale) {
  std::vector<float> out(rows.size() * set.width * set.height * set.channels);
  augment_batch(cpu, make_host_span(set.pixels), set.width, set.height, set.channels, make_host_span(rows),
                make_host_span(maps), scale, make_host_span(out));
  return out;
}

}  // namespace

TEST_CASE("augment: draws are a pure function of (seed, epoch, image) and stay in range", "[train][augment]") {
  train::augment_options o;
  o.shear_range = 10;
  o.zoom_range = 0.3f;
  int flips = 0;
  double lo_zoom = 2, hi_zoom = 0, lo_shear = 90, hi_shear = -90;
  for (std::uint64_t i = 0; i < 4000; ++i) {
    const auto a = train::draw_augmentation(o, 5, 2, i), b = train::draw_augmentation(o, 5, 2, i);
    // Field by field: the struct's padding after `flip` is indeterminate, so memcmp of two
    // copies can differ where the values do not.
    REQUIRE(std::memcmp(&a.shear_degrees, &b.shear_degrees, sizeof a.shear_degrees) == 0);
    REQUIRE(std::memcmp(&a.zoom_x, &b.zoom_x, sizeof a.zoom_x) == 0);
    REQUIRE(std::memcmp(&a.zoom_y, &b.zoom_y, sizeof a.zoom_y) == 0);
    REQUIRE(a.flip == b.flip);
    flips += a.flip;
    lo_zoom = std::min({lo_zoom, double(a.zoom_x), double(a.zoom_y)});
    hi_zoom = std::max({hi_zoom, double(a.zoom_x), double(a.zoom_y)});
    lo_shear = std::min(lo_shear, double(a.shear_degrees));
    hi_shear = std::max(hi_shear, double(a.shear_degrees));
  }
  CHECK(flips > 1800);
  CHECK(flips < 2200);
  CHECK(lo_zoom >= 0.7 - 1e-6);
  CHECK(lo_zoom < 0.71);
  CHECK(hi_zoom <= 1.3 + 1e-6);
  CHECK(hi_zoom > 1.29);
  CHECK(lo_shear >= -10);
  CHECK(lo_shear < -9.9);
  CHECK(hi_shear <= 10);
  CHECK(hi_shear > 9.9);
  // Another epoch, image or seed draws something else; zx and zy are independent draws.
  const auto a = train::draw_augmentation(o, 5, 2, 7);
  CHECK(a.zoom_x != a.zoom_y);
  CHECK(a.zoom_x != train::draw_augmentation(o, 5, 3, 7).zoom_x);
  CHECK(a.zoom_x != train::draw_augmentation(o, 5, 2, 8).zoom_x);
  CHECK(a.zoom_x != train::draw_augmentation(o, 6, 2, 7).zoom_x);
  // Disabled, or with zero ranges and no flip: the identity.
  train::augment_options off = o;
  off.enabled = false;
  const auto n = train::draw_augmentation(off, 5, 2, 7);
  CHECK((n.shear_degrees == 0 && n.zoom_x == 1 && n.zoom_y == 1 && !n.flip));
  require_throws_naming<std::invalid_argument>(
      [&] {
        train::augment_options bad = o;
        bad.zoom_range = 1.5f;
        train::check_augment_options(bad, "test");
      },
      {"'zoom_range' = 1.5"});
}

TEST_CASE("augment: no transform is exactly rescale; a flip alone is an exact mirror", "[train][augment]") {
  const train_test::random_images set(5, 13, 9, 1);
  const float scale = 1.0f / 255.0f;
  const std::vector<std::uint32_t> rows{4, 0, 2, 2};
  const std::size_t w = 13, h = 9, plane = w * h;
  const std::vector<sample_map> identity(rows.size(), train::make_sample_map({}, w, h));
  const auto out = run_cpu(set, rows, identity, scale);
  const auto plain = run_cpu(set, rows, {}, scale);
  train::augmentation flip;
  flip.flip = true;
  const auto mirrored = run_cpu(set, rows, std::vector<sample_map>(rows.size(), train::make_sample_map(flip, w, h)), scale);
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t k = 0; k < 3; ++k)
      for (std::size_t y = 0; y < h; ++y)
        for (std::size_t x = 0; x < w; ++x) {
          const std::size_t o = (i * 3 + k) * plane + y * w + x;
          const auto px = [&](std::size_t xx) { return float(set.pixels[((rows[i] * h + y) * w + xx) * 3 + k]) * scale; };
          REQUIRE(out[o] == px(x));
          REQUIRE(plain[o] == px(x));
          REQUIRE(mirrored[o] == px(w - 1 - x));
        }
}

TEST_CASE("augment: shear, zoom and flip sample where Keras' matrices say", "[train][augment]") {
  const int w = 24, h = 17, c = 3;
  const train_test::random_images set(3, w, h, 2);
  train::augment_options o;
  o.shear_range = 25;  // degrees, large enough to matter
  o.zoom_range = 0.4f;
  std::vector<std::uint32_t> rows;
  std::vector<sample_map> maps;
  std::vector<train::augmentation> draws;
  for (std::uint32_t i = 0; i < 12; ++i) {
    rows.push_back(i % 3);
    draws.push_back(train::draw_augmentation(o, 9, 1, i));
    maps.push_back(train::make_sample_map(draws.back(), w, h));
  }
  const auto out = run_cpu(set, rows, maps, 1.0f);
  double worst = 0;
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (int k = 0; k < c; ++k)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          const double ref = keras_reference(set.pixels.data() + rows[i] * std::size_t(w * h * c), w, h, c, draws[i], x, y, k);
          worst = std::max(worst, std::fabs(out[(i * c + k) * std::size_t(w * h) + std::size_t(y * w + x)] - ref));
        }
  INFO("largest difference from the double-precision Keras transform, in pixel values: " << worst);
  CHECK(worst < 0.02);  // float coordinates: a few 1e-6 pixels of position, times at most 255 per pixel
}

TEST_CASE("augment: argument checks", "[train][augment][bad_input]") {
  const train_test::random_images set(2, 4, 4, 3);
  std::vector<float> out(3 * 48);
  const std::vector<std::uint32_t> rows{0, 1, 2};
  require_throws_naming<std::invalid_argument>(
      [&] {
        augment_batch(cpu, make_host_span(set.pixels), 4, 4, 3, make_host_span(rows), {}, 1.0f, make_host_span(out));
      },
      {"gpukit::train::augment_batch", "'rows'[2] = 2", "there are 2"});
  require_throws_naming<std::invalid_argument>(
      [&] {
        augment_batch(cpu, make_host_span(set.pixels), 5, 4, 3, make_host_span(rows), {}, 1.0f, make_host_span(out));
      },
      {"'images' has 96 bytes", "5 x 4 x 3"});
  const std::vector<sample_map> two(2);
  require_throws_naming<std::invalid_argument>(
      [&] {
        augment_batch(cpu, make_host_span(set.pixels), 4, 4, 3, make_host_span(rows), make_host_span(two), 1.0f,
                      make_host_span(out));
      },
      {"'maps' has 2 entries, 'rows' 3"});
  std::vector<float> small(10);
  const std::vector<std::uint32_t> ok{0, 1, 1};
  require_throws_naming<std::invalid_argument>(
      [&] { augment_batch(cpu, make_host_span(set.pixels), 4, 4, 3, make_host_span(ok), {}, 1.0f, make_host_span(small)); },
      {"'out' has 10 elements", "need 144"});
}

TEST_CASE("augment: the GPU kernel matches the CPU path (random parameters, gathered rows)", "[train][augment][gpu]") {
  gpukit::stream stream;
  const cuda_executor gpu(stream.view());
  for (const auto& dims : {std::array<std::size_t, 3>{64, 64, 3}, std::array<std::size_t, 3>{37, 29, 3},
                           std::array<std::size_t, 3>{16, 40, 1}}) {
    const std::size_t w = dims[0], h = dims[1], c = dims[2];
    const train_test::random_images set(11, w, h, 4 + w, c);
    train::augment_options o;
    o.shear_range = 30;
    o.zoom_range = 0.5f;
    auto rng = gpukit_test::rng(w * h);
    std::vector<std::uint32_t> rows(50);
    std::vector<sample_map> maps;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      rows[i] = static_cast<std::uint32_t>(rng() % 11);
      maps.push_back(train::make_sample_map(train::draw_augmentation(o, rng(), 0, i), w, h));
    }
    const float scale = 1.0f / 255.0f;
    for (bool with_maps : {true, false}) {
      const auto want = run_cpu(set, rows, with_maps ? maps : std::vector<sample_map>{}, scale);
      auto d_images = device_buffer<std::uint8_t>::from_host(set.pixels, stream);
      auto d_rows = device_buffer<std::uint32_t>::from_host(rows, stream);
      auto d_maps = device_buffer<sample_map>::from_host(maps, stream);
      device_buffer<float> d_out(want.size(), stream);
      augment_batch(gpu, device_span<const std::uint8_t>(d_images.span()), w, h, c,
                    device_span<const std::uint32_t>(d_rows.span()),
                    with_maps ? device_span<const sample_map>(d_maps.span()) : device_span<const sample_map>(), scale,
                    d_out.span());
      const std::vector<float> got = d_out.to_host(stream);
      double worst = 0;
      for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, double(std::fabs(got[i] - want[i])));
      INFO(w << " x " << h << " x " << c << (with_maps ? " augmented" : " rescaled") << ": largest difference " << worst);
      if (with_maps) {
        CHECK(worst <= 1e-5);
      } else {
        CHECK(worst == 0);
      }
    }
  }
}
