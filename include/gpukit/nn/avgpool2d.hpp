// gpukit/nn/avgpool2d.hpp — average pooling and global average pooling.
//
//   nn::avgpool2d_forward(exec, pool, x, y)          y = the mean of each window of x
//   nn::avgpool2d_backward(exec, pool, dy, dx)       dx = dy spread evenly over each window
//   nn::global_avgpool2d_forward(exec, x, y)         y (n, c, 1, 1) = each plane's mean
//   nn::global_avgpool2d_backward(exec, dy, dx)      dx = dy / (h·w) everywhere in the plane
//
// Contracts (checked before anything is written; std::invalid_argument names the argument
// and both shapes):
// - x (n, c, h, w); y the pool's output shape. Windows lie inside the input (no padding,
//   floor division, as torch.nn.AvgPool2d with its defaults); the divisor is kh·kw.
// - backward: dy has y's shape; dx (x's shape) is ASSIGNED: each input element gets the
//   sum of dy over the windows that hold it, divided by kh·kw (zero where no window
//   reaches: the floor division's leftover rows and columns). dx must not alias dy.
// - cuda_executor: float, queued on its stream; cpu_executor: float or double, OpenMP.
//
// Both executors evaluate the same per-element functions (window_mean, window_mean_grad),
// except the GPU path that reduces large windows with several lanes per output
// (avgpool_kernel::lanes_per_output), which adds in another order: its results agree with
// the CPU within the rounding of a sum of kh·kw terms (avgpool_path::lanes says how many
// lanes share a window).
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/detail/fast_divmod.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/maxpool2d.hpp"
#include "gpukit/nn/path_target.hpp"
#include "gpukit/nn/tensor.hpp"

#include <algorithm>
#include <string>

namespace gpukit::nn {

/// How an average pool runs. Forward: one thread per output summing its window in
/// row-major order (the CPU's order), or for windows of at least avgpool_path::lanes_window
/// elements a group of `lanes` lanes per output (a power of two up to a warp) whose lanes
/// read consecutive elements of the window's rows and then add their partial sums with
/// shuffles: a large window (a global pool of an 8x8 plane, say) is read in coalesced runs
/// rather than one element per thread a plane apart. A window that spans whole rows of the
/// input (global pooling) is one run of kh·w elements, read as float4 where it is aligned.
/// Backward: one thread per input element (four consecutive ones, one float4 store, where
/// rows are a multiple of four) gathering dy over the windows that hold it: every element
/// written once, nothing atomic, the CPU's sums. Each pass reads its input once and writes
/// its output once: the memory-traffic floor.
enum class avgpool_kernel { one_thread_per_output, lanes_per_output };

struct avgpool_path {
  static constexpr long long lanes_window = 32;  // window elements from which lanes share an output
  avgpool_kernel kernel = avgpool_kernel::one_thread_per_output;
  int lanes = 1;             // lanes_per_output: lanes that reduce one output (2..32)
  bool row_runs = false;     // lanes_per_output over windows that span whole input rows
  int forward_vector = 1;    // elements per load of a row run: 4 where the runs are aligned
  int backward_vector = 1;   // input elements per backward thread: 4 where rows allow
  bool on_gpu = false;
  std::string describe() const {
    if (!on_gpu) return "CPU loop over planes";
    std::string s = kernel == avgpool_kernel::lanes_per_output
                        ? std::to_string(lanes) + " lanes per output" + (row_runs ? " over whole rows" : "") +
                              (forward_vector == 4 ? " (float4)" : "")
                        : std::string("one thread per output");
    return s + (backward_vector == 4 ? ", back one thread per 4 inputs" : ", back one thread per input");
  }
};

namespace detail {

inline pool_geometry make_avgpool_geometry(const avgpool2d& pool, const shape4& in, const std::string& who) {
  return make_window_geometry(pool.window, pool.stride, in, pool.output_shape(in, who), who);
}

GPUKIT_HOST_DEVICE inline long long window_area(const pool_geometry& g) noexcept {
  return static_cast<long long>(g.kh) * g.kw;
}

/// sum / area, as a multiply where area is a power of two: both round the same exact value
/// (a power of two's reciprocal is exact), so the result is the same and the GPU skips a
/// division.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T mean_of(T sum, long long area) {
  return (area & (area - 1)) == 0 ? sum * (T(1) / static_cast<T>(area)) : sum / static_cast<T>(area);
}

/// The mean of the kh x kw window with corner (y0, x0) of a plane whose rows are `pitch`
/// elements apart: summed in row-major order, then divided by kh·kw.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T window_mean(const T* plane, long long pitch, int y0, int x0, int kh, int kw) {
  T s = T(0);
  for (int wy = 0; wy < kh; ++wy) {
    const T* row = plane + static_cast<long long>(y0 + wy) * pitch + x0;
    for (int wx = 0; wx < kw; ++wx) s += row[wx];
  }
  return mean_of(s, static_cast<long long>(kh) * kw);
}

