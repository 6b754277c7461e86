// gpukit/train/loader.cuh — the GPU batch loader (see loader.hpp): two pinned host slots,
// two device slots, a copy stream and events, so that filling batch k + 1 on the host and
// copying it overlap the model's work on batch k. Needs nvcc.
//
//   train::device_loader in(exec, set, max_batch, features, train::residency::automatic);
//   in.stage(0, plan, 0, b);                            // host: fill slot 0, queue its copy
//   for each batch k in slot s = k % 2:
//     if there is a next batch: in.stage(1 - s, plan, next, count);
//     in.wait(s);                                       // model stream waits for slot s's copy
//     in.queue_augment(s, count, scale, x);             // model stream (capturable)
//     ... the model's step on x and in.targets(s, count) ...
//     in.release(s);                                    // slot s may be refilled after this
//
// Ordering, per slot s: stage() waits on the host for the previous copy out of pinned slot
// s (so the host never overwrites bytes in flight), and the copy stream waits for
// release(s)'s event (so the copy never overwrites a device slot a queued step still
// reads). Nothing else synchronises: the host runs at most two batches ahead.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/train/loader.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/core/device.hpp"
#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/host_buffer.hpp"
#include "gpukit/core/stream.hpp"
#include "gpukit/train/augment.hpp"
#include "gpukit/train/loader.hpp"

#include <array>
#include <cstring>

namespace gpukit::train {

class device_loader {
 public:
  static constexpr int slots = 2;

  /// A loader for batches of up to `max_batch` images of `set` (which must outlive it)
  /// with `features` targets per image, for the model running on `exec`'s stream. With
  /// residency::device (or automatic, when it fits) the whole set is copied to the device
  /// here (waits for that copy).
  device_loader(const cuda_executor& exec, const image_set& set, std::size_t max_batch, std::size_t features,
                residency where = residency::automatic)
      : exec_(exec), set_(set), max_batch_(max_batch), features_(features) {
    constexpr const char* who = "gpukit::train::device_loader";
    gpukit::detail::require(max_batch >= 1 && features >= 1, who,
                            "arguments 'max_batch' = " + std::to_string(max_batch) + " and 'features' = " +
                                std::to_string(features) + " must be at least 1");
    gpukit::detail::require(set.count >= 1, who, "argument 'set' holds no image");
    const std::size_t set_bytes = set.count * set.image_bytes();
    resident_ = where == residency::device ||
                (where == residency::automatic && set_bytes <= device_memory_info().free_bytes / 4);
    targets_off_ = 0;
    rows_off_ = align(targets_off_ + max_batch * features * sizeof(float));
    maps_off_ = align(rows_off_ + max_batch * sizeof(std::uint32_t));
    pixels_off_ = align(maps_off_ + max_batch * sizeof(sample_map));
    const std::size_t slot_bytes = pixels_off_ + (resident_ ? 0 : max_batch * set.image_bytes());
    for (auto& s : slot_) {
      s.host = host_buffer<std::uint8_t>(slot_bytes, host_memory::pinned);
      s.device = device_buffer<std::uint8_t>(slot_bytes, exec.stream());
    }
    if (resident_) {
      images_ = device_buffer<std::uint8_t>(set_bytes, exec.stream());
      images_.copy_from_host(set.pixels, exec.stream());  // waits
    } else {
      // Rows of a staged slot index its own pixels: 0, 1, 2, ... once and for all.
      for (auto& s : slot_) {
        auto* rows = reinterpret_cast<std::uint32_t*>(s.host.data() + rows_off_);
        for (std::size_t i = 0; i < max_batch; ++i) rows[i] = static_cast<std::uint32_t>(i);
      }
    }
    exec.synchronize();  // the slots' stream-ordered allocations, before the copy stream uses them
  }

  bool resident() const noexcept { return resident_; }
  std::size_t max_batch() const noexcept { return max_batch_; }

