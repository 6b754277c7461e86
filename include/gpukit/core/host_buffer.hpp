// gpukit/core/host_buffer.hpp — host_buffer<T>: owning, typed, move-only host memory,
// either pageable (64-byte aligned) or pinned (page-locked, cudaMallocHost) for fast
// asynchronous transfers. Uninitialised unless asked, like device_buffer.
//
// Pinned memory is a scarce system resource and freeing it (cudaFreeHost) waits for the
// device: keep pinned buffers for staging that is reused, not for every temporary.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/span.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace gpukit {

enum class host_memory {
  pageable,  ///< ordinary memory (aligned_alloc); no GPU needed
  pinned,    ///< page-locked (cudaMallocHost); needs a usable CUDA device
};

template <class T>
class host_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "gpukit::host_buffer<T> needs a trivially copyable T");

 public:
  using value_type = T;
  static constexpr std::size_t alignment = 64;  // a cache line, and enough for any SIMD load

  host_buffer() noexcept = default;
  /// `count` uninitialised elements of the given kind. Throws out_of_memory.
  explicit host_buffer(std::size_t count, host_memory kind = host_memory::pageable) : kind_(kind) {
    const std::size_t bytes = detail::checked_bytes(count, sizeof(T), "gpukit::host_buffer");
    if (bytes != 0) data_ = static_cast<T*>(allocate(bytes, kind));
    size_ = count;
  }
  host_buffer(std::size_t count, host_memory kind, zero_init_t) : host_buffer(count, kind) {
    if (size_ != 0) std::memset(static_cast<void*>(data_), 0, bytes());
  }

  host_buffer(const host_buffer&) = delete;
  host_buffer& operator=(const host_buffer&) = delete;
  host_buffer(host_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), kind_(o.kind_) {}
  host_buffer& operator=(host_buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      kind_ = o.kind_;
    }
    return *this;
  }
  ~host_buffer() { release(); }

  std::size_t size() const noexcept { return size_; }
  std::size_t bytes() const noexcept { return size_ * sizeof(T); }
  bool empty() const noexcept { return size_ == 0; }
  host_memory kind() const noexcept { return kind_; }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }

  host_span<T> span() noexcept { return {data_, size_}; }
  host_span<const T> span() const noexcept { return {data_, size_}; }
  operator host_span<T>() noexcept { return span(); }              // NOLINT: implicit by design
  operator host_span<const T>() const noexcept { return span(); }  // NOLINT

 private:
  static void* allocate(std::size_t bytes, host_memory kind) {
    if (kind == host_memory::pinned) {
      void* p = nullptr;
      const cudaError_t status = cudaMallocHost(&p, bytes);
      if (status == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        throw out_of_memory(bytes, 0, "gpukit: pinned host allocation of " + std::to_string(bytes) + " bytes failed");
      }
      GPUKIT_CUDA_TRY(status);
      return p;
    }
    const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;  // aligned_alloc's rule
    void* p = std::aligned_alloc(alignment, rounded);
    if (p == nullptr) throw out_of_memory(bytes, 0, "gpukit: host allocation of " + std::to_string(bytes) + " bytes failed");
    return p;
  }
  void release() noexcept {
    if (data_ != nullptr) {
      if (kind_ == host_memory::pinned) {
        GPUKIT_CUDA_TRY_NOEXCEPT(cudaFreeHost(data_));
      } else {
        std::free(data_);
      }
    }
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  host_memory kind_ = host_memory::pageable;
};

}  // namespace gpukit
