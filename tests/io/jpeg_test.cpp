// JPEG files written and read back within JPEG's tolerance, and every failure, however
// damaged the file, as a typed exception naming it.
#include "gpukit/io/jpeg.hpp"
#include "io_support.hpp"
#include "support/catch.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <jpeglib.h>

using namespace gpukit::io;
using gpukit::make_host_span;
using gpukit_test::require_throws_naming;

namespace {

/// Mean and largest absolute difference between two equally sized buffers.
std::pair<double, int> difference(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  double sum = 0;
  int worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const int d = std::abs(int(a[i]) - int(b[i]));
    sum += d;
    worst = std::max(worst, d);
  }
  return {a.empty() ? 0.0 : sum / double(a.size()), worst};
}

/// `pixels` (w × h × components, interleaved, in `space`) encoded straight through libjpeg:
/// its defaults, then whatever `configure(cinfo)` sets, for files decode_jpeg's tests need
/// but gpukit's encoder does not write.
template <class Configure>
std::vector<std::uint8_t> libjpeg_encode(const std::vector<std::uint8_t>& pixels, std::size_t w, std::size_t h,
                                         int components, J_COLOR_SPACE space, Configure configure) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &out, &size);
  cinfo.image_width = JDIMENSION(w);
  cinfo.image_height = JDIMENSION(h);
  cinfo.input_components = components;
  cinfo.in_color_space = space;
  jpeg_set_defaults(&cinfo);
  configure(cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW rows[1] = {const_cast<std::uint8_t*>(pixels.data()) + std::size_t(cinfo.next_scanline) * w * components};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<std::uint8_t> bytes(out, out + size);
  jpeg_destroy_compress(&cinfo);
  std::free(out);
  return bytes;
}

/// A CMYK JPEG, every pixel the stored values `cmyk`, with or without the Adobe segment
/// (which says the values are stored inverted).
std::vector<std::uint8_t> cmyk_jpeg(std::size_t w, std::size_t h, const std::uint8_t (&cmyk)[4], bool adobe) {
  std::vector<std::uint8_t> pixels(4 * w * h);
  for (std::size_t i = 0; i < w * h; ++i)
    for (int k = 0; k < 4; ++k) pixels[4 * i + k] = cmyk[k];
  return libjpeg_encode(pixels, w, h, 4, JCS_CMYK, [&](jpeg_compress_struct& cinfo) {
    jpeg_set_quality(&cinfo, 95, TRUE);
    cinfo.write_Adobe_marker = adobe ? TRUE : FALSE;
  });
}

/// A progressive RGB JPEG: libjpeg's standard scan script, or `bands_per_component`
/// single-coefficient AC bands per component, each sent in three successive-approximation
/// scans (Al 2, 1, 0) — a legal file with many scans.
std::vector<std::uint8_t> progressive_jpeg(const image& src, int bands_per_component) {
  std::vector<jpeg_scan_info> scans;  // read by jpeg_start_compress, so it outlives the call below
  return libjpeg_encode(src.pixels, src.width, src.height, 3, JCS_RGB, [&](jpeg_compress_struct& cinfo) {
    if (bands_per_component == 0) {
      jpeg_simple_progression(&cinfo);
      return;
    }
    scans.push_back({3, {0, 1, 2, 0}, 0, 0, 0, 0});  // DC of all components
    for (int c = 0; c < 3; ++c)
      for (int k = 1; k <= bands_per_component; ++k)
        for (int al = 2; al >= 0; --al) scans.push_back({1, {c, 0, 0, 0}, k, k, al == 2 ? 0 : al + 1, al});
    cinfo.scan_info = scans.data();
    cinfo.num_scans = int(scans.size());
  });
}

}  // namespace

TEST_CASE("progressive JPEGs decode; one with more scans than any real file is refused", "[io][jpeg]") {
  const image src = io_test::smooth_image(40, 24, pixel_format::rgb8, 8);
  const image standard = decode_jpeg(make_host_span(progressive_jpeg(src, 0)), "progressive.jpg");
  CHECK(standard.width == 40);
  CHECK(difference(standard.pixels, src.pixels).first < 3.0);
  // 1 + 3 · 50 · 3 = 451 scans: still accepted; 1 + 3 · 60 · 3 = 541: refused.
  CHECK(decode_jpeg(make_host_span(progressive_jpeg(src, 50)), "451.jpg").pixels.size() == 40 * 24 * 3);
  require_throws_naming<jpeg_file_error>(
      [&] { (void)decode_jpeg(make_host_span(progressive_jpeg(src, 60)), "541.jpg"); }, {"'541.jpg'", "500 scans"});
}

