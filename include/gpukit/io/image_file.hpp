// gpukit/io/image_file.hpp — read any supported image file (JPEG or PNG) as RGB, choosing
// the decoder by the file's signature, not its name: a PNG saved as "cat.jpg" reads fine.
//
//   gpukit::io::image img = gpukit::io::read_image("training_set/cats/cat.001.jpg");  // always rgb8
//
// Errors: the decoders' png_file_error / jpeg_file_error, and image_file_error (their base)
// for a file that cannot be opened or is in neither format; each names the file.
// Host-only header: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/span.hpp"
#include "gpukit/io/image.hpp"
#include "gpukit/io/jpeg.hpp"
#include "gpukit/io/png.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gpukit::io {

enum class image_file_format { unknown, jpeg, png };

/// The format whose signature `bytes` starts with: JPEG (FF D8 FF) or PNG (89 'PNG' 0D 0A 1A 0A).
inline image_file_format detect_image_format(host_span<const std::uint8_t> bytes) noexcept {
  static const std::uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return image_file_format::jpeg;
  if (bytes.size() >= 8) {
    bool png = true;
    for (int i = 0; i < 8; ++i) png = png && bytes[i] == png_sig[i];
    if (png) return image_file_format::png;
  }
  return image_file_format::unknown;
}

/// `img` as rgb8: gray expanded to R = G = B; an rgb8 image is returned as is.
inline image to_rgb8(image img) {
  if (img.format == pixel_format::rgb8) return img;
  const std::size_t n = img.width * img.height;
  std::vector<std::uint8_t> rgb(3 * n);
  for (std::size_t i = 0; i < n; ++i) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = img.pixels[i];
  img.pixels = std::move(rgb);
  img.format = pixel_format::rgb8;
  return img;
}

namespace detail {

inline image decode_image_as(host_span<const std::uint8_t> bytes, const std::string& name, const char* where) {
  switch (detect_image_format(bytes)) {
    case image_file_format::jpeg: return to_rgb8(decode_jpeg(bytes, name));
    case image_file_format::png: return to_rgb8(decode_png(bytes, name));
    default: break;
  }
  throw image_file_error(name, std::string(where) + ": '" + name + "' is neither a JPEG nor a PNG file (" +
                                   std::to_string(bytes.size()) + " bytes, no known signature)");
}

}  // namespace detail

/// Decodes the encoded bytes of a JPEG or PNG file as rgb8. `name` only labels errors.
inline image decode_image(host_span<const std::uint8_t> bytes, const std::string& name) {
  return detail::decode_image_as(bytes, name, "gpukit::io::decode_image");
}

/// Reads the JPEG or PNG file at `path` as rgb8.
inline image read_image(const std::string& path) {
  const char* where = "gpukit::io::read_image";
  gpukit::detail::require(!path.empty(), where, "argument 'path' is empty");
  const auto bytes = detail::read_file_bytes(path, where);
  return detail::decode_image_as(make_host_span(bytes), path, where);
}

}  // namespace gpukit::io
