// gpukit/nn/softmax.cuh — the GPU path of the softmax layer (see softmax.hpp): one thread
// per pixel running the CPU's per-pixel functions.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/softmax.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/kernels.cuh"
#include "gpukit/nn/softmax.hpp"

namespace gpukit::nn::detail {

template <class = void>
__global__ void softmax_forward_kernel(const softmax_geometry g, const float* x, float* y) {
  GPUKIT_NN_GRID_STRIDE(p, g.pixels) softmax_pixel(x + g.first(p), y + g.first(p), g.c, g.plane);
}

template <class = void>
__global__ void softmax_backward_kernel(const softmax_geometry g, const float* y, const float* dy, float* dx) {
  GPUKIT_NN_GRID_STRIDE(p, g.pixels)
  softmax_pixel_backward(y + g.first(p), dy + g.first(p), dx + g.first(p), g.c, g.plane);
}

inline void softmax_forward_impl(const cuda_executor& exec, const softmax_geometry& g, const float* x, float* y) {
  launch(softmax_forward_kernel<>, grid_for(static_cast<std::size_t>(g.pixels)), exec.stream(), g, x, y);
}

inline void softmax_backward_impl(const cuda_executor& exec, const softmax_geometry& g, const float* y,
                                  const float* dy, float* dx) {
  launch(softmax_backward_kernel<>, grid_for(static_cast<std::size_t>(g.pixels)), exec.stream(), g, y, dy, dx);
}

}  // namespace gpukit::nn::detail
