// gpukit/train/augment.hpp — from uint8 NHWC images to the float NCHW input of a model,
// in one pass: gather by index, random shear, zoom and horizontal flip, rescale.
//
//   train::augment_options aug;                                 // Keras' ImageDataGenerator(
//                                                               //   rescale=1/255, shear_range=0.2,
//                                                               //   zoom_range=0.2, horizontal_flip=True)
//   train::sample_map m = train::make_sample_map(train::draw_augmentation(aug, seed, epoch, image), w, h);
//   train::augment_batch(exec, images, w, h, 3, rows, maps, aug.rescale, out);
//
// What the transform is (Keras 2's ImageDataGenerator.random_transform / apply_affine_transform):
// - shear angle s uniform in [-shear_range, shear_range] DEGREES (Keras 2 converts with
//   deg2rad; Keras 1 took radians, so the article's 0.2 is a shear of at most 0.2°);
// - zoom zx and zy drawn independently, each uniform in [1 - zoom_range, 1 + zoom_range];
//   a factor above 1 samples a wider area, i.e. zooms out;
// - the output pixel (x, y) of the transformed image samples the source at
//     sx = zx·(x - cx) - sin(s)·zy·(y - cy) + cx,   sy = cos(s)·zy·(y - cy) + cy,
//   around the centre (cx, cy) = ((w - 1) / 2, (h - 1) / 2), as current Keras does;
// - then, with probability 1/2 when horizontal_flip is set, the result is mirrored left to
//   right (Keras flips after the affine transform; here the flip is folded into the map);
// - sampling is bilinear (Keras' interpolation order 1) with fill mode 'nearest': source
//   coordinates outside the image take the nearest edge pixel (clamped coordinates);
// - every output value is rescale · the sampled value (rescale 1/255 maps bytes to [0, 1]).
// With no shear, no zoom and no flip the samples fall on pixel centres with zero weights
// on the neighbours, so the output is exactly rescale · pixel (the validation path), and a
// flip alone is an exact mirror.
//
// Random parameters come from a counter-based generator keyed by (seed, epoch, image
// index), not by the order of the draws, so they are the same on every executor, thread
// count and batch size, and the CPU and GPU paths sample the same maps. The per-pixel
// function below is shared by the CPU path (OpenMP) and the GPU kernel (augment.cuh).
//
// Host-compilable; the GPU path is in augment.cuh (nvcc), included from here under nvcc.
#pragma once

#include "gpukit/core/config.hpp"
#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/span.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace gpukit::train {

/// Keras' ImageDataGenerator arguments that the seed article uses.
struct augment_options {
  bool enabled = true;             ///< false: rescale only (what a validation set gets)
  float rescale = 1.0f / 255.0f;   ///< every output value is rescale · sampled byte
  float shear_range = 0.2f;        ///< degrees, >= 0: shear uniform in [-range, range]
  float zoom_range = 0.2f;         ///< in [0, 1): zx, zy each uniform in [1 - range, 1 + range]
  bool horizontal_flip = true;     ///< mirror left to right with probability 1/2
};

/// The random parameters of one image.
struct augmentation {
  float shear_degrees = 0.0f;
  float zoom_x = 1.0f, zoom_y = 1.0f;
  bool flip = false;
};

/// Where each output pixel samples its source: sx = m[0]·x + m[1]·y + m[2] and
/// sy = m[3]·x + m[4]·y + m[5] for output column x and row y.
struct sample_map {
  float m[6] = {1, 0, 0, 0, 1, 0};
};

namespace detail {

GPUKIT_HOST_DEVICE inline std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// The k-th uniform draw in [0, 1) for (seed, epoch, image): a pure function of its
/// arguments (counter-based), 53 random bits.
inline double uniform_draw(std::uint64_t seed, std::uint64_t epoch, std::uint64_t image, std::uint64_t k) noexcept {
  const std::uint64_t key = mix(mix(mix(seed ^ 0x6A09E667F3BCC909ull) ^ epoch) ^ image);
  return static_cast<double>(mix(key + k) >> 11) * 0x1.0p-53;
}

}  // namespace detail

/// Checks `o` (std::invalid_argument naming the option and its value).
inline void check_augment_options(const augment_options& o, const char* where) {
  gpukit::detail::require(std::isfinite(o.rescale), where, "option 'rescale' = " + std::to_string(o.rescale) + " is not finite");
  gpukit::detail::require(std::isfinite(o.shear_range) && o.shear_range >= 0.0f && o.shear_range <= 90.0f, where,
                          "option 'shear_range' = " + std::to_string(o.shear_range) + " (degrees) is outside [0, 90]");
  gpukit::detail::require(std::isfinite(o.zoom_range) && o.zoom_range >= 0.0f && o.zoom_range < 1.0f, where,
                          "option 'zoom_range' = " + std::to_string(o.zoom_range) + " is outside [0, 1)");
}

