// gpukit/nn/maxpool2d.cuh — the GPU path of max pooling on its own (see maxpool2d.hpp).
// One thread per output; the backward pass zeroes dx and scatters each gradient to its
// argmax (atomically only when windows overlap).
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/maxpool2d.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/kernels.cuh"
#include "gpukit/nn/maxpool2d.hpp"

#include <cstdint>

namespace gpukit::nn::detail {

template <class = void>
__global__ void pool_forward_kernel(const pool_geometry g, const float* x, float* y, std::int32_t* argmax) {
  const long long out_plane = static_cast<long long>(g.ph) * g.pw, in_plane = static_cast<long long>(g.h) * g.w;
  GPUKIT_NN_GRID_STRIDE(i, g.output_size()) {
    const long long p = i / out_plane, q = i - p * out_plane;
    const int py = static_cast<int>(q / g.pw), px = static_cast<int>(q - static_cast<long long>(py) * g.pw);
    int by, bx;
    y[i] = window_max(x + p * in_plane, g.w, py * g.sh, px * g.sw, g.kh, g.kw, by, bx);
    argmax[i] = pack_position(by, bx);
  }
}

template <class = void>
__global__ void pool_backward_kernel(const pool_geometry g, const float* dy, const std::int32_t* argmax, float* dx,
                                     bool overlapping) {
  const long long out_plane = static_cast<long long>(g.ph) * g.pw, in_plane = static_cast<long long>(g.h) * g.w;
  GPUKIT_NN_GRID_STRIDE(i, g.output_size()) {
    const std::int32_t a = argmax[i];
    float* dst = dx + (i / out_plane) * in_plane + static_cast<long long>(static_cast<std::uint32_t>(a) >> 16) * g.w +
                 (a & 0xffff);
    if (overlapping) {
      atomicAdd(dst, dy[i]);
    } else {
      *dst = dy[i];
    }
  }
}

inline void pool_forward_impl(const cuda_executor& exec, const pool_geometry& g, const float* x, float* y,
                             std::int32_t* argmax) {
  launch(pool_forward_kernel<>, grid_for(static_cast<std::size_t>(g.output_size())), exec.stream(), g, x, y, argmax);
}

inline void pool_backward_impl(const cuda_executor& exec, const pool_geometry& g, const float* dy,
                              const std::int32_t* argmax, float* dx) {
  if (g.input_size() == 0) return;
  GPUKIT_CUDA_TRY(cudaMemsetAsync(dx, 0, static_cast<std::size_t>(g.input_size()) * sizeof(float), exec.stream()));
  launch(pool_backward_kernel<>, grid_for(static_cast<std::size_t>(g.output_size())), exec.stream(), g, dy, argmax, dx,
         g.overlapping());
}

}  // namespace gpukit::nn::detail
