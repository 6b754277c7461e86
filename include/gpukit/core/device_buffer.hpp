// gpukit/core/device_buffer.hpp — device_buffer<T>: owning, typed, move-only device memory.
//
// - Allocated and freed stream-ordered (cudaMallocAsync / cudaFreeAsync) on the stream
//   given at construction; the memory may be used on other streams once the caller has
//   ordered them after that stream, and must not be used after the buffer dies.
// - Uninitialised unless asked: construct with gpukit::zero_init, or call set_zero().
// - Copies are explicit and take a stream (clone(), copy_from_host(), to_host()).
// - Never managed memory.
//
// Host-only: compiles with a plain C++17 compiler (the runtime API needs no nvcc).
#pragma once

#include "gpukit/core/device.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/core/stream.hpp"

#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace gpukit {

/// Tag asking a buffer constructor to zero the memory (on the buffer's stream).
struct zero_init_t {
  explicit zero_init_t() = default;
};
inline constexpr zero_init_t zero_init{};

namespace detail {

/// `count` elements of `elem_size` bytes, or std::invalid_argument if that overflows.
inline std::size_t checked_bytes(std::size_t count, std::size_t elem_size, const char* where) {
  require(elem_size == 0 || count <= std::numeric_limits<std::size_t>::max() / elem_size, where,
          "argument 'count' = " + std::to_string(count) + " elements of " + std::to_string(elem_size) +
              " bytes overflows the byte size");
  return count * elem_size;
}

/// Stream-ordered device allocation; an allocation failure becomes out_of_memory with the
/// requested and free byte counts, and leaves the runtime usable.
inline void* allocate_device(std::size_t bytes, stream_view s) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  const cudaError_t status = cudaMallocAsync(&p, bytes, s);
  if (status == cudaSuccess) return p;
  (void)cudaGetLastError();
  if (status == cudaErrorMemoryAllocation) {
    std::size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
    throw out_of_memory(bytes, free_b,
                        "gpukit: device allocation of " + std::to_string(bytes) + " bytes failed: " +
                            std::to_string(free_b) + " bytes free of " + std::to_string(total_b));
  }
  throw_cuda_error(status, "cudaMallocAsync(" + std::to_string(bytes) + " bytes)", __FILE__, __LINE__);
}

}  // namespace detail

