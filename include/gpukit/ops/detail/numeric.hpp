// gpukit/ops/detail/numeric.hpp — element types and the arithmetic type ops compute in.
//
// half and bfloat16 are storage types: ops widen them to float, compute, and round back
// once, on both executors, so the CPU and GPU paths agree.
#pragma once

#include "gpukit/core/config.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace gpukit {

using half = __half;
using bfloat16 = __nv_bfloat16;

namespace detail {

template <class T>
inline constexpr bool is_reduced_float_v = std::is_same_v<T, half> || std::is_same_v<T, bfloat16>;
template <class T>
inline constexpr bool is_floating_v = std::is_floating_point_v<T> || is_reduced_float_v<T>;
template <class T>
inline constexpr bool is_arithmetic_v = std::is_arithmetic_v<T> || is_reduced_float_v<T>;

/// The type an op computes in for elements of type T.
template <class T>
using compute_t = std::conditional_t<is_reduced_float_v<T>, float, T>;

template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE compute_t<T> widen(T x) {
  return static_cast<compute_t<T>>(x);
}
template <class T, class C>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T narrow(C x) {
  return static_cast<T>(x);
}

/// The type sums and dot products accumulate in and return: int64 for integers, float for
/// half/bfloat16, the type itself otherwise.
template <class T>
using sum_t = std::conditional_t<std::is_integral_v<T>, std::int64_t, compute_t<T>>;

}  // namespace detail
}  // namespace gpukit
