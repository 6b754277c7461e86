// gpukit/io/png.hpp — 8-bit grayscale and RGB images to and from PNG files (libpng).
//
//   gpukit::io::write_png("seed.png", gpukit::make_host_span(bytes), 1536, 1024, gpukit::io::pixel_format::gray8);
//   gpukit::io::image img = gpukit::io::read_png("seed.png");
//
// Pixels are row-major, top row first, channels interleaved (R, G, B). Errors:
// std::invalid_argument for bad arguments (checked before the file is touched),
// gpukit::io::png_file_error for everything the file system or libpng reports (the message
// names the file and libpng's reason).
//
// Host-only header: compiles with a plain C++17 compiler; link libpng (the gpukit CMake
// target does).
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/span.hpp"

#include <png.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace gpukit::io {

/// A PNG file could not be written or read; what() names the file and the reason.
class png_file_error : public std::runtime_error {
 public:
  png_file_error(const std::string& path, const std::string& what_arg) : std::runtime_error(what_arg), path_(path) {}
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// Bytes per pixel: 1 (gray) or 3 (R, G, B).
enum class pixel_format { gray8 = 1, rgb8 = 3 };

inline std::size_t channels(pixel_format f) noexcept { return static_cast<std::size_t>(f); }

/// An owning 8-bit image as read from a file.
struct image {
  std::size_t width = 0;
  std::size_t height = 0;
  pixel_format format = pixel_format::gray8;
  std::vector<std::uint8_t> pixels;  ///< width · height · channels(format) bytes
};

namespace detail {

/// libpng's simplified API frees its state on failure; this frees it on every other exit.
class png_image_guard {
 public:
  png_image_guard() {
    std::memset(&image_, 0, sizeof image_);
    image_.version = PNG_IMAGE_VERSION;
  }
  ~png_image_guard() { png_image_free(&image_); }
  png_image_guard(const png_image_guard&) = delete;
  png_image_guard& operator=(const png_image_guard&) = delete;
  png_image* get() noexcept { return &image_; }

 private:
  png_image image_;
};

inline std::string libpng_reason(const png_image& img) {
  return img.message[0] != '\0' ? std::string(img.message) : std::string("unknown libpng error");
}

}  // namespace detail

/// Writes `pixels` (width · height · channels(format) bytes) as an 8-bit PNG to `path`
/// (replacing it). width and height in [1, 2^31 − 1].
inline void write_png(const std::string& path, host_span<const std::uint8_t> pixels, std::size_t width,
                      std::size_t height, pixel_format format) {
  const char* where = "gpukit::io::write_png";
  using gpukit::detail::require;
  require(!path.empty(), where, "argument 'path' is empty");
  require(format == pixel_format::gray8 || format == pixel_format::rgb8, where,
          "argument 'format' = " + std::to_string(static_cast<int>(format)) + " is not gray8 or rgb8");
  require(width >= 1 && width <= 0x7fffffffu, where, "argument 'width' = " + std::to_string(width) + " is outside [1, 2^31 - 1]");
  require(height >= 1 && height <= 0x7fffffffu, where,
          "argument 'height' = " + std::to_string(height) + " is outside [1, 2^31 - 1]");
  const std::size_t row = width * channels(format);
  require(row <= 0x7fffffffu && pixels.size() / row == height && pixels.size() % row == 0, where,
          "argument 'pixels' has " + std::to_string(pixels.size()) + " bytes, a " + std::to_string(width) + " x " +
              std::to_string(height) + " image of " + std::to_string(channels(format)) + " channel(s) needs " +
              std::to_string(row * height));
  detail::png_image_guard guard;
  png_image* img = guard.get();
  img->width = static_cast<png_uint_32>(width);
  img->height = static_cast<png_uint_32>(height);
  img->format = format == pixel_format::rgb8 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  if (!png_image_write_to_file(img, path.c_str(), 0, pixels.data(), static_cast<png_int_32>(row), nullptr))
    throw png_file_error(path, "gpukit::io::write_png: cannot write '" + path + "': " + detail::libpng_reason(*img));
}

/// Reads an 8-bit view of the PNG at `path`: gray8 for grayscale files, rgb8 for colour
/// ones (alpha is composited onto black; 16-bit files are reduced to 8 bits).
inline image read_png(const std::string& path) {
  const char* where = "gpukit::io::read_png";
  gpukit::detail::require(!path.empty(), where, "argument 'path' is empty");
  detail::png_image_guard guard;
  png_image* img = guard.get();
  if (!png_image_begin_read_from_file(img, path.c_str()))
    throw png_file_error(path, "gpukit::io::read_png: cannot read '" + path + "': " + detail::libpng_reason(*img));
  image out;
  out.format = (img->format & PNG_FORMAT_FLAG_COLOR) ? pixel_format::rgb8 : pixel_format::gray8;
  img->format = out.format == pixel_format::rgb8 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  out.width = img->width;
  out.height = img->height;
  out.pixels.resize(PNG_IMAGE_SIZE(*img));
  const png_color black{0, 0, 0};
  if (!png_image_finish_read(img, &black, out.pixels.data(), 0, nullptr))
    throw png_file_error(path, "gpukit::io::read_png: cannot decode '" + path + "': " + detail::libpng_reason(*img));
  return out;
}

}  // namespace gpukit::io
