// gpukit/io/synthetic.hpp — a synthetic two-class image dataset ("cats" and "dogs") drawn
// procedurally, deterministic from a seed, written as JPEG and PNG files in the layout
// Keras' flow_from_directory reads, so tests, benchmarks and demos have real files.
//
//   gpukit::io::write_synthetic_dataset("data");   // data/training_set/{cats,dogs}, data/test_set/{cats,dogs}
//
// What the classes look like (both on a random low-saturation gradient background, with a
// grey distractor box half the time and per-pixel noise; sizes, positions and rotations
// random):
//   cats (label 0): 1–3 warm (red to yellow) round heads with two ear triangles and two
//                   dark eyes;
//   dogs (label 1): 1–3 cool (cyan to violet) elongated bodies, 2–4 times longer than
//                   wide, crossed by darker stripes.
// One image in twenty draws its animals in a dull colour of any hue instead, so colour alone
// does not decide the class: the shape must be seen too.
//
// Host-only header: compiles with a plain C++17 compiler; drawing and encoding use OpenMP.
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/io/dataset.hpp"
#include "gpukit/io/detail/random.hpp"
#include "gpukit/io/image.hpp"
#include "gpukit/io/jpeg.hpp"
#include "gpukit/io/png.hpp"
#include "gpukit/io/resize.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace gpukit::io {

/// Class folder names in label order, and the prefixes of their files (cat.00042.jpg).
inline const char* const synthetic_class_names[2] = {"cats", "dogs"};
inline const char* const synthetic_file_prefixes[2] = {"cat", "dog"};

struct synthetic_options {
  std::size_t train_per_class = 1000;  ///< images per class under training_set/
  std::size_t test_per_class = 250;    ///< images per class under test_set/
  std::uint64_t seed = 1;              ///< the same seed writes the same files
  std::size_t min_size = 48;           ///< width and height each uniform in [min_size, max_size]
  std::size_t max_size = 160;
  int jpeg_quality = 90;          ///< in [1, 100]
  std::size_t png_every = 4;      ///< every png_every-th file is a PNG, the rest JPEG (0: all JPEG)
  bool replace_existing = false;  ///< delete the four class folders first if they exist
};

/// What write_synthetic_dataset made.
struct synthetic_dataset {
  std::string training_dir;  ///< ROOT/training_set
  std::string test_dir;      ///< ROOT/test_set
  std::size_t files = 0;     ///< files written in all
};

namespace detail {

struct rgb {
  float r, g, b;
};

/// h in degrees, s and v in [0, 1].
inline rgb hsv(double h, double s, double v) {
  h = std::fmod(std::fmod(h, 360.0) + 360.0, 360.0) / 60.0;
  const double c = v * s, x = c * (1.0 - std::fabs(std::fmod(h, 2.0) - 1.0)), m = v - c;
  const int sector = static_cast<int>(h);
  double r = c, g = x, b = 0;
  if (sector == 1) r = x, g = c;
  if (sector == 2) r = 0, g = c, b = x;
  if (sector == 3) r = 0, g = x, b = c;
  if (sector == 4) r = x, g = 0, b = c;
  if (sector >= 5) r = c, g = 0, b = x;
  return {float(255 * (r + m)), float(255 * (g + m)), float(255 * (b + m))};
}

inline rgb scaled(rgb c, float k) { return {c.r * k, c.g * k, c.b * k}; }

/// An RGB float canvas; shapes are filled by testing pixel centres in their bounding box.
struct canvas {
  int w, h;
  std::vector<float> px;  // w · h · 3
  canvas(int width, int height) : w(width), h(height), px(std::size_t(width) * height * 3) {}

