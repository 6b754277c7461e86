// PNG files written and read back byte for byte, and every failure as a typed exception.
#include "gpukit/io/png.hpp"
#include "support/catch.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

using namespace gpukit::io;

namespace {

/// A file name in the temporary directory, removed when the test ends.
class temp_file {
 public:
  explicit temp_file(const std::string& stem)
      : path_((std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : std::string("/tmp")) + "/gpukit_" + stem +
              "_" + std::to_string(::getpid()) + ".png") {}
  ~temp_file() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t salt) {
  auto rng = gpukit_test::rng(salt);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(byte(rng));
  return v;
}

}  // namespace

TEST_CASE("gray and RGB images round-trip exactly", "[io][png]") {
  const std::size_t sizes[][2] = {{1, 1}, {7, 3}, {64, 48}, {301, 17}};
  for (const auto& wh : sizes) {
    for (auto format : {pixel_format::gray8, pixel_format::rgb8}) {
      for (auto compression : {png_compression::small, png_compression::fast}) {
        const std::size_t w = wh[0], h = wh[1];
        const auto pixels = random_bytes(w * h * channels(format), w * 31 + h);
        temp_file file("roundtrip");
        write_png(file.path(), gpukit::make_host_span(pixels), w, h, format, compression);
        const image back = read_png(file.path());
        INFO(w << " x " << h << " x " << channels(format) << ", compression " << int(compression));
        CHECK(back.width == w);
        CHECK(back.height == h);
        CHECK(back.format == format);
        REQUIRE(back.pixels == pixels);
      }
    }
  }
}

