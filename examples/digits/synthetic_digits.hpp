// examples/digits/synthetic_digits.hpp — a synthetic ten-class image set for the digits
// example, drawn procedurally and deterministic from a seed, written as PNG files in the
// class-per-folder layout that make_digits.py writes for scikit-learn's real digits:
//
//   ROOT/training_set/<0..9>/digit.00000.png ...   ROOT/test_set/<0..9>/digit.00000.png ...
//
// Class d is the digit d as a seven-segment glyph, varied the way handwriting varies a
// shape: every glyph has its own height (50–72 % of the image), width (40–65 % of its
// height), slant, small rotation, position, stroke width, and each of the glyph's six
// corners moves on its own by up to 7 % of the glyph. Colours are random (any hue, light on
// dark or dark on light, a gradient background), a third of the images carry a faint
// stray dot, and every channel value gets noise. The strokes are anti-aliased (4 × 4
// samples per pixel), so the glyphs stay readable at 16 × 16. Nothing but the shape tells
// the classes apart.
//
// Host-only: compiles with a plain C++17 compiler. Images are drawn one after another (the
// default set, 2,500 images of 16 × 16, takes well under a second).
#pragma once

#include <gpukit/io/detail/random.hpp>
#include <gpukit/io/image.hpp>
#include <gpukit/io/png.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace digits_example {

struct synthetic_options {
  std::size_t train_per_class = 200;  ///< images per class under training_set/
  std::size_t test_per_class = 50;    ///< images per class under test_set/
  std::uint64_t seed = 1;             ///< the same seed writes the same files
  std::size_t size = 16;              ///< width and height of every image, in [8, 256]
  bool replace_existing = false;      ///< delete the class folders first if they hold files
};

namespace detail {

/// The segments of each digit, bit k for segment "abcdefg"[k] (a top, b upper right,
/// c lower right, d bottom, e lower left, f upper left, g middle): the usual encoding.
constexpr std::uint8_t glyph_segments[10] = {0x3F, 0x06, 0x5B, 0x4F, 0x66, 0x6D, 0x7D, 0x07, 0x7F, 0x6F};

/// Segment k joins corners segment_ends[k][0] and [1]; corners 0..5 are top left, top
/// right, middle left, middle right, bottom left, bottom right.
constexpr int segment_ends[7][2] = {{0, 1}, {1, 3}, {3, 5}, {4, 5}, {2, 4}, {0, 2}, {2, 3}};
constexpr double corner_uv[6][2] = {{0, 0}, {1, 0}, {0, 0.5}, {1, 0.5}, {0, 1}, {1, 1}};

/// Squared distance from (px, py) to the segment (ax, ay)–(bx, by).
inline double distance2_to_segment(double px, double py, double ax, double ay, double bx, double by) {
  const double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  const double t = len2 > 0 ? std::clamp(((px - ax) * dx + (py - ay) * dy) / len2, 0.0, 1.0) : 0.0;
  const double ex = px - (ax + t * dx), ey = py - (ay + t * dy);
  return ex * ex + ey * ey;
}

struct rgb {
  double r, g, b;
};

inline rgb random_colour(gpukit::io::detail::splitmix64& rng) {
  return {rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)};
}
inline double luma(rgb c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b; }

}  // namespace detail

/// The class folder name of digit d: "0" ... "9" (sorted, so label d is digit d).
inline std::string synthetic_class_name(int digit) { return std::to_string(digit); }