/// The parameters of image `image` in epoch `epoch`; all neutral when !o.enabled.
inline augmentation draw_augmentation(const augment_options& o, std::uint64_t seed, std::uint64_t epoch,
                                      std::uint64_t image) {
  augmentation a;
  if (!o.enabled) return a;
  const auto u = [&](std::uint64_t k) { return detail::uniform_draw(seed, epoch, image, k); };
  if (o.shear_range > 0) a.shear_degrees = static_cast<float>((2 * u(0) - 1) * o.shear_range);
  if (o.zoom_range > 0) {
    a.zoom_x = static_cast<float>(1 - o.zoom_range + 2 * o.zoom_range * u(1));
    a.zoom_y = static_cast<float>(1 - o.zoom_range + 2 * o.zoom_range * u(2));
  }
  a.flip = o.horizontal_flip && u(3) < 0.5;
  return a;
}

/// The sample map of `a` on a width × height image (computed in double, stored in float;
/// the identity and a pure flip are exact).
inline sample_map make_sample_map(const augmentation& a, std::size_t width, std::size_t height) {
  const double pi = 3.14159265358979323846;
  const double s = static_cast<double>(a.shear_degrees) * pi / 180.0;
  const double zx = a.zoom_x, zy = a.zoom_y;
  const double cx = (static_cast<double>(width) - 1) / 2, cy = (static_cast<double>(height) - 1) / 2;
  // Pre-flip column x' = f·x + g mirrors the output when flipping.
  const double f = a.flip ? -1.0 : 1.0, g = a.flip ? static_cast<double>(width) - 1 : 0.0;
  const double sin_s = a.shear_degrees == 0 ? 0.0 : std::sin(s), cos_s = a.shear_degrees == 0 ? 1.0 : std::cos(s);
  sample_map m;
  m.m[0] = static_cast<float>(zx * f);
  m.m[1] = static_cast<float>(-sin_s * zy);
  m.m[2] = static_cast<float>(zx * (g - cx) + sin_s * zy * cy + cx);
  m.m[3] = 0.0f;
  m.m[4] = static_cast<float>(cos_s * zy);
  m.m[5] = static_cast<float>(cy - cos_s * zy * cy);
  return m;
}

/// One output pixel: samples `image` (height × width × channels bytes, HWC) where `m` maps
/// output column x, row y, and writes channel k's rescaled value to out[k · plane].
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void augment_pixel(const std::uint8_t* image, int width, int height, int channels,
                                                         const sample_map& m, int x, int y, float scale, float* out,
                                                         std::size_t plane) {
  const float fx = static_cast<float>(x), fy = static_cast<float>(y);
  float sx = m.m[0] * fx + m.m[1] * fy + m.m[2];
  float sy = m.m[3] * fx + m.m[4] * fy + m.m[5];
  // Fill mode 'nearest': outside the image, the edge pixel (NaN clamps to 0 as well).
  sx = sx > 0.0f ? (sx < static_cast<float>(width - 1) ? sx : static_cast<float>(width - 1)) : 0.0f;
  sy = sy > 0.0f ? (sy < static_cast<float>(height - 1) ? sy : static_cast<float>(height - 1)) : 0.0f;
  const int x0 = static_cast<int>(sx), y0 = static_cast<int>(sy);
  const int x1 = x0 + 1 < width ? x0 + 1 : x0, y1 = y0 + 1 < height ? y0 + 1 : y0;
  const float tx = sx - static_cast<float>(x0), ty = sy - static_cast<float>(y0);
  const std::uint8_t* p00 = image + (static_cast<std::size_t>(y0) * width + x0) * channels;
  const std::uint8_t* p01 = image + (static_cast<std::size_t>(y0) * width + x1) * channels;
  const std::uint8_t* p10 = image + (static_cast<std::size_t>(y1) * width + x0) * channels;
  const std::uint8_t* p11 = image + (static_cast<std::size_t>(y1) * width + x1) * channels;
  for (int k = 0; k < channels; ++k) {
    // a + (b - a)·t is exactly a at t = 0: samples on pixel centres reproduce the pixel.
    const float a = static_cast<float>(p00[k]), b = static_cast<float>(p01[k]);
    const float c = static_cast<float>(p10[k]), d = static_cast<float>(p11[k]);
    const float top = a + (b - a) * tx, bottom = c + (d - c) * tx;
    out[static_cast<std::size_t>(k) * plane] = (top + (bottom - top) * ty) * scale;
  }
}

/// One output pixel without a transform: rescale · pixel.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void rescale_pixel(const std::uint8_t* image, int width, int channels, int x, int y,
                                                         float scale, float* out, std::size_t plane) {
  const std::uint8_t* p = image + (static_cast<std::size_t>(y) * width + x) * channels;
  for (int k = 0; k < channels; ++k) out[static_cast<std::size_t>(k) * plane] = static_cast<float>(p[k]) * scale;
}

