// gpukit/nn/dropout.cuh — the GPU path of dropout (see dropout.hpp): one thread per four
// elements (one Philox block), 16-byte loads and stores where the tensors allow them.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/dropout.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/kernels.cuh"
#include "gpukit/nn/dropout.hpp"

#include <cstdint>

namespace gpukit::nn::detail {

/// Vec: n is a multiple of 4 and both tensors are 16-byte aligned (one float4 per thread).
template <bool Vec>
__global__ void dropout_kernel(const dropout_params d, const dropout_step s, const float* in, float* out, long long n) {
  const std::uint64_t step = s.device_step != nullptr ? *s.device_step : s.step;
  GPUKIT_NN_GRID_STRIDE(g, (n + 3) / 4) {
    if constexpr (Vec) {
      const philox_block r = philox4x32_10(static_cast<std::uint32_t>(g), static_cast<std::uint32_t>(g >> 32),
                                           static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(step >> 32),
                                           d.k0, d.k1);
      const float4 v = reinterpret_cast<const float4*>(in)[g];
      float4 o;
      o.x = (r.w[0] >> 8) >= d.threshold ? v.x * d.scale : 0.0f;
      o.y = (r.w[1] >> 8) >= d.threshold ? v.y * d.scale : 0.0f;
      o.z = (r.w[2] >> 8) >= d.threshold ? v.z * d.scale : 0.0f;
      o.w = (r.w[3] >> 8) >= d.threshold ? v.w * d.scale : 0.0f;
      reinterpret_cast<float4*>(out)[g] = o;
    } else {
      dropout_group(d, step, g, in, out, n);
    }
  }
}

template <class = void>
__global__ void advance_dropout_step_kernel(std::uint64_t* step) {
  ++*step;
}

inline void dropout_impl(const cuda_executor& exec, const dropout_params& d, dropout_step s, const float* in,
                         float* out, long long n) {
  if (n == 0) return;
  const auto groups = static_cast<std::size_t>((n + 3) / 4);
  if (n % 4 == 0 && aligned16(in) && aligned16(out)) {
    launch(dropout_kernel<true>, grid_for(groups), exec.stream(), d, s, in, out, n);
  } else {
    launch(dropout_kernel<false>, grid_for(groups), exec.stream(), d, s, in, out, n);
  }
}

/// ++*step on the stream (one thread): the model's step counter, so that graphs replay it.
inline void advance_dropout_step(const cuda_executor& exec, std::uint64_t* step) {
  launch_config one;
  one.grid = dim3(1);
  one.block = dim3(1);
  launch(advance_dropout_step_kernel<>, one, exec.stream(), step);
}

}  // namespace gpukit::nn::detail
