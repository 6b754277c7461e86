// gpukit/nn/conv2d.hpp — the 2-D convolution layer, alone or fused with the activation
// and the max-pool that follow it (the seed model's Conv2D + relu + MaxPool 2x2 is one
// layer call that writes only the pooled result and where each maximum came from).
//
//   nn::conv2d_forward(exec, conv, x, w, b, y)
//   nn::conv2d_backward(exec, conv, x, w, dy, dw, db, dx)
//   nn::conv2d_block_forward(exec, block, x, w, b, y, argmax)
//   nn::conv2d_block_backward(exec, block, x, w, y, argmax, dy, dw, db, dx)
//   nn::choose_conv2d_path(geometry, target, want_dx)   which GPU kernels run, and why
//
// Contracts (all checked before anything is written; std::invalid_argument names the
// argument and both shapes):
// - x (n, in, h, w); w has out·in·kh·kw elements, (out, in, kh, kw); b has out elements
//   (also for a layer made with no_bias(): pass zeros; in a model it has no bias at all);
//   y the block's output shape: the conv's (n, out, oh, ow), pooled when block.pool is set.
// - argmax (int32, y's shape) receives, for each pooled output, the conv-output element
//   it came from as (row << 16) | column; unused (may be empty) without a pool.
// - backward: dy has y's shape; y and argmax are the forward's outputs (y is read only
//   when there is an activation). Parameter gradients ACCUMULATE (dw += ..., db += ...);
//   the input gradient dx (x's shape) is ASSIGNED, or skipped when nn::no_grad is passed.
// - No output may overlap an input. cuda_executor: float, queued on its stream, scratch
//   from its workspace if it has one (else allocated stream-ordered per call);
//   cpu_executor: float or double, OpenMP, returns when done.
//
// GPU paths (choose_conv2d_path picks them; summary() shows the choice per layer):
// - forward: the implicit GEMM (nn/detail/conv_igemm.cuh, any kernel, stride, padding and
//   channel count; bias and activation in its epilogue, a pool as a pass of its own), the
//   3x3 stride-1 block with the pool in registers for layers of few input taps (the
//   article's first layer), or the direct tiled kernel (pool windows up to 16x16 fused;
//   chosen for very few output channels).
// - weight gradient: the implicit GEMM with the bias as one more column, split over the
//   output pixels; or, for at most 32 taps (a first layer), the band kernel.
// - input gradient: the implicit GEMM, one product per stride phase.
// Every sum runs in a fixed order: the same inputs give the same bits at every run.
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/detail/conv2d_plan.hpp"
#include "gpukit/nn/detail/conv_cpu.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/maxpool2d.hpp"
#include "gpukit/nn/path_target.hpp"
#include "gpukit/nn/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gpukit::nn {

