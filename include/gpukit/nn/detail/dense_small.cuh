// gpukit/nn/detail/dense_small.cuh — dense layers small enough for one block (n·out ≤ 4096,
// n·out·in ≤ 2^20), where whole-GPU launches would spend their time on latency: the forward
// product, the backward pass, and the last layer of a model fused with its loss (forward,
// loss and gradient, backward: one launch). FP32 FMA, sums in a fixed order.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/detail/dense_small.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/dense_plan.hpp"
#include "gpukit/nn/detail/kernels.cuh"
#include "gpukit/nn/loss.hpp"

#include <cub/block/block_reduce.cuh>

namespace gpukit::nn::detail {

// Pointers are __restrict__: no output overlaps an input, so a loop may issue its loads
// ahead of its stores.

/// y = act(x·wᵀ + b) (and pre = x·wᵀ + b): one warp per output, lanes along `in`.
__device__ inline void small_dense_forward_block(const dense_geometry& g, const float* __restrict__ x,
                                                 const float* __restrict__ w, const float* __restrict__ b,
                                                 float* __restrict__ y, activation act, float* __restrict__ pre) {
  const int lane = static_cast<int>(threadIdx.x) % 32, warps = static_cast<int>(blockDim.x) / 32;
  const long long outputs = static_cast<long long>(g.n) * g.out;
  for (long long i = threadIdx.x / 32; i < outputs; i += warps) {
    const float* xr = x + (i / g.out) * g.in;
    const float* wr = w + (i % g.out) * g.in;
    float s = 0.0f;
    for (int k = lane; k < g.in; k += 32) s = fmaf(xr[k], wr[k], s);
    s = warp_sum(s);
    if (lane == 0) {
      const float z = s + b[i % g.out];
      if (pre != nullptr) pre[i] = z;
      y[i] = activate(act, z);
    }
  }
}

/// db, dw (+)= and dx = from dz (n x out, in shared memory, visible to the whole block).
/// Each sum over the batch is cut into up to 8 contiguous parts added in order.
__device__ inline void small_dense_backward_block(const dense_geometry& g, const float* __restrict__ x,
                                                  const float* __restrict__ w, const float* dz,
                                                  float* __restrict__ dw, float* __restrict__ db,
                                                  float* __restrict__ dx, const dense_backward_extras<float>& e,
                                                  float* s_parts) {
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  const long long weights = static_cast<long long>(g.out) * g.in;
  // Parameter gradients: entry j < out·in is dw, j = out·in + o is db[o].
  const long long entries = weights + g.out;
  const int parts = entries * 2 <= threads ? static_cast<int>(::min(8LL, threads / entries)) : 1;
  const int per_part = (g.n + parts - 1) / parts;
  for (long long j = tid; j < entries * parts; j += threads) {
    const long long entry = j % entries;
    const int part = static_cast<int>(j / entries);
    const int r0 = part * per_part, r1 = ::min(g.n, r0 + per_part);
    float s = 0.0f;
    if (entry < weights) {
      const long long o = entry / g.in, k = entry % g.in;
#pragma unroll 8
      for (int r = r0; r < r1; ++r) s = fmaf(dz[r * g.out + o], x[r * static_cast<long long>(g.in) + k], s);
    } else {
      for (int r = r0; r < r1; ++r) s += dz[r * g.out + (entry - weights)];
    }
    if (parts > 1) {
      s_parts[j] = s;
    } else {
      float* dst = entry < weights ? dw + entry : db + (entry - weights);
      *dst = e.accumulate ? *dst + s : s;
    }
  }
  if (parts > 1) {
    __syncthreads();
    for (long long entry = tid; entry < entries; entry += threads) {
      float s = 0.0f;
      for (int part = 0; part < parts; ++part) s += s_parts[part * entries + entry];
      float* dst = entry < weights ? dw + entry : db + (entry - weights);
      *dst = e.accumulate ? *dst + s : s;
    }
  }
  if (dx == nullptr) return;
  constexpr int batch = 4;
  const long long total = static_cast<long long>(g.n) * g.in;
  for (long long j0 = tid; j0 < total; j0 += static_cast<long long>(threads) * batch) {
    float slope[batch];
#pragma unroll
    for (int u = 0; u < batch; ++u) {
      const long long j = j0 + static_cast<long long>(u) * threads;
      slope[u] = j < total && e.dx_act != activation::none ? e.dx_act_y[j] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < batch; ++u) {
      const long long j = j0 + static_cast<long long>(u) * threads;
      if (j >= total) break;
      const long long r = j / g.in, k = j % g.in;
      float s = 0.0f;
      for (int o = 0; o < g.out; ++o) s = fmaf(dz[r * g.out + o], w[o * static_cast<long long>(g.in) + k], s);
      if (e.dx_act != activation::none) s *= activation_slope(e.dx_act, slope[u]);
      dx[j] = s;
    }
  }
}

inline constexpr int small_dense_threads = 1024;

inline constexpr int small_forward_threads = 512;  // a warp per output: 16 at a time

template <class = void>
__global__ void __launch_bounds__(small_forward_threads) small_dense_forward_kernel(const dense_geometry g, const float* x,
                                                                                  const float* w, const float* b,
                                                                                  float* y, activation act, float* pre) {
  small_dense_forward_block(g, x, w, b, y, act, pre);
}

/// The backward pass of a small layer; dz = dy · act'(y) first.
template <class = void>
__global__ void __launch_bounds__(small_dense_threads) small_dense_backward_kernel(
    const dense_geometry g, const float* x, const float* w, const float* y, const float* dy, activation act,
    float* dw, float* db, float* dx, const dense_backward_extras<float> e) {
  __shared__ float s_dz[small_dense_rows];
  __shared__ float s_parts[small_dense_threads];
  for (int i = static_cast<int>(threadIdx.x); i < g.n * g.out; i += small_dense_threads)
    s_dz[i] = act == activation::none ? dy[i] : dy[i] * activation_slope(act, y[i]);
  __syncthreads();
  small_dense_backward_block(g, x, w, s_dz, dw, db, dx, e, s_parts);
}

/// The last layer of a model with its loss, in one block (dense_head_args in dense.hpp):
/// the forward product (unless it ran already), the loss (mean over the n·out elements,
/// summed in double like loss_kernel) and its gradient (through the activation unless the
/// loss takes the logits), then the backward pass.
inline constexpr int head_staged_floats = 6144;  // x and w are read from shared memory when they fit

template <class = void>
__global__ void __launch_bounds__(small_dense_threads) dense_head_kernel(const dense_head_args<float> a) {
  __shared__ float s_dz[small_dense_rows];
  __shared__ float s_parts[small_dense_threads];
  using block_sum = cub::BlockReduce<double, small_dense_threads>;
  __shared__ typename block_sum::TempStorage sum_storage;
  __shared__ __align__(16) float s_xw[head_staged_floats];
  const long long x_count = static_cast<long long>(a.g.n) * a.g.in, w_count = static_cast<long long>(a.g.out) * a.g.in;
  const float* x = a.x;
  const float* w = a.w;
  if (x_count + w_count <= head_staged_floats) {  // each is read many times: one copy in, all in flight
    for (int i = static_cast<int>(threadIdx.x); i < x_count + w_count; i += small_dense_threads)
      cp_async4(s_xw + i, i < x_count ? a.x + i : a.w + (i - x_count), true);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    x = s_xw, w = s_xw + x_count;
  }
  if (a.forward) {
    small_dense_forward_block(a.g, x, w, a.b, a.y, a.act, a.logits);
    __syncthreads();  // y and the logits are visible to the whole block
  }
  const int tid = static_cast<int>(threadIdx.x);
  const int count = a.g.n * a.g.out;
  const float scale = 1.0f / static_cast<float>(count);
  const float* pred = a.logits != nullptr ? a.logits : a.y;
  double local = 0.0;
  for (int i = tid; i < count; i += small_dense_threads) {
    float value, slope;
    elementwise_loss(a.kind, pred[i], a.target[i], value, slope);
    local += value;
    const float grad = slope * scale;
    s_dz[i] = a.logits != nullptr ? grad : grad * activation_slope(a.act, a.y[i]);
  }
  const double total = block_sum(sum_storage).Sum(local);
  if (tid == 0) *a.loss_out = static_cast<float>(total / static_cast<double>(count));
  __syncthreads();  // s_dz complete
  small_dense_backward_block(a.g, x, w, s_dz, a.dw, a.db, a.dx, a.e, s_parts);
}

inline launch_config one_block(int threads) {
  launch_config cfg;
  cfg.grid = dim3(1);
  cfg.block = dim3(static_cast<unsigned>(threads));
  return cfg;
}

}  // namespace gpukit::nn::detail
