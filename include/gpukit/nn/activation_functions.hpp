// gpukit/nn/activation_functions.hpp — the activations as per-element functions shared by
// the CPU loops and the GPU kernels, and their derivatives written in terms of the
// activation's *output* y, which is what a layer keeps for its backward pass:
//   relu:    y = max(z, 0),        dy/dz = [y > 0]
//   sigmoid: y = 1 / (1 + e^-z),   dy/dz = y (1 - y)
//   tanh:    y = tanh z,           dy/dz = 1 - y²
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/config.hpp"

#include <cuda/std/cmath>

namespace gpukit::nn {

enum class activation { none, relu, sigmoid, tanh };

/// "relu", "sigmoid", "tanh" or "linear".
inline const char* activation_name(activation a) noexcept {
  switch (a) {
    case activation::relu: return "relu";
    case activation::sigmoid: return "sigmoid";
    case activation::tanh: return "tanh";
    default: return "linear";
  }
}

namespace detail {

/// The logistic function without overflow for either sign of z.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T stable_sigmoid(T z) {
  if (z >= T(0)) return T(1) / (T(1) + cuda::std::exp(-z));
  const T e = cuda::std::exp(z);
  return e / (T(1) + e);
}

template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T activate(activation a, T z) {
  switch (a) {
    case activation::relu: return z > T(0) ? z : T(0);
    case activation::sigmoid: return stable_sigmoid(z);
    case activation::tanh: return cuda::std::tanh(z);
    default: return z;
  }
}

/// dy/dz from y = activate(a, z).
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T activation_slope(activation a, T y) {
  switch (a) {
    case activation::relu: return y > T(0) ? T(1) : T(0);
    case activation::sigmoid: return y * (T(1) - y);
    case activation::tanh: return T(1) - y * y;
    default: return T(1);
  }
}

}  // namespace detail
}  // namespace gpukit::nn
