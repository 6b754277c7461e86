// gpukit/nn/dense.hpp — the fully connected layer, with its activation fused.
//
//   nn::dense_forward(exec, layer, x, w, b, y, act = none [, pre])   y = act(x·wᵀ + b)
//   nn::dense_backward(exec, layer, x, w, y, dy, dw, db, dx, act = none)
//
// Contracts (checked before anything is written; std::invalid_argument names the argument
// and both shapes):
// - x (n, in, 1, 1); w has out·in elements, (out, in) row-major; b has out (also for a layer
//   made with no_bias(): pass zeros; in a model it has no bias at all); y (n, out, 1, 1).
// - pre, when given, receives x·wᵀ + b before the activation (y's shape): a loss on
//   logits uses it.
// - backward: y is the forward's output (read only when act is not none); dy has y's
//   shape. Parameter gradients ACCUMULATE (dw += dzᵀ·x, db += Σ dz, with dz = dy · act'(y));
//   the input gradient dx = dz·w (x's shape) is ASSIGNED, or skipped for nn::no_grad.
// - No output may overlap an input. cuda_executor: float, queued on its stream, FP32-accurate
//   products (FP32 FMA, or 3xTF32 on tensor cores: see detail/igemm_plan.hpp), split over K
//   when the output alone cannot fill the GPU, summed in a fixed order; cpu_executor: float
//   or double.
//
// GPU paths (choose_dense_path picks them; summary() shows the choice per layer): one block
// for a small layer (n·out <= 4096); the split-K cp.async pipeline for long inputs (in >=
// 4096, the article's 30752 -> 128); the backward pass that computes dw and dx from one
// read of w (out <= 128), optionally applying Adam; the implicit-GEMM engine for the rest.
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/detail/conv_cpu.hpp"
#include "gpukit/nn/detail/dense_plan.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/loss.hpp"
#include "gpukit/nn/optimizer.hpp"
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

inline constexpr long long dense_cpu_block = 256;  // columns of w a thread keeps hot

template <class T>
void dense_forward_cpu(const cpu_executor& exec, const dense_geometry& g, const T* x, const T* w, const T* b, T* y,
                       activation act, T* pre) {
  const long long in = g.in;
  const int threads = cpu_threads_for(exec, static_cast<double>(g.n) * g.out * g.in);
#pragma omp parallel for collapse(2) num_threads(threads) schedule(static)
  for (int o = 0; o < g.out; ++o)
    for (int n = 0; n < g.n; ++n) {
      const T* xr = x + n * in;
      const T* wr = w + o * in;
      T s = T(0);
#pragma omp simd reduction(+ : s)
      for (long long k = 0; k < in; ++k) s += xr[k] * wr[k];
      const T z = s + b[o];
      const long long i = static_cast<long long>(n) * g.out + o;
      if (pre != nullptr) pre[i] = z;
      y[i] = activate(act, z);
    }
}

template <class T>
void dense_backward_cpu(const cpu_executor& exec, const dense_geometry& g, const T* x, const T* w, const T* y,
                        const T* dy, T* dw, T* db, T* dx, activation act, const dense_backward_extras<T>& extra = {}) {
  const long long in = g.in, outs = g.out;
  std::vector<T> dz_buffer;
  const T* dz = dy;
  if (act != activation::none) {
    dz_buffer.resize(static_cast<std::size_t>(g.n) * g.out);
    for (std::size_t i = 0; i < dz_buffer.size(); ++i) dz_buffer[i] = dy[i] * activation_slope(act, y[i]);
    dz = dz_buffer.data();
  }
  for (int o = 0; o < g.out; ++o) {
    T s = T(0);
    for (int n = 0; n < g.n; ++n) s += dz[n * outs + o];
    db[o] = (extra.accumulate ? db[o] : T(0)) + s;
  }
  // Column blocks of w and x: each thread owns its block of dw and dx, no two threads share.
  const long long blocks = (in + dense_cpu_block - 1) / dense_cpu_block;
  const int threads = cpu_threads_for(exec, static_cast<double>(g.n) * g.out * g.in);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long long blk = 0; blk < blocks; ++blk) {
    const long long k0 = blk * dense_cpu_block, k1 = std::min(in, k0 + dense_cpu_block);
    for (int o = 0; o < g.out; ++o) {
      T* dwr = dw + o * in;
      if (!extra.accumulate) std::fill(dwr + k0, dwr + k1, T(0));
      for (int n = 0; n < g.n; ++n) {
        const T d = dz[n * outs + o];
        if (d == T(0)) continue;
        const T* xr = x + n * in;
#pragma omp simd
        for (long long k = k0; k < k1; ++k) dwr[k] += d * xr[k];
      }
    }
    if (dx == nullptr) continue;
    for (int n = 0; n < g.n; ++n) {
      T* dxr = dx + n * in;
      std::fill(dxr + k0, dxr + k1, T(0));
      for (int o = 0; o < g.out; ++o) {
        const T d = dz[n * outs + o];
        if (d == T(0)) continue;
        const T* wr = w + o * in;
#pragma omp simd
        for (long long k = k0; k < k1; ++k) dxr[k] += d * wr[k];
      }
      if (extra.dx_act != activation::none) {
        const T* yr = extra.dx_act_y + n * in;
        for (long long k = k0; k < k1; ++k) dxr[k] *= activation_slope(extra.dx_act, yr[k]);
      }
    }
  }
}