template <class T>
class device_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "gpukit::device_buffer<T> needs a trivially copyable T");
  static_assert(!std::is_const_v<T> && !std::is_volatile_v<T>, "gpukit::device_buffer<T> needs an unqualified T");

 public:
  using value_type = T;

  /// An empty buffer (no allocation).
  device_buffer() noexcept = default;

  /// `count` uninitialised elements, allocated on `s`. Throws out_of_memory.
  explicit device_buffer(std::size_t count, stream_view s = {})
      : data_(static_cast<T*>(detail::allocate_device(detail::checked_bytes(count, sizeof(T), "gpukit::device_buffer"), s))),
        size_(count),
        stream_(s) {}

  /// `count` elements set to all-zero bytes, ordered on `s`.
  device_buffer(std::size_t count, stream_view s, zero_init_t) : device_buffer(count, s) { set_zero(); }

  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  device_buffer(device_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)), stream_(other.stream_) {}
  device_buffer& operator=(device_buffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      stream_ = other.stream_;
    }
    return *this;
  }
  /// Frees on the buffer's stream; work queued there before still sees valid memory.
  ~device_buffer() { release(); }

  /// A buffer holding a copy of `src` (host memory), copied on `s`. Returns once the
  /// source may be reused: pageable sources are staged by the runtime; for a pinned
  /// source, keep it alive and unchanged until `s` has passed the copy.
  static device_buffer from_host(host_span<const T> src, stream_view s = {}) {
    device_buffer b(src.size(), s);
    b.copy_from_host_async(src, s);
    return b;
  }
  static device_buffer from_host(const std::vector<T>& src, stream_view s = {}) {
    return from_host(make_host_span(src), s);
  }

  /// A deep copy on `s` (asynchronous).
  device_buffer clone(stream_view s) const {
    device_buffer b(size_, s);
    if (size_ != 0) GPUKIT_CUDA_TRY(cudaMemcpyAsync(b.data_, data_, bytes(), cudaMemcpyDeviceToDevice, s));
    return b;
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t bytes() const noexcept { return size_ * sizeof(T); }
  bool empty() const noexcept { return size_ == 0; }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  /// The stream the buffer was allocated on and will be freed on.
  stream_view stream() const noexcept { return stream_; }
  /// Moves the free onto `s`; the caller orders `s` after all other use of the memory.
  void set_stream(stream_view s) noexcept { stream_ = s; }

  device_span<T> span() noexcept { return {data_, size_}; }
  device_span<const T> span() const noexcept { return {data_, size_}; }
  operator device_span<T>() noexcept { return span(); }              // NOLINT: implicit by design
  operator device_span<const T>() const noexcept { return span(); }  // NOLINT

  /// Sets every byte to zero, ordered on `s` (the buffer's stream by default).
  void set_zero() { set_zero(stream_); }
  void set_zero(stream_view s) {
    if (size_ != 0) GPUKIT_CUDA_TRY(cudaMemsetAsync(data_, 0, bytes(), s));
  }

  /// Copies `src` into the buffer on `s`; src.size() must equal size(). Asynchronous
  /// (see from_host for what that means for the source's lifetime).
  void copy_from_host_async(host_span<const T> src, stream_view s) {
    require_same_size(src.size(), "copy_from_host_async", "src");
    if (size_ != 0) GPUKIT_CUDA_TRY(cudaMemcpyAsync(data_, src.data(), bytes(), cudaMemcpyHostToDevice, s));
  }
  /// Copies `src` into the buffer and waits for the copy to finish.
  void copy_from_host(host_span<const T> src, stream_view s = {}) {
    detail::in_operation("gpukit::device_buffer::copy_from_host", [&] {
      copy_from_host_async(src, s);
      s.synchronize();
    });
  }
  void copy_from_host(const std::vector<T>& src, stream_view s = {}) { copy_from_host(make_host_span(src), s); }

  /// Copies the buffer into `dst` on `s`; dst.size() must equal size(). The data is in
  /// `dst` once `s` has passed the copy.
  void copy_to_host_async(host_span<T> dst, stream_view s) const {
    require_same_size(dst.size(), "copy_to_host_async", "dst");
    if (size_ != 0) GPUKIT_CUDA_TRY(cudaMemcpyAsync(dst.data(), data_, bytes(), cudaMemcpyDeviceToHost, s));
  }
  /// Copies the buffer into `dst` and waits for the copy to finish. A failure of earlier
  /// work on `s` surfaces here as cuda_error naming this call.
  void copy_to_host(host_span<T> dst, stream_view s = {}) const {
    detail::in_operation("gpukit::device_buffer::copy_to_host", [&] {
      copy_to_host_async(dst, s);
      s.synchronize();
    });
  }
  /// The contents as a std::vector; waits for all work queued on `s` (a failure of that
  /// work surfaces here as cuda_error naming this call).
  std::vector<T> to_host(stream_view s = {}) const {
    std::vector<T> out(size_);
    detail::in_operation("gpukit::device_buffer::to_host", [&] {
      copy_to_host_async(make_host_span(out), s);
      s.synchronize();
    });
    return out;
  }

 private:
  void require_same_size(std::size_t other, const char* fn, const char* arg) const {
    detail::require(other == size_, (std::string("gpukit::device_buffer::") + fn).c_str(),
                    std::string("argument '") + arg + "' has " + std::to_string(other) + " elements, the buffer " +
                        std::to_string(size_));
  }
  void release() noexcept {
    if (data_ != nullptr) GPUKIT_CUDA_TRY_NOEXCEPT(cudaFreeAsync(data_, stream_));
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  stream_view stream_{};
};

}  // namespace gpukit