TEST_CASE("gray and RGB JPEGs round-trip within JPEG's tolerance", "[io][jpeg]") {
  io_test::temp_dir dir("jpeg_roundtrip");
  const std::size_t sizes[][2] = {{1, 1}, {7, 3}, {64, 48}, {301, 17}, {16, 200}};
  for (const auto& wh : sizes) {
    for (auto format : {pixel_format::gray8, pixel_format::rgb8}) {
      const std::size_t w = wh[0], h = wh[1];
      const image src = io_test::smooth_image(w, h, format, unsigned(w + h));
      INFO(w << " x " << h << " x " << channels(format));
      const std::string path = dir / ("roundtrip_" + std::to_string(w) + "x" + std::to_string(h) + ".jpg");
      write_jpeg(path, make_host_span(src.pixels), w, h, format, 95);
      const image back = read_jpeg(path);
      CHECK(back.width == w);
      CHECK(back.height == h);
      CHECK(back.format == format);
      const auto [mean, worst] = difference(back.pixels, src.pixels);
      INFO("mean error " << mean << ", largest " << worst);
      // Chroma subsampling blurs colour edges; the smooth test image has none, so the
      // error stays at quantisation level.
      CHECK(mean < 2.0);
      CHECK(worst <= 12);
      // The file holds exactly what encode_jpeg makes, and decoding from memory agrees.
      const auto bytes = encode_jpeg(make_host_span(src.pixels), w, h, format, 95);
      CHECK(io_test::read_bytes(path) == bytes);
      CHECK(decode_jpeg(make_host_span(bytes), "memory").pixels == back.pixels);
    }
  }
}

TEST_CASE("JPEG quality trades size for error", "[io][jpeg]") {
  const image src = io_test::smooth_image(96, 64, pixel_format::rgb8, 1);
  const auto low = encode_jpeg(make_host_span(src.pixels), 96, 64, pixel_format::rgb8, 10);
  const auto high = encode_jpeg(make_host_span(src.pixels), 96, 64, pixel_format::rgb8, 100);
  CHECK(low.size() < high.size());
  const double low_error = difference(decode_jpeg(make_host_span(low), "low").pixels, src.pixels).first;
  const double high_error = difference(decode_jpeg(make_host_span(high), "high").pixels, src.pixels).first;
  CHECK(high_error < low_error);
}

TEST_CASE("CMYK JPEGs decode to RGB", "[io][jpeg]") {
  const std::uint8_t cmyk[4] = {200, 100, 50, 128};
  for (bool adobe : {true, false}) {
    INFO((adobe ? "Adobe (inverted)" : "plain") << " CMYK");
    const auto bytes = cmyk_jpeg(24, 16, cmyk, adobe);
    const image img = decode_jpeg(make_host_span(bytes), "cmyk.jpg");
    REQUIRE(img.format == pixel_format::rgb8);
    REQUIRE(img.pixels.size() == 24 * 16 * 3);
    // R = (255 - C)(255 - K)/255; Adobe stores 255 - C, so there R = C'·K'/255.
    int want[3];
    for (int c = 0; c < 3; ++c) want[c] = adobe ? cmyk[c] * cmyk[3] / 255 : (255 - cmyk[c]) * (255 - cmyk[3]) / 255;
    for (std::size_t i = 0; i < 24 * 16; ++i)
      for (int c = 0; c < 3; ++c) REQUIRE(std::abs(int(img.pixels[3 * i + c]) - want[c]) <= 3);
  }
}

