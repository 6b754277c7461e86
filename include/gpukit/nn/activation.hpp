// gpukit/nn/activation.hpp — the activation layers on their own (after a conv2d or a
// dense layer they are fused into that layer instead).
//
//   nn::activation_forward(exec, act, x, y)                 y = act(x)
//   nn::activation_backward(exec, act, y, dy, dx)           dx = dy · act'(y), from the output y
//   nn::activation_backward_at_input(exec, act, x, dy, dx)  dx = dy · act'(x), from the input x
//
// Each is one pass of gpukit::transform (the elementwise op engine: cub::DeviceTransform on
// the GPU, OpenMP on the CPU). All tensors have the same shape (std::invalid_argument
// otherwise); dx is ASSIGNED and may alias dy; y may alias x. activation_backward refuses
// the GELUs (std::invalid_argument), whose slope is not a function of their output: their
// backward pass reads the input.
#pragma once

#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/tensor.hpp"
#include "gpukit/ops/transform.hpp"

namespace gpukit::nn {
namespace detail {

struct activate_fn {
  activation act;
  template <class T>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(T z) const {
    return activate(act, z);
  }
};

struct activation_backward_fn {
  activation act;
  template <class T>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(T y, T dy) const {
    return dy * activation_slope(act, y);
  }
};

struct activation_backward_at_input_fn {
  activation act;
  template <class T>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(T x, T dy) const {
    return dy * activation_slope_at_input(act, x);
  }
};

}  // namespace detail

template <class Exec, class X, class Y>
void activation_forward(const Exec& exec, activation act, const X& x, Y&& y) {
  constexpr const char* where = "gpukit::nn::activation_forward";
  const auto xv = detail::input_view<Exec>(x);
  auto yv = detail::output_view<Exec>(y);
  using T = std::remove_pointer_t<decltype(yv.data)>;
  detail::require_element_type<Exec, T>();
  detail::require_shape(where, "y", yv.shape, xv.shape);
  static constexpr const char* names[] = {"y", "x"};
  gpukit::detail::checked_transform(exec, where, names, yv.span(), detail::activate_fn{act}, xv.span());
}

template <class Exec, class Y, class DY, class DX>
void activation_backward(const Exec& exec, activation act, const Y& y, const DY& dy, DX&& dx) {
  constexpr const char* where = "gpukit::nn::activation_backward";
  const auto yv = detail::input_view<Exec>(y);
  const auto dyv = detail::input_view<Exec>(dy);
  auto dxv = detail::output_view<Exec>(dx);
  using T = std::remove_pointer_t<decltype(dxv.data)>;
  detail::require_element_type<Exec, T>();
  detail::require_slope_from_output(where, "act", act);
  detail::require_shape(where, "dy", dyv.shape, yv.shape);
  detail::require_shape(where, "dx", dxv.shape, yv.shape);
  static constexpr const char* names[] = {"dx", "y", "dy"};
  gpukit::detail::checked_transform(exec, where, names, dxv.span(), detail::activation_backward_fn{act}, yv.span(),
                                    dyv.span());
}

template <class Exec, class X, class DY, class DX>
void activation_backward_at_input(const Exec& exec, activation act, const X& x, const DY& dy, DX&& dx) {
  constexpr const char* where = "gpukit::nn::activation_backward_at_input";
  const auto xv = detail::input_view<Exec>(x);
  const auto dyv = detail::input_view<Exec>(dy);
  auto dxv = detail::output_view<Exec>(dx);
  using T = std::remove_pointer_t<decltype(dxv.data)>;
  detail::require_element_type<Exec, T>();
  detail::require_shape(where, "dy", dyv.shape, xv.shape);
  detail::require_shape(where, "dx", dxv.shape, xv.shape);
  static constexpr const char* names[] = {"dx", "x", "dy"};
  gpukit::detail::checked_transform(exec, where, names, dxv.span(), detail::activation_backward_at_input_fn{act},
                                    xv.span(), dyv.span());
}

}  // namespace gpukit::nn
