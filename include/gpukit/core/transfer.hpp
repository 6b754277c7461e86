// gpukit/core/transfer.hpp — explicit copies between any two spans (host↔device,
// device↔device, host↔host), ordered on a stream.
//
// Contract: dst.size() == src.size() (std::invalid_argument otherwise, nothing copied);
// the ranges must not overlap. Host-to-host copies are done by the calling thread at
// once (no GPU needed). transfer_async returns once the copy is queued (for pageable
// host memory the runtime may block while it stages); transfer waits for it to finish.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/core/stream.hpp"

#include <cstring>
#include <string>
#include <type_traits>

namespace gpukit {

namespace detail {
constexpr cudaMemcpyKind copy_kind(memory_space dst, memory_space src) noexcept {
  if (src == memory_space::host) return dst == memory_space::host ? cudaMemcpyHostToHost : cudaMemcpyHostToDevice;
  return dst == memory_space::host ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
}
}  // namespace detail

template <class T, memory_space DstSpace, class U, memory_space SrcSpace>
void transfer_async(span<T, DstSpace> dst, span<U, SrcSpace> src, stream_view s) {
  static_assert(std::is_same_v<std::remove_cv_t<U>, T>, "gpukit::transfer: source and destination element types differ");
  detail::require(dst.size() == src.size(), "gpukit::transfer",
                  "argument 'dst' has " + std::to_string(dst.size()) + " elements, 'src' " + std::to_string(src.size()));
  detail::require(!detail::overlaps(dst, src), "gpukit::transfer", "arguments 'dst' and 'src' overlap");
  if (dst.empty()) return;
  if constexpr (DstSpace == memory_space::host && SrcSpace == memory_space::host) {
    std::memcpy(dst.data(), src.data(), dst.size_bytes());  // needs no GPU; the caller orders it after GPU writers
  } else {
    GPUKIT_CUDA_TRY(cudaMemcpyAsync(dst.data(), src.data(), dst.size_bytes(), detail::copy_kind(DstSpace, SrcSpace), s));
  }
}

template <class T, memory_space DstSpace, class U, memory_space SrcSpace>
void transfer(span<T, DstSpace> dst, span<U, SrcSpace> src, stream_view s = {}) {
  detail::in_operation("gpukit::transfer", [&] {
    transfer_async(dst, src, s);
    if constexpr (DstSpace != memory_space::host || SrcSpace != memory_space::host) s.synchronize();
  });
}

}  // namespace gpukit
