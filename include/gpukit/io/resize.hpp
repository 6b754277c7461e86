// gpukit/io/resize.hpp — bilinear resizing of 8-bit gray or RGB images.
//
//   gpukit::io::image small = gpukit::io::resize_bilinear(img, 64, 64);
//
// Convention: pixel centres are aligned (the "half-pixel" convention). Output pixel x
// samples the source at sx = (x + 0.5) · src_width / width − 0.5, clamped to
// [0, src_width − 1], and likewise for y; the value is the bilinear blend of the four
// nearest source pixels, rounded to nearest. No antialiasing filter: downscaling by more
// than 2× skips source pixels. This matches tf.image.resize(..., 'bilinear',
// antialias=False), PyTorch's interpolate(mode='bilinear', align_corners=False) and
// OpenCV's INTER_LINEAR (up to their rounding). A resize to the same size is the identity.
//
// Single-threaded per image (callers parallelise over images). Host-only header.
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/io/image.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gpukit::io {

namespace detail {

/// Where each output coordinate samples the source: the two neighbours and the weight of
/// the second.
struct bilinear_taps {
  std::vector<std::size_t> lo, hi;
  std::vector<float> frac;
};

inline bilinear_taps make_taps(std::size_t src, std::size_t dst) {
  bilinear_taps t;
  t.lo.resize(dst);
  t.hi.resize(dst);
  t.frac.resize(dst);
  const double scale = static_cast<double>(src) / static_cast<double>(dst);
  const double last = static_cast<double>(src - 1);
  for (std::size_t i = 0; i < dst; ++i) {
    const double s = std::clamp((static_cast<double>(i) + 0.5) * scale - 0.5, 0.0, last);
    const double f = std::floor(s);
    t.lo[i] = static_cast<std::size_t>(f);
    t.hi[i] = std::min(t.lo[i] + 1, src - 1);
    t.frac[i] = static_cast<float>(s - f);
  }
  return t;
}

inline void require_image(const image& src, const char* where) {
  using gpukit::detail::require;
  require(src.format == pixel_format::gray8 || src.format == pixel_format::rgb8, where,
          "argument 'src' has format " + std::to_string(static_cast<int>(src.format)) + ", not gray8 or rgb8");
  require(pixel_count_ok(src.width, src.height), where,
          "argument 'src' is " + std::to_string(src.width) + " x " + std::to_string(src.height) +
              ", not between 1 and max_image_pixels pixels");
  require(src.pixels.size() == src.width * src.height * channels(src.format), where,
          "argument 'src' has " + std::to_string(src.pixels.size()) + " bytes for " + std::to_string(src.width) +
              " x " + std::to_string(src.height) + " x " + std::to_string(channels(src.format)));
}

}  // namespace detail

/// Resizes `src` (gray8 or rgb8, 1 ≤ width · height ≤ max_image_pixels, pixels sized to
/// match) to width × height into `out`, which must hold width · height · channels(src.format)
/// bytes and must not overlap src.pixels. Arguments are checked before anything is written.
inline void resize_bilinear(const image& src, std::size_t width, std::size_t height, host_span<std::uint8_t> out) {
  const char* where = "gpukit::io::resize_bilinear";
  using gpukit::detail::require;
  detail::require_image(src, where);
  require(detail::pixel_count_ok(width, height), where,
          "arguments 'width' x 'height' = " + std::to_string(width) + " x " + std::to_string(height) +
              " is not between 1 and max_image_pixels pixels");
  const std::size_t c = channels(src.format);
  require(out.size() == width * height * c, where,
          "argument 'out' has " + std::to_string(out.size()) + " bytes, " + std::to_string(width) + " x " +
              std::to_string(height) + " x " + std::to_string(c) + " needs " + std::to_string(width * height * c));
  require(!gpukit::detail::overlaps(out, make_host_span(src.pixels)), where, "argument 'out' overlaps 'src'");
  const auto xs = detail::make_taps(src.width, width);
  const auto ys = detail::make_taps(src.height, height);
  const std::size_t src_row = src.width * c;
  for (std::size_t y = 0; y < height; ++y) {
    const std::uint8_t* r0 = src.pixels.data() + ys.lo[y] * src_row;
    const std::uint8_t* r1 = src.pixels.data() + ys.hi[y] * src_row;
    const float fy = ys.frac[y];
    std::uint8_t* o = out.data() + y * width * c;
    for (std::size_t x = 0; x < width; ++x) {
      const std::size_t a = xs.lo[x] * c, b = xs.hi[x] * c;
      const float fx = xs.frac[x];
      for (std::size_t k = 0; k < c; ++k) {
        // Interpolating differences keeps a constant image exactly constant.
        const float top = r0[a + k] + fx * (float(r0[b + k]) - float(r0[a + k]));
        const float bottom = r1[a + k] + fx * (float(r1[b + k]) - float(r1[a + k]));
        o[x * c + k] = static_cast<std::uint8_t>(std::clamp(top + fy * (bottom - top) + 0.5f, 0.0f, 255.0f));
      }
    }
  }
}

/// As above, returning a new image of src's format.
inline image resize_bilinear(const image& src, std::size_t width, std::size_t height) {
  detail::require_image(src, "gpukit::io::resize_bilinear");
  gpukit::detail::require(detail::pixel_count_ok(width, height), "gpukit::io::resize_bilinear",
                          "arguments 'width' x 'height' = " + std::to_string(width) + " x " + std::to_string(height) +
                              " is not between 1 and max_image_pixels pixels");
  image out;
  out.width = width;
  out.height = height;
  out.format = src.format;
  out.pixels.resize(width * height * channels(src.format));
  resize_bilinear(src, width, height, make_host_span(out.pixels));
  return out;
}

}  // namespace gpukit::io
