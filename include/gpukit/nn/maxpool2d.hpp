// gpukit/nn/maxpool2d.hpp — max pooling on its own (after a conv it is fused into
// conv2d_block_forward instead).
//
//   nn::maxpool2d_forward(exec, pool, x, y, argmax)
//   nn::maxpool2d_backward(exec, pool, dy, argmax, dx)
//
// Contracts (checked before anything is written; std::invalid_argument names the argument
// and both shapes):
// - x (n, c, h, w); y and argmax (int32) the pool's output shape. argmax receives, for each
//   output, the input element it came from as (row << 16) | column in its plane (the first
//   maximum in row-major window order); h and w must be below 65536.
// - backward: dy has y's shape; dx (x's shape) is ASSIGNED: zero except where a maximum
//   came from (overlapping windows add up, in row-major window order).
// - cuda_executor: float, queued on its stream; cpu_executor: float or double, OpenMP.
//
// Both executors evaluate the same per-element functions (window_max forward,
// window_max_grad backward: each input element gathers the windows that hold it), so the
// GPU's results equal the CPU's bit for bit.
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/detail/fast_divmod.hpp"
#include "gpukit/nn/path_target.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

namespace gpukit::nn {
namespace detail {

struct pool_geometry {
  int n = 0, c = 0, h = 0, w = 0;
  int kh = 1, kw = 1, sh = 1, sw = 1;
  int ph = 0, pw = 0;
  GPUKIT_HOST_DEVICE long long input_size() const noexcept { return static_cast<long long>(n) * c * h * w; }
  GPUKIT_HOST_DEVICE long long output_size() const noexcept { return static_cast<long long>(n) * c * ph * pw; }
  GPUKIT_HOST_DEVICE bool overlapping() const noexcept { return kh > sh || kw > sw; }
};

/// The geometry of a pooling window over `in` (the layer's output shape `out`); `who` names
/// the layer in the message of a rejection.
inline pool_geometry make_window_geometry(kernel_size window, kernel_size stride, const shape4& in, const shape4& out,
                                          const std::string& who) {
  require_dimension(who.c_str(), "input height", in.h);
  require_dimension(who.c_str(), "input width", in.w);
  require_dimension(who.c_str(), "input planes (n * c)", in.n * in.c, 0x7fffffff);
  pool_geometry g;
  g.n = static_cast<int>(in.n);
  g.c = static_cast<int>(in.c);
  g.h = static_cast<int>(in.h);
  g.w = static_cast<int>(in.w);
  g.kh = static_cast<int>(window.h);
  g.kw = static_cast<int>(window.w);
  g.sh = static_cast<int>(std::min<std::size_t>(stride.h, 65535));
  g.sw = static_cast<int>(std::min<std::size_t>(stride.w, 65535));
  g.ph = static_cast<int>(out.h);
  g.pw = static_cast<int>(out.w);
  return g;
}

inline pool_geometry make_pool_geometry(const maxpool2d& pool, const shape4& in, const std::string& who) {
  return make_window_geometry(pool.window, pool.stride, in, pool.output_shape(in, who), who);
}

/// The maximum of the kh x kw window with corner (y0, x0) of a plane whose rows are `pitch`
/// elements apart, and where it lies: the first maximum in row-major order (strict '>'),
/// the rule every pooling path shares so that the CPU and the GPU pick the same element.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T window_max(const T* plane, long long pitch, int y0, int x0, int kh, int kw,
                                                   int& by, int& bx) {
  T best = plane[static_cast<long long>(y0) * pitch + x0];
  by = y0, bx = x0;
  for (int wy = 0; wy < kh; ++wy)
    for (int wx = 0; wx < kw; ++wx) {
      const T v = plane[static_cast<long long>(y0 + wy) * pitch + x0 + wx];
      if (v > best) best = v, by = y0 + wy, bx = x0 + wx;
    }
  return best;
}

/// (row << 16) | column of a plane element, as argmax stores it.
GPUKIT_HOST_DEVICE inline constexpr std::int32_t pack_position(int row, int column) noexcept {
  return static_cast<std::int32_t>((static_cast<std::uint32_t>(row) << 16) | static_cast<std::uint32_t>(column));
}

/// The windows along one dimension that hold position p (0 <= p < 65536): the first whose
/// span index·stride .. index·stride + k - 1 reaches p, and the last (below the first: no
/// window holds p, as in the floor division's leftover rows and columns). `stride` divides
/// by multiply and shift: these run once per input element.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void windows_holding(int p, int k, const fast_divmod& stride, int count,
                                                           int& first, int& last) noexcept {
  first = p - k + 1 <= 0 ? 0 : stride.div(p - k + stride.divisor);
  const int q = stride.div(p);
  last = q < count - 1 ? q : count - 1;
}