  void put(int x, int y, rgb c) {
    float* p = &px[(std::size_t(y) * w + x) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  template <class Inside>  // inside(x, y) -> const rgb* (nullptr: outside)
  void fill(double x0, double y0, double x1, double y1, Inside inside) {
    const int xa = std::max(0, int(std::floor(x0))), xb = std::min(w - 1, int(std::ceil(x1)));
    const int ya = std::max(0, int(std::floor(y0))), yb = std::min(h - 1, int(std::ceil(y1)));
    for (int y = ya; y <= yb; ++y)
      for (int x = xa; x <= xb; ++x)
        if (const rgb* c = inside(x + 0.5, y + 0.5)) put(x, y, *c);
  }
  /// An ellipse with semi-axes a (along `angle`) and b; with stripes > 0, bands across the
  /// long axis (that many per length 2a) take `stripe` instead.
  void ellipse(double cx, double cy, double a, double b, double angle, rgb c, double stripes = 0, rgb stripe = {}) {
    const double ca = std::cos(angle), sa = std::sin(angle), r = std::max(a, b);
    const double freq = stripes * 3.14159265358979 / a;
    fill(cx - r, cy - r, cx + r, cy + r, [&](double x, double y) -> const rgb* {
      const double u = (x - cx) * ca + (y - cy) * sa, v = -(x - cx) * sa + (y - cy) * ca;
      if ((u * u) / (a * a) + (v * v) / (b * b) > 1.0) return nullptr;
      return stripes > 0 && std::sin(u * freq) > 0.35 ? &stripe : &c;
    });
  }
  void triangle(const double (&p)[3][2], rgb c) {
    const double x0 = std::min({p[0][0], p[1][0], p[2][0]}), x1 = std::max({p[0][0], p[1][0], p[2][0]});
    const double y0 = std::min({p[0][1], p[1][1], p[2][1]}), y1 = std::max({p[0][1], p[1][1], p[2][1]});
    auto edge = [&](int i, double x, double y) {
      const auto& a = p[i];
      const auto& b = p[(i + 1) % 3];
      return (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
    };
    fill(x0, y0, x1, y1, [&](double x, double y) -> const rgb* {
      const double e0 = edge(0, x, y), e1 = edge(1, x, y), e2 = edge(2, x, y);
      return (e0 >= 0 && e1 >= 0 && e2 >= 0) || (e0 <= 0 && e1 <= 0 && e2 <= 0) ? &c : nullptr;
    });
  }
};

inline void draw_cat(canvas& cv, splitmix64& rng, double cx, double cy, double r, rgb fur) {
  const double tilt = rng.uniform(-0.5, 0.5), b = r * rng.uniform(0.85, 1.1);
  const double up = tilt - 3.14159265358979 / 2;  // the head's "up" direction in image coordinates
  for (int side = -1; side <= 1; side += 2) {
    const double base = rng.uniform(0.45, 0.75), spread = rng.uniform(0.25, 0.4), len = rng.uniform(1.45, 1.8);
    const double a0 = up + side * (base - spread), a1 = up + side * (base + spread), at = up + side * base * 0.8;
    const double ear[3][2] = {{cx + 0.8 * r * std::cos(a0), cy + 0.8 * r * std::sin(a0)},
                              {cx + 0.8 * r * std::cos(a1), cy + 0.8 * r * std::sin(a1)},
                              {cx + len * r * std::cos(at), cy + len * r * std::sin(at)}};
    cv.triangle(ear, scaled(fur, 0.85f));
  }
  cv.ellipse(cx, cy, r, b, tilt, fur);
  const rgb eye = scaled(fur, 0.2f);
  for (int side = -1; side <= 1; side += 2) {
    const double ex = 0.38 * r * side, ey = -0.12 * r;  // in the head's frame
    cv.ellipse(cx + ex * std::cos(tilt) - ey * std::sin(tilt), cy + ex * std::sin(tilt) + ey * std::cos(tilt), 0.14 * r,
               0.1 * r, tilt, eye);
  }
}

inline void draw_dog(canvas& cv, splitmix64& rng, double cx, double cy, double r, rgb coat) {
  const double a = r * rng.uniform(1.5, 2.1), b = a / rng.uniform(2.0, 4.0);
  cv.ellipse(cx, cy, a, b, rng.uniform(0.0, 3.14159265358979), coat, rng.uniform(2.0, 4.0), scaled(coat, 0.45f));
}

}  // namespace detail

/// One synthetic image of class `label` (0: cat, 1: dog) as rgb8, width and height each in
/// [min_size, max_size] (1 ≤ min_size ≤ max_size ≤ 4096). The same (label, seed, index,
/// sizes) gives the same pixels on every platform up to the last bit of the standard
/// library's sin/cos (images do not depend on thread count).
inline image make_synthetic_image(int label, std::uint64_t seed, std::uint64_t index, std::size_t min_size = 48,
                                  std::size_t max_size = 160) {
  const char* where = "gpukit::io::make_synthetic_image";
  using gpukit::detail::require;
  require(label == 0 || label == 1, where, "argument 'label' = " + std::to_string(label) + " is not 0 or 1");
  require(min_size >= 1 && min_size <= max_size && max_size <= 4096, where,
          "arguments 'min_size' = " + std::to_string(min_size) + ", 'max_size' = " + std::to_string(max_size) +
              " are not 1 <= min_size <= max_size <= 4096");
  detail::splitmix64 rng(detail::mix64(detail::mix64(detail::mix64(seed) + std::uint64_t(label)) + index));
  const int w = int(min_size + rng.below(max_size - min_size + 1));
  const int h = int(min_size + rng.below(max_size - min_size + 1));
  detail::canvas cv(w, h);
  // Background: a gradient between two dull colours along a random direction.
  const detail::rgb c0 = detail::hsv(rng.uniform(0, 360), rng.uniform(0, 0.35), rng.uniform(0.3, 0.95));
  const detail::rgb c1 = detail::hsv(rng.uniform(0, 360), rng.uniform(0, 0.35), rng.uniform(0.3, 0.95));
  const double dir = rng.uniform(0, 6.28318530717959), dx = std::cos(dir), dy = std::sin(dir);
  const double half = 0.5 * (std::fabs(dx) * w + std::fabs(dy) * h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float t = float(std::clamp(0.5 + ((x - 0.5 * w) * dx + (y - 0.5 * h) * dy) / (2 * half), 0.0, 1.0));
      cv.put(x, y, {c0.r + t * (c1.r - c0.r), c0.g + t * (c1.g - c0.g), c0.b + t * (c1.b - c0.b)});
    }
  const double side = std::min(w, h);
  if (rng.below(2) == 0) {  // a grey box belonging to neither class
    const double bx = rng.uniform(0, w), by = rng.uniform(0, h), bw = side * rng.uniform(0.1, 0.3);
    const float g = float(rng.uniform(40, 220));
    const detail::rgb grey{g, g, g};
    cv.fill(bx, by, bx + bw, by + bw * rng.uniform(0.5, 1.5), [&](double, double) { return &grey; });
  }
  const bool dull = rng.below(20) == 0;
  const int animals = 1 + int(rng.below(3));
  for (int k = 0; k < animals; ++k) {
    const double hue = dull ? rng.uniform(0, 360) : label == 0 ? rng.uniform(0, 50) : rng.uniform(185, 265);
    const detail::rgb colour =
        detail::hsv(hue, dull ? rng.uniform(0.15, 0.4) : rng.uniform(0.55, 1.0), rng.uniform(0.5, 1.0));
    const double r = side * rng.uniform(0.13, 0.26) / (animals == 3 ? 1.3 : 1.0);
    const double cx = rng.uniform(0.2, 0.8) * w, cy = rng.uniform(0.25, 0.8) * h;
    if (label == 0)
      detail::draw_cat(cv, rng, cx, cy, r, colour);
    else
      detail::draw_dog(cv, rng, cx, cy, r, colour);
  }
  image out;
  out.width = std::size_t(w);
  out.height = std::size_t(h);
  out.format = pixel_format::rgb8;
  out.pixels.resize(cv.px.size());
  const float amplitude = float(rng.uniform(3, 14));
  std::uint64_t noise = 0;
  for (std::size_t i = 0; i < cv.px.size(); ++i) {
    if (i % 8 == 0) noise = rng.next();  // 8 bits of noise per channel value
    const float n = (float((noise >> (8 * (i % 8))) & 0xFF) / 127.5f - 1.0f) * amplitude;
    out.pixels[i] = static_cast<std::uint8_t>(std::clamp(cv.px[i] + n + 0.5f, 0.0f, 255.0f));
  }
  return out;
}

namespace detail {

/// cat.00042.jpg: zero-padded so that name order is index order.
inline std::string synthetic_file_name(int label, std::size_t index, std::size_t count, bool png) {
  std::string digits = std::to_string(index);
  const std::size_t width = std::max<std::size_t>(5, std::to_string(count == 0 ? 0 : count - 1).size());
  digits.insert(0, width - std::min(width, digits.size()), '0');
  return std::string(synthetic_file_prefixes[label]) + "." + digits + (png ? ".png" : ".jpg");
}

}  // namespace detail

/// Writes options.train_per_class images per class to ROOT/training_set/{cats,dogs}/ and
/// options.test_per_class to ROOT/test_set/{cats,dogs}/ (training image i of a class is
/// make_synthetic_image(label, seed, i), test image i is index 2^40 + i), named
/// cat.00000.jpg, ..., every png_every-th one a PNG, on `exec`'s threads. The same options
/// write the same files. Throws dataset_error if a class folder already holds files (unless
/// replace_existing, which deletes those four folders first) or cannot be created;
/// image_file_error if a file cannot be written; std::invalid_argument for bad options.
inline synthetic_dataset write_synthetic_dataset(const cpu_executor& exec, const std::string& root,
                                                 const synthetic_options& options = {}) {
  namespace fs = std::filesystem;
  const char* where = "gpukit::io::write_synthetic_dataset";
  using gpukit::detail::require;
  require(!root.empty(), where, "argument 'root' is empty");
  require(options.jpeg_quality >= 1 && options.jpeg_quality <= 100, where,
          "option 'jpeg_quality' = " + std::to_string(options.jpeg_quality) + " is outside [1, 100]");
  (void)make_synthetic_image(0, options.seed, 0, options.min_size, options.max_size);  // checks the sizes
  synthetic_dataset out{(fs::path(root) / "training_set").string(), (fs::path(root) / "test_set").string(), 0};
  const std::string splits[2] = {out.training_dir, out.test_dir};
  for (const auto& split : splits)
    for (const char* cls : synthetic_class_names) {
      const fs::path dir = fs::path(split) / cls;
      std::error_code ec;
      if (options.replace_existing) fs::remove_all(dir, ec);
      if (!ec && fs::exists(dir, ec) && fs::is_directory(dir, ec) && !fs::is_empty(dir, ec))
        throw dataset_error(dir.string(), std::string(where) + ": '" + dir.string() +
                                              "' already holds files (set replace_existing to delete them)");
      if (!ec) fs::create_directories(dir, ec);
      if (ec)
        throw dataset_error(dir.string(),
                            std::string(where) + ": cannot create '" + dir.string() + "': " + ec.message());
    }
  const std::size_t per_split[2] = {options.train_per_class, options.test_per_class};
  const std::size_t total = 2 * (per_split[0] + per_split[1]);
  detail::parallel_for_rethrow(exec.threads(), total, [&](std::size_t k) {
    const int split = k < 2 * per_split[0] ? 0 : 1;
    const std::size_t j = split == 0 ? k : k - 2 * per_split[0];
    const int label = int(j / per_split[split]);
    const std::size_t i = j % per_split[split];
    const image img = make_synthetic_image(label, options.seed, (split == 0 ? 0 : std::uint64_t{1} << 40) + i,
                                           options.min_size, options.max_size);
    const bool png = options.png_every > 0 && i % options.png_every == options.png_every - 1;
    const std::string name = detail::synthetic_file_name(label, i, per_split[split], png);
    const std::string path = (fs::path(splits[split]) / synthetic_class_names[label] / name).string();
    if (png)
      write_png(path, make_host_span(img.pixels), img.width, img.height, img.format, png_compression::fast);
    else
      write_jpeg(path, make_host_span(img.pixels), img.width, img.height, img.format, options.jpeg_quality);
  });
  out.files = total;
  return out;
}

/// As above on all of OpenMP's threads.
inline synthetic_dataset write_synthetic_dataset(const std::string& root, const synthetic_options& options = {}) {
  return write_synthetic_dataset(cpu_executor{}, root, options);
}

/// per_class synthetic images of each class (cats first), resized to width × height,
/// without touching files: image i of class c is make_synthetic_image(c, seed, i, min_size,
/// max_size) resized. For benchmarks and tests that need a cache but no folder.
inline image_cache make_synthetic_cache(std::size_t per_class, std::size_t width, std::size_t height,
                                        std::uint64_t seed, std::size_t min_size = 48, std::size_t max_size = 160) {
  const char* where = "gpukit::io::make_synthetic_cache";
  gpukit::detail::require(detail::pixel_count_ok(width, height) && width * height * 3 <= SIZE_MAX / (2 * per_class + 1),
                          where,
                          "arguments 'width' x 'height' = " + std::to_string(width) + " x " + std::to_string(height) +
                              " for " + std::to_string(per_class) + " images per class is empty or too large");
  const std::size_t n = 2 * per_class, bytes = width * height * 3;
  std::vector<std::uint8_t> pixels(n * bytes);
  std::vector<float> labels(n);
  detail::parallel_for_rethrow(cpu_executor{}.threads(), n, [&](std::size_t k) {
    const int label = int(k / per_class);
    labels[k] = float(label);
    resize_bilinear(make_synthetic_image(label, seed, k % per_class, min_size, max_size), width, height,
                    host_span<std::uint8_t>(pixels.data() + k * bytes, bytes));
  });
  return image_cache({synthetic_class_names[0], synthetic_class_names[1]}, width, height, std::move(pixels),
                     std::move(labels));
}

}  // namespace gpukit::io
