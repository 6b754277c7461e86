// gpukit/fractal/detail/strict_fp.hpp — floating-point operations that round exactly once
// each, the same way on the CPU and on the GPU.
//
// Why: the escape-time counts must not depend on where they were computed. nvcc fuses
// a*b+c into one FMA by default and g++ does the same when the target has FMA (-mfma,
// -march=native), so the same source would round differently on each side. Here every
// operation is explicit: on the device through the __*_rn intrinsics, which the compiler
// never contracts; on the host inside GPUKIT_STRICT_FP_BEGIN/END, which switches GCC's
// and clang's contraction off for the functions defined in between.
//
// What no header can undo: -ffast-math (host) or --use_fast_math (nvcc) let the compiler
// reorder and flush operations; renders then stay correct to the eye but are no longer
// bit-identical across devices.
//
// fused(a, b, c) = a·b + c rounded once, where an algorithm asks for an FMA (the article's
// numba-cuda kernel has two).
//
// twice_plus(t, c) = (t + t) + c uses an FMA on the device: 2t is exact, so fma(2, t, c)
// rounds once, exactly like the sum of the exact double and c. One instruction instead of two.
//
// Host-only header: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/config.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define GPUKIT_DETAIL_NV_PUSH _Pragma("nv_diagnostic push") _Pragma("nv_diag_suppress 1675")
#define GPUKIT_DETAIL_NV_POP _Pragma("nv_diagnostic pop")
#else
#define GPUKIT_DETAIL_NV_PUSH
#define GPUKIT_DETAIL_NV_POP
#endif

#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDA_ARCH__)
/// Opens a region whose functions GCC compiles without FMA contraction.
#define GPUKIT_STRICT_FP_BEGIN \
  GPUKIT_DETAIL_NV_PUSH _Pragma("GCC push_options") _Pragma("GCC optimize(\"fp-contract=off\")")
/// Closes the region opened by GPUKIT_STRICT_FP_BEGIN.
#define GPUKIT_STRICT_FP_END _Pragma("GCC pop_options") GPUKIT_DETAIL_NV_POP
#elif defined(__clang__) && !defined(__CUDACC__)
#define GPUKIT_STRICT_FP_BEGIN _Pragma("STDC FP_CONTRACT OFF")
#define GPUKIT_STRICT_FP_END _Pragma("STDC FP_CONTRACT DEFAULT")
#else
#define GPUKIT_STRICT_FP_BEGIN
#define GPUKIT_STRICT_FP_END
#endif

GPUKIT_STRICT_FP_BEGIN

namespace gpukit::fractal::detail {

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double mul(double a, double b) {
#if GPUKIT_DEVICE_PASS
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double add(double a, double b) {
#if GPUKIT_DEVICE_PASS
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double sub(double a, double b) {
#if GPUKIT_DEVICE_PASS
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double twice_plus(double t, double c) {
#if GPUKIT_DEVICE_PASS
  return __fma_rn(2.0, t, c);
#else
  return (t + t) + c;
#endif
}

/// a·b + c rounded once (a fused multiply-add on both sides: std::fma on the host).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE double fused(double a, double b, double c) {
#if GPUKIT_DEVICE_PASS
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE float mul(float a, float b) {
#if GPUKIT_DEVICE_PASS
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE float add(float a, float b) {
#if GPUKIT_DEVICE_PASS
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE float sub(float a, float b) {
#if GPUKIT_DEVICE_PASS
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE float twice_plus(float t, float c) {
#if GPUKIT_DEVICE_PASS
  return __fmaf_rn(2.0f, t, c);
#else
  return (t + t) + c;
#endif
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE float fused(float a, float b, float c) {
#if GPUKIT_DEVICE_PASS
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

/// The bit pattern of a value: periodicity is decided on bits, so +0 and -0 (which lead to
/// the same orbit anyway) never make the CPU and the GPU disagree on when a cycle is seen.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::uint64_t bits(double v) {
#if GPUKIT_DEVICE_PASS
  return static_cast<std::uint64_t>(__double_as_longlong(v));
#else
  std::uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
#endif
}
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::uint32_t bits(float v) {
#if GPUKIT_DEVICE_PASS
  return static_cast<std::uint32_t>(__float_as_uint(v));
#else
  std::uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
#endif
}

}  // namespace gpukit::fractal::detail

GPUKIT_STRICT_FP_END
