// gpukit/nn/activation_functions.hpp — the activations as per-element functions shared by
// the CPU loops and the GPU kernels, and their derivatives. Where it can, a layer keeps
// only an activation's *output* y for its backward pass, so the slope is written in y:
//   relu:        y = max(z, 0),            dy/dz = [y > 0]
//   leaky_relu:  y = z (z > 0), a·z else,  dy/dz = [y > 0] + a·[y <= 0]   (a >= 0)
//   sigmoid:     y = 1 / (1 + e^-z),       dy/dz = y (1 - y)
//   tanh:        y = tanh z,               dy/dz = 1 - y²
// GELU is not a function of its output (it is not monotonic below z ≈ -0.75), so its slope
// needs the input z (activation_slope_at_input); slope_from_output() says which is which:
//   gelu:       y = z·Φ(z) = z/2 · (1 + erf(z/√2)),           dy/dz = Φ(z) + z·φ(z)
//   gelu_tanh:  y = z/2 · (1 + tanh(√(2/π)·(z + 0.044715 z³)))  (PyTorch's approximate='tanh')
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/config.hpp"

#include <cuda/std/cmath>
#include <cuda/std/limits>
#include <math.h>  // ::erf, ::erff in host-and-device functions

namespace gpukit::nn {

enum class activation_kind : unsigned char { none, relu, sigmoid, tanh, leaky_relu, gelu, gelu_tanh };

/// An activation: its kind and, for leaky_relu, the slope below zero. activation::relu and
/// the other kinds without a parameter convert to it; activation::leaky_relu(a) makes one
/// with slope a (a >= 0 and finite; the layers check it). It converts back to its kind, so
/// `switch (act)` and `act == activation::relu` read the kind; two activations are equal
/// when kind and slope are.
struct activation {
  activation_kind kind = activation_kind::none;
  float negative_slope = 0.0f;  // leaky_relu only; 0 for every other kind

  static constexpr activation_kind none = activation_kind::none;
  static constexpr activation_kind relu = activation_kind::relu;
  static constexpr activation_kind sigmoid = activation_kind::sigmoid;
  static constexpr activation_kind tanh = activation_kind::tanh;
  static constexpr activation_kind gelu = activation_kind::gelu;
  static constexpr activation_kind gelu_tanh = activation_kind::gelu_tanh;
  static constexpr activation leaky_relu(float slope) noexcept { return {activation_kind::leaky_relu, slope}; }

