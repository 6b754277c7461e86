// gpukit/train/loader.hpp — batches of a decoded image set, in a seeded order per epoch,
// as the float NCHW input and the targets of a model.
//
//   train::image_set set = cache;                                  // an io::image_cache (or any set)
//   train::epoch_plan plan = train::plan_epoch(set, seed, epoch, /*shuffle*/ true, aug);
//   train::load_batch(cpu, set, plan, first, count, aug.rescale, x, y, features);   // CPU
//
// An epoch visits every image exactly once, in io::epoch_order(n, seed, epoch) (or in
// index order without shuffling); plan.rows[p] is the image at position p and plan.maps[p]
// its augmentation (augment.hpp), drawn from (seed, epoch, image index). Targets: for a
// model with one output, the label itself; with k > 1 outputs, the one-hot row of the
// label (a class index below k).
//
// On the GPU (loader.cuh) batches go through two slots of pinned host memory and two of
// device memory: the host fills slot s while the device computes on the other, the copy
// runs on a second stream ordered by events (never a device-wide synchronisation), and
// the augmentation kernel reads the slot on the model's stream. The images travel either
// per batch through the slots (residency::staged, any set that fits in host memory) or
// once, whole, to the device (residency::device: only the indices, maps and targets
// travel per batch).
// Host-compilable; the GPU loader is in loader.cuh (nvcc), included from here under nvcc.
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/io/dataset.hpp"
#include "gpukit/train/augment.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace gpukit::train {

/// A non-owning view of decoded images and their labels: `count` images of height × width ×
/// channels bytes (NHWC) and one label (a class index as a float) per image. Whatever it
/// views must outlive it.
struct image_set {
  host_span<const std::uint8_t> pixels;
  host_span<const float> labels;
  std::size_t count = 0, width = 0, height = 0, channels = 3;

  image_set() = default;
  image_set(host_span<const std::uint8_t> pixels_, host_span<const float> labels_, std::size_t width_,
            std::size_t height_, std::size_t channels_ = 3)
      : pixels(pixels_), labels(labels_), count(labels_.size()), width(width_), height(height_), channels(channels_) {
    constexpr const char* where = "gpukit::train::image_set";
    gpukit::detail::require(width >= 1 && height >= 1 && channels >= 1 && channels <= 4, where,
                            "image size " + std::to_string(width) + " x " + std::to_string(height) + " x " +
                                std::to_string(channels) + " is empty or has more than 4 channels");
    gpukit::detail::require(pixels.size() == count * image_bytes(), where,
                            "argument 'pixels' has " + std::to_string(pixels.size()) + " bytes, " +
                                std::to_string(count) + " labelled images of " + std::to_string(image_bytes()) +
                                " bytes need " + std::to_string(count * image_bytes()));
  }
  /// A view of an io::image_cache.
  image_set(const io::image_cache& cache)  // NOLINT: implicit by design
      : image_set(cache.pixels(), cache.labels(), cache.width(), cache.height(), cache.channels()) {}

  std::size_t image_bytes() const noexcept { return width * height * channels; }
};

/// One epoch: which image each position holds and, when augmenting, how it is transformed.
struct epoch_plan {
  std::vector<std::uint32_t> rows;  ///< image index per position (a permutation of [0, n))
  std::vector<sample_map> maps;     ///< per position; empty: rescale only
};

/// The plan of epoch `epoch`: shuffled by io::epoch_order(n, seed, epoch) or in index
/// order; maps drawn from (seed, epoch, image index) when aug.enabled.
inline epoch_plan plan_epoch(const image_set& set, std::uint64_t seed, std::uint64_t epoch, bool shuffle,
                             const augment_options& aug) {
  check_augment_options(aug, "gpukit::train::plan_epoch");
  gpukit::detail::require(set.count <= 0xffffffffu, "gpukit::train::plan_epoch",
                          "the set has " + std::to_string(set.count) + " images, more than 2^32 - 1");
  epoch_plan plan;
  plan.rows.resize(set.count);
  if (shuffle) {
    const std::vector<std::size_t> order = io::epoch_order(set.count, seed, epoch);
    for (std::size_t p = 0; p < set.count; ++p) plan.rows[p] = static_cast<std::uint32_t>(order[p]);
  } else {
    for (std::size_t p = 0; p < set.count; ++p) plan.rows[p] = static_cast<std::uint32_t>(p);
  }
  if (aug.enabled) {
    plan.maps.resize(set.count);
    for (std::size_t p = 0; p < set.count; ++p)
      plan.maps[p] = make_sample_map(draw_augmentation(aug, seed, epoch, plan.rows[p]), set.width, set.height);
  }
  return plan;
}

