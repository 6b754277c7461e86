// gpukit/core/span.hpp — typed, non-owning views of contiguous memory, tagged with the
// memory space they point into, so host memory cannot be handed to a GPU op by mistake
// (and the other way round) without an explicit conversion.
//
//   device_span<T>  — device memory; usable inside kernels (pass by value).
//   host_span<T>    — host memory (pageable or pinned).
//
// Element access is GPUKIT_HOST_DEVICE and unchecked (like std::span::operator[]).
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/config.hpp"

#include <cstddef>
#include <functional>
#include <type_traits>
#include <vector>

namespace gpukit {

enum class memory_space { host, device };

template <class T, memory_space Space>
class span {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using size_type = std::size_t;
  using pointer = T*;
  using reference = T&;
  static constexpr memory_space space = Space;

  constexpr span() noexcept = default;
  /// Views `size` elements at `data`, which must point into `Space` memory.
  GPUKIT_HOST_DEVICE constexpr span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}
  /// span<T> converts to span<const T> of the same space.
  template <class U, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
  GPUKIT_HOST_DEVICE constexpr span(const span<U, Space>& other) noexcept : data_(other.data()), size_(other.size()) {}

  GPUKIT_HOST_DEVICE constexpr T* data() const noexcept { return data_; }
  GPUKIT_HOST_DEVICE constexpr std::size_t size() const noexcept { return size_; }
  GPUKIT_HOST_DEVICE constexpr std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
  GPUKIT_HOST_DEVICE constexpr bool empty() const noexcept { return size_ == 0; }
  GPUKIT_HOST_DEVICE constexpr T& operator[](std::size_t i) const noexcept { return data_[i]; }
  GPUKIT_HOST_DEVICE constexpr T* begin() const noexcept { return data_; }
  GPUKIT_HOST_DEVICE constexpr T* end() const noexcept { return data_ + size_; }

  /// Elements [offset, offset + count). The caller guarantees the range is inside.
  GPUKIT_HOST_DEVICE constexpr span subspan(std::size_t offset, std::size_t count) const noexcept {
    return span(data_ + offset, count);
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

template <class T>
using device_span = span<T, memory_space::device>;
template <class T>
using host_span = span<T, memory_space::host>;

/// A host_span over a std::vector's elements (valid until the vector reallocates).
template <class T, class A>
host_span<T> make_host_span(std::vector<T, A>& v) noexcept {
  return host_span<T>(v.data(), v.size());
}
template <class T, class A>
host_span<const T> make_host_span(const std::vector<T, A>& v) noexcept {
  return host_span<const T>(v.data(), v.size());
}

namespace detail {
/// True when the byte ranges of `a` and `b` share at least one byte.
template <class T, class U, memory_space S1, memory_space S2>
bool overlaps(const span<T, S1>& a, const span<U, S2>& b) noexcept {
  if (S1 != S2 || a.empty() || b.empty()) return false;
  const auto* a0 = reinterpret_cast<const unsigned char*>(a.data());
  const auto* b0 = reinterpret_cast<const unsigned char*>(b.data());
  return std::less<const unsigned char*>{}(a0, b0 + b.size_bytes()) &&
         std::less<const unsigned char*>{}(b0, a0 + a.size_bytes());
}
}  // namespace detail

}  // namespace gpukit