  /// Host: fills slot `s` with positions [first, first + count) of `plan` and queues its
  /// copy to the device on the copy stream.
  void stage(int s, const epoch_plan& plan, std::size_t first, std::size_t count) {
    constexpr const char* who = "gpukit::train::device_loader::stage";
    check_slot(s, who);
    detail::check_range(set_, plan, first, count, who);
    gpukit::detail::require(count <= max_batch_, who,
                            "argument 'count' = " + std::to_string(count) + " exceeds the loader's max_batch " +
                                std::to_string(max_batch_));
    slot& sl = slot_[s];
    sl.copied.synchronize();  // the previous copy out of this pinned slot has finished
    std::uint8_t* h = sl.host.data();
    detail::write_targets(set_, plan, first, count, features_, reinterpret_cast<float*>(h + targets_off_));
    if (!plan.maps.empty()) std::memcpy(h + maps_off_, plan.maps.data() + first, count * sizeof(sample_map));
    std::size_t bytes = pixels_off_;
    if (resident_) {
      std::memcpy(h + rows_off_, plan.rows.data() + first, count * sizeof(std::uint32_t));
    } else {
      const std::size_t image_bytes = set_.image_bytes();
      const std::uint32_t* rows = plan.rows.data() + first;
#pragma omp parallel for schedule(static) if (count * image_bytes >= (1u << 20))
      for (std::int64_t i = 0; i < static_cast<std::int64_t>(count); ++i)
        std::memcpy(h + pixels_off_ + static_cast<std::size_t>(i) * image_bytes,
                    set_.pixels.data() + static_cast<std::size_t>(rows[i]) * image_bytes, image_bytes);
      bytes += count * image_bytes;
    }
    sl.with_maps = !plan.maps.empty();
    sl.count = count;
    sl.released.wait_on(copy_stream_);  // no queued step still reads the device slot
    GPUKIT_CUDA_TRY(cudaMemcpyAsync(sl.device.data(), h, bytes, cudaMemcpyHostToDevice, copy_stream_));
    sl.copied.record(copy_stream_);
  }

  /// Model stream: waits for slot `s`'s copy.
  void wait(int s) {
    check_slot(s, "gpukit::train::device_loader::wait");
    slot_[s].copied.wait_on(exec_.stream());
  }

  /// Model stream: the images of slot `s` (count of them, the staged count unless given)
  /// augmented (if the plan had maps) and rescaled into x (count × channels × h × w).
  /// Reads the slot's fixed device memory, so it may be captured into a graph and replayed
  /// after later stage() calls into the same slot.
  void queue_augment(int s, std::size_t count, float rescale, device_span<float> x, bool with_maps) {
    check_slot(s, "gpukit::train::device_loader::queue_augment");
    slot& sl = slot_[s];
    const std::uint8_t* d = sl.device.data();
    const auto images = resident_ ? device_span<const std::uint8_t>(images_.data(), images_.size())
                                  : device_span<const std::uint8_t>(d + pixels_off_, count * set_.image_bytes());
    const auto rows = device_span<const std::uint32_t>(reinterpret_cast<const std::uint32_t*>(d + rows_off_), count);
    const auto maps = with_maps ? device_span<const sample_map>(reinterpret_cast<const sample_map*>(d + maps_off_), count)
                                : device_span<const sample_map>();
    augment_batch(exec_, images, set_.width, set_.height, set_.channels, rows, maps, rescale, x);
  }

  /// Whether the last stage() into slot `s` carried augmentation maps, and how many images.
  bool staged_with_maps(int s) const { return slot_[static_cast<std::size_t>(s)].with_maps; }
  std::size_t staged_count(int s) const { return slot_[static_cast<std::size_t>(s)].count; }

  /// The targets of slot `s` in device memory (count × features floats; fixed address).
  device_span<float> targets(int s, std::size_t count) {
    check_slot(s, "gpukit::train::device_loader::targets");
    return {reinterpret_cast<float*>(slot_[s].device.data() + targets_off_), count * features_};
  }

  /// Model stream: slot `s` may be overwritten by a copy once the stream passes this point.
  void release(int s) {
    check_slot(s, "gpukit::train::device_loader::release");
    slot_[s].released.record(exec_.stream());
  }

 private:
  struct slot {
    host_buffer<std::uint8_t> host;
    device_buffer<std::uint8_t> device;
    event copied{false}, released{false};
    bool with_maps = false;
    std::size_t count = 0;
  };

  static std::size_t align(std::size_t v) { return (v + 255) / 256 * 256; }
  void check_slot(int s, const char* who) const {
    gpukit::detail::require(s >= 0 && s < slots, who, "argument 'slot' = " + std::to_string(s) + " is not 0 or 1");
  }

  cuda_executor exec_;
  image_set set_;
  std::size_t max_batch_ = 0, features_ = 1;
  bool resident_ = false;
  std::size_t targets_off_ = 0, rows_off_ = 0, maps_off_ = 0, pixels_off_ = 0;
  stream copy_stream_;
  std::array<slot, slots> slot_;
  device_buffer<std::uint8_t> images_;
};

}  // namespace gpukit::train
