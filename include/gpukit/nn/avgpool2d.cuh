// gpukit/nn/avgpool2d.cuh — the GPU paths of average pooling (see avgpool2d.hpp): one
// thread or one warp per output forward, one thread per input element backward.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/avgpool2d.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/avgpool2d.hpp"
#include "gpukit/nn/detail/kernels.cuh"

namespace gpukit::nn::detail {

template <class = void>
__global__ void avgpool_forward_kernel(const pool_geometry g, const float* x, float* y) {
  const long long out_plane = static_cast<long long>(g.ph) * g.pw, in_plane = static_cast<long long>(g.h) * g.w;
  GPUKIT_NN_GRID_STRIDE(i, g.output_size()) {
    const long long p = i / out_plane, q = i - p * out_plane;
    const int py = static_cast<int>(q / g.pw), px = static_cast<int>(q - static_cast<long long>(py) * g.pw);
    y[i] = window_mean(x + p * in_plane, g.w, py * g.sh, px * g.sw, g.kh, g.kw);
  }
}

/// One warp per output: lane l adds window elements l, l + 32, ... in row-major order (a
/// row of 32 or more elements is read in coalesced runs), then the warp adds its partial sums.
template <class = void>
__global__ void avgpool_forward_warp_kernel(const pool_geometry g, const float* x, float* y) {
  const long long out_plane = static_cast<long long>(g.ph) * g.pw, in_plane = static_cast<long long>(g.h) * g.w;
  const int lane = static_cast<int>(threadIdx.x % 32);
  const long long warps = static_cast<long long>(gridDim.x) * (blockDim.x / 32);
  const long long area = window_area(g);
  for (long long i = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; i < g.output_size();
       i += warps) {
    const long long p = i / out_plane, q = i - p * out_plane;
    const int py = static_cast<int>(q / g.pw), px = static_cast<int>(q - static_cast<long long>(py) * g.pw);
    const float* corner = x + p * in_plane + static_cast<long long>(py) * g.sh * g.w + static_cast<long long>(px) * g.sw;
    float s = 0.0f;
    for (long long e = lane; e < area; e += 32) {
      const long long wy = e / g.kw;
      s += corner[wy * g.w + (e - wy * g.kw)];
    }
    s = warp_sum(s);
    if (lane == 0) y[i] = s / static_cast<float>(area);
  }
}

template <class = void>
__global__ void avgpool_backward_kernel(const pool_geometry g, const float* dy, float* dx) {
  const long long out_plane = static_cast<long long>(g.ph) * g.pw, in_plane = static_cast<long long>(g.h) * g.w;
  GPUKIT_NN_GRID_STRIDE(i, g.input_size()) {
    const long long p = i / in_plane, q = i - p * in_plane;
    const int yy = static_cast<int>(q / g.w), xx = static_cast<int>(q - static_cast<long long>(yy) * g.w);
    dx[i] = window_mean_grad(dy + p * out_plane, g, yy, xx);
  }
}

inline void avgpool_forward_impl(const cuda_executor& exec, const pool_geometry& g, const avgpool_path& path,
                                 const float* x, float* y) {
  const auto outputs = static_cast<std::size_t>(g.output_size());
  if (path.kernel == avgpool_kernel::warp_per_output) {
    launch(avgpool_forward_warp_kernel<>, grid_for(outputs * 32), exec.stream(), g, x, y);
  } else {
    launch(avgpool_forward_kernel<>, grid_for(outputs), exec.stream(), g, x, y);
  }
}

inline void avgpool_backward_impl(const cuda_executor& exec, const pool_geometry& g, const avgpool_path&,
                                  const float* dy, float* dx) {
  launch(avgpool_backward_kernel<>, grid_for(static_cast<std::size_t>(g.input_size())), exec.stream(), g, dy, dx);
}

}  // namespace gpukit::nn::detail
