// gpukit/nn/optimizer.cuh — the GPU path of the optimizers (see optimizer.hpp): a
// one-thread kernel advances the step count, the scheduled rate and Adam's bias corrections
// in device memory (advance_clock, the CPU's arithmetic); with clipping, a fixed grid sums
// g² per block and one thread adds the sums in order into the clipping factor; then one
// grid-stride kernel updates every parameter (or the ranges that kernels applying Adam
// themselves left), four at a time (float4) when the buffers are 16-byte aligned. All read
// the guard and change nothing for a rejected batch.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/optimizer.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/kernels.cuh"
#include "gpukit/nn/loss.hpp"
#include "gpukit/nn/optimizer.hpp"

#include <cstdint>

namespace gpukit::nn::detail {

__device__ __forceinline__ bool vetoed(const unsigned long long* guard) {
  return guard != nullptr && (guard[0] != no_bad_index || guard[1] != no_bad_index);
}

template <class = void>
__global__ void optimizer_tick_kernel(optimizer_clock* clock, optimizer_clock_config o, const unsigned long long* guard) {
  if (vetoed(guard)) return;
  optimizer_clock c = *clock;
  advance_clock(c, o);
  *clock = c;
}

/// Per-block sums of g² (double) into partials[blockIdx.x]; clip_partial_count blocks.
template <class = void>
__global__ void __launch_bounds__(256) grad_sum_sq_kernel(long long n, const float* g, double* partials) {
  double s = 0.0;
  for (long long i = blockIdx.x * 256LL + threadIdx.x; i < n; i += 256LL * gridDim.x) {
    const double x = static_cast<double>(g[i]);
    s = ::fma(x, x, s);
  }
  __shared__ double warp_sums[8];
#pragma unroll
  for (int off = 16; off > 0; off /= 2) s += __shfl_down_sync(0xffffffffu, s, off);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < 8; ++w) total += warp_sums[w];
    partials[blockIdx.x] = total;
  }
}

/// The partial sums added in block order, and the clipping factor into the clock.
template <class = void>
__global__ void clip_scale_kernel(const double* partials, int count, float max_norm, optimizer_clock* clock,
                                  const unsigned long long* guard) {
  if (vetoed(guard)) return;
  double total = 0.0;
  for (int b = 0; b < count; ++b) total += partials[b];
  clock->grad_scale = clip_factor(total, max_norm);
}

/// One parameter's Adam (or AdamW) update: the gradient clipped (scale) and L2-decayed, the
/// parameter decoupled-decayed (decay), as adam_cpu computes it.
struct adam_coefficients {
  float b1, c1, b2, c2, eps, step_size, inv_sqrt_bc2, l2, decay, scale;
  __device__ __forceinline__ void update(float& p, float g, float& m, float& v) const {
    g *= scale;
    if (l2 != 0.0f) g += l2 * p;
    m = b1 * m + c1 * g;
    v = b2 * v + c2 * g * g;
    const float kept = decay != 1.0f ? __fmul_rn(p, decay) : p;
    p = kept - step_size * m / (sqrtf(v) * inv_sqrt_bc2 + eps);
  }
};

__device__ __forceinline__ adam_coefficients coefficients_of(const adam& a, const optimizer_clock* clock) {
  return {a.beta1,
          1.0f - a.beta1,
          a.beta2,
          1.0f - a.beta2,
          a.epsilon,
          clock->step_size,
          clock->inv_sqrt_bc2,
          a.decoupled_weight_decay ? 0.0f : a.weight_decay,
          clock->decay,
          clock->grad_scale};
}