/// Batches of an epoch of `n` images: ceil(n / batch); the last one may be partial.
inline std::size_t batch_count(std::size_t n, std::size_t batch) noexcept { return (n + batch - 1) / batch; }

namespace detail {

/// Checks that every label fits a model with `features` outputs (0 or 1 for one output, a
/// class index below `features` otherwise), naming the first that does not.
inline void check_labels(const image_set& set, std::size_t features, const char* where, const char* which) {
  for (std::size_t i = 0; i < set.count; ++i) {
    const float l = set.labels[i];
    const bool ok = features == 1 ? (l == 0.0f || l == 1.0f)
                                  : (l >= 0.0f && l < static_cast<float>(features) && l == static_cast<float>(static_cast<long>(l)));
    gpukit::detail::require(ok, where,
                            std::string("argument '") + which + "' has label " + std::to_string(l) + " at image " +
                                std::to_string(i) + "; a model with " + std::to_string(features) + " output" +
                                (features == 1 ? " needs labels 0 or 1" : "s needs class indices below that"));
  }
}

/// The targets of positions [first, first + count) into y (count × features floats).
inline void write_targets(const image_set& set, const epoch_plan& plan, std::size_t first, std::size_t count,
                          std::size_t features, float* y) {
  if (features == 1) {
    for (std::size_t i = 0; i < count; ++i) y[i] = set.labels[plan.rows[first + i]];
    return;
  }
  std::memset(y, 0, count * features * sizeof(float));
  for (std::size_t i = 0; i < count; ++i) y[i * features + static_cast<std::size_t>(set.labels[plan.rows[first + i]])] = 1.0f;
}

inline void check_range(const image_set& set, const epoch_plan& plan, std::size_t first, std::size_t count,
                        const char* where) {
  gpukit::detail::require(plan.rows.size() == set.count && (plan.maps.empty() || plan.maps.size() == set.count), where,
                          "argument 'plan' was made for another set (" + std::to_string(plan.rows.size()) +
                              " positions, the set has " + std::to_string(set.count) + " images)");
  gpukit::detail::require(count >= 1 && first <= set.count && count <= set.count - first, where,
                          "positions [" + std::to_string(first) + ", " + std::to_string(first + count) +
                              ") are not a non-empty range of the " + std::to_string(set.count) + " images");
}

}  // namespace detail

/// CPU: x (count × channels × height × width) and y (count × features) for positions
/// [first, first + count) of `plan`, augmented through plan.maps (if any) and rescaled.
inline void load_batch(const cpu_executor& exec, const image_set& set, const epoch_plan& plan, std::size_t first,
                       std::size_t count, float rescale, host_span<float> x, host_span<float> y, std::size_t features) {
  constexpr const char* where = "gpukit::train::load_batch";
  detail::check_range(set, plan, first, count, where);
  gpukit::detail::require(y.size() == count * features, where,
                          "argument 'y' has " + std::to_string(y.size()) + " elements, " + std::to_string(count) +
                              " samples of " + std::to_string(features) + " targets need " +
                              std::to_string(count * features));
  const auto rows = host_span<const std::uint32_t>(plan.rows.data() + first, count);
  const auto maps = plan.maps.empty() ? host_span<const sample_map>() : host_span<const sample_map>(plan.maps.data() + first, count);
  augment_batch(exec, set.pixels, set.width, set.height, set.channels, rows, maps, rescale, x);
  detail::write_targets(set, plan, first, count, features, y.data());
}

/// Where a GPU loader keeps the uint8 images.
enum class residency {
  automatic,  ///< device when the set takes at most a quarter of the free device memory
  staged,     ///< host memory; each batch's images are copied through the pinned slots
  device,     ///< copied to the device once; batches gather there
};

}  // namespace gpukit::train

#if defined(__CUDACC__)
#include "gpukit/train/loader.cuh"
#endif