TEST_CASE("PNG failures are typed and name the file", "[io][png]") {
  using gpukit_test::require_throws_naming;
  const std::vector<std::uint8_t> pixels(12, 7);
  const auto span = gpukit::make_host_span(pixels);
  SECTION("reading") {
    require_throws_naming<png_file_error>([] { (void)read_png("/nonexistent-dir/missing.png"); },
                                          {"read_png", "/nonexistent-dir/missing.png"});
    temp_file not_png("not_png");
    {
      std::ofstream out(not_png.path());
      out << "this is not a PNG file";
    }
    require_throws_naming<png_file_error>([&] { (void)read_png(not_png.path()); }, {"read_png", not_png.path()});
    temp_file truncated("truncated");
    write_png(truncated.path(), span, 2, 2, pixel_format::rgb8);
    {
      std::ifstream in(truncated.path(), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::ofstream out(truncated.path(), std::ios::binary | std::ios::trunc);
      out << bytes.substr(0, bytes.size() / 2);
    }
    require_throws_naming<png_file_error>([&] { (void)read_png(truncated.path()); }, {"read_png", truncated.path()});
    require_throws_naming<std::invalid_argument>([] { (void)read_png(""); }, {"'path'"});
  }
  SECTION("writing") {
    require_throws_naming<png_file_error>(
        [&] { write_png("/nonexistent-dir/out.png", span, 2, 2, pixel_format::rgb8); },
        {"write_png", "/nonexistent-dir/out.png"});
    temp_file file("bad_args");
    require_throws_naming<std::invalid_argument>([&] { write_png(file.path(), span, 3, 3, pixel_format::rgb8); },
                                                 {"'pixels'", "12", "27"});
    require_throws_naming<std::invalid_argument>([&] { write_png(file.path(), span, 0, 2, pixel_format::gray8); },
                                                 {"'width'", "0"});
    require_throws_naming<std::invalid_argument>([&] { write_png(file.path(), span, 2, 0, pixel_format::gray8); },
                                                 {"'height'", "0"});
    require_throws_naming<std::invalid_argument>(
        [&] { write_png(file.path(), span, 2, 2, static_cast<pixel_format>(2)); }, {"'format'", "2"});
    // Nothing was created by the rejected calls.
    CHECK_FALSE(std::ifstream(file.path()).good());
  }
}

namespace {

/// The CRC-32 PNG chunks carry (ISO 3309), so a test can forge a header libpng accepts.
std::uint32_t png_crc(const std::uint8_t* data, std::size_t n) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

std::vector<std::uint8_t> png_bytes(const std::vector<std::uint8_t>& pixels, std::size_t w, std::size_t h,
                                    pixel_format f) {
  temp_file file("png_bytes");
  write_png(file.path(), gpukit::make_host_span(pixels), w, h, f);
  std::ifstream in(file.path(), std::ios::binary);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("decode_png reads from memory what read_png reads from the file", "[io][png]") {
  for (auto format : {pixel_format::gray8, pixel_format::rgb8}) {
    const auto pixels = random_bytes(33 * 21 * channels(format), 5);
    const auto bytes = png_bytes(pixels, 33, 21, format);
    const image img = decode_png(gpukit::make_host_span(bytes), "memory.png");
    CHECK(img.width == 33);
    CHECK(img.height == 21);
    CHECK(img.format == format);
    CHECK(img.pixels == pixels);
  }
}

TEST_CASE("damaged PNGs throw png_file_error naming the file, never crash", "[io][png]") {
  using gpukit_test::require_throws_naming;
  const auto pixels = random_bytes(24 * 18 * 3, 9);
  const auto good = png_bytes(pixels, 24, 18, pixel_format::rgb8);
  SECTION("every truncation") {
    for (std::size_t n = 0; n < good.size(); ++n) {
      INFO("kept " << n << " of " << good.size() << " bytes");
      require_throws_naming<png_file_error>(
          [&] { (void)decode_png(gpukit::host_span<const std::uint8_t>(good.data(), n), "cut.png"); },
          {"decode_png", "'cut.png'"});
    }
  }
  SECTION("flipped bytes in the signature or a critical chunk") {
    // The signature and every critical chunk (IHDR, IDAT, IEND) are checked by libpng (CRCs),
    // so any change there must be noticed. A damaged ancillary chunk (sRGB) is only dropped.
    std::vector<std::size_t> critical;
    for (std::size_t i = 0; i < 8; ++i) critical.push_back(i);
    for (std::size_t at = 8; at + 12 <= good.size();) {
      const std::size_t length =
          std::size_t(good[at]) << 24 | std::size_t(good[at + 1]) << 16 | std::size_t(good[at + 2]) << 8 | good[at + 3];
      const bool ancillary = (good[at + 4] & 0x20) != 0;
      for (std::size_t i = at; i < at + 12 + length && !ancillary; ++i) critical.push_back(i);
      at += 12 + length;
    }
    REQUIRE(critical.size() > good.size() / 2);
    auto rng = gpukit_test::rng(11);
    for (int trial = 0; trial < 300; ++trial) {
      auto bad = good;
      const std::size_t at = critical[rng() % critical.size()];
      bad[at] ^= std::uint8_t(1 + rng() % 255);
      INFO("byte " << at << " of " << bad.size());
      require_throws_naming<png_file_error>([&] { (void)decode_png(gpukit::make_host_span(bad), "flipped.png"); },
                                            {"'flipped.png'"});
    }
  }
  SECTION("a header declaring more than max_image_pixels is rejected before decoding") {
    auto bomb = good;
    // IHDR: width at bytes 16..19, height at 20..23, big-endian; CRC over type + data at 29..32.
    for (int at : {16, 20}) bomb[at] = 0, bomb[at + 1] = 0, bomb[at + 2] = 0x4E, bomb[at + 3] = 0x20;  // 20000
    const std::uint32_t crc = png_crc(bomb.data() + 12, 17);
    for (int k = 0; k < 4; ++k) bomb[29 + k] = std::uint8_t(crc >> (24 - 8 * k));
    require_throws_naming<png_file_error>([&] { (void)decode_png(gpukit::make_host_span(bomb), "bomb.png"); },
                                          {"'bomb.png'", "20000 x 20000", std::to_string(max_image_pixels)});
  }
  SECTION("a header declaring more rows than the image data can inflate to is rejected before decoding") {
    auto bomb = good;  // 24 x 18 declared up to 16000 x 16000 (within max_image_pixels), data unchanged
    for (int at : {16, 20}) bomb[at] = 0, bomb[at + 1] = 0, bomb[at + 2] = 0x3E, bomb[at + 3] = 0x80;
    const std::uint32_t crc = png_crc(bomb.data() + 12, 17);
    for (int k = 0; k < 4; ++k) bomb[29 + k] = std::uint8_t(crc >> (24 - 8 * k));
    require_throws_naming<png_file_error>([&] { (void)decode_png(gpukit::make_host_span(bomb), "bomb.png"); },
                                          {"'bomb.png'", "16000 x 16000", "too few to inflate"});
  }
  SECTION("empty") {
    require_throws_naming<png_file_error>([] { (void)decode_png({}, "empty.png"); }, {"'empty.png'", "no bytes"});
  }
}
