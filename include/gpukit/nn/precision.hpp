// gpukit/nn/precision.hpp — the number format a model's conv and dense products use.
//
//   model.set_precision(nn::precision::tf32);   // before compile(); or precision::bf16
//
// - fp32 (the default): every product in FP32. On GPUs with tensor cores the implicit
//   GEMM's "3xTF32" sums (nn/detail/igemm_plan.hpp) are as accurate as FP32 FMA.
// - tf32: the operands of every implicit-GEMM product (conv forward, input and weight
//   gradient; dense forward and gradients, bias gradients included: they are one more
//   column of the weight-gradient product) are rounded to TF32 (10 explicit mantissa bits,
//   FP32's exponent) to nearest, ties away from zero, and multiplied on the tensor cores
//   with FP32 accumulation: one tensor-core product where fp32 takes three. Activations,
//   parameters, optimizer state, losses and every elementwise pass stay FP32, as do the
//   dedicated paths the selection functions may still pick for a layer (a first layer
//   with few taps, a small dense head: summary() names each product's arithmetic). The
//   CPU fallback rounds the same operands the same way (round_to_tf32), so it stays the
//   reference the GPU is tested against.
// - bf16: the same products with each operand rounded to bfloat16 (7 explicit mantissa
//   bits, FP32's exponent) to nearest, ties to even (round_to_bf16, as cvt.rn.bf16x2.f32),
//   multiplied on the tensor cores with FP32 accumulation (one m16n8k16 product per 16 of
//   k). Products of two bf16 numbers are exact in FP32, as for TF32, so the accumulation
//   bounds are the same; the operands carry 2^-9 relative rounding where TF32 carries
//   2^-12. Storage is unchanged: activations, gradients, parameters (the FP32 master
//   weights), optimizer state and the loss stay FP32 in memory, rounded only as they enter
//   a product; everything tf32 says of the dedicated paths holds for bf16.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/config.hpp"

#include <cstdint>
#include <cstring>

namespace gpukit::nn {

enum class precision { fp32, tf32, bf16 };

inline const char* precision_name(precision p) noexcept {
  return p == precision::tf32 ? "tf32" : p == precision::bf16 ? "bf16" : "fp32";
}

/// Whether `p` is one of the enumerators (a value cast from an integer may not be).
inline bool is_precision(precision p) noexcept {
  return p == precision::fp32 || p == precision::tf32 || p == precision::bf16;
}

namespace detail {
GPUKIT_HOST_DEVICE inline std::uint32_t bits_of(float x) noexcept {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}
GPUKIT_HOST_DEVICE inline float float_of(std::uint32_t u) noexcept {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}
}  // namespace detail

/// x rounded to TF32 (its low 13 mantissa bits cleared) to nearest, ties away from zero,
/// as the GPU's cvt.rna.tf32.f32 rounds it: adding half a TF32 unit to the magnitude's bits
/// carries into the kept bits exactly when the dropped part is at least half. Infinities and
/// NaNs are returned as they are; finite values past the largest TF32 number round to
/// infinity.
GPUKIT_HOST_DEVICE inline float round_to_tf32(float x) noexcept {
  const std::uint32_t u = detail::bits_of(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  return detail::float_of((u + 0x1000u) & 0xffffe000u);
}

/// The same rounding for a double operand (a CPU model in double precision): through float,
/// so the result is the TF32 number a float operand of that value would give.
GPUKIT_HOST_DEVICE inline double round_to_tf32(double x) noexcept {
  return static_cast<double>(round_to_tf32(static_cast<float>(x)));
}

/// x rounded to bfloat16 (its low 16 bits cleared) to nearest, ties to even, as the GPU's
/// cvt.rn.bf16x2.f32 rounds it: adding 0x7fff plus the lowest kept bit carries into the kept
/// bits exactly when the dropped part is above half, or half with an odd kept part.
/// Infinities are returned as they are, NaNs as a quiet NaN of the same sign; finite values
/// past the largest bf16 number round to infinity. Subnormals round like any other value.
GPUKIT_HOST_DEVICE inline float round_to_bf16(float x) noexcept {
  std::uint32_t u = detail::bits_of(x);
  if ((u & 0x7f800000u) == 0x7f800000u) {
    if ((u & 0x007fffffu) == 0) return x;  // infinity
    u |= 0x00400000u;                       // a NaN stays a NaN when its low payload goes
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);
  }
  return detail::float_of(u & 0xffff0000u);
}

/// The same rounding for a double operand: through float (round_to_tf32's reasoning).
GPUKIT_HOST_DEVICE inline double round_to_bf16(double x) noexcept {
  return static_cast<double>(round_to_bf16(static_cast<float>(x)));
}

/// x as a product of a model in precision `p` reads it: unchanged in fp32, else rounded to
/// the operand format.
template <class T>
GPUKIT_HOST_DEVICE inline T round_operand(precision p, T x) noexcept {
  return p == precision::tf32 ? round_to_tf32(x) : p == precision::bf16 ? round_to_bf16(x) : x;
}

}  // namespace gpukit::nn
