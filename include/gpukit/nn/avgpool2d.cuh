// gpukit/nn/avgpool2d.cuh — the GPU paths of average pooling (see avgpool2d.hpp): one
// thread or a group of lanes per output forward, one thread per input element (or four
// along a row) backward. Flat indices split by multiply and shift (fast_divmod) below 2^30
// elements, by 64-bit division beyond.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/avgpool2d.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/avgpool2d.hpp"
#include "gpukit/nn/detail/fast_divmod.hpp"
#include "gpukit/nn/detail/kernels.cuh"
#include "gpukit/nn/maxpool2d.cuh"

namespace gpukit::nn::detail {

template <class Div>
__global__ void avgpool_forward_kernel(const pool_geometry g, const plane_splitter<Div> out, const float* __restrict__ x,
                                       float* __restrict__ y) {
  using I = typename Div::index;
  const long long in_plane = static_cast<long long>(g.h) * g.w;
  const I count = static_cast<I>(g.output_size()), step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += step) {
    I p;
    int py, px;
    out.split(i, p, py, px);
    y[i] = window_mean(x + static_cast<long long>(p) * in_plane, g.w, py * g.sh, px * g.sw, g.kh, g.kw);
  }
}

/// Groups of `lanes` lanes (a power of two dividing 32), one output each: lane l adds
/// window elements l·Vec, (l + lanes)·Vec, ... in row-major order, then the group adds its
/// partial sums with shuffles. Vec = 4: the window is one aligned run of whole rows
/// (row_runs), read as float4. The loop runs per warp so that every lane reaches the
/// shuffles; groups past the end add nothing and write nothing.
template <int Vec, class Div>
__global__ void avgpool_forward_lanes_kernel(const pool_geometry g, const plane_splitter<Div> out, const fast_divmod kw,
                                             bool row_runs, int lanes, const float* __restrict__ x,
                                             float* __restrict__ y) {
  using I = typename Div::index;
  const long long in_plane = static_cast<long long>(g.h) * g.w, outputs = g.output_size();
  const int area = g.kh * g.kw;
  const int lane = static_cast<int>(threadIdx.x) & (lanes - 1);
  const long long per_warp = 32 / lanes;
  const long long step = static_cast<long long>(gridDim.x) * (blockDim.x / 32) * per_warp;
  const long long warp_first = (static_cast<long long>(blockIdx.x) * blockDim.x + (threadIdx.x & ~31u)) / lanes;
  for (long long first = warp_first; first < outputs; first += step) {
    const long long o = first + (threadIdx.x % 32) / lanes;
    float s = 0.0f;
    if (o < outputs) {
      I p;
      int py, px;
      out.split(static_cast<I>(o), p, py, px);
      const float* corner = x + static_cast<long long>(p) * in_plane + static_cast<long long>(py) * g.sh * g.w +
                            static_cast<long long>(px) * g.sw;
      if constexpr (Vec == 4) {
        const float4* run = reinterpret_cast<const float4*>(corner);
        for (int e = lane; e < area / 4; e += lanes) {
          const float4 v = run[e];
          s += v.x, s += v.y, s += v.z, s += v.w;
        }
      } else if (row_runs) {
        for (int e = lane; e < area; e += lanes) s += corner[e];
      } else {
        for (int e = lane; e < area; e += lanes) {
          int wy, wx;
          kw.divmod(e, wy, wx);
          s += corner[static_cast<long long>(wy) * g.w + wx];
        }
      }
    }
    for (int offset = lanes / 2; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
    if (o < outputs && lane == 0) y[o] = mean_of(s, area);
  }
}

/// dL/dx of an average pool at one element: window_mean_grad over its plane's dy.
struct avg_pool_grad {
  pool_geometry g;
  fast_divmod sh, sw;
  const float* dy;
  __device__ __forceinline__ float operator()(long long plane, int y, int x) const {
    return window_mean_grad(dy + plane * g.ph * g.pw, g, sh, sw, y, x);
  }
};

template <class Div>
void avgpool_forward_launch(const cuda_executor& exec, const pool_geometry& g, const avgpool_path& path,
                            const float* x, float* y) {
  const auto out = make_plane_splitter<Div>(g.ph, g.pw);
  const long long outputs = g.output_size();
  if (path.kernel != avgpool_kernel::lanes_per_output) {
    return launch(avgpool_forward_kernel<Div>, grid_for(static_cast<std::size_t>(outputs)), exec.stream(), g, out, x, y);
  }
  const launch_config cfg = grid_for(static_cast<std::size_t>(outputs) * static_cast<std::size_t>(path.lanes));
  const fast_divmod kw(g.kw);
  if (path.forward_vector == 4 && aligned16(x)) {
    return launch(avgpool_forward_lanes_kernel<4, Div>, cfg, exec.stream(), g, out, kw, path.row_runs, path.lanes, x, y);
  }
  launch(avgpool_forward_lanes_kernel<1, Div>, cfg, exec.stream(), g, out, kw, path.row_runs, path.lanes, x, y);
}

inline void avgpool_forward_impl(const cuda_executor& exec, const pool_geometry& g, const avgpool_path& path,
                                 const float* x, float* y) {
  if (g.output_size() == 0) return;
  if (fits_fast_divmod(g.output_size())) return avgpool_forward_launch<fast_divmod>(exec, g, path, x, y);
  avgpool_forward_launch<wide_divmod>(exec, g, path, x, y);
}

inline void avgpool_backward_impl(const cuda_executor& exec, const pool_geometry& g, const avgpool_path& path,
                                  const float* dy, float* dx) {
  if (g.input_size() == 0) return;
  const bool vector4 = path.backward_vector == 4 && g.w % 4 == 0 && aligned16(dx);
  launch_pool_gather(exec, g, vector4, avg_pool_grad{g, fast_divmod(g.sh), fast_divmod(g.sw), dy}, dx);
}

}  // namespace gpukit::nn::detail
