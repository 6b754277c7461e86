// gpukit/nn/maxpool2d.cuh — the GPU path of max pooling on its own (see maxpool2d.hpp).
// One thread per output forward; backward one thread per input element (or four along a
// row) gathering the windows that hold it. Flat indices split by multiply and shift
// (fast_divmod) below 2^30 elements, by 64-bit division beyond.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/maxpool2d.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/fast_divmod.hpp"
#include "gpukit/nn/detail/kernels.cuh"
#include "gpukit/nn/maxpool2d.hpp"

#include <cstdint>

namespace gpukit::nn::detail {

/// Splits a flat index over (plane, row, column) of a rows x columns plane; Div is
/// fast_divmod (int indices) or wide_divmod (long long).
template <class Div>
struct plane_splitter {
  Div columns, rows;
  __device__ __forceinline__ void split(typename Div::index i, typename Div::index& plane, int& row, int& column) const {
    typename Div::index r, c, y;
    columns.divmod(i, r, c);
    rows.divmod(r, plane, y);
    row = static_cast<int>(y), column = static_cast<int>(c);
  }
};

template <class Div>
plane_splitter<Div> make_plane_splitter(int rows, int columns) {
  return {Div(columns), Div(rows)};
}

template <class Div>
__global__ void pool_forward_kernel(const pool_geometry g, const plane_splitter<Div> out, const float* __restrict__ x,
                                    float* __restrict__ y, std::int32_t* __restrict__ argmax) {
  using I = typename Div::index;
  const long long in_plane = static_cast<long long>(g.h) * g.w;
  const I count = static_cast<I>(g.output_size()), step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += step) {
    I p;
    int py, px, by, bx;
    out.split(i, p, py, px);
    y[i] = window_max(x + static_cast<long long>(p) * in_plane, g.w, py * g.sh, px * g.sw, g.kh, g.kw, by, bx);
    argmax[i] = pack_position(by, bx);
  }
}

/// The backward gather of both pools: thread t writes input elements Vec·t .. Vec·t + Vec - 1
/// (one row: w is a multiple of Vec), each grad(plane, row, column).
template <int Vec, class Div, class Grad>
__global__ void pool_gather_kernel(const plane_splitter<Div> in, long long inputs, const Grad grad,
                                   float* __restrict__ dx) {
  using I = typename Div::index;
  const I count = static_cast<I>(inputs / Vec), step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I t = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; t < count; t += step) {
    I p;
    int yy, xv;
    in.split(t, p, yy, xv);
    float v[Vec];
#pragma unroll
    for (int j = 0; j < Vec; ++j) v[j] = grad(static_cast<long long>(p), yy, xv * Vec + j);
    if constexpr (Vec == 4) {
      reinterpret_cast<float4*>(dx)[t] = make_float4(v[0], v[1], v[2], v[3]);
    } else {
      dx[t] = v[0];
    }
  }
}

/// dL/dx of a max pool at one element: window_max_grad over its plane's dy and argmax.
struct max_pool_grad {
  pool_geometry g;
  fast_divmod sh, sw;
  const float* dy;
  const std::int32_t* argmax;
  __device__ __forceinline__ float operator()(long long plane, int y, int x) const {
    const long long o = plane * g.ph * g.pw;
    return window_max_grad(dy + o, argmax + o, g, sh, sw, y, x);
  }
};

inline void pool_forward_impl(const cuda_executor& exec, const pool_geometry& g, const float* x, float* y,
                              std::int32_t* argmax) {
  const long long outputs = g.output_size();
  if (outputs == 0) return;
  const launch_config cfg = grid_for(static_cast<std::size_t>(outputs));
  if (fits_fast_divmod(outputs)) {
    launch(pool_forward_kernel<fast_divmod>, cfg, exec.stream(), g, make_plane_splitter<fast_divmod>(g.ph, g.pw), x, y,
           argmax);
  } else {
    launch(pool_forward_kernel<wide_divmod>, cfg, exec.stream(), g, make_plane_splitter<wide_divmod>(g.ph, g.pw), x, y,
           argmax);
  }
}

/// Launches pool_gather_kernel over dx (x's shape in g): four elements per thread where
/// `vector4`, int indices below 2^30 elements.
template <class Grad>
void launch_pool_gather(const cuda_executor& exec, const pool_geometry& g, bool vector4, const Grad& grad, float* dx) {
  const long long inputs = g.input_size();
  const int vec = vector4 ? 4 : 1;
  const launch_config cfg = grid_for(static_cast<std::size_t>(inputs / vec));
  if (fits_fast_divmod(inputs)) {
    const auto in = make_plane_splitter<fast_divmod>(g.h, g.w / vec);
    if (vector4) return launch(pool_gather_kernel<4, fast_divmod, Grad>, cfg, exec.stream(), in, inputs, grad, dx);
    return launch(pool_gather_kernel<1, fast_divmod, Grad>, cfg, exec.stream(), in, inputs, grad, dx);
  }
  const auto in = make_plane_splitter<wide_divmod>(g.h, g.w / vec);
  if (vector4) return launch(pool_gather_kernel<4, wide_divmod, Grad>, cfg, exec.stream(), in, inputs, grad, dx);
  launch(pool_gather_kernel<1, wide_divmod, Grad>, cfg, exec.stream(), in, inputs, grad, dx);
}

inline void pool_backward_impl(const cuda_executor& exec, const pool_geometry& g, const pool_path& path,
                               const float* dy, const std::int32_t* argmax, float* dx) {
  if (g.input_size() == 0) return;
  const bool vector4 = path.backward_vector == 4 && g.w % 4 == 0 && aligned16(dx);
  launch_pool_gather(exec, g, vector4, max_pool_grad{g, fast_divmod(g.sh), fast_divmod(g.sw), dy, argmax}, dx);
}

}  // namespace gpukit::nn::detail