template <class T>
void dense_head_impl(const cpu_executor& exec, const dense_head_args<T>& a) {
  if (a.forward) dense_forward_gemm_cpu(exec, a.g, a.x, a.w, a.b, a.y, a.act, a.logits);
  const long long count = static_cast<long long>(a.g.n) * a.g.out;
  const T* pred = a.logits != nullptr ? a.logits : a.y;
  std::vector<T> dz(static_cast<std::size_t>(count));
  double total = 0.0;
  for (long long i = 0; i < count; ++i) {
    T value, slope;
    elementwise_loss(a.kind, pred[i], a.target[i], value, slope);
    total += static_cast<double>(value);
    const T grad = slope / static_cast<T>(count);
    dz[static_cast<std::size_t>(i)] = a.logits != nullptr ? grad : grad * activation_slope(a.act, a.y[i]);
  }
  *a.loss_out = static_cast<T>(total / static_cast<double>(count));
  dense_backward_gemm_cpu(exec, a.g, a.x, a.w, static_cast<const T*>(nullptr), dz.data(), a.dw, a.db, a.dx,
                          activation::none, a.e);
}

template <class T>
void dense_forward_impl(const cpu_executor& exec, const dense_geometry& g, const dense_path& path, const T* x,
                        const T* w, const T* b, T* y, activation act, T* pre) {
  dense_forward_gemm_cpu(exec, g, x, w, b, y, act, pre, path.target.numbers);
}
template <class T>
void dense_backward_impl(const cpu_executor& exec, const dense_geometry& g, const dense_path& path, const T* x,
                         const T* w, const T* y, const T* dy, T* dw, T* db, T* dx, activation act,
                         const dense_backward_extras<T>& extra) {
  dense_backward_gemm_cpu(exec, g, x, w, y, dy, dw, db, dx, act, extra, path.target.numbers);
}

#if defined(__CUDACC__)
// Defined in dense.cuh.
inline void dense_forward_impl(const cuda_executor& exec, const dense_geometry& g, const dense_path& path,
                               const float* x, const float* w, const float* b, float* y, activation act, float* pre);
inline void dense_backward_impl(const cuda_executor& exec, const dense_geometry& g, const dense_path& path,
                                const float* x, const float* w, const float* y, const float* dy, float* dw, float* db,
                                float* dx, activation act, const dense_backward_extras<float>& extra);
inline void dense_head_impl(const cuda_executor& exec, const dense_head_args<float>& a);
#else
GPUKIT_GPU_ONLY_STUB(dense_forward_impl)
GPUKIT_GPU_ONLY_STUB(dense_backward_impl)
GPUKIT_GPU_ONLY_STUB(dense_head_impl)
#endif

/// The path a standalone layer call takes on `exec`'s device (the model plans its own).
inline dense_path dense_path_for(const cpu_executor&, const dense_geometry& g, const dense_context& c) {
  return choose_dense_path(g, path_target::cpu(), c);
}
inline dense_path dense_path_for(const cuda_executor&, const dense_geometry& g, const dense_context& c) {
  return choose_dense_path(g, path_target::current_gpu(), c);
}

