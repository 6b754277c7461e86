// PNG files written and read back byte for byte, and every failure as a typed exception.
#include "gpukit/io/png.hpp"
#include "support/catch.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
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
      : path_((std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : std::string("/tmp")) + "/gpukit_" + stem + "_" +
              std::to_string(::getpid()) + ".png") {}
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
      const std::size_t w = wh[0], h = wh[1];
      const auto pixels = random_bytes(w * h * channels(format), w * 31 + h);
      temp_file file("roundtrip");
      write_png(file.path(), gpukit::make_host_span(pixels), w, h, format);
      const image back = read_png(file.path());
      INFO(w << " x " << h << " x " << channels(format));
      CHECK(back.width == w);
      CHECK(back.height == h);
      CHECK(back.format == format);
      REQUIRE(back.pixels == pixels);
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
