// gpukit/io/image.hpp — the in-memory image every decoder returns, the error every image
// file failure derives from, and the size limit every decoder enforces.
//
// Pixels are row-major, top row first, channels interleaved (R, G, B), 8 bits each.
// Host-only header: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/error.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace gpukit::io {

/// An image file (or an in-memory encoded image) could not be read, decoded or written;
/// what() names the file and the reason, path() returns the file's name. The format's own
/// errors (png_file_error, jpeg_file_error) derive from it, so one handler catches all.
class image_file_error : public std::runtime_error {
 public:
  image_file_error(const std::string& path, const std::string& what_arg) : std::runtime_error(what_arg), path_(path) {}
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// Bytes per pixel: 1 (gray) or 3 (R, G, B).
enum class pixel_format { gray8 = 1, rgb8 = 3 };

inline std::size_t channels(pixel_format f) noexcept { return static_cast<std::size_t>(f); }

/// An owning 8-bit image.
struct image {
  std::size_t width = 0;
  std::size_t height = 0;
  pixel_format format = pixel_format::gray8;
  std::vector<std::uint8_t> pixels;  ///< width · height · channels(format) bytes
};

/// The most pixels (width · height) a decoder accepts: 2^28 (16384 × 16384, 768 MiB as
/// RGB). A file declaring more is rejected from its header, before any pixel memory is
/// allocated, so a small hostile file cannot make the process allocate gigabytes.
inline constexpr std::size_t max_image_pixels = std::size_t{1} << 28;

namespace detail {

/// True when width · height is in [1, max_image_pixels] (no overflow for any inputs).
inline bool pixel_count_ok(std::size_t width, std::size_t height) noexcept {
  return width >= 1 && height >= 1 && width <= max_image_pixels / height;
}

/// The whole file at `path`; `where` names the caller in the error.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path, const char* where) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))  // a folder would "open" and report a huge size
    throw image_file_error(path, std::string(where) + ": cannot read '" + path +
                                     "': " + (ec ? ec.message() : std::string("not a regular file")));
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw image_file_error(path, std::string(where) + ": cannot open '" + path + "'");
  const std::streamoff size = in.tellg();
  std::vector<std::uint8_t> bytes(size > 0 ? static_cast<std::size_t>(size) : 0);
  in.seekg(0);
  if (size < 0 || (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)))
    throw image_file_error(path, std::string(where) + ": cannot read '" + path + "'");
  return bytes;
}

/// Writes `size` bytes at `data` to `path` (replacing it).
inline void write_file_bytes(const std::string& path, const std::uint8_t* data, std::size_t size, const char* where) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw image_file_error(path, std::string(where) + ": cannot create '" + path + "'");
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) throw image_file_error(path, std::string(where) + ": cannot write '" + path + "'");
}

/// Checks a pixel buffer against width × height × channels(format) for a writer.
inline void require_pixels(std::size_t pixel_bytes, std::size_t width, std::size_t height, pixel_format format,
                           const char* where) {
  using gpukit::detail::require;
  require(format == pixel_format::gray8 || format == pixel_format::rgb8, where,
          "argument 'format' = " + std::to_string(static_cast<int>(format)) + " is not gray8 or rgb8");
  const std::size_t row = width * channels(format);
  require(pixel_bytes / row == height && pixel_bytes % row == 0, where,
          "argument 'pixels' has " + std::to_string(pixel_bytes) + " bytes, a " + std::to_string(width) + " x " +
              std::to_string(height) + " image of " + std::to_string(channels(format)) + " channel(s) needs " +
              std::to_string(row * height));
}

}  // namespace detail
}  // namespace gpukit::io
