// gpukit/nn/detail/arguments.hpp — how the layer functions take their arguments, and the
// scratch memory their GPU paths borrow.
//
// Activations are tensors or tensor views; parameters and their gradients are spans or
// buffers (slices of a model's one parameter buffer). Both are normalised here and their
// memory space checked against the executor at compile time. Scratch comes from the
// executor's workspace when it has one (the sequential model reserves it once, so a
// training step allocates nothing), else from a stream-ordered allocation per call.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/workspace.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/tensor.hpp"
#include "gpukit/ops/detail/arguments.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

namespace gpukit::nn::detail {

using gpukit::detail::require;

/// Refuses `act` where a backward pass keeps only the activation's output (an activation
/// fused into a conv block, or given to dense_backward): the GELUs' slope needs the input.
inline void require_slope_from_output(const char* where, const char* argument, activation act) {
  require(slope_from_output(act), where,
          std::string("argument '") + argument + "' = " + activation_name(act) +
              ": its slope is not a function of its output; apply it as a layer of its own "
              "(activation_backward_at_input)");
}

template <class T, memory_space S>
tensor_view<const T, S> as_input_view(tensor_view<T, S> v) noexcept {
  return v;
}
template <class T, memory_space S>
tensor_view<const T, S> as_input_view(const tensor<T, S>& t) noexcept {
  return t.view();
}
template <class T, memory_space S>
tensor_view<T, S> as_output_view(tensor_view<T, S> v) noexcept {
  static_assert(!std::is_const_v<T>, "gpukit::nn: an output tensor must be writable");
  return v;
}
template <class T, memory_space S>
tensor_view<T, S> as_output_view(tensor<T, S>& t) noexcept {
  return t.view();
}

/// The read-only view an activation argument becomes, checked against the executor.
template <class Exec, class X>
auto input_view(const X& x) {
  auto v = as_input_view(x);
  static_assert(decltype(v.span())::space == space_of_v<Exec>,
                "gpukit::nn: memory does not match the executor: cpu_executor layers take host tensors, "
                "cuda_executor layers take device tensors");
  return v;
}
template <class Exec, class X>
auto output_view(X&& x) {
  auto v = as_output_view(x);
  static_assert(decltype(v.span())::space == space_of_v<Exec>,
                "gpukit::nn: memory does not match the executor: cpu_executor layers take host tensors, "
                "cuda_executor layers take device tensors");
  return v;
}
/// An input-gradient output, or an empty view for nn::no_grad.
template <class Exec, class T, class X>
tensor_view<T, space_of_v<Exec>> optional_output_view(X&& x) {
  if constexpr (std::is_same_v<std::decay_t<X>, no_grad_t>) {
    return {};
  } else {
    return output_view<Exec>(x);
  }
}

/// Parameter spans (weights, biases and their gradients).
template <class Exec, class P>
auto input_params(const P& p) {
  return gpukit::detail::input_for<Exec>(p);
}
template <class Exec, class P>
auto output_params(P&& p) {
  return gpukit::detail::output_for<Exec>(p);
}

inline void require_shape(const char* where, const char* arg, const shape4& got, const shape4& want) {
  require(got == want, where,
          std::string("argument '") + arg + "' has shape " + to_string(got) + ", expected " + to_string(want));
}
inline void require_count(const char* where, const char* arg, std::size_t got, std::size_t want) {
  require(got == want, where,
          std::string("argument '") + arg + "' has " + std::to_string(got) + " elements, expected " +
              std::to_string(want));
}
/// Kernels index with int dimensions and 64-bit offsets; argmax packs (row, column) in 16 bits each.
inline void require_dimension(const char* where, const char* what, std::size_t v, std::size_t limit = 65535) {
  require(v <= limit, where, std::string(what) + " = " + std::to_string(v) + " exceeds " + std::to_string(limit));
}

template <class Exec, class T>
constexpr void require_element_type() {
  static_assert(std::is_floating_point_v<T>, "gpukit::nn: layers take floating-point tensors");
  static_assert(!is_gpu_executor_v<Exec> || std::is_same_v<T, float>,
                "gpukit::nn: the GPU path takes float tensors (the CPU path also takes double)");
}

/// Byte offsets of the scratch regions one GPU call needs, 256-byte aligned.
struct scratch_plan {
  std::size_t bytes = 0;
  template <class T>
  std::size_t add(std::size_t count) {
    const std::size_t offset = (bytes + 255) / 256 * 256;
    bytes = offset + count * sizeof(T);
    return offset;
  }
};

/// Scratch device memory for one call: the executor's workspace (grown if needed) or a
/// stream-ordered allocation freed on the stream when this object dies.
class device_scratch {
 public:
  device_scratch(const cuda_executor& exec, std::size_t bytes) {
    if (bytes == 0) return;
    if (workspace* ws = exec.scratch()) {
      base_ = static_cast<unsigned char*>(ws->reserve(bytes));
    } else {
      owned_ = device_buffer<unsigned char>(bytes, exec.stream());
      base_ = owned_.data();
    }
  }
  template <class T>
  T* at(std::size_t offset) const noexcept {
    return reinterpret_cast<T*>(base_ + offset);
  }

 private:
  device_buffer<unsigned char> owned_;
  unsigned char* base_ = nullptr;
};

/// Whether the fast kernels' float4 loads may read or write at `p`.
inline bool aligned16(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

/// Threads for a CPU loop of `work` multiply-adds: one below a cut-off where a team costs more.
inline int cpu_threads_for(const cpu_executor& exec, double work) { return work < 32768.0 ? 1 : exec.threads(); }

}  // namespace gpukit::nn::detail