TEST_CASE("damaged JPEGs throw jpeg_file_error naming the file, never crash", "[io][jpeg]") {
  const image src = io_test::smooth_image(40, 30, pixel_format::rgb8, 2);
  const auto good = encode_jpeg(make_host_span(src.pixels), 40, 30, pixel_format::rgb8, 90);
  SECTION("every truncation") {
    // Strict decoding: libjpeg's "premature end" warning is an error, not grey padding.
    for (std::size_t n = 0; n < good.size(); ++n) {
      INFO("kept " << n << " of " << good.size() << " bytes");
      require_throws_naming<jpeg_file_error>(
          [&] { (void)decode_jpeg(gpukit::host_span<const std::uint8_t>(good.data(), n), "cut.jpg"); },
          {"decode_jpeg", "'cut.jpg'"});
    }
  }
  SECTION("random byte flips: a typed error or a well-formed image") {
    auto rng = gpukit_test::rng(7);
    int thrown = 0, decoded = 0;
    for (int trial = 0; trial < 400; ++trial) {
      auto bad = good;
      const int flips = 1 + int(rng() % 4);
      for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] ^= std::uint8_t(1 + rng() % 255);
      try {
        const image img = decode_jpeg(make_host_span(bad), "flipped.jpg");
        REQUIRE(img.pixels.size() == img.width * img.height * channels(img.format));
        ++decoded;
      } catch (const jpeg_file_error& e) {
        REQUIRE(std::string(e.what()).find("'flipped.jpg'") != std::string::npos);
        REQUIRE(e.path() == "flipped.jpg");
        ++thrown;
      }
    }
    INFO(thrown << " rejected, " << decoded << " decoded");
    CHECK(thrown > 0);  // flips in headers and markers are caught
    CHECK(thrown + decoded == 400);
  }
  SECTION("a header declaring more than max_image_pixels is rejected before decoding") {
    auto bomb = good;
    std::size_t sof = 0;
    for (std::size_t i = 2; i + 9 < bomb.size() && sof == 0; ++i)
      if (bomb[i] == 0xFF && bomb[i + 1] == 0xC0) sof = i;
    REQUIRE(sof != 0);
    for (int k : {5, 7}) bomb[sof + k] = 0xFF, bomb[sof + k + 1] = 0xD0;  // 65488 x 65488
    require_throws_naming<jpeg_file_error>([&] { (void)decode_jpeg(make_host_span(bomb), "bomb.jpg"); },
                                           {"'bomb.jpg'", "65488 x 65488", std::to_string(max_image_pixels)});
  }
  SECTION("not a JPEG, empty, missing") {
    const std::vector<std::uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
    require_throws_naming<jpeg_file_error>([&] { (void)decode_jpeg(make_host_span(text), "text.jpg"); },
                                           {"'text.jpg'"});
    require_throws_naming<jpeg_file_error>([&] { (void)decode_jpeg({}, "empty.jpg"); }, {"'empty.jpg'", "no bytes"});
    require_throws_naming<jpeg_file_error>([] { (void)read_jpeg("/nonexistent-dir/missing.jpg"); },
                                           {"read_jpeg", "/nonexistent-dir/missing.jpg"});
    io_test::temp_dir dir("jpeg_truncated_file");
    io_test::write_bytes(dir / "half.jpg", std::vector<std::uint8_t>(good.begin(), good.begin() + good.size() / 2));
    require_throws_naming<jpeg_file_error>([&] { (void)read_jpeg(dir / "half.jpg"); },
                                           {"decode_jpeg", dir / "half.jpg", "Premature end"});
  }
}

TEST_CASE("write_jpeg checks its arguments before touching the file", "[io][jpeg]") {
  io_test::temp_dir dir("jpeg_args");
  const std::vector<std::uint8_t> pixels(12, 7);
  const auto span = make_host_span(pixels);
  const std::string path = dir / "out.jpg";
  require_throws_naming<std::invalid_argument>([&] { write_jpeg(path, span, 3, 3, pixel_format::rgb8); },
                                               {"write_jpeg", "'pixels'", "12", "27"});
  require_throws_naming<std::invalid_argument>([&] { write_jpeg(path, span, 0, 2, pixel_format::gray8); },
                                               {"'width'", "0"});
  require_throws_naming<std::invalid_argument>([&] { write_jpeg(path, span, 2, 70000, pixel_format::gray8); },
                                               {"'height'", "70000"});
  require_throws_naming<std::invalid_argument>([&] { write_jpeg(path, span, 2, 2, static_cast<pixel_format>(2)); },
                                               {"'format'", "2"});
  for (int q : {0, 101})
    require_throws_naming<std::invalid_argument>([&] { write_jpeg(path, span, 2, 2, pixel_format::rgb8, q); },
                                                 {"'quality'", std::to_string(q)});
  require_throws_naming<std::invalid_argument>([&] { write_jpeg("", span, 2, 2, pixel_format::rgb8); }, {"'path'"});
  CHECK_FALSE(io_test::fs::exists(path));
  require_throws_naming<jpeg_file_error>(
      [&] { write_jpeg("/nonexistent-dir/out.jpg", span, 2, 2, pixel_format::rgb8); },
      {"write_jpeg", "/nonexistent-dir/out.jpg"});
}