  constexpr activation() noexcept = default;
  GPUKIT_HOST_DEVICE constexpr activation(activation_kind k) noexcept : kind(k) {}  // NOLINT: implicit on purpose
  GPUKIT_HOST_DEVICE constexpr activation(activation_kind k, float slope) noexcept
      : kind(k), negative_slope(k == activation_kind::leaky_relu ? slope : 0.0f) {}
  GPUKIT_HOST_DEVICE constexpr operator activation_kind() const noexcept { return kind; }  // NOLINT
};

GPUKIT_HOST_DEVICE constexpr bool operator==(activation a, activation b) noexcept {
  return a.kind == b.kind && a.negative_slope == b.negative_slope;
}
GPUKIT_HOST_DEVICE constexpr bool operator!=(activation a, activation b) noexcept { return !(a == b); }
GPUKIT_HOST_DEVICE constexpr bool operator==(activation a, activation_kind k) noexcept { return a.kind == k; }
GPUKIT_HOST_DEVICE constexpr bool operator==(activation_kind k, activation a) noexcept { return a.kind == k; }
GPUKIT_HOST_DEVICE constexpr bool operator!=(activation a, activation_kind k) noexcept { return a.kind != k; }
GPUKIT_HOST_DEVICE constexpr bool operator!=(activation_kind k, activation a) noexcept { return a.kind != k; }

/// "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh" or "linear".
inline const char* activation_name(activation a) noexcept {
  switch (a.kind) {
    case activation_kind::relu: return "relu";
    case activation_kind::leaky_relu: return "leaky_relu";
    case activation_kind::sigmoid: return "sigmoid";
    case activation_kind::tanh: return "tanh";
    case activation_kind::gelu: return "gelu";
    case activation_kind::gelu_tanh: return "gelu_tanh";
    default: return "linear";
  }
}

/// Whether the activation's slope is a function of its output (every kind but the GELUs):
/// only such an activation can be fused into the layer before it, whose backward pass
/// keeps the output alone.
GPUKIT_HOST_DEVICE constexpr bool slope_from_output(activation a) noexcept {
  return a.kind != activation_kind::gelu && a.kind != activation_kind::gelu_tanh;
}

namespace detail {

/// The logistic function without overflow for either sign of z.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T stable_sigmoid(T z) {
  if (z >= T(0)) return T(1) / (T(1) + cuda::std::exp(-z));
  const T e = cuda::std::exp(z);
  return e / (T(1) + e);
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE float erf_of(float x) { return ::erff(x); }
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double erf_of(double x) { return ::erf(x); }

constexpr double gelu_tanh_scale = 0.7978845608028654;  // √(2/π)
constexpr double gelu_tanh_cubic = 0.044715;

/// √(2/π)·(z + 0.044715 z³), the argument of tanh in the tanh approximation.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T gelu_tanh_argument(T z) {
  return T(gelu_tanh_scale) * (z + T(gelu_tanh_cubic) * z * z * z);
}

template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T activate(activation a, T z) {
  switch (a.kind) {
    case activation_kind::relu: return z > T(0) ? z : T(0);
    case activation_kind::leaky_relu: return z > T(0) ? z : T(a.negative_slope) * z;
    case activation_kind::sigmoid: return stable_sigmoid(z);
    case activation_kind::tanh: return cuda::std::tanh(z);
    case activation_kind::gelu: return T(0.5) * z * (T(1) + erf_of(z * T(0.7071067811865476)));
    case activation_kind::gelu_tanh: return T(0.5) * z * (T(1) + cuda::std::tanh(gelu_tanh_argument(z)));
    default: return z;
  }
}

/// An activation as a GEMM epilogue or a fused conv kernel applies it, once for each of the
/// many outputs a thread holds: none, relu and leaky_relu as one piecewise-linear form
/// (z > 0 ? z : below·z, below = 1, 0 or the slope), sigmoid and tanh by name, and nothing
/// else. The GELUs have no epilogue form (fits_epilogue is false): a layer runs its product
/// with no activation and then one elementwise pass of activate() over the output.
/// Why: a tile's epilogue stays the size it had before the GELUs (no erf or tanh of theirs
/// inlined per output, no call). It did not make the implicit-GEMM conv forward as fast as
/// before them (H100, batch 256, one call: allconv's second conv 62 us then, 113 us with
/// this; 101 us with the GELUs called, measured in another call): that slowdown has another
/// cause.
struct epilogue_activation {
  enum class form : unsigned char { piecewise_linear, sigmoid, tanh };
  form shape = form::piecewise_linear;
  float below = 1.0f;  // piecewise_linear: the slope where z <= 0 (0 exactly: relu)
};

/// Whether `a` has an epilogue form (every kind but the GELUs).
GPUKIT_HOST_DEVICE constexpr bool fits_epilogue(activation a) noexcept { return slope_from_output(a); }

/// The epilogue form of `a`; the identity for the GELUs (the layer's pass applies them).
GPUKIT_HOST_DEVICE constexpr epilogue_activation epilogue_form(activation a) noexcept {
  using f = epilogue_activation::form;
  switch (a.kind) {
    case activation_kind::relu: return {f::piecewise_linear, 0.0f};
    case activation_kind::leaky_relu: return {f::piecewise_linear, a.negative_slope};
    case activation_kind::sigmoid: return {f::sigmoid, 0.0f};
    case activation_kind::tanh: return {f::tanh, 0.0f};
    default: return {f::piecewise_linear, 1.0f};
  }
}

/// activate(a, z) for the `a` that `e` is the form of, bit for bit: relu gives 0 for every
/// z <= 0, -inf and NaN included, as activate does (so does leaky_relu(0), which activate
/// takes to 0·z).
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T apply(epilogue_activation e, T z) {
  switch (e.shape) {
    case epilogue_activation::form::sigmoid: return stable_sigmoid(z);
    case epilogue_activation::form::tanh: return cuda::std::tanh(z);
    default: return z > T(0) ? z : (e.below == 0.0f ? T(0) : T(e.below) * z);
  }
}

/// dy/dz from y = activate(a, z), for an activation with slope_from_output(a); NaN for the
/// GELUs, whose slope needs z (activation_slope_at_input), so that a misuse shows.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T activation_slope(activation a, T y) {
  switch (a.kind) {
    case activation_kind::relu: return y > T(0) ? T(1) : T(0);
    case activation_kind::leaky_relu: return y > T(0) ? T(1) : T(a.negative_slope);
    case activation_kind::sigmoid: return y * (T(1) - y);
    case activation_kind::tanh: return T(1) - y * y;
    case activation_kind::gelu:
    case activation_kind::gelu_tanh: return cuda::std::numeric_limits<T>::quiet_NaN();
    default: return T(1);
  }
}

/// dy/dz at the input z, for every activation.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T activation_slope_at_input(activation a, T z) {
  switch (a.kind) {
    case activation_kind::gelu: {
      const T cdf = T(0.5) * (T(1) + erf_of(z * T(0.7071067811865476)));
      const T pdf = T(0.3989422804014327) * cuda::std::exp(T(-0.5) * z * z);  // e^(-z²/2) / √(2π)
      return cdf + z * pdf;
    }
    case activation_kind::gelu_tanh: {
      const T t = cuda::std::tanh(gelu_tanh_argument(z));
      const T du = T(gelu_tanh_scale) * (T(1) + T(3.0 * gelu_tanh_cubic) * z * z);
      return T(0.5) * (T(1) + t) + T(0.5) * z * (T(1) - t * t) * du;
    }
    case activation_kind::leaky_relu: return z > T(0) ? T(1) : T(a.negative_slope);
    default: return activation_slope(a, activate(a, z));
  }
}

}  // namespace detail
}  // namespace gpukit::nn
