// gpukit/nn/tensor.hpp — NCHW tensors for the nn layers.
//
//   shape4            — (n, c, h, w); a flat feature vector is (n, f, 1, 1).
//   tensor_view<T, S> — a non-owning, contiguous NCHW view of memory in space S.
//   tensor<T, S>      — owns its memory: host_buffer (host) or device_buffer (device).
//
// The layers take views; a tensor converts to a view implicitly. The CPU path works for
// any floating T (tests run it in double); the GPU path takes float. Shapes are checked by
// every layer before anything is written (std::invalid_argument naming the argument and
// both shapes).
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/host_buffer.hpp"
#include "gpukit/core/span.hpp"

#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

namespace gpukit::nn {

namespace detail {
using gpukit::detail::require;
}  // namespace detail

struct shape4 {
  std::size_t n = 0, c = 0, h = 0, w = 0;

  constexpr std::size_t size() const noexcept { return n * c * h * w; }
  /// Elements of one sample: c·h·w.
  constexpr std::size_t features() const noexcept { return c * h * w; }
  /// The same sample shape with another batch size.
  constexpr shape4 with_batch(std::size_t batch) const noexcept { return {batch, c, h, w}; }

  friend constexpr bool operator==(const shape4& a, const shape4& b) noexcept {
    return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
  }
  friend constexpr bool operator!=(const shape4& a, const shape4& b) noexcept { return !(a == b); }
};

/// "(2, 3, 64, 64)".
inline std::string to_string(const shape4& s) {
  return "(" + std::to_string(s.n) + ", " + std::to_string(s.c) + ", " + std::to_string(s.h) + ", " +
         std::to_string(s.w) + ")";
}

/// A contiguous NCHW view: element (n, c, h, w) lives at data[((n·C + c)·H + h)·W + w].
template <class T, memory_space Space>
struct tensor_view {
  T* data = nullptr;
  shape4 shape{};

  constexpr std::size_t size() const noexcept { return shape.size(); }
  constexpr bool empty() const noexcept { return shape.size() == 0; }
  constexpr gpukit::span<T, Space> span() const noexcept { return {data, shape.size()}; }
  /// The view of samples [first, first + count) (the caller keeps it inside).
  constexpr tensor_view batch_slice(std::size_t first, std::size_t count) const noexcept {
    return {data + first * shape.features(), shape.with_batch(count)};
  }
  template <class U = T, class = std::enable_if_t<!std::is_const_v<U>>>
  constexpr operator tensor_view<const U, Space>() const noexcept {  // NOLINT: implicit by design
    return {data, shape};
  }
};

template <class T>
using host_tensor_view = tensor_view<T, memory_space::host>;
template <class T>
using device_tensor_view = tensor_view<T, memory_space::device>;

/// A view of `s` as a tensor of `shape`; s.size() must equal shape.size().
template <class T, memory_space S>
tensor_view<T, S> make_tensor_view(span<T, S> s, shape4 shape) {
  detail::require(s.size() == shape.size(), "gpukit::nn::make_tensor_view",
                  "argument 's' has " + std::to_string(s.size()) + " elements, shape " + to_string(shape) + " needs " +
                      std::to_string(shape.size()));
  return {s.data(), shape};
}

/// An owning tensor. Move-only, uninitialised unless asked (like the buffers it holds).
template <class T, memory_space Space>
class tensor {
 public:
  using buffer_type = std::conditional_t<Space == memory_space::host, host_buffer<T>, device_buffer<T>>;

  tensor() = default;
  /// `shape.size()` uninitialised elements; device memory is allocated on `s`.
  explicit tensor(shape4 shape, stream_view s = {}) : buffer_(make(shape.size(), s)), shape_(shape) {}

  /// A tensor holding `values` (row-major NCHW); values.size() must equal shape.size().
  /// Device tensors are filled on `s` and ready once it has passed the copy.
  static tensor from_host(shape4 shape, const std::vector<T>& values, stream_view s = {}) {
    detail::require(values.size() == shape.size(), "gpukit::nn::tensor::from_host",
                    "argument 'values' has " + std::to_string(values.size()) + " elements, shape " + to_string(shape) +
                        " needs " + std::to_string(shape.size()));
    tensor t(shape, s);
    if constexpr (Space == memory_space::host) {
      for (std::size_t i = 0; i < values.size(); ++i) t.buffer_[i] = values[i];
    } else {
      t.buffer_.copy_from_host_async(make_host_span(values), s);
    }
    return t;
  }

  /// The contents as a vector (device tensors: waits for `s`).
  std::vector<T> to_host(stream_view s = {}) const {
    if constexpr (Space == memory_space::host) {
      return std::vector<T>(buffer_.begin(), buffer_.end());
    } else {
      return buffer_.to_host(s);
    }
  }

  const shape4& shape() const noexcept { return shape_; }
  std::size_t size() const noexcept { return shape_.size(); }
  T* data() noexcept { return buffer_.data(); }
  const T* data() const noexcept { return buffer_.data(); }
  tensor_view<T, Space> view() noexcept { return {buffer_.data(), shape_}; }
  tensor_view<const T, Space> view() const noexcept { return {buffer_.data(), shape_}; }
  gpukit::span<T, Space> span() noexcept { return buffer_.span(); }
  gpukit::span<const T, Space> span() const noexcept { return buffer_.span(); }
  operator tensor_view<T, Space>() noexcept { return view(); }                    // NOLINT: implicit by design
  operator tensor_view<const T, Space>() const noexcept { return view(); }        // NOLINT
  buffer_type& buffer() noexcept { return buffer_; }

  /// Gives the same elements another shape of the same size.
  void reshape(shape4 shape) {
    detail::require(shape.size() == shape_.size(), "gpukit::nn::tensor::reshape",
                    "argument 'shape' = " + to_string(shape) + " has " + std::to_string(shape.size()) +
                        " elements, the tensor " + to_string(shape_) + " has " + std::to_string(shape_.size()));
    shape_ = shape;
  }

 private:
  static buffer_type make(std::size_t count, stream_view s) {
    if constexpr (Space == memory_space::host) {
      (void)s;
      return host_buffer<T>(count);
    } else {
      return device_buffer<T>(count, s);
    }
  }

  buffer_type buffer_;
  shape4 shape_{};
};

template <class T>
using host_tensor = tensor<T, memory_space::host>;
using device_tensor = tensor<float, memory_space::device>;

/// The memory space an executor's layers work in.
template <class Exec>
inline constexpr memory_space space_of_v = is_gpu_executor_v<Exec> ? memory_space::device : memory_space::host;

/// The tensor type an executor's layers take.
template <class Exec, class T = float>
using tensor_for = tensor<T, space_of_v<Exec>>;

/// An uninitialised tensor in the executor's memory (allocated on its stream for CUDA).
template <class T = float>
host_tensor<T> make_tensor(const cpu_executor&, shape4 shape) {
  return host_tensor<T>(shape);
}
template <class T = float>
tensor<T, memory_space::device> make_tensor(const cuda_executor& exec, shape4 shape) {
  return tensor<T, memory_space::device>(shape, exec.stream());
}

/// Pass as an input-gradient argument to say "not wanted" (the first layer of a model).
struct no_grad_t {
  explicit constexpr no_grad_t() = default;
};
inline constexpr no_grad_t no_grad{};

}  // namespace gpukit::nn