/// dL/dx at (y, x) of a plane: the sum of dy over the windows holding it (row-major window
/// order), divided by kh·kw. `dy_plane` is the plane's ph x pw gradient; sh and sw divide
/// by the strides.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T window_mean_grad(const T* dy_plane, const pool_geometry& g,
                                                         const fast_divmod& sh, const fast_divmod& sw, int y, int x) {
  if (!g.overlapping()) {  // at most one window holds (y, x): the sum below of one term, in fewer steps
    int py, ry, px, rx;
    sh.divmod(y, py, ry);
    sw.divmod(x, px, rx);
    if (ry >= g.kh || rx >= g.kw || py >= g.ph || px >= g.pw) return T(0);
    return mean_of(dy_plane[static_cast<long long>(py) * g.pw + px], window_area(g));
  }
  int y0, y1, x0, x1;
  windows_holding(y, g.kh, sh, g.ph, y0, y1);
  windows_holding(x, g.kw, sw, g.pw, x0, x1);
  T s = T(0);
  for (int py = y0; py <= y1; ++py)
    for (int px = x0; px <= x1; ++px) s += dy_plane[static_cast<long long>(py) * g.pw + px];
  return mean_of(s, window_area(g));
}

template <class T>
void avgpool_forward_cpu(const cpu_executor& exec, const pool_geometry& g, const T* x, T* y) {
  const long long planes = static_cast<long long>(g.n) * g.c;
  const long long in_plane = static_cast<long long>(g.h) * g.w, out_plane = static_cast<long long>(g.ph) * g.pw;
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.output_size()) * window_area(g))) \
    schedule(static)
  for (long long p = 0; p < planes; ++p)
    for (int py = 0; py < g.ph; ++py)
      for (int px = 0; px < g.pw; ++px)
        y[p * out_plane + static_cast<long long>(py) * g.pw + px] =
            window_mean(x + p * in_plane, g.w, py * g.sh, px * g.sw, g.kh, g.kw);
}

template <class T>
void avgpool_backward_cpu(const cpu_executor& exec, const pool_geometry& g, const T* dy, T* dx) {
  const long long planes = static_cast<long long>(g.n) * g.c;
  const long long in_plane = static_cast<long long>(g.h) * g.w, out_plane = static_cast<long long>(g.ph) * g.pw;
  const fast_divmod sh(g.sh), sw(g.sw);
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.input_size()))) schedule(static)
  for (long long p = 0; p < planes; ++p)
    for (int yy = 0; yy < g.h; ++yy)
      for (int xx = 0; xx < g.w; ++xx)
        dx[p * in_plane + static_cast<long long>(yy) * g.w + xx] =
            window_mean_grad(dy + p * out_plane, g, sh, sw, yy, xx);
}

template <class T>
void avgpool_forward_impl(const cpu_executor& exec, const pool_geometry& g, const avgpool_path&, const T* x, T* y) {
  avgpool_forward_cpu(exec, g, x, y);
}
template <class T>
void avgpool_backward_impl(const cpu_executor& exec, const pool_geometry& g, const avgpool_path&, const T* dy, T* dx) {
  avgpool_backward_cpu(exec, g, dy, dx);
}

#if defined(__CUDACC__)
// Defined in avgpool2d.cuh.
inline void avgpool_forward_impl(const cuda_executor& exec, const pool_geometry& g, const avgpool_path& path,
                                 const float* x, float* y);
inline void avgpool_backward_impl(const cuda_executor& exec, const pool_geometry& g, const avgpool_path& path,
                                  const float* dy, float* dx);
#else
GPUKIT_GPU_ONLY_STUB(avgpool_forward_impl)
GPUKIT_GPU_ONLY_STUB(avgpool_backward_impl)
#endif

}  // namespace detail