namespace detail {

// ---- CPU path ------------------------------------------------------------------------
// The direct loops below are the reference: the layer runs the blocked-GEMM versions of
// detail/conv_cpu.hpp, tested against them.

/// One output plane of the convolution: out[oy][ox] = bias + Σ w · x, the inner loop running
/// along a row of the output so the compiler can vectorise it.
template <class T>
void conv_plane_cpu(const conv_geometry& g, const T* x_n, const T* w_oc, T bias, T* out) {
  const int s = g.stride;
  std::fill(out, out + static_cast<std::size_t>(g.oh) * g.ow, bias);
  for (int ic = 0; ic < g.ic; ++ic) {
    for (int ky = 0; ky < g.kh; ++ky) {
      for (int kx = 0; kx < g.kw; ++kx) {
        const T wv = w_oc[(static_cast<long long>(ic) * g.kh + ky) * g.kw + kx];
        const int shift = kx * g.dil - g.pad_w;  // input column = ox·s + shift
        const int ox_lo = shift >= 0 ? 0 : (-shift + s - 1) / s;
        const int ox_hi = g.w - 1 - shift < 0 ? -1 : std::min(g.ow - 1, (g.w - 1 - shift) / s);
        for (int oy = 0; oy < g.oh; ++oy) {
          const int iy = oy * s - g.pad_h + ky * g.dil;
          if (iy < 0 || iy >= g.h) continue;
          const T* xr = x_n + (static_cast<long long>(ic) * g.h + iy) * g.w;
          T* orow = out + static_cast<long long>(oy) * g.ow;
          if (s == 1) {  // contiguous input: the loop the compiler vectorises
            const T* xs = xr + (ox_lo + shift);
            T* os = orow + ox_lo;
            const int count = ox_hi - ox_lo + 1;
#pragma omp simd
            for (int i = 0; i < count; ++i) os[i] += wv * xs[i];
          } else {
            for (int ox = ox_lo; ox <= ox_hi; ++ox) orow[ox] += wv * xr[ox * s + shift];
          }
        }
      }
    }
  }
}

template <class T>
void conv_forward_cpu(const cpu_executor& exec, const conv_geometry& g, const T* x, const T* w, const T* b, T* y,
                      std::int32_t* argmax) {
  const long long planes = static_cast<long long>(g.n) * g.oc;
  const long long conv_plane = static_cast<long long>(g.oh) * g.ow, out_plane = static_cast<long long>(g.ph) * g.pw;
  const int threads = cpu_threads_for(exec, static_cast<double>(g.conv_size()) * static_cast<double>(g.kdim()));
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> scratch(g.pooled ? static_cast<std::size_t>(conv_plane) : 0);
#pragma omp for schedule(static)
    for (long long p = 0; p < planes; ++p) {
      const int n = static_cast<int>(p / g.oc), oc = static_cast<int>(p % g.oc);
      T* plane = g.pooled ? scratch.data() : y + p * out_plane;
      conv_plane_cpu(g, x + static_cast<long long>(n) * g.ic * g.h * g.w, w + oc * g.kdim(), b[oc], plane);
      if (g.act != activation::none)
        for (long long i = 0; i < conv_plane; ++i) plane[i] = activate(g.act, plane[i]);
      if (!g.pooled) continue;
      T* yp = y + p * out_plane;
      std::int32_t* ap = argmax + p * out_plane;
      for (int py = 0; py < g.ph; ++py) {
        for (int px = 0; px < g.pw; ++px) {
          int by, bx;
          yp[py * g.pw + px] = window_max(plane, g.ow, py * g.psh, px * g.psw, g.pkh, g.pkw, by, bx);
          ap[py * g.pw + px] = pack_position(by, bx);
        }
      }
    }
  }
}

/// The gradient reaching the conv output through one block output: dy · act'(y).
template <class T>
inline T block_output_gradient(const conv_geometry& g, const T* y, const T* dy, long long i) {
  return g.act == activation::none ? dy[i] : dy[i] * activation_slope(g.act, y[i]);
}