/// One synthetic image of `digit` (0–9), size × size rgb8. The same (digit, seed, index,
/// size) gives the same pixels on every platform up to the last bit of the standard
/// library's sin and cos.
inline gpukit::io::image make_digit_image(int digit, std::uint64_t seed, std::uint64_t index, std::size_t size = 16) {
  if (digit < 0 || digit > 9) throw std::invalid_argument("make_digit_image: digit " + std::to_string(digit) + " is not 0-9");
  if (size < 8 || size > 256)
    throw std::invalid_argument("make_digit_image: size " + std::to_string(size) + " is outside [8, 256]");
  namespace rnd = gpukit::io::detail;
  rnd::splitmix64 rng(rnd::mix64(rnd::mix64(rnd::mix64(seed) + std::uint64_t(digit) + 0x5D16175ull) + index));
  const double s = double(size);

  // The glyph: a box of gh × gw pixels, slanted, rotated and placed near the centre, its
  // corners jittered one by one.
  const double gh = s * rng.uniform(0.50, 0.72), gw = gh * rng.uniform(0.40, 0.65);
  const double slant = rng.uniform(-0.10, 0.30), angle = rng.uniform(-0.15, 0.15);
  const double cx = s / 2 + rng.uniform(-0.08, 0.08) * s, cy = s / 2 + rng.uniform(-0.06, 0.06) * s;
  const double ca = std::cos(angle), sa = std::sin(angle);
  double corner[6][2];
  for (int k = 0; k < 6; ++k) {
    const double u = detail::corner_uv[k][0] + rng.uniform(-0.07, 0.07);
    const double v = detail::corner_uv[k][1] + rng.uniform(-0.07, 0.07);
    const double x = (u - 0.5) * gw + slant * (0.5 - v) * gh, y = (v - 0.5) * gh;
    corner[k][0] = cx + ca * x - sa * y;
    corner[k][1] = cy + sa * x + ca * y;
  }
  const double half_width = s * rng.uniform(0.045, 0.085);

  // Colours: a foreground and a gradient background whose brightness differs from it by at
  // least 35 % of the range, either way round.
  detail::rgb fg{}, bg0{}, bg1{};
  do {
    fg = detail::random_colour(rng), bg0 = detail::random_colour(rng);
  } while (std::fabs(detail::luma(fg) - detail::luma(bg0)) < 0.35 * 255);
  const double shift = rng.uniform(-30, 30);
  bg1 = {std::clamp(bg0.r + shift, 0.0, 255.0), std::clamp(bg0.g + shift, 0.0, 255.0), std::clamp(bg0.b + shift, 0.0, 255.0)};
  const double dir = rng.uniform(0, 6.28318530717959), dx = std::cos(dir), dy = std::sin(dir);

  // A faint stray dot in a third of the images.
  const bool dot = rng.below(3) == 0;
  const double dot_x = rng.uniform(0, s), dot_y = rng.uniform(0, s), dot_r = rng.uniform(0.5, 1.0) * s / 16;

  gpukit::io::image out;
  out.width = out.height = size;
  out.format = gpukit::io::pixel_format::rgb8;
  out.pixels.resize(size * size * 3);
  const double amplitude = rng.uniform(2, 16), w2 = half_width * half_width;
  const std::uint8_t segments = detail::glyph_segments[digit];
  std::uint64_t noise = 0;
  for (std::size_t y = 0; y < size; ++y)
    for (std::size_t x = 0; x < size; ++x) {
      int covered = 0;
      for (int sy = 0; sy < 4; ++sy)
        for (int sx = 0; sx < 4; ++sx) {
          const double px = double(x) + (sx + 0.5) / 4, py = double(y) + (sy + 0.5) / 4;
          for (int k = 0; k < 7; ++k) {
            if (!(segments & (1u << k))) continue;
            const double* a = corner[detail::segment_ends[k][0]];
            const double* b = corner[detail::segment_ends[k][1]];
            if (detail::distance2_to_segment(px, py, a[0], a[1], b[0], b[1]) <= w2) {
              ++covered;
              break;
            }
          }
        }
      double cover = covered / 16.0;
      if (dot) {
        const double ex = x + 0.5 - dot_x, ey = y + 0.5 - dot_y;
        if (ex * ex + ey * ey <= dot_r * dot_r) cover = std::max(cover, 0.5);
      }
      const double t = std::clamp(0.5 + ((x + 0.5 - s / 2) * dx + (y + 0.5 - s / 2) * dy) / s, 0.0, 1.0);
      const double back[3] = {bg0.r + t * (bg1.r - bg0.r), bg0.g + t * (bg1.g - bg0.g), bg0.b + t * (bg1.b - bg0.b)};
      const double front[3] = {fg.r, fg.g, fg.b};
      for (int c = 0; c < 3; ++c) {
        const std::size_t i = (y * size + x) * 3 + std::size_t(c);
        if (i % 8 == 0) noise = rng.next();  // 8 bits of noise per channel value
        const double n = (double((noise >> (8 * (i % 8))) & 0xFF) / 127.5 - 1.0) * amplitude;
        const double v = back[c] + cover * (front[c] - back[c]) + n;
        out.pixels[i] = static_cast<std::uint8_t>(std::clamp(v + 0.5, 0.0, 255.0));
      }
    }
  return out;
}

/// Writes options.train_per_class images of each digit to ROOT/training_set/<d>/ and
/// options.test_per_class to ROOT/test_set/<d>/ as digit.00000.png, ... (training image i of
/// digit d is make_digit_image(d, seed, i, size), test image i is index 2^40 + i); returns
/// the number of files written. Throws std::runtime_error if a class folder already holds
/// files (unless replace_existing, which deletes the twenty class folders first) or cannot
/// be created; the PNG writer's error if a file cannot be written.
inline std::size_t write_synthetic_digits(const std::string& root, const synthetic_options& options) {
  namespace fs = std::filesystem;
  (void)make_digit_image(0, options.seed, 0, options.size);  // checks the size
  const fs::path splits[2] = {fs::path(root) / "training_set", fs::path(root) / "test_set"};
  const std::size_t per_class[2] = {options.train_per_class, options.test_per_class};
  for (const fs::path& split : splits)
    for (int d = 0; d < 10; ++d) {
      const fs::path dir = split / synthetic_class_name(d);
      std::error_code ec;
      if (options.replace_existing) fs::remove_all(dir, ec);
      if (!ec && fs::exists(dir, ec) && fs::is_directory(dir, ec) && !fs::is_empty(dir, ec))
        throw std::runtime_error("'" + dir.string() + "' already holds files (--replace deletes them)");
      if (!ec) fs::create_directories(dir, ec);
      if (ec) throw std::runtime_error("cannot create '" + dir.string() + "': " + ec.message());
    }
  std::size_t files = 0;
  for (int split = 0; split < 2; ++split)
    for (int d = 0; d < 10; ++d)
      for (std::size_t i = 0; i < per_class[split]; ++i) {
        const gpukit::io::image img =
            make_digit_image(d, options.seed, (split == 0 ? 0 : std::uint64_t{1} << 40) + i, options.size);
        // Zero-padded so that name order is index order.
        std::string number = std::to_string(i);
        const std::size_t width = std::max<std::size_t>(5, std::to_string(per_class[split]).size());
        number.insert(0, width - std::min(width, number.size()), '0');
        const fs::path file = splits[split] / synthetic_class_name(d) / ("digit." + number + ".png");
        gpukit::io::write_png(file.string(), gpukit::make_host_span(img.pixels), img.width, img.height, img.format,
                              gpukit::io::png_compression::fast);
        ++files;
      }
  return files;
}

}  // namespace digits_example