template <class = void>
__global__ void adam_kernel(const param_ranges ranges, float* p, const float* g, float* m, float* v, adam a,
                            const optimizer_clock* clock, const unsigned long long* guard, bool vectorised) {
  if (vetoed(guard)) return;
  const adam_coefficients k = coefficients_of(a, clock);
#pragma unroll
  for (int r = 0; r < 4; ++r) {  // unrolled: the ranges stay in registers
    if (r >= ranges.size) break;
    const long long at = ranges.begin[r], n = ranges.count[r];
    long long done = 0;
    if (vectorised) {
      const long long n4 = n / 4;
      auto* p4 = reinterpret_cast<float4*>(p + at);
      const auto* g4 = reinterpret_cast<const float4*>(g + at);
      auto* m4 = reinterpret_cast<float4*>(m + at);
      auto* v4 = reinterpret_cast<float4*>(v + at);
      GPUKIT_NN_GRID_STRIDE(i, n4) {
        float4 pp = p4[i], mm = m4[i], vv = v4[i];
        const float4 gg = g4[i];
        k.update(pp.x, gg.x, mm.x, vv.x);
        k.update(pp.y, gg.y, mm.y, vv.y);
        k.update(pp.z, gg.z, mm.z, vv.z);
        k.update(pp.w, gg.w, mm.w, vv.w);
        p4[i] = pp, m4[i] = mm, v4[i] = vv;
      }
      done = n4 * 4;
    }
    GPUKIT_NN_GRID_STRIDE(j, n - done) {
      const long long i = at + done + j;
      k.update(p[i], g[i], m[i], v[i]);
    }
  }
}

template <class = void>
__global__ void sgd_kernel(const param_ranges ranges, float* p, const float* g, float* velocity, sgd s,
                           const optimizer_clock* clock, const unsigned long long* guard) {
  if (vetoed(guard)) return;
  const float lr = clock->lr, scale = clock->grad_scale;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    if (r >= ranges.size) break;
    GPUKIT_NN_GRID_STRIDE(j, ranges.count[r]) {
      const long long i = ranges.begin[r] + j;
      float step = g[i] * scale;
      if (s.weight_decay != 0.0f) step += s.weight_decay * p[i];
      if (velocity != nullptr) step = velocity[i] = s.momentum * velocity[i] + step;
      p[i] -= lr * step;
    }
  }
}

inline void optimizer_tick_impl(const cuda_executor& exec, const optimizer& o, optimizer_clock* clock,
                               const unsigned long long* guard) {
  launch_config one;
  one.grid = dim3(1);
  one.block = dim3(1);
  launch(optimizer_tick_kernel<>, one, exec.stream(), clock, clock_config_of(o), guard);
}

inline void optimizer_clip_impl(const cuda_executor& exec, const optimizer& o, optimizer_clock* clock, long long n,
                                const float* g, double* partials, const unsigned long long* guard) {
  launch_config blocks;
  blocks.grid = dim3(clip_partial_count);
  blocks.block = dim3(256);
  launch(grad_sum_sq_kernel<>, blocks, exec.stream(), n, g, partials);
  launch_config one;
  one.grid = dim3(1);
  one.block = dim3(1);
  launch(clip_scale_kernel<>, one, exec.stream(), static_cast<const double*>(partials), clip_partial_count,
         max_grad_norm_of(o), clock, guard);
}

inline void optimizer_update_impl(const cuda_executor& exec, const optimizer& o, const optimizer_clock* clock,
                                 const param_ranges& ranges, float* p, const float* g, float* m, float* v,
                                 const unsigned long long* guard) {
  long long largest = 0;
  bool vectorised = aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v);
  for (int r = 0; r < ranges.size; ++r) {
    largest = ::max(largest, ranges.count[r]);
    vectorised = vectorised && ranges.begin[r] % 4 == 0;
  }
  if (largest == 0) return;
  if (std::holds_alternative<adam>(o)) {
    launch(adam_kernel<>, grid_for(static_cast<std::size_t>(vectorised ? (largest + 3) / 4 : largest)), exec.stream(),
           ranges, p, g, m, v, std::get<adam>(o), clock, guard, vectorised);
  } else {
    launch(sgd_kernel<>, grid_for(static_cast<std::size_t>(largest)), exec.stream(), ranges, p, g, m, std::get<sgd>(o),
           clock, guard);
  }
}

inline optimizer_clock read_clock_impl(const cuda_executor& exec, const optimizer_clock* clock) {
  optimizer_clock c;
  GPUKIT_CUDA_TRY(cudaMemcpyAsync(&c, clock, sizeof c, cudaMemcpyDeviceToHost, exec.stream()));
  exec.synchronize();
  return c;
}

}  // namespace gpukit::nn::detail