template <class T>
void conv_backward_cpu(const cpu_executor& exec, const conv_geometry& g, const T* x, const T* w, const T* y,
                       const std::int32_t* argmax, const T* dy, T* dw, T* db, T* dx,
                       const conv_backward_extras<T>& extra = {}) {
  const bool accumulate = extra.accumulate;
  const long long out_plane = static_cast<long long>(g.ph) * g.pw, conv_plane = static_cast<long long>(g.oh) * g.ow;
  const long long in_plane = static_cast<long long>(g.h) * g.w;
  const long long kdim = g.kdim();
  const auto position = [&](long long i, long long q, int& oy, int& ox) {
    if (g.pooled) {
      oy = static_cast<int>(static_cast<std::uint32_t>(argmax[i]) >> 16);
      ox = static_cast<int>(argmax[i] & 0xffff);
    } else {
      oy = static_cast<int>(q / g.pw);
      ox = static_cast<int>(q % g.pw);
    }
  };

  // Weights and bias: every block output adds its gradient times the input patch under the
  // conv output it came from. One output channel per thread: no two threads share a sum.
  const double work = static_cast<double>(g.output_size()) * static_cast<double>(kdim);
#pragma omp parallel for num_threads(cpu_threads_for(exec, work)) schedule(dynamic, 1)
  for (int oc = 0; oc < g.oc; ++oc) {
    std::vector<T> acc(static_cast<std::size_t>(kdim), T(0));
    T bias_acc = T(0);
    for (int n = 0; n < g.n; ++n) {
      const T* xn = x + static_cast<long long>(n) * g.ic * in_plane;
      for (long long q = 0; q < out_plane; ++q) {
        const long long i = (static_cast<long long>(n) * g.oc + oc) * out_plane + q;
        const T s = block_output_gradient(g, y, dy, i);
        if (s == T(0)) continue;
        int oy, ox;
        position(i, q, oy, ox);
        const int iy0 = oy * g.stride - g.pad_h, ix0 = ox * g.stride - g.pad_w;
        for (int ic = 0; ic < g.ic; ++ic)
          for (int ky = 0; ky < g.kh; ++ky) {
            const int iy = iy0 + ky * g.dil;
            if (iy < 0 || iy >= g.h) continue;
            const T* row = xn + ic * in_plane + static_cast<long long>(iy) * g.w;
            T* a = acc.data() + (static_cast<long long>(ic) * g.kh + ky) * g.kw;
            for (int kx = 0; kx < g.kw; ++kx) {
              const int ix = ix0 + kx * g.dil;
              if (ix >= 0 && ix < g.w) a[kx] += s * row[ix];
            }
          }
        bias_acc += s;
      }
    }
    for (long long k = 0; k < kdim; ++k)
      dw[oc * kdim + k] = (accumulate ? dw[oc * kdim + k] : T(0)) + acc[static_cast<std::size_t>(k)];
    db[oc] = (accumulate ? db[oc] : T(0)) + bias_acc;
  }
  if (dx == nullptr) return;

  // Input: first the gradient at every conv output (scattered back through the pool and the
  // activation), then each input plane gathers it through the kernel.
  std::vector<T> dz_buffer;
  const T* dz = dy;
  const long long planes = static_cast<long long>(g.n) * g.oc;
  if (g.pooled || g.act != activation::none) {
    dz_buffer.assign(static_cast<std::size_t>(g.conv_size()), T(0));
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.conv_size()))) schedule(static)
    for (long long p = 0; p < planes; ++p) {
      for (long long q = 0; q < out_plane; ++q) {
        const long long i = p * out_plane + q;
        int oy, ox;
        position(i, q, oy, ox);
        dz_buffer[static_cast<std::size_t>(p * conv_plane + static_cast<long long>(oy) * g.ow + ox)] +=
            block_output_gradient(g, y, dy, i);
      }
    }
    dz = dz_buffer.data();
  }
  const long long in_planes = static_cast<long long>(g.n) * g.ic;
  const double dx_work = static_cast<double>(g.conv_size()) * static_cast<double>(kdim);
#pragma omp parallel for num_threads(cpu_threads_for(exec, dx_work)) schedule(static)
  for (long long p = 0; p < in_planes; ++p) {
    const int n = static_cast<int>(p / g.ic), ic = static_cast<int>(p % g.ic);
    T* plane = dx + p * in_plane;
    std::fill(plane, plane + in_plane, T(0));
    for (int oc = 0; oc < g.oc; ++oc) {
      const T* dzp = dz + (static_cast<long long>(n) * g.oc + oc) * conv_plane;
      for (int ky = 0; ky < g.kh; ++ky)
        for (int kx = 0; kx < g.kw; ++kx) {
          const T wv = w[((static_cast<long long>(oc) * g.ic + ic) * g.kh + ky) * g.kw + kx];
          const int shift = kx * g.dil - g.pad_w;
          const int ox_lo = shift >= 0 ? 0 : (-shift + g.stride - 1) / g.stride;
          const int ox_hi = g.w - 1 - shift < 0 ? -1 : std::min(g.ow - 1, (g.w - 1 - shift) / g.stride);
          for (int oy = 0; oy < g.oh; ++oy) {
            const int iy = oy * g.stride - g.pad_h + ky * g.dil;
            if (iy < 0 || iy >= g.h) continue;
            T* row = plane + static_cast<long long>(iy) * g.w;
            const T* drow = dzp + static_cast<long long>(oy) * g.ow;
            for (int ox = ox_lo; ox <= ox_hi; ++ox) row[ox * g.stride + shift] += wv * drow[ox];
          }
        }
    }
    if (extra.dx_act != activation::none) {
      const T* yp = extra.dx_act_y + p * in_plane;
      for (long long i = 0; i < in_plane; ++i) plane[i] *= activation_slope(extra.dx_act, yp[i]);
    }
  }
}

