// gpukit/io/png.hpp — 8-bit grayscale and RGB images to and from PNG files (libpng).
//
//   gpukit::io::write_png("seed.png", gpukit::make_host_span(bytes), 1536, 1024, gpukit::io::pixel_format::gray8);
//   gpukit::io::image img = gpukit::io::read_png("seed.png");
//   gpukit::io::image same = gpukit::io::decode_png(gpukit::make_host_span(file_bytes), "seed.png");
//
// Pixels are row-major, top row first, channels interleaved (R, G, B). Errors:
// std::invalid_argument for bad arguments (checked before the file is touched),
// gpukit::io::png_file_error for everything the file system or libpng reports (the message
// names the file and libpng's reason), including images larger than max_image_pixels.
//
// Host-only header: compiles with a plain C++17 compiler; link libpng (the gpukit CMake
// target does).
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/io/image.hpp"

#include <png.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace gpukit::io {

/// A PNG file could not be written, read or decoded; what() names the file and the reason.
class png_file_error : public image_file_error {
 public:
  using image_file_error::image_file_error;
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

/// How hard write_png compresses: `small` (libpng's default) or `fast` (libpng's
/// PNG_IMAGE_FLAG_FAST: several times faster, files about a quarter larger).
enum class png_compression { small, fast };

/// Writes `pixels` (width · height · channels(format) bytes) as an 8-bit PNG to `path`
/// (replacing it). width and height in [1, 2^31 − 1].
inline void write_png(const std::string& path, host_span<const std::uint8_t> pixels, std::size_t width,
                      std::size_t height, pixel_format format, png_compression compression = png_compression::small) {
  const char* where = "gpukit::io::write_png";
  using gpukit::detail::require;
  require(!path.empty(), where, "argument 'path' is empty");
  require(format == pixel_format::gray8 || format == pixel_format::rgb8, where,
          "argument 'format' = " + std::to_string(static_cast<int>(format)) + " is not gray8 or rgb8");
  require(width >= 1 && width <= 0x7fffffffu, where,
          "argument 'width' = " + std::to_string(width) + " is outside [1, 2^31 - 1]");
  require(height >= 1 && height <= 0x7fffffffu, where,
          "argument 'height' = " + std::to_string(height) + " is outside [1, 2^31 - 1]");
  const std::size_t row = width * channels(format);
  require(row <= 0x7fffffffu, where,
          "argument 'width' = " + std::to_string(width) + " makes a row over 2^31 - 1 bytes");
  detail::require_pixels(pixels.size(), width, height, format, where);
  detail::png_image_guard guard;
  png_image* img = guard.get();
  img->width = static_cast<png_uint_32>(width);
  img->height = static_cast<png_uint_32>(height);
  img->format = format == pixel_format::rgb8 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  if (compression == png_compression::fast) img->flags |= PNG_IMAGE_FLAG_FAST;
  if (!png_image_write_to_file(img, path.c_str(), 0, pixels.data(), static_cast<png_int_32>(row), nullptr))
    throw png_file_error(path, "gpukit::io::write_png: cannot write '" + path + "': " + detail::libpng_reason(*img));
}

namespace detail {

/// True when `bytes` holds an IEND chunk (the PNG's end marker, possibly followed by other
/// data). libpng's simplified reader stops after the image data, so without this check a
/// file cut just before its end, or with a damaged end, would pass as whole.
inline bool png_has_end(host_span<const std::uint8_t> bytes) noexcept {
  static const std::uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  for (std::size_t at = bytes.size(); at >= 12; --at)
    if (std::memcmp(bytes.data() + at - 12, iend, 12) == 0) return true;
  return false;
}

/// An empty string when every chunk up to IEND fits in `bytes`; otherwise the reason. libpng
/// allocates (and zeroes) the length a chunk declares before reading it, so a 70-byte input
/// declaring a 2 GiB chunk would cost 2 GiB (found by fuzz/png_fuzz.cpp); in memory, a
/// chunk longer than the bytes left is simply cut short, so it is refused up front.
/// A chunk whose 8-byte header (length, type) is there but whose CRC is not counts too: libpng
/// allocates as soon as it has read the header.
inline std::string png_chunk_overrun(host_span<const std::uint8_t> bytes) {
  std::size_t at = 8;  // after the signature, which libpng checks
  while (bytes.size() >= 8 && at <= bytes.size() - 8) {
    const std::uint8_t* p = bytes.data() + at;
    const std::size_t length = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
    const std::size_t left = bytes.size() - at;  // header, data and CRC must fit: 12 + length
    const std::size_t data_left = left >= 12 ? left - 12 : 0;
    if (left < 12 || length > data_left)
      return "a chunk at byte " + std::to_string(at) + " declares " + std::to_string(length) + " bytes, more than the " +
             std::to_string(data_left) + " left (truncated or corrupt)";
    if (std::memcmp(p + 4, "IEND", 4) == 0) break;
    at += 12 + length;
  }
  return {};
}

/// The bytes of image data (all IDAT chunks) in a PNG whose chunks png_chunk_overrun found
/// whole.
inline std::uint64_t png_idat_bytes(host_span<const std::uint8_t> bytes) noexcept {
  std::uint64_t total = 0;
  for (std::size_t at = 8; bytes.size() >= 12 && at <= bytes.size() - 12;) {
    const std::uint8_t* p = bytes.data() + at;
    const std::size_t length = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
    if (std::memcmp(p + 4, "IDAT", 4) == 0) total += length;
    if (std::memcmp(p + 4, "IEND", 4) == 0) break;
    at += 12 + length;
  }
  return total;
}

/// Deflate inflates at most 1032-fold (a 258-byte match in 2 bits), so image data shorter
/// than 1/1032 of the rows a header declares cannot be a whole image. Refusing it before
/// the output is allocated stops a few hundred bytes from costing up to 3 * max_image_pixels
/// bytes. The rows' size here is a lower bound (one channel, no filter bytes, no
/// interlacing), so no intact file is refused. `bit_depth` is IHDR's.
inline bool png_data_can_hold(std::uint64_t width, std::uint64_t height, unsigned bit_depth,
                              std::uint64_t idat_bytes) noexcept {
  const std::uint64_t least_inflated = height * ((width * bit_depth + 7) / 8);
  return least_inflated <= 1032 * idat_bytes + 258;
}

inline image decode_png_as(host_span<const std::uint8_t> bytes, const std::string& name, const char* where) {
  if (const std::string overrun = png_chunk_overrun(bytes); !overrun.empty())
    throw png_file_error(name, std::string(where) + ": cannot read '" + name + "': " + overrun);
  png_image_guard guard;
  png_image* img = guard.get();
  if (bytes.empty() || !png_image_begin_read_from_memory(img, bytes.data(), bytes.size()))
    throw png_file_error(name, std::string(where) + ": cannot read '" + name +
                                   "': " + (bytes.empty() ? std::string("no bytes") : libpng_reason(*img)));
  if (!pixel_count_ok(img->width, img->height))
    throw png_file_error(name, std::string(where) + ": '" + name + "' declares " + std::to_string(img->width) + " x " +
                                   std::to_string(img->height) + " pixels, more than the limit of " +
                                   std::to_string(max_image_pixels));
  // libpng has read IHDR, the first chunk: its bit depth is byte 24 of the file.
  if (const std::uint64_t idat = png_idat_bytes(bytes); !png_data_can_hold(img->width, img->height, bytes[24], idat))
    throw png_file_error(name, std::string(where) + ": '" + name + "' declares " + std::to_string(img->width) + " x " +
                                   std::to_string(img->height) + " pixels but holds only " + std::to_string(idat) +
                                   " bytes of image data, too few to inflate to that (truncated or corrupt)");
  image out;
  out.format = (img->format & PNG_FORMAT_FLAG_COLOR) ? pixel_format::rgb8 : pixel_format::gray8;
  img->format = out.format == pixel_format::rgb8 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  out.width = img->width;
  out.height = img->height;
  out.pixels.resize(PNG_IMAGE_SIZE(*img));
  const png_color black{0, 0, 0};
  if (!png_image_finish_read(img, &black, out.pixels.data(), 0, nullptr))
    throw png_file_error(name, std::string(where) + ": cannot decode '" + name + "': " + libpng_reason(*img));
  if (!png_has_end(bytes))
    throw png_file_error(name,
                         std::string(where) + ": cannot decode '" + name + "': no intact IEND chunk (truncated?)");
  return out;
}

}  // namespace detail

/// Reads an 8-bit view of the PNG at `path`: gray8 for grayscale files, rgb8 for colour
/// ones (alpha is composited onto black; 16-bit files are reduced to 8 bits). Files
/// declaring more than max_image_pixels, and files without their end chunk, are rejected.
inline image read_png(const std::string& path) {
  const char* where = "gpukit::io::read_png";
  gpukit::detail::require(!path.empty(), where, "argument 'path' is empty");
  std::vector<std::uint8_t> bytes;
  try {
    bytes = detail::read_file_bytes(path, where);
  } catch (const image_file_error& e) {
    throw png_file_error(path, e.what());
  }
  return detail::decode_png_as(make_host_span(bytes), path, where);
}

/// As read_png, from the encoded bytes of a PNG file already in memory; `name` (e.g. the
/// file it came from) only labels errors. `bytes` is not kept after the call.
inline image decode_png(host_span<const std::uint8_t> bytes, const std::string& name) {
  return detail::decode_png_as(bytes, name, "gpukit::io::decode_png");
}

}  // namespace gpukit::io
