// gpukit/nn/dense.cuh — the GPU path of the dense layer (see dense.hpp for the contract and
// choose_dense_path for which kernel runs when). Small layers take one block
// (detail/dense_small.cuh); long-input forward products the split-K pipeline and narrow
// backward passes the kernel that reads w once (detail/dense_fast.cuh); everything else the
// implicit-GEMM engine (detail/dense_igemm.cuh) with bias, pre-activation and activation
// in the forward product's epilogue and the activation's slope in the input gradient's:
//   y  = act(x·wᵀ + b)      m = batch, n = out, k = in
//   dw (+)= dzᵀ·x, db (+)= Σ dz   m = out, n = in + 1, k = batch (the bias as a column of ones)
//   dx = dz·w               m = batch, n = in,  k = out
// Batches whose tensors reach 2^31 elements run in pieces of rows; dw accumulates over them.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/dense.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/activation.hpp"
#include "gpukit/nn/dense.hpp"
#include "gpukit/nn/detail/dense_fast.cuh"
#include "gpukit/nn/detail/dense_igemm.cuh"
#include "gpukit/nn/detail/dense_small.cuh"
#include "gpukit/nn/detail/kernels.cuh"

#include <stdexcept>

namespace gpukit::nn::detail {

/// dz = dy · act'(y).
template <class = void>
__global__ void activation_gradient_kernel(long long count, activation act, const float* y, const float* dy,
                                           float* dz) {
  GPUKIT_NN_GRID_STRIDE(i, count) dz[i] = dy[i] * activation_slope(act, y[i]);
}

/// Calls f(piece geometry, piece path, first row) for each piece of rows the path launches
/// at once (one piece unless a tensor reaches 2^31 elements).
template <class F>
void for_each_row_piece(const dense_geometry& g, const dense_path& path, F f) {
  if (path.piece_rows == 0) return f(g, path, 0);
  for (int first = 0; first < g.n; first += path.piece_rows) {
    dense_geometry gp = g;
    gp.n = std::min(path.piece_rows, g.n - first);
    f(gp, gp.n == path.piece_rows ? path : choose_dense_path(gp, path.target, path.context, path.request), first);
  }
}

inline void dense_forward_impl(const cuda_executor& exec, const dense_geometry& g, const dense_path& path,
                               const float* x, const float* w, const float* b, float* y, activation act, float* pre) {
  if (path.forward == dense_forward_kind::small)
    return launch(small_dense_forward_kernel<>, one_block(small_forward_threads), exec.stream(), g, x, w, b, y, act, pre);
  const device_scratch scratch(exec, path.forward_scratch);
  float* partial = scratch.at<float>(path.forward_partial_at);
  if (path.forward == dense_forward_kind::splitk) {
    gemm_args p;
    p.m = g.n, p.n = g.out, p.k = g.in;
    p.a = x, p.a_m = g.in, p.b = w, p.b_n = g.in, p.c = y, p.c_m = g.out;
    p.bias = b, p.act = epilogue_form(act), p.pre = pre;
    run_splitk(p, path.splitk, partial, exec.stream());
  } else {
    for_each_row_piece(g, path, [&](const dense_geometry& gp, const dense_path& pp, int first) {
      const long long at = static_cast<long long>(first);
      dense_forward_map m;
      m.m = gp.n, m.n = g.out, m.k = g.in;
      m.a = x + at * g.in, m.a_m = g.in, m.a_k = 1;
      m.b = w, m.b_k = 1, m.b_n = g.in;
      m.c = y + at * g.out, m.c_m = g.out;
      m.bias = b, m.act = epilogue_form(act), m.pre = pre != nullptr ? pre + at * g.out : nullptr;
      run_igemm(m, pp.forward_gemm, partial, exec.stream());
    });
  }
  if (!fits_epilogue(act)) {  // a GELU: the product above wrote z, and pre if asked
    const std::size_t count = static_cast<std::size_t>(g.n) * g.out;
    gpukit::transform(exec, device_span<float>{y, count}, activate_fn{act}, device_span<const float>{y, count});
  }
}

inline void dense_backward_impl(const cuda_executor& exec, const dense_geometry& g, const dense_path& path,
                                const float* x, const float* w, const float* y, const float* dy, float* dw, float* db,
                                float* dx, activation act, const dense_backward_extras<float>& extra) {
  if (extra.adam.m != nullptr && path.backward != dense_backward_kind::fused)
    throw std::logic_error("gpukit::nn::detail::dense_backward_impl: Adam asked of a path that does not fuse it");
  if (path.backward == dense_backward_kind::fused)
    return dense_backward_fused(exec, dense_backward_fused_args{g, x, w, y, act, dy, dw, db, dx, extra});
  if (path.backward == dense_backward_kind::small)
    return launch(small_dense_backward_kernel<>, one_block(small_dense_threads), exec.stream(), g, x, w, y, dy, act, dw,
                  db, dx, extra);
  const device_scratch scratch(exec, path.backward_scratch);
  for_each_row_piece(g, path, [&](const dense_geometry& gp, const dense_path& pp, int first) {
    const long long at = static_cast<long long>(first);
    const float* dz = dy + at * g.out;
    if (act != activation::none) {
      float* buffer = scratch.at<float>(pp.dz_at);
      const long long count = static_cast<long long>(gp.n) * g.out;
      launch(activation_gradient_kernel<>, grid_for(static_cast<std::size_t>(count)), exec.stream(), count, act,
             y + at * g.out, dz, buffer);
      dz = buffer;
    }
    dense_wgrad_map mw;  // dw (out x in) (+)= dzᵀ · x, and db as the column of ones
    mw.m = g.out, mw.n = g.in + 1, mw.k = gp.n;
    mw.a = dz, mw.a_m = 1, mw.a_k = g.out;
    mw.b = x + at * g.in, mw.b_k = g.in, mw.b_n = 1;
    mw.ones_column = g.in;
    mw.c = dw, mw.c_m = g.in, mw.row_sum = db;
    mw.accumulate = extra.accumulate || first > 0;
    run_igemm(mw, pp.dw_gemm, scratch.at<float>(pp.dw_partial_at), exec.stream());
    if (dx == nullptr) return;
    dense_dgrad_map mx;  // dx (batch x in) = dz · w, times the producer's activation slope
    mx.m = gp.n, mx.n = g.in, mx.k = g.out;
    mx.a = dz, mx.a_m = g.out, mx.a_k = 1;
    mx.b = w, mx.b_k = g.in, mx.b_n = 1;
    mx.c = dx + at * g.in, mx.c_m = g.in;
    mx.grad_act = extra.dx_act;
    mx.grad_y = extra.dx_act_y != nullptr ? extra.dx_act_y + at * g.in : nullptr;
    run_igemm(mx, pp.dx_gemm, scratch.at<float>(pp.dx_partial_at), exec.stream());
  });
}

/// The last layer of a model with its loss: see dense_head_kernel. The layer's path must
/// be small (dense_path::head_fused) and the loss elementwise.
inline void dense_head_impl(const cuda_executor& exec, const dense_head_args<float>& a) {
  launch(dense_head_kernel<>, one_block(small_dense_threads), exec.stream(), a);
}

}  // namespace gpukit::nn::detail
