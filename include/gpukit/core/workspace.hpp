// gpukit/core/workspace.hpp — reusable temporary device memory for one stream.
//
// Reductions and scans need scratch memory. Without a workspace each GPU call allocates it
// stream-ordered (cudaMallocAsync: cheap, but a sizing pass and an allocation of host work
// per call). A cuda_executor made with a workspace reuses one allocation that grows on
// demand, so a loop of small reductions costs what a hand-written CUB loop costs.
//
// Contract: a workspace belongs to one stream (the one it was made on), and an executor
// may carry it only on that stream; its memory is reused by the next op on the stream, so
// ops using it are ordered by the stream itself. Not thread-safe: one host thread at a time.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/stream.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>

namespace gpukit {

class workspace {
 public:
  /// A workspace for `s`, with `initial_bytes` allocated up front (0: on first use).
  explicit workspace(stream_view s, std::size_t initial_bytes = 0) : buffer_(initial_bytes, s) {}

  stream_view stream() const noexcept { return buffer_.stream(); }
  std::size_t capacity() const noexcept { return buffer_.size(); }
  void* data() noexcept { return buffer_.data(); }

  /// At least `bytes` of scratch, stream-ordered: growing frees the old block on the stream
  /// (after the work already queued there) and allocates a larger one (1.5x, to amortise).
  void* reserve(std::size_t bytes) {
    if (bytes > buffer_.size()) {
      // Half again, saturating: a sum that wrapped would hand out a block smaller than asked.
      const std::size_t grown = bytes + std::min(bytes / 2, std::numeric_limits<std::size_t>::max() - bytes);
      buffer_ = device_buffer<unsigned char>(grown, buffer_.stream());
    }
    return buffer_.data();
  }

 private:
  device_buffer<unsigned char> buffer_;
};

}  // namespace gpukit