template <class T>
void conv_forward_impl(const cpu_executor& exec, const conv_geometry& g, const conv2d_path& path, const T* x,
                       const T* w, const T* b, T* y, std::int32_t* argmax) {
  conv_forward_gemm_cpu(exec, g, x, w, b, y, argmax, path.target.numbers);
}
template <class T>
void conv_backward_impl(const cpu_executor& exec, const conv_geometry& g, const conv2d_path& path, const T* x,
                        const T* w, const T* y, const std::int32_t* argmax, const T* dy, T* dw, T* db, T* dx,
                        const conv_backward_extras<T>& extra) {
  conv_backward_gemm_cpu(exec, g, x, w, y, argmax, dy, dw, db, dx, extra, path.target.numbers);
}

#if defined(__CUDACC__)
// Defined in conv2d.cuh.
inline void conv_forward_impl(const cuda_executor& exec, const conv_geometry& g, const conv2d_path& path,
                              const float* x, const float* w, const float* b, float* y, std::int32_t* argmax);
inline void conv_backward_impl(const cuda_executor& exec, const conv_geometry& g, const conv2d_path& path,
                               const float* x, const float* w, const float* y, const std::int32_t* argmax,
                               const float* dy, float* dw, float* db, float* dx,
                               const conv_backward_extras<float>& extra);
#else
GPUKIT_GPU_ONLY_STUB(conv_forward_impl)
GPUKIT_GPU_ONLY_STUB(conv_backward_impl)
#endif

/// The path a standalone layer call takes on `exec`'s device (the model plans its own).
inline conv2d_path conv2d_path_for(const cpu_executor&, const conv_geometry& g, bool want_dx) {
  return choose_conv2d_path(g, path_target::cpu(), want_dx);
}
inline conv2d_path conv2d_path_for(const cuda_executor&, const conv_geometry& g, bool want_dx) {
  return choose_conv2d_path(g, path_target::current_gpu(), want_dx);
}

/// The checks every conv entry point shares; returns the geometry.
template <class Exec, class XV, class WS>
conv_geometry checked_conv_geometry(const char* where, const conv_block& block, const XV& x, const WS& w) {
  const conv_geometry g = make_conv_geometry(block, x.shape, where);
  require_count(where, "w", w.size(), block.conv.weight_count());
  return g;
}

}  // namespace detail

/// y = pool(act(conv(x, w) + b)): see the header comment for the contract.
template <class Exec, class X, class W, class B, class Y, class A>
void conv2d_block_forward(const Exec& exec, const conv_block& block, const X& x, const W& w, const B& b, Y&& y,
                          A&& argmax) {
  constexpr const char* where = "gpukit::nn::conv2d_block_forward";
  const auto xv = detail::input_view<Exec>(x);
  using T = std::remove_const_t<typename std::remove_pointer_t<decltype(xv.data)>>;
  detail::require_element_type<Exec, T>();
  const auto ws = detail::input_params<Exec>(w);
  const auto bs = detail::input_params<Exec>(b);
  auto yv = detail::output_view<Exec>(y);
  auto av = detail::output_view<Exec>(argmax);
  static_assert(std::is_same_v<decltype(yv.data), T*>, "gpukit::nn::conv2d_block_forward: x and y element types differ");
  static_assert(std::is_same_v<decltype(av.data), std::int32_t*>, "gpukit::nn::conv2d_block_forward: argmax holds int32");
  const detail::conv_geometry g = detail::checked_conv_geometry<Exec>(where, block, xv, ws);
  detail::require_count(where, "b", bs.size(), block.conv.out_channels);
  detail::require_shape(where, "y", yv.shape, g.output_shape());
  if (block.pool) detail::require_shape(where, "argmax", av.shape, g.output_shape());
  const conv2d_path path = detail::conv2d_path_for(exec, g, false);
  detail::conv_forward_impl(exec, g, path, xv.data, ws.data(), bs.data(), yv.data, block.pool ? av.data : nullptr);
}

