// gpukit/nn/dense.cuh — the GPU path of the dense layer (see dense.hpp for the contract).
// Layers of a small model take the paths of detail/dense_fast.cuh: one block for a small
// layer, a pipelined split-K forward product, and a backward pass that computes dw and dx
// from one read of w. Otherwise three products through the tiled GEMM (detail/gemm.cuh),
// with bias, pre-activation and activation fused into the forward product's epilogue:
//   y  = act(x·wᵀ + b)   m = batch, n = out, k = in   (split over k at small batches)
//   dw += dzᵀ·x          m = out,   n = in,  k = batch (accumulating epilogue)
//   dx = dz·w            m = batch, n = in,  k = out
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/dense.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/dense.hpp"
#include "gpukit/nn/detail/dense_fast.cuh"
#include "gpukit/nn/detail/dense_small.cuh"
#include "gpukit/nn/detail/gemm.cuh"
#include "gpukit/nn/detail/kernels.cuh"

#include <stdexcept>

namespace gpukit::nn::detail {

/// dz = dy · act'(y).
template <class = void>
__global__ void activation_gradient_kernel(long long count, activation act, const float* y, const float* dy,
                                           float* dz) {
  GPUKIT_NN_GRID_STRIDE(i, count) dz[i] = dy[i] * activation_slope(act, y[i]);
}

/// db[j] (+)= Σ over rows of dz[row][j].
template <class = void>
__global__ void column_sum_kernel(const float* dz, int rows, int cols, float* db, bool accumulate) {
  GPUKIT_NN_GRID_STRIDE(j, cols) {
    float s = 0.0f;
    for (int r = 0; r < rows; ++r) s += dz[static_cast<long long>(r) * cols + j];
    db[j] = accumulate ? db[j] + s : s;
  }
}

inline void dense_forward_gpu(const cuda_executor& exec, const dense_geometry& g, const float* x, const float* w,
                              const float* b, float* y, activation act, float* pre) {
  if (dense_is_small(g))
    return launch(small_dense_forward_kernel<>, one_block(small_forward_threads), exec.stream(), g, x, w, b, y, act, pre);
  const int sms = current_sm_count();
  gemm_args p;
  p.m = g.n, p.n = g.out, p.k = g.in;
  p.a = x, p.a_m = g.in, p.a_k = 1;
  p.b = w, p.b_k = 1, p.b_n = g.in;
  p.c = y, p.c_m = g.out;
  p.bias = b, p.act = act, p.pre = pre;
  const splitk_plan fast = plan_splitk(g, sms);
  const bool use_fast = fast.ok() && aligned16(x) && aligned16(w);
  const gemm_plan plan = plan_dense_forward(g, sms);
  scratch_plan layout;
  const std::size_t partial_at = layout.add<float>(use_fast ? fast.partial_floats : plan.partial_floats);
  const device_scratch scratch(exec, layout.bytes);
  if (use_fast) return run_splitk(p, fast, scratch.at<float>(partial_at), exec.stream());
  run_gemm(p, plan, scratch.at<float>(partial_at), exec.stream());
}

inline void dense_backward_gpu(const cuda_executor& exec, const dense_geometry& g, const float* x, const float* w,
                               const float* y, const float* dy, float* dw, float* db, float* dx, activation act,
                               const dense_backward_extras<float>& extra) {
  if (dense_backward_fuses(g, x, w, dw, dx, extra.dx_act_y))
    return dense_backward_fused(exec, dense_backward_fused_args{g, x, w, y, act, dy, dw, db, dx, extra});
  if (extra.adam.m != nullptr)
    throw std::logic_error("gpukit::nn::detail::dense_backward_gpu: Adam asked of a layer without the fused path");
  if (dense_is_small(g))
    return launch(small_dense_backward_kernel<>, one_block(small_dense_threads), exec.stream(), g, x, w, y, dy, act, dw,
                  db, dx, extra);
  const int sms = current_sm_count();
  scratch_plan layout;
  const std::size_t dz_at = layout.add<float>(act != activation::none ? static_cast<std::size_t>(g.n) * g.out : 0);
  const device_scratch scratch(exec, layout.bytes);
  const float* dz = dy;
  if (act != activation::none) {
    float* buffer = scratch.at<float>(dz_at);
    const long long count = static_cast<long long>(g.n) * g.out;
    launch(activation_gradient_kernel<>, grid_for(static_cast<std::size_t>(count)), exec.stream(), count, act, y, dy,
           buffer);
    dz = buffer;
  }
  launch(column_sum_kernel<>, grid_for(static_cast<std::size_t>(g.out)), exec.stream(), dz, g.n, g.out, db,
         extra.accumulate);

  gemm_args pw;  // dw (out x in) += dzᵀ (out x batch) · x (batch x in)
  pw.m = g.out, pw.n = g.in, pw.k = g.n;
  pw.a = dz, pw.a_m = 1, pw.a_k = g.out;
  pw.b = x, pw.b_k = g.in, pw.b_n = 1;
  pw.c = dw, pw.c_m = g.in;
  pw.accumulate = extra.accumulate;
  run_gemm(pw, plan_gemm(pw.m, pw.n, pw.k, false, sms), nullptr, exec.stream());

  if (dx == nullptr) return;
  gemm_args px;  // dx (batch x in) = dz (batch x out) · w (out x in)
  px.m = g.n, px.n = g.in, px.k = g.out;
  px.a = dz, px.a_m = g.out, px.a_k = 1;
  px.b = w, px.b_k = g.in, px.b_n = 1;
  px.c = dx, px.c_m = g.in;
  px.grad_act = extra.dx_act, px.grad_y = extra.dx_act_y;
  run_gemm(px, plan_gemm(px.m, px.n, px.k, false, sms), nullptr, exec.stream());
}

/// The last layer of a model with its loss: see dense_head_kernel. a.g must be small
/// (dense_is_small) and the loss elementwise.
inline void dense_head_gpu(const cuda_executor& exec, const dense_head_args& a) {
  launch(dense_head_kernel<>, one_block(small_dense_threads), exec.stream(), a);
}

}  // namespace gpukit::nn::detail