namespace detail {

template <memory_space S>
void check_augment_batch(span<const std::uint8_t, S> images, std::size_t width, std::size_t height,
                         std::size_t channels, std::size_t rows, std::size_t maps, std::size_t out) {
  constexpr const char* where = "gpukit::train::augment_batch";
  gpukit::detail::require(width >= 1 && height >= 1 && width <= (1u << 20) && height <= (1u << 20), where,
                          "arguments 'width' x 'height' = " + std::to_string(width) + " x " + std::to_string(height) +
                              " must each lie in [1, 2^20]");
  gpukit::detail::require(channels >= 1 && channels <= 4, where,
                          "argument 'channels' = " + std::to_string(channels) + " is outside [1, 4]");
  const std::size_t image_bytes = width * height * channels;
  gpukit::detail::require(image_bytes < (std::size_t{1} << 31), where,
                          "one image of " + std::to_string(width) + " x " + std::to_string(height) + " x " +
                              std::to_string(channels) + " bytes is 2^31 bytes or more");
  gpukit::detail::require(images.size() % image_bytes == 0, where,
                          "argument 'images' has " + std::to_string(images.size()) + " bytes, not a whole number of " +
                              std::to_string(width) + " x " + std::to_string(height) + " x " + std::to_string(channels) +
                              " images");
  gpukit::detail::require(maps == 0 || maps == rows, where,
                          "argument 'maps' has " + std::to_string(maps) + " entries, 'rows' " + std::to_string(rows) +
                              " (give one map per row, or none for rescale only)");
  gpukit::detail::require(out == rows * image_bytes, where,
                          "argument 'out' has " + std::to_string(out) + " elements, " + std::to_string(rows) +
                              " images of " + std::to_string(image_bytes) + " need " + std::to_string(rows * image_bytes));
  gpukit::detail::require(rows <= 0xffffffffu, where,
                          "argument 'rows' has " + std::to_string(rows) + " entries, more than 2^32 - 1");
}

/// The CPU path. The row indices are host memory here, so it checks each one too.
inline void augment_batch_impl(const cpu_executor& exec, host_span<const std::uint8_t> images, std::size_t width,
                               std::size_t height, std::size_t channels, host_span<const std::uint32_t> rows,
                               host_span<const sample_map> maps, float scale, host_span<float> out) {
  const std::size_t image_bytes = width * height * channels, count = images.size() / image_bytes;
  for (std::size_t i = 0; i < rows.size(); ++i)
    gpukit::detail::require(rows[i] < count, "gpukit::train::augment_batch",
                            "argument 'rows'[" + std::to_string(i) + "] = " + std::to_string(rows[i]) +
                                " is not an image (there are " + std::to_string(count) + ")");
  const std::size_t plane = width * height;
  const int w = static_cast<int>(width), h = static_cast<int>(height), c = static_cast<int>(channels);
  const auto lines = static_cast<std::int64_t>(rows.size() * height);
#pragma omp parallel for schedule(static) num_threads(exec.threads())
  for (std::int64_t line = 0; line < lines; ++line) {
    const std::size_t i = static_cast<std::size_t>(line) / height;
    const int y = static_cast<int>(static_cast<std::size_t>(line) % height);
    const std::uint8_t* src = images.data() + static_cast<std::size_t>(rows[i]) * image_bytes;
    float* dst = out.data() + i * image_bytes + static_cast<std::size_t>(y) * width;
    if (maps.empty()) {
      for (int x = 0; x < w; ++x) rescale_pixel(src, w, c, x, y, scale, dst + x, plane);
    } else {
      for (int x = 0; x < w; ++x) augment_pixel(src, w, h, c, maps[i], x, y, scale, dst + x, plane);
    }
  }
}

#if defined(__CUDACC__)
// Defined in augment.cuh.
inline void augment_batch_impl(const cuda_executor& exec, device_span<const std::uint8_t> images, std::size_t width,
                               std::size_t height, std::size_t channels, device_span<const std::uint32_t> rows,
                               device_span<const sample_map> maps, float scale, device_span<float> out);
#else
GPUKIT_GPU_ONLY_STUB(augment_batch_impl)
#endif

}  // namespace detail

/// out (rows.size() × channels × height × width floats, NCHW) = image rows[i] of `images`
/// (NHWC, whole images) sampled through maps[i] and rescaled by `scale`; with `maps` empty,
/// rescale only. Every span is memory of the executor (host_span for cpu_executor,
/// device_span for cuda_executor). Every rows[i] must be below the number of images
/// (checked here on the CPU; on the GPU the indices are device memory and the caller
/// guarantees it). `out` must not overlap the other arguments. GPU: queued on the
/// executor's stream.
template <class Exec>
void augment_batch(const Exec& exec, span_for<Exec, const std::uint8_t> images, std::size_t width, std::size_t height,
                   std::size_t channels, span_for<Exec, const std::uint32_t> rows, span_for<Exec, const sample_map> maps,
                   float scale, span_for<Exec, float> out) {
  detail::check_augment_batch(images, width, height, channels, rows.size(), maps.size(), out.size());
  detail::augment_batch_impl(exec, images, width, height, channels, rows, maps, scale, out);
}

}  // namespace gpukit::train

#if defined(__CUDACC__)
#include "gpukit/train/augment.cuh"
#endif