/// The backward pass of conv2d_block_forward: see the header comment for the contract.
template <class Exec, class X, class W, class Y, class A, class DY, class DW, class DB, class DX>
void conv2d_block_backward(const Exec& exec, const conv_block& block, const X& x, const W& w, const Y& y,
                           const A& argmax, const DY& dy, DW&& dw, DB&& db, DX&& dx) {
  constexpr const char* where = "gpukit::nn::conv2d_block_backward";
  const auto xv = detail::input_view<Exec>(x);
  using T = std::remove_const_t<typename std::remove_pointer_t<decltype(xv.data)>>;
  detail::require_element_type<Exec, T>();
  const auto ws = detail::input_params<Exec>(w);
  const auto yv = detail::input_view<Exec>(y);
  const auto av = detail::input_view<Exec>(argmax);
  const auto dyv = detail::input_view<Exec>(dy);
  auto dws = detail::output_params<Exec>(dw);
  auto dbs = detail::output_params<Exec>(db);
  const auto dxv = detail::optional_output_view<Exec, T>(dx);
  detail::require_slope_from_output(where, "block.act", block.act);
  const detail::conv_geometry g = detail::checked_conv_geometry<Exec>(where, block, xv, ws);
  detail::require_count(where, "dw", dws.size(), block.conv.weight_count());
  detail::require_count(where, "db", dbs.size(), block.conv.out_channels);
  detail::require_shape(where, "dy", dyv.shape, g.output_shape());
  if (block.act != activation::none) detail::require_shape(where, "y", yv.shape, g.output_shape());
  if (block.pool) detail::require_shape(where, "argmax", av.shape, g.output_shape());
  const bool want_dx = !std::is_same_v<std::decay_t<DX>, no_grad_t>;
  if (want_dx) detail::require_shape(where, "dx", dxv.shape, xv.shape);
  const conv2d_path path = detail::conv2d_path_for(exec, g, want_dx);
  detail::conv_backward_impl(exec, g, path, xv.data, ws.data(), block.act != activation::none ? yv.data : nullptr,
                             block.pool ? av.data : nullptr, dyv.data, dws.data(), dbs.data(),
                             want_dx ? dxv.data : nullptr, detail::conv_backward_extras<T>{});
}

/// y = conv(x, w) + b.
template <class Exec, class X, class W, class B, class Y>
void conv2d_forward(const Exec& exec, const conv2d& layer, const X& x, const W& w, const B& b, Y&& y) {
  tensor_view<std::int32_t, space_of_v<Exec>> none{};
  conv2d_block_forward(exec, conv_block{layer}, x, w, b, y, none);
}

/// dw += ∂L/∂w, db += ∂L/∂b, dx = ∂L/∂x (or nn::no_grad) from dy = ∂L/∂y.
template <class Exec, class X, class W, class DY, class DW, class DB, class DX>
void conv2d_backward(const Exec& exec, const conv2d& layer, const X& x, const W& w, const DY& dy, DW&& dw, DB&& db,
                     DX&& dx) {
  using T = std::remove_const_t<typename std::remove_pointer_t<decltype(detail::input_view<Exec>(x).data)>>;
  tensor_view<const T, space_of_v<Exec>> no_y{};
  tensor_view<const std::int32_t, space_of_v<Exec>> no_argmax{};
  conv2d_block_backward(exec, conv_block{layer}, x, w, no_y, no_argmax, dy, dw, db, dx);
}

}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/conv2d.cuh"
#endif
