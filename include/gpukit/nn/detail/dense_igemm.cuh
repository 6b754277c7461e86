// gpukit/nn/detail/dense_igemm.cuh — the dense layer's three products as a strided mapping
// of the implicit-GEMM engine (igemm.cuh):
//   forward  y  = act(x·wᵀ + b)       m = batch, n = out, k = in   (A = x, B(k, o) = w[o][k])
//   input    dx = (dz·w) · act'(...)  m = batch, n = in,  k = out  (A = dz, B = w)
//   weights  dw (+)= dzᵀ·x, db (+)= Σ dz   m = out, n = in + 1, k = batch (the last column of
//            B is ones: its column of C is the bias gradient)
// A(i, k) = a[i·a_m + k·a_k], B(k, j) = b[k·b_k + j·b_n], C(i, j) = c[i·c_m + j]; which
// dimension is contiguous is a template parameter, so the loads run along it.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/detail/dense_igemm.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/igemm.cuh"

namespace gpukit::nn::detail {

/// The operands: A(i, k) = a[i·a_m + k·a_k], B(k, j) = b[k·b_k + j·b_n], and optionally a
/// column of B that is all ones. Each product adds its own epilogue (one kind each: a
/// kernel whose epilogue could both activate and multiply by a slope compiles many times
/// slower, for no use).
template <bool AKFast, bool BKFast>
struct strided_operands {
  static constexpr bool a_k_fast = AKFast, b_k_fast = BKFast, has_constant_column = true;
  int m = 0, n = 0, k = 0;
  const float* a = nullptr;
  int a_m = 0, a_k = 0;
  const float* b = nullptr;
  int b_k = 0, b_n = 0;
  int ones_column = -1;  // the column of B that is all ones, or -1

  struct a_row { int off; bool ok; };
  struct a_kpos { int off; bool ok; };
  struct b_col { int off; bool ones, ok; };
  struct b_kpos { int off; bool ok; };
  struct c_row { int i; bool ok; };
  struct c_col { int j; bool ok; };

  __device__ a_row a_row_at(int i) const { return {i * a_m, i < m}; }
  __device__ a_kpos a_k_at(int kk, bool ok) const { return {kk * a_k, ok}; }
  __device__ const float* a_src(const a_row& r, const a_kpos& p, bool& ok) const {
    ok = r.ok && p.ok;
    return a + (ok ? r.off + p.off : 0);
  }
  __device__ b_col b_col_at(int j) const { return {j * b_n, j == ones_column, j < n}; }
  __device__ b_kpos b_k_at(int kk, bool ok) const { return {kk * b_k, ok}; }
  __device__ const float* b_src(const b_kpos& p, const b_col& col, bool& ok) const {
    ok = !col.ones && p.ok && col.ok;
    return b + (ok ? p.off + col.off : 0);
  }
  /// The column of ones (a bias gradient): its elements are constants, not loads.
  __device__ bool b_constant(const b_kpos& p, const b_col& col, float& v) const {
    v = p.ok ? 1.0f : 0.0f;
    return col.ones;
  }
  __device__ c_row c_row_at(int i) const { return {i, i < m}; }
  __device__ c_col c_col_at(int j) const { return {j, j < n}; }
};

/// y = act(x·wᵀ + b), and pre = x·wᵀ + b when asked. A = x (k = in contiguous), B = wᵀ (k contiguous).
struct dense_forward_map : strided_operands<true, true> {
  float* c = nullptr;  // C(i, j) = c[i·c_m + j]
  int c_m = 0;
  const float* bias = nullptr;
  epilogue_activation act{};  // the identity for a GELU (the layer's pass follows)
  float* pre = nullptr;
  __device__ void store(const c_row& r, const c_col& col, float v) const {
    if (!r.ok || !col.ok) return;
    const long long at = static_cast<long long>(r.i) * c_m + col.j;
    v += bias[col.j];
    if (pre != nullptr) pre[at] = v;
    c[at] = apply(act, v);
  }
};

/// dx = (dz·w) · grad_act'(grad_y). A = dz (k = out contiguous), B = w (n = in contiguous).
struct dense_dgrad_map : strided_operands<true, false> {
  float* c = nullptr;
  int c_m = 0;
  activation grad_act = activation::none;
  const float* grad_y = nullptr;  // null: no slope
  __device__ void store(const c_row& r, const c_col& col, float v) const {
    if (!r.ok || !col.ok) return;
    const long long at = static_cast<long long>(r.i) * c_m + col.j;
    if (grad_y != nullptr) v *= activation_slope(grad_act, grad_y[at]);
    c[at] = v;
  }
};

/// dw (+)= dzᵀ·x, and the ones column's sums into row_sum (db). A = dzᵀ (m = out
/// contiguous), B = x (n = in contiguous).
struct dense_wgrad_map : strided_operands<false, false> {
  float* c = nullptr;
  int c_m = 0;
  float* row_sum = nullptr;
  bool accumulate = false;
  __device__ void store(const c_row& r, const c_col& col, float v) const {
    if (!r.ok || !col.ok) return;
    float* dst = col.j == ones_column ? row_sum + r.i : c + static_cast<long long>(r.i) * c_m + col.j;
    *dst = accumulate ? *dst + v : v;
  }
};

// Compiled once, in the kernel library (src/kernels/), where the program links one.
#if defined(GPUKIT_PRECOMPILED_KERNELS)
GPUKIT_NN_IGEMM_INSTANCE(extern, dense_forward_map)
GPUKIT_NN_IGEMM_INSTANCE(extern, dense_dgrad_map)
GPUKIT_NN_IGEMM_INSTANCE(extern, dense_wgrad_map)
#endif

}  // namespace gpukit::nn::detail
