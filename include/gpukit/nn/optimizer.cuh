// gpukit/nn/optimizer.cuh — the GPU path of the optimizers (see optimizer.hpp): a
// one-thread kernel advances the step count and Adam's bias corrections in device memory,
// then one grid-stride kernel updates every parameter (or the ranges that kernels applying
// Adam themselves left), four at a time (float4) when the buffers are 16-byte aligned.
// All read the guard and change nothing for a rejected batch.
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
__global__ void optimizer_tick_kernel(optimizer_clock* clock, bool is_adam, adam a, const unsigned long long* guard) {
  if (vetoed(guard)) return;
  const long long t = clock->steps + 1;
  clock->steps = t;
  if (is_adam) {
    clock->step_size = static_cast<float>(a.learning_rate / (1.0 - ::pow(static_cast<double>(a.beta1), static_cast<double>(t))));
    clock->inv_sqrt_bc2 = static_cast<float>(1.0 / ::sqrt(1.0 - ::pow(static_cast<double>(a.beta2), static_cast<double>(t))));
  }
}

struct adam_coefficients {
  float b1, c1, b2, c2, eps, step_size, inv_sqrt_bc2;
  __device__ __forceinline__ void update(float& p, float g, float& m, float& v) const {
    m = b1 * m + c1 * g;
    v = b2 * v + c2 * g * g;
    p -= step_size * m / (sqrtf(v) * inv_sqrt_bc2 + eps);
  }
};

template <class = void>
__global__ void adam_kernel(const param_ranges ranges, float* p, const float* g, float* m, float* v, adam a,
                            const optimizer_clock* clock, const unsigned long long* guard, bool vectorised) {
  if (vetoed(guard)) return;
  const adam_coefficients k{a.beta1, 1.0f - a.beta1, a.beta2, 1.0f - a.beta2, a.epsilon, clock->step_size,
                            clock->inv_sqrt_bc2};
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
                           const unsigned long long* guard) {
  if (vetoed(guard)) return;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    if (r >= ranges.size) break;
    GPUKIT_NN_GRID_STRIDE(j, ranges.count[r]) {
      const long long i = ranges.begin[r] + j;
      float step = g[i];
      if (velocity != nullptr) step = velocity[i] = s.momentum * velocity[i] + g[i];
      p[i] -= s.learning_rate * step;
    }
  }
}

inline void optimizer_tick_impl(const cuda_executor& exec, const optimizer& o, optimizer_clock* clock,
                               const unsigned long long* guard) {
  const bool is_adam = std::holds_alternative<adam>(o);
  launch_config one;
  one.grid = dim3(1);
  one.block = dim3(1);
  launch(optimizer_tick_kernel<>, one, exec.stream(), clock, is_adam, is_adam ? std::get<adam>(o) : adam{}, guard);
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
           guard);
  }
}

inline optimizer_clock read_clock_impl(const cuda_executor& exec, const optimizer_clock* clock) {
  optimizer_clock c;
  GPUKIT_CUDA_TRY(cudaMemcpyAsync(&c, clock, sizeof c, cudaMemcpyDeviceToHost, exec.stream()));
  exec.synchronize();
  return c;
}

}  // namespace gpukit::nn::detail
