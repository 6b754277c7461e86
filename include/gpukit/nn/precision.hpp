// gpukit/nn/precision.hpp — the number format a model's conv and dense products use.
//
//   model.set_precision(nn::precision::tf32);   // before compile()
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
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/config.hpp"

#include <cstdint>
#include <cstring>

namespace gpukit::nn {

enum class precision { fp32, tf32 };

inline const char* precision_name(precision p) noexcept { return p == precision::tf32 ? "tf32" : "fp32"; }

/// x rounded to TF32 (its low 13 mantissa bits cleared) to nearest, ties away from zero,
/// as the GPU's cvt.rna.tf32.f32 rounds it: adding half a TF32 unit to the magnitude's bits
/// carries into the kept bits exactly when the dropped part is at least half. Infinities and
/// NaNs are returned as they are; finite values past the largest TF32 number round to
/// infinity.
GPUKIT_HOST_DEVICE inline float round_to_tf32(float x) noexcept {
  std::uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(x);
#else
  std::memcpy(&u, &x, sizeof u);
#endif
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  u = (u + 0x1000u) & 0xffffe000u;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
#endif
}

/// The same rounding for a double operand (a CPU model in double precision): through float,
/// so the result is the TF32 number a float operand of that value would give.
GPUKIT_HOST_DEVICE inline double round_to_tf32(double x) noexcept {
  return static_cast<double>(round_to_tf32(static_cast<float>(x)));
}

}  // namespace gpukit::nn
