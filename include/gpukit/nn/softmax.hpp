// gpukit/nn/softmax.hpp — softmax over the channels of each pixel (torch.nn.Softmax(dim=1),
// Keras' Softmax on channels; for a dense layer's (n, c, 1, 1) output, over its c features).
//
//   nn::softmax_forward(exec, x, y)          y = exp(x - max) / Σ exp(x - max), per pixel
//   nn::softmax_backward(exec, y, dy, dx)    dx = y ⊙ (dy - Σ_c y·dy), from the output y
//
// As the last layer of a model trained with softmax_crossentropy the loss reads the softmax's
// input (the logits: the stable log-sum-exp form) and its gradient skips the softmax, as a
// final sigmoid with binary cross-entropy; the model's output (forward, predict) is the
// probabilities.
//
// Contracts (checked before anything is written; std::invalid_argument names the argument):
// x, y (and dy, dx) one shape; y may alias x, dx may alias dy (each pixel reads its
// channels before it writes them). cuda_executor: float, queued on its stream (one thread
// per pixel); cpu_executor: float or double, OpenMP. Both run the same per-pixel functions.
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/path_target.hpp"
#include "gpukit/nn/tensor.hpp"

#include <cuda/std/cmath>
#include <string>

namespace gpukit::nn {
namespace detail {

/// The pixels a softmax runs over: n·h·w of them, c channels each, `plane` = h·w apart.
struct softmax_geometry {
  long long pixels = 0, plane = 1;
  int c = 0;
  GPUKIT_HOST_DEVICE long long first(long long p) const noexcept {
    const long long n = p / plane;
    return n * c * plane + (p - n * plane);
  }
};

inline softmax_geometry make_softmax_geometry(const shape4& s) {
  softmax_geometry g;
  g.plane = static_cast<long long>(s.h * s.w);
  g.pixels = static_cast<long long>(s.n) * g.plane;
  g.c = static_cast<int>(s.c);
  if (g.plane == 0) g.plane = 1;
  return g;
}

/// y = softmax of the c values x[0], x[stride], ... (max subtracted first: no overflow).
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void softmax_pixel(const T* x, T* y, int c, long long stride) {
  T m = x[0];
  for (int k = 1; k < c; ++k) m = x[k * stride] > m ? x[k * stride] : m;
  T sum = T(0);
  for (int k = 0; k < c; ++k) {
    const T e = ::cuda::std::exp(x[k * stride] - m);
    y[k * stride] = e;
    sum += e;
  }
  const T inv = T(1) / sum;
  for (int k = 0; k < c; ++k) y[k * stride] *= inv;
}

/// dx = y ⊙ (dy - Σ y·dy) over one pixel's c channels.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void softmax_pixel_backward(const T* y, const T* dy, T* dx, int c, long long stride) {
  T s = T(0);
  for (int k = 0; k < c; ++k) s += y[k * stride] * dy[k * stride];
  for (int k = 0; k < c; ++k) dx[k * stride] = y[k * stride] * (dy[k * stride] - s);
}

template <class T>
void softmax_forward_impl(const cpu_executor& exec, const softmax_geometry& g, const T* x, T* y) {
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.pixels) * g.c * 8)) schedule(static)
  for (long long p = 0; p < g.pixels; ++p) softmax_pixel(x + g.first(p), y + g.first(p), g.c, g.plane);
}
template <class T>
void softmax_backward_impl(const cpu_executor& exec, const softmax_geometry& g, const T* y, const T* dy, T* dx) {
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.pixels) * g.c * 4)) schedule(static)
  for (long long p = 0; p < g.pixels; ++p)
    softmax_pixel_backward(y + g.first(p), dy + g.first(p), dx + g.first(p), g.c, g.plane);
}

#if defined(__CUDACC__)
// Defined in softmax.cuh.
inline void softmax_forward_impl(const cuda_executor& exec, const softmax_geometry& g, const float* x, float* y);
inline void softmax_backward_impl(const cuda_executor& exec, const softmax_geometry& g, const float* y,
                                  const float* dy, float* dx);
#else
GPUKIT_GPU_ONLY_STUB(softmax_forward_impl)
GPUKIT_GPU_ONLY_STUB(softmax_backward_impl)
#endif

}  // namespace detail

/// How a softmax runs: one thread per pixel over its channels (the CPU: OpenMP over
/// pixels); reads and writes each element once forward, three times backward.
struct softmax_path {
  bool on_gpu = false;
  std::string describe() const { return on_gpu ? "one thread per pixel over its channels" : "CPU loop over pixels"; }
};

/// The softmax path on `t` (the one selection function of the softmax layer).
inline softmax_path choose_softmax_path(const path_target& t) { return softmax_path{t.gpu}; }

/// y = softmax over the channels of each pixel of x.
template <class Exec, class X, class Y>
void softmax_forward(const Exec& exec, const X& x, Y&& y) {
  constexpr const char* where = "gpukit::nn::softmax_forward";
  const auto xv = detail::input_view<Exec>(x);
  using T = std::remove_const_t<std::remove_pointer_t<decltype(xv.data)>>;
  detail::require_element_type<Exec, T>();
  auto yv = detail::output_view<Exec>(y);
  static_assert(std::is_same_v<decltype(yv.data), T*>, "gpukit::nn::softmax_forward: x and y element types differ");
  detail::require_shape(where, "y", yv.shape, xv.shape);
  detail::softmax_forward_impl(exec, detail::make_softmax_geometry(xv.shape), xv.data, yv.data);
}

/// dx = the gradient through the softmax that produced y.
template <class Exec, class Y, class DY, class DX>
void softmax_backward(const Exec& exec, const Y& y, const DY& dy, DX&& dx) {
  constexpr const char* where = "gpukit::nn::softmax_backward";
  const auto yv = detail::input_view<Exec>(y);
  const auto dyv = detail::input_view<Exec>(dy);
  auto dxv = detail::output_view<Exec>(dx);
  using T = std::remove_pointer_t<decltype(dxv.data)>;
  detail::require_element_type<Exec, T>();
  detail::require_shape(where, "dy", dyv.shape, yv.shape);
  detail::require_shape(where, "dx", dxv.shape, yv.shape);
  detail::softmax_backward_impl(exec, detail::make_softmax_geometry(yv.shape), yv.data, dyv.data, dxv.data);
}

}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/softmax.cuh"
#endif
