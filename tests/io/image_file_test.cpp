// Format detection by signature, gray expanded to RGB, and both decoders behind one call
// surviving damaged files.
#include "gpukit/io/image_file.hpp"
#include "io_support.hpp"
#include "support/catch.hpp"

#include <string>
#include <vector>

using namespace gpukit::io;
using gpukit::make_host_span;
using gpukit_test::require_throws_naming;

TEST_CASE("the format is chosen by signature, not by file name", "[io][image_file]") {
  io_test::temp_dir dir("image_file_detect");
  const image rgb = io_test::smooth_image(20, 10, pixel_format::rgb8, 3);
  // A PNG named .jpg and a JPEG named .png both read as what they are.
  write_png(dir / "png_named.jpg", make_host_span(rgb.pixels), 20, 10, pixel_format::rgb8);
  write_jpeg(dir / "jpeg_named.png", make_host_span(rgb.pixels), 20, 10, pixel_format::rgb8, 90);
  const auto png_bytes = io_test::read_bytes(dir / "png_named.jpg");
  const auto jpeg_bytes = io_test::read_bytes(dir / "jpeg_named.png");
  CHECK(detect_image_format(make_host_span(png_bytes)) == image_file_format::png);
  CHECK(detect_image_format(make_host_span(jpeg_bytes)) == image_file_format::jpeg);
  const image a = read_image(dir / "png_named.jpg");
  CHECK(a.format == pixel_format::rgb8);
  CHECK(a.pixels == rgb.pixels);  // PNG is lossless
  const image b = read_image(dir / "jpeg_named.png");
  CHECK(b.pixels == decode_jpeg(make_host_span(jpeg_bytes), "x").pixels);
  const std::vector<std::uint8_t> short_bytes = {0xFF, 0xD8};
  CHECK(detect_image_format(make_host_span(short_bytes)) == image_file_format::unknown);
  CHECK(detect_image_format({}) == image_file_format::unknown);
}

TEST_CASE("gray files are expanded to RGB", "[io][image_file]") {
  io_test::temp_dir dir("image_file_gray");
  const image gray = io_test::smooth_image(9, 7, pixel_format::gray8, 4);
  write_png(dir / "gray.png", make_host_span(gray.pixels), 9, 7, pixel_format::gray8);
  write_jpeg(dir / "gray.jpg", make_host_span(gray.pixels), 9, 7, pixel_format::gray8, 90);
  const image from_png = read_image(dir / "gray.png");
  REQUIRE(from_png.format == pixel_format::rgb8);
  REQUIRE(from_png.pixels.size() == 9 * 7 * 3);
  for (std::size_t i = 0; i < 9 * 7; ++i)
    for (int c = 0; c < 3; ++c) REQUIRE(from_png.pixels[3 * i + c] == gray.pixels[i]);
  const image jpeg_gray = read_jpeg(dir / "gray.jpg");
  REQUIRE(jpeg_gray.format == pixel_format::gray8);
  const image from_jpeg = read_image(dir / "gray.jpg");
  REQUIRE(from_jpeg.format == pixel_format::rgb8);
  for (std::size_t i = 0; i < 9 * 7; ++i)
    for (int c = 0; c < 3; ++c) REQUIRE(from_jpeg.pixels[3 * i + c] == jpeg_gray.pixels[i]);
}

TEST_CASE("unknown, missing and damaged files throw image_file_error naming them", "[io][image_file]") {
  io_test::temp_dir dir("image_file_errors");
  io_test::write_bytes(dir / "notes.jpg", {'n', 'o', 't', 'e', 's'});
  io_test::write_bytes(dir / "empty.png", {});
  require_throws_naming<image_file_error>([&] { (void)read_image(dir / "notes.jpg"); },
                                          {"read_image", dir / "notes.jpg", "neither a JPEG nor a PNG"});
  require_throws_naming<image_file_error>([&] { (void)read_image(dir / "empty.png"); }, {dir / "empty.png"});
  require_throws_naming<image_file_error>([&] { (void)read_image(dir / "missing.png"); },
                                          {"read_image", dir / "missing.png"});
  require_throws_naming<image_file_error>([&] { (void)read_image(dir.path().string()); }, {dir.path().string()});
  require_throws_naming<std::invalid_argument>([] { (void)read_image(""); }, {"'path'"});

  // Both decoders behind decode_image: every truncation is rejected, random damage is either
  // rejected with the decoder's own error type or decodes to a well-formed image.
  const image rgb = io_test::smooth_image(30, 20, pixel_format::rgb8, 5);
  write_png(dir / "a.png", make_host_span(rgb.pixels), 30, 20, pixel_format::rgb8);
  const std::vector<std::vector<std::uint8_t>> files = {
      io_test::read_bytes(dir / "a.png"), encode_jpeg(make_host_span(rgb.pixels), 30, 20, pixel_format::rgb8, 80)};
  auto rng = gpukit_test::rng(13);
  for (const auto& good : files) {
    const bool is_png = detect_image_format(make_host_span(good)) == image_file_format::png;
    for (std::size_t n = 0; n < good.size(); n += 1 + good.size() / 97) {
      INFO((is_png ? "PNG" : "JPEG") << " cut to " << n << " of " << good.size() << " bytes");
      require_throws_naming<image_file_error>(
          [&] { (void)decode_image(gpukit::host_span<const std::uint8_t>(good.data(), n), "cut"); }, {"'cut'"});
    }
    for (int trial = 0; trial < 200; ++trial) {
      auto bad = good;
      for (int f = 0; f < 3; ++f) bad[rng() % bad.size()] = std::uint8_t(rng());
      try {
        const image img = decode_image(make_host_span(bad), "damaged");
        REQUIRE(img.format == pixel_format::rgb8);
        REQUIRE(img.pixels.size() == img.width * img.height * 3);
      } catch (const png_file_error& e) {
        REQUIRE(is_png);
        REQUIRE(e.path() == "damaged");
      } catch (const jpeg_file_error& e) {
        REQUIRE_FALSE(is_png);
        REQUIRE(e.path() == "damaged");
      } catch (const image_file_error& e) {  // the signature itself was hit
        REQUIRE(std::string(e.what()).find("neither a JPEG nor a PNG") != std::string::npos);
      }
    }
  }
}