template <class Exec, class X, class W, class B, class Y, class P>
void dense_forward_front(const Exec& exec, const dense& layer, const X& x, const W& w, const B& b, Y&& y,
                         activation act, P&& pre) {
  constexpr const char* where = "gpukit::nn::dense_forward";
  const auto xv = input_view<Exec>(x);
  using T = std::remove_const_t<std::remove_pointer_t<decltype(xv.data)>>;
  require_element_type<Exec, T>();
  const auto ws = input_params<Exec>(w);
  const auto bs = input_params<Exec>(b);
  auto yv = output_view<Exec>(y);
  const auto pv = optional_output_view<Exec, T>(pre);
  static_assert(std::is_same_v<decltype(yv.data), T*>, "gpukit::nn::dense_forward: x and y element types differ");
  const dense_geometry g = make_dense_geometry(layer, xv.shape, where);
  require_count(where, "w", ws.size(), layer.weight_count());
  require_count(where, "b", bs.size(), layer.out_features);
  require_shape(where, "y", yv.shape, layer.output_shape(xv.shape, where));
  const bool want_pre = !std::is_same_v<std::decay_t<P>, no_grad_t>;
  if (want_pre) require_shape(where, "pre", pv.shape, yv.shape);
  dense_context c;
  c.aligned16 = aligned16(xv.data) && aligned16(ws.data());
  c.act = act;
  const dense_path path = dense_path_for(exec, g, c);
  dense_forward_impl(exec, g, path, xv.data, ws.data(), bs.data(), yv.data, act, want_pre ? pv.data : nullptr);
}

}  // namespace detail

/// y = act(x·wᵀ + b); see the header comment for the contract.
template <class Exec, class X, class W, class B, class Y>
void dense_forward(const Exec& exec, const dense& layer, const X& x, const W& w, const B& b, Y&& y,
                   activation act = activation::none) {
  detail::dense_forward_front(exec, layer, x, w, b, y, act, no_grad);
}

/// As above, and pre = x·wᵀ + b (the values before the activation).
template <class Exec, class X, class W, class B, class Y, class P>
void dense_forward(const Exec& exec, const dense& layer, const X& x, const W& w, const B& b, Y&& y, activation act,
                   P&& pre) {
  detail::dense_forward_front(exec, layer, x, w, b, y, act, pre);
}

/// dw += dzᵀ·x, db += Σ dz, dx = dz·w (or nn::no_grad), dz = dy · act'(y).
template <class Exec, class X, class W, class Y, class DY, class DW, class DB, class DX>
void dense_backward(const Exec& exec, const dense& layer, const X& x, const W& w, const Y& y, const DY& dy, DW&& dw,
                    DB&& db, DX&& dx, activation act = activation::none) {
  constexpr const char* where = "gpukit::nn::dense_backward";
  const auto xv = detail::input_view<Exec>(x);
  using T = std::remove_const_t<std::remove_pointer_t<decltype(xv.data)>>;
  detail::require_element_type<Exec, T>();
  detail::require_slope_from_output(where, "act", act);
  const auto ws = detail::input_params<Exec>(w);
  const auto yv = detail::input_view<Exec>(y);
  const auto dyv = detail::input_view<Exec>(dy);
  auto dws = detail::output_params<Exec>(dw);
  auto dbs = detail::output_params<Exec>(db);
  const auto dxv = detail::optional_output_view<Exec, T>(dx);
  const detail::dense_geometry g = detail::make_dense_geometry(layer, xv.shape, where);
  const shape4 out = layer.output_shape(xv.shape, where);
  detail::require_count(where, "w", ws.size(), layer.weight_count());
  detail::require_count(where, "dw", dws.size(), layer.weight_count());
  detail::require_count(where, "db", dbs.size(), layer.out_features);
  detail::require_shape(where, "dy", dyv.shape, out);
  if (act != activation::none) detail::require_shape(where, "y", yv.shape, out);
  const bool want_dx = !std::is_same_v<std::decay_t<DX>, no_grad_t>;
  if (want_dx) detail::require_shape(where, "dx", dxv.shape, xv.shape);
  detail::dense_context c;
  c.aligned16 = detail::aligned16(xv.data) && detail::aligned16(ws.data()) && detail::aligned16(dws.data()) &&
                (!want_dx || detail::aligned16(dxv.data));
  c.want_dx = want_dx;
  c.act = act;
  const detail::dense_path path = detail::dense_path_for(exec, g, c);
  detail::dense_backward_impl(exec, g, path, xv.data, ws.data(), act != activation::none ? yv.data : nullptr, dyv.data,
                              dws.data(), dbs.data(), want_dx ? dxv.data : nullptr, act,
                              detail::dense_backward_extras<T>{});
}

}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/dense.cuh"
#endif
