// gpukit/ops/functors.hpp — the per-element functions behind the named ops. Each is a
// GPUKIT_HOST_DEVICE function object shared by the CPU and GPU paths, and usable directly
// with gpukit::transform. Floating-point math comes from libcu++ (cuda::std), which gives
// the same functions on host and device.
#pragma once

#include "gpukit/ops/detail/numeric.hpp"

#include <cuda/std/cmath>

namespace gpukit::fn {

using detail::narrow;
using detail::widen;

#define GPUKIT_BINARY_FUNCTOR(name, expr)                                          \
  struct name {                                                                    \
    template <class T>                                                             \
    GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(T a_, T b_) const {         \
      const auto a = widen(a_);                                                    \
      const auto b = widen(b_);                                                    \
      return narrow<T>(expr);                                                      \
    }                                                                              \
  };
#define GPUKIT_UNARY_FUNCTOR(name, expr)                                           \
  struct name {                                                                    \
    template <class T>                                                             \
    GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(T x_) const {               \
      const auto x = widen(x_);                                                    \
      return narrow<T>(expr);                                                      \
    }                                                                              \
  };

GPUKIT_BINARY_FUNCTOR(plus, a + b)
GPUKIT_BINARY_FUNCTOR(minus, a - b)
GPUKIT_BINARY_FUNCTOR(multiplies, a* b)
GPUKIT_BINARY_FUNCTOR(divides, a / b)
GPUKIT_BINARY_FUNCTOR(minimum, b < a ? b : a)  // first argument wins ties, like std::min
GPUKIT_BINARY_FUNCTOR(maximum, a < b ? b : a)
GPUKIT_BINARY_FUNCTOR(power, cuda::std::pow(a, b))
GPUKIT_UNARY_FUNCTOR(negate, -x)
GPUKIT_UNARY_FUNCTOR(absolute, x < decltype(x)(0) ? -x : x)
GPUKIT_UNARY_FUNCTOR(square_root, cuda::std::sqrt(x))
GPUKIT_UNARY_FUNCTOR(exponential, cuda::std::exp(x))
GPUKIT_UNARY_FUNCTOR(logarithm, cuda::std::log(x))
GPUKIT_UNARY_FUNCTOR(relu, x > decltype(x)(0) ? x : decltype(x)(0))
GPUKIT_UNARY_FUNCTOR(sigmoid, decltype(x)(1) / (decltype(x)(1) + cuda::std::exp(-x)))
GPUKIT_UNARY_FUNCTOR(hyperbolic_tangent, cuda::std::tanh(x))

#undef GPUKIT_BINARY_FUNCTOR
#undef GPUKIT_UNARY_FUNCTOR

/// alpha · x
template <class S>
struct scale_by {
  S alpha;
  template <class T>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(T x) const {
    return narrow<T>(alpha * widen(x));
  }
};

/// alpha · x + y
template <class S>
struct axpy_with {
  S alpha;
  template <class T>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(T x, T y) const {
    return narrow<T>(alpha * widen(x) + widen(y));
  }
};

/// a · b + c
struct fused_multiply_add {
  template <class T>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(T a, T b, T c) const {
    return narrow<T>(widen(a) * widen(b) + widen(c));
  }
};

/// min(max(x, lo), hi)
template <class C>
struct clamp_to {
  C lo, hi;
  template <class T>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(T x_) const {
    const C x = widen(x_);
    return narrow<T>(x < lo ? lo : (hi < x ? hi : x));
  }
};

/// static_cast<To>(x), through float for half/bfloat16.
template <class To>
struct cast_to {
  template <class From>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE To operator()(From x) const {
    return static_cast<To>(widen(x));
  }
};

/// x in the type ops compute in (float for half/bfloat16).
struct widened {
  template <class T>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE detail::compute_t<T> operator()(T x) const {
    return widen(x);
  }
};

/// The same value at every index.
template <class T>
struct constant {
  T value;
  template <class I>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(I) const {
    return value;
  }
};

/// start + i · step
template <class T>
struct arithmetic_sequence {
  T start, step;
  template <class I>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T operator()(I i) const {
    return narrow<T>(widen(start) + static_cast<detail::compute_t<T>>(i) * widen(step));
  }
};

}  // namespace gpukit::fn