/// The average-pool path for `g` on `t` (the one selection function of the average-pool
/// layers, global pooling included).
inline avgpool_path choose_avgpool_path(const detail::pool_geometry& g, const path_target& t) {
  avgpool_path p;
  p.on_gpu = t.gpu;
  if (!t.gpu) return p;
  if (g.w % 4 == 0) p.backward_vector = 4;
  const long long area = detail::window_area(g);
  if (area < avgpool_path::lanes_window) return p;
  p.kernel = avgpool_kernel::lanes_per_output;
  // A window as wide as the input is kh whole rows: one run of kh·w elements.
  p.row_runs = g.kw == g.w;
  const long long plane = static_cast<long long>(g.h) * g.w, run_step = static_cast<long long>(g.sh) * g.w;
  if (p.row_runs && area % 4 == 0 && run_step % 4 == 0 && plane % 4 == 0) p.forward_vector = 4;
  // Enough lanes that each reads about two loads of its window, at most a warp.
  const long long loads_per_lane = 2 * p.forward_vector;
  while (p.lanes < 32 && static_cast<long long>(p.lanes) * 2 * loads_per_lane <= area) p.lanes *= 2;
  return p;
}

namespace detail {

/// The machine a standalone call's path is chosen for.
inline path_target avgpool_target(const cpu_executor&) { return path_target::cpu(); }
inline path_target avgpool_target(const cuda_executor&) { return path_target::current_gpu(); }

template <class Exec, class X, class Y>
void avgpool_forward_checked(const Exec& exec, const char* where, const avgpool2d& pool, const X& x, Y&& y) {
  const auto xv = input_view<Exec>(x);
  using T = std::remove_const_t<std::remove_pointer_t<decltype(xv.data)>>;
  require_element_type<Exec, T>();
  auto yv = output_view<Exec>(y);
  static_assert(std::is_same_v<decltype(yv.data), T*>, "gpukit::nn::avgpool2d_forward: x and y element types differ");
  const pool_geometry g = make_avgpool_geometry(pool, xv.shape, where);
  require_shape(where, "y", yv.shape, pool.output_shape(xv.shape, where));
  avgpool_forward_impl(exec, g, choose_avgpool_path(g, avgpool_target(exec)), xv.data, yv.data);
}

template <class Exec, class DY, class DX>
void avgpool_backward_checked(const Exec& exec, const char* where, const avgpool2d& pool, const DY& dy, DX&& dx) {
  auto dxv = output_view<Exec>(dx);
  using T = std::remove_pointer_t<decltype(dxv.data)>;
  require_element_type<Exec, T>();
  const auto dyv = input_view<Exec>(dy);
  static_assert(std::is_same_v<decltype(dyv.data), const T*>, "gpukit::nn::avgpool2d_backward: dy and dx element types differ");
  const pool_geometry g = make_avgpool_geometry(pool, dxv.shape, where);
  require_shape(where, "dy", dyv.shape, pool.output_shape(dxv.shape, where));
  require(!gpukit::detail::overlaps(dxv.span(), dyv.span()), where, "arguments 'dx' and 'dy' overlap");
  avgpool_backward_impl(exec, g, choose_avgpool_path(g, avgpool_target(exec)), dyv.data, dxv.data);
}

}  // namespace detail

/// y = the mean of each window of x.
template <class Exec, class X, class Y>
void avgpool2d_forward(const Exec& exec, const avgpool2d& pool, const X& x, Y&& y) {
  detail::avgpool_forward_checked(exec, "gpukit::nn::avgpool2d_forward", pool, x, y);
}

/// dx = dy spread evenly over each window (assigned).
template <class Exec, class DY, class DX>
void avgpool2d_backward(const Exec& exec, const avgpool2d& pool, const DY& dy, DX&& dx) {
  detail::avgpool_backward_checked(exec, "gpukit::nn::avgpool2d_backward", pool, dy, dx);
}

/// y (n, c, 1, 1) = the mean of each plane of x (n, c, h, w).
template <class Exec, class X, class Y>
void global_avgpool2d_forward(const Exec& exec, const X& x, Y&& y) {
  const auto xv = detail::input_view<Exec>(x);
  detail::avgpool_forward_checked(exec, "gpukit::nn::global_avgpool2d_forward", global_avgpool2d{}.as_avgpool(xv.shape),
                                  x, y);
}

/// dx (n, c, h, w) = dy (n, c, 1, 1) / (h·w) in every element of its plane (assigned).
template <class Exec, class DY, class DX>
void global_avgpool2d_backward(const Exec& exec, const DY& dy, DX&& dx) {
  const auto dxv = detail::output_view<Exec>(dx);
  detail::avgpool_backward_checked(exec, "gpukit::nn::global_avgpool2d_backward",
                                   global_avgpool2d{}.as_avgpool(dxv.shape), dy, dx);
}

}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/avgpool2d.cuh"
#endif
