// gpukit/core/stream.hpp — streams and events.
//
// - stream_view: a non-owning handle to a cudaStream_t. A default-constructed view is the
//   per-thread default stream (cudaStreamPerThread), which does not serialise unrelated
//   threads the way the legacy stream 0 does.
// - stream: an owning, move-only stream (non-blocking with respect to stream 0).
// - event: an owning, move-only event, for ordering streams and for timing.
//
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/error.hpp"

#include <utility>

namespace gpukit {

/// Non-owning view of a CUDA stream. Cheap to copy; never destroys the stream.
class stream_view {
 public:
  /// The per-thread default stream.
  constexpr stream_view() noexcept = default;
  /// Views `s` (which the caller keeps alive while the view is used).
  constexpr stream_view(cudaStream_t s) noexcept : stream_(s) {}  // NOLINT: implicit by design

  constexpr cudaStream_t value() const noexcept { return stream_; }
  constexpr operator cudaStream_t() const noexcept { return stream_; }  // NOLINT

  /// Blocks the calling thread until all work queued on the stream has finished; throws
  /// cuda_error if any of it failed.
  void synchronize() const { GPUKIT_CUDA_TRY(cudaStreamSynchronize(stream_)); }

  /// True when all queued work has finished (cudaStreamQuery), without blocking.
  bool ready() const {
    const cudaError_t status = cudaStreamQuery(stream_);
    if (status == cudaErrorNotReady) {
      (void)cudaGetLastError();
      return false;
    }
    GPUKIT_CUDA_TRY(status);
    return true;
  }

  friend constexpr bool operator==(stream_view a, stream_view b) noexcept { return a.stream_ == b.stream_; }
  friend constexpr bool operator!=(stream_view a, stream_view b) noexcept { return a.stream_ != b.stream_; }

 private:
  cudaStream_t stream_ = cudaStreamPerThread;
};

/// An owning CUDA stream on the current device. Move-only; destroying it lets queued work
/// finish (cudaStreamDestroy does not block) and never throws.
class stream {
 public:
  /// Creates a non-blocking stream (no implicit ordering with the legacy stream 0).
  stream() { GPUKIT_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  stream(stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  stream& operator=(stream&& other) noexcept {
    if (this != &other) {
      reset();
      stream_ = std::exchange(other.stream_, nullptr);
    }
    return *this;
  }
  ~stream() { reset(); }

  /// A view of this stream; valid while the stream lives. A moved-from stream has no
  /// stream to view and throws std::logic_error here.
  stream_view view() const {
    if (stream_ == nullptr) throw std::logic_error("gpukit::stream::view: the stream was moved from");
    return stream_view(stream_);
  }
  operator stream_view() const { return view(); }  // NOLINT: implicit by design
  /// The raw handle, for CUDA runtime calls and <<<>>> launches.
  cudaStream_t value() const { return view().value(); }
  operator cudaStream_t() const { return value(); }  // NOLINT: implicit by design
  void synchronize() const { view().synchronize(); }

 private:
  void reset() noexcept {
    if (stream_ != nullptr) GPUKIT_CUDA_TRY_NOEXCEPT(cudaStreamDestroy(stream_));
    stream_ = nullptr;
  }
  cudaStream_t stream_ = nullptr;
};

/// An owning CUDA event. Move-only. Timing is enabled unless `timing` is false (events
/// without timing are cheaper for pure ordering).
class event {
 public:
  explicit event(bool timing = true) {
    GPUKIT_CUDA_TRY(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
  }
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  event(event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  event& operator=(event&& other) noexcept {
    if (this != &other) {
      reset();
      event_ = std::exchange(other.event_, nullptr);
    }
    return *this;
  }
  ~event() { reset(); }

  cudaEvent_t value() const noexcept { return event_; }

  /// Captures the work queued on `s` so far.
  void record(stream_view s) { GPUKIT_CUDA_TRY(cudaEventRecord(checked(), s)); }
  /// Makes future work on `s` wait for this event (does not block the host).
  void wait_on(stream_view s) const { GPUKIT_CUDA_TRY(cudaStreamWaitEvent(s, checked(), 0)); }
  /// Blocks the host until the recorded work has finished.
  void synchronize() const { GPUKIT_CUDA_TRY(cudaEventSynchronize(checked())); }
  /// Milliseconds between `start` and `stop`, both recorded and complete (synchronise first).
  static float elapsed_ms(const event& start, const event& stop) {
    float ms = 0.0f;
    GPUKIT_CUDA_TRY(cudaEventElapsedTime(&ms, start.checked(), stop.checked()));
    return ms;
  }

 private:
  cudaEvent_t checked() const {
    if (event_ == nullptr) throw std::logic_error("gpukit::event: the event was moved from");
    return event_;
  }
  void reset() noexcept {
    if (event_ != nullptr) GPUKIT_CUDA_TRY_NOEXCEPT(cudaEventDestroy(event_));
    event_ = nullptr;
  }
  cudaEvent_t event_ = nullptr;
};

}  // namespace gpukit