/// dL/dx at (y, x) of a plane under max pooling: the sum of dy over the windows that hold
/// (y, x) and whose argmax is (y, x), in row-major window order (so overlapping windows add
/// in the order a scatter over the outputs would). `dy_plane` and `argmax_plane` are the
/// plane's ph x pw outputs; sh and sw divide by the strides.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T window_max_grad(const T* dy_plane, const std::int32_t* argmax_plane,
                                                        const pool_geometry& g, const fast_divmod& sh,
                                                        const fast_divmod& sw, int y, int x) {
  const std::int32_t here = pack_position(y, x);
  if (!g.overlapping()) {  // at most one window holds (y, x): the sum below of one term, in fewer steps
    int py, ry, px, rx;
    sh.divmod(y, py, ry);
    sw.divmod(x, px, rx);
    if (ry >= g.kh || rx >= g.kw || py >= g.ph || px >= g.pw) return T(0);
    const long long o = static_cast<long long>(py) * g.pw + px;
    return argmax_plane[o] == here ? dy_plane[o] : T(0);
  }
  int y0, y1, x0, x1;
  windows_holding(y, g.kh, sh, g.ph, y0, y1);
  windows_holding(x, g.kw, sw, g.pw, x0, x1);
  T s = T(0);
  for (int py = y0; py <= y1; ++py)
    for (int px = x0; px <= x1; ++px) {
      const long long o = static_cast<long long>(py) * g.pw + px;
      if (argmax_plane[o] == here) s += dy_plane[o];
    }
  return s;
}

template <class T>
void pool_forward_cpu(const cpu_executor& exec, const pool_geometry& g, const T* x, T* y, std::int32_t* argmax) {
  const long long planes = static_cast<long long>(g.n) * g.c;
  const long long in_plane = static_cast<long long>(g.h) * g.w, out_plane = static_cast<long long>(g.ph) * g.pw;
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.output_size()) * g.kh * g.kw)) \
    schedule(static)
  for (long long p = 0; p < planes; ++p) {
    const T* xp = x + p * in_plane;
    for (int py = 0; py < g.ph; ++py)
      for (int px = 0; px < g.pw; ++px) {
        int by, bx;
        const long long o = p * out_plane + static_cast<long long>(py) * g.pw + px;
        y[o] = window_max(xp, g.w, py * g.sh, px * g.sw, g.kh, g.kw, by, bx);
        argmax[o] = pack_position(by, bx);
      }
  }
}

template <class T>
void pool_backward_cpu(const cpu_executor& exec, const pool_geometry& g, const T* dy, const std::int32_t* argmax,
                       T* dx) {
  const long long planes = static_cast<long long>(g.n) * g.c;
  const long long in_plane = static_cast<long long>(g.h) * g.w, out_plane = static_cast<long long>(g.ph) * g.pw;
  const fast_divmod sh(g.sh), sw(g.sw);
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.input_size()))) schedule(static)
  for (long long p = 0; p < planes; ++p)
    for (int yy = 0; yy < g.h; ++yy)
      for (int xx = 0; xx < g.w; ++xx)
        dx[p * in_plane + static_cast<long long>(yy) * g.w + xx] =
            window_max_grad(dy + p * out_plane, argmax + p * out_plane, g, sh, sw, yy, xx);
}

}  // namespace detail

/// How a max-pool runs where it is not fused into the conv before it (see conv2d.hpp): on
/// the GPU one thread per output forward, and backward one thread per input element (four
/// consecutive ones, stored as one float4, where rows are a multiple of four) gathering the
/// windows that hold it: every element written once, no zero fill, nothing atomic, the same
/// sums as the CPU. The CPU: OpenMP over planes, the same functions.
enum class pool_kernel { one_thread_per_output };

struct pool_path {
  pool_kernel kernel = pool_kernel::one_thread_per_output;
  bool on_gpu = false;
  int backward_vector = 1;  // input elements per backward thread: 4 where rows allow (and the tensors are aligned)
  std::string describe() const {
    if (!on_gpu) return "CPU loop over planes";
    return backward_vector == 4 ? "one thread per output, back one thread per 4 inputs gathering their windows"
                                : "one thread per output, back one thread per input gathering its windows";
  }
};

namespace detail {

template <class T>
void pool_forward_impl(const cpu_executor& exec, const pool_geometry& g, const T* x, T* y, std::int32_t* argmax) {
  pool_forward_cpu(exec, g, x, y, argmax);
}
template <class T>
void pool_backward_impl(const cpu_executor& exec, const pool_geometry& g, const pool_path&, const T* dy,
                        const std::int32_t* argmax, T* dx) {
  pool_backward_cpu(exec, g, dy, argmax, dx);
}

#if defined(__CUDACC__)
// Defined in maxpool2d.cuh.
inline void pool_forward_impl(const cuda_executor& exec, const pool_geometry& g, const float* x, float* y,
                              std::int32_t* argmax);
inline void pool_backward_impl(const cuda_executor& exec, const pool_geometry& g, const pool_path& path,
                               const float* dy, const std::int32_t* argmax, float* dx);
#else
GPUKIT_GPU_ONLY_STUB(pool_forward_impl)
GPUKIT_GPU_ONLY_STUB(pool_backward_impl)
#endif

}  // namespace detail

/// The pooling path for `g` on `t` (the one selection function of the max-pool layer).
inline pool_path choose_pool_path(const detail::pool_geometry& g, const path_target& t) {
  pool_path p;
  p.on_gpu = t.gpu;
  if (t.gpu && g.w % 4 == 0) p.backward_vector = 4;
  return p;
}

namespace detail {
/// The machine a standalone call's path is chosen for.
inline path_target pool_target(const cpu_executor&) { return path_target::cpu(); }
inline path_target pool_target(const cuda_executor&) { return path_target::current_gpu(); }
}  // namespace detail

/// y = max over each window of x, argmax = where it came from.
template <class Exec, class X, class Y, class A>
void maxpool2d_forward(const Exec& exec, const maxpool2d& pool, const X& x, Y&& y, A&& argmax) {
  constexpr const char* where = "gpukit::nn::maxpool2d_forward";
  const auto xv = detail::input_view<Exec>(x);
  using T = std::remove_const_t<std::remove_pointer_t<decltype(xv.data)>>;
  detail::require_element_type<Exec, T>();
  auto yv = detail::output_view<Exec>(y);
  auto av = detail::output_view<Exec>(argmax);
  static_assert(std::is_same_v<decltype(yv.data), T*>, "gpukit::nn::maxpool2d_forward: x and y element types differ");
  static_assert(std::is_same_v<decltype(av.data), std::int32_t*>, "gpukit::nn::maxpool2d_forward: argmax holds int32");
  const detail::pool_geometry g = detail::make_pool_geometry(pool, xv.shape, where);
  const shape4 out = pool.output_shape(xv.shape, where);
  detail::require_shape(where, "y", yv.shape, out);
  detail::require_shape(where, "argmax", av.shape, out);
  detail::pool_forward_impl(exec, g, xv.data, yv.data, av.data);
}

/// dx = dy routed back to where each maximum came from.
template <class Exec, class DY, class A, class DX>
void maxpool2d_backward(const Exec& exec, const maxpool2d& pool, const DY& dy, const A& argmax, DX&& dx) {
  constexpr const char* where = "gpukit::nn::maxpool2d_backward";
  auto dxv = detail::output_view<Exec>(dx);
  using T = std::remove_pointer_t<decltype(dxv.data)>;
  detail::require_element_type<Exec, T>();
  const auto dyv = detail::input_view<Exec>(dy);
  const auto av = detail::input_view<Exec>(argmax);
  static_assert(std::is_same_v<decltype(dyv.data), const T*>, "gpukit::nn::maxpool2d_backward: dy and dx element types differ");
  static_assert(std::is_same_v<decltype(av.data), const std::int32_t*>, "gpukit::nn::maxpool2d_backward: argmax holds int32");
  const detail::pool_geometry g = detail::make_pool_geometry(pool, dxv.shape, where);
  const shape4 out = pool.output_shape(dxv.shape, where);
  detail::require_shape(where, "dy", dyv.shape, out);
  detail::require_shape(where, "argmax", av.shape, out);
  detail::require(!gpukit::detail::overlaps(dxv.span(), dyv.span()), where, "arguments 'dx' and 'dy' overlap");
  detail::pool_backward_impl(exec, g, choose_pool_path(g, detail::pool_target(exec)), dyv.data, av.data, dxv.data);
}

}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/maxpool2d.cuh"
#endif
