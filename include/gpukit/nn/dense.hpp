// gpukit/nn/dense.hpp — the fully connected layer, with its activation fused.
//
//   nn::dense_forward(exec, layer, x, w, b, y, act = none [, pre])   y = act(x·wᵀ + b)
//   nn::dense_backward(exec, layer, x, w, y, dy, dw, db, dx, act = none)
//
// Contracts (checked before anything is written; std::invalid_argument names the argument
// and both shapes):
// - x (n, in, 1, 1); w has out·in elements, (out, in) row-major; b has out; y (n, out, 1, 1).
// - pre, when given, receives x·wᵀ + b before the activation (y's shape): a loss on
//   logits uses it.
// - backward: y is the forward's output (read only when act is not none); dy has y's
//   shape. Parameter gradients ACCUMULATE (dw += dzᵀ·x, db += Σ dz, with dz = dy · act'(y));
//   the input gradient dx = dz·w (x's shape) is ASSIGNED, or skipped for nn::no_grad.
// - No output may overlap an input. cuda_executor: float, queued on its stream, FP32 FMA
//   kernels (no TF32: results within a few float ulps per term of the CPU's), split over K
//   when the output alone cannot fill the GPU, summed in a fixed order (dense.cuh says
//   which kernel takes which shape); cpu_executor: float or double.
#pragma once

#include "gpukit/core/executor.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/optimizer.hpp"
#include "gpukit/nn/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace gpukit::nn {
namespace detail {

struct dense_geometry {
  int n = 0, in = 0, out = 0;
};

inline dense_geometry make_dense_geometry(const dense& layer, const shape4& x, const std::string& who) {
  (void)layer.output_shape(x, who);
  require_dimension(who.c_str(), "batch size", x.n, 0x7fffffff);
  require_dimension(who.c_str(), "in_features", layer.in_features, 0x7fffffff);
  require_dimension(who.c_str(), "out_features", layer.out_features, 0x7fffffff);
  return {static_cast<int>(x.n), static_cast<int>(layer.in_features), static_cast<int>(layer.out_features)};
}

/// What a model's training step asks of a dense backward pass beyond the public contract:
/// assigning the parameter gradients (no zeroing pass first), and folding the activation
/// of the layer that produced x into dx (dx ·= act'(its output)), so that layer's backward
/// pass skips it.
template <class T>
struct dense_backward_extras {
  bool accumulate = true;
  activation dx_act = activation::none;
  const T* dx_act_y = nullptr;  // the producing layer's output, x's shape
  fused_adam adam{};            // GPU: Adam applied to w as dw is computed (dense_backward_fuses)
};

// ---- CPU path ------------------------------------------------------------------------

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

// ---- GPU path: tiles and splits, decided on the host ---------------------------------

/// C (m x n) = A (m x k) · B (k x n) on the GPU: tile tm·16 x tn·16 per 256-thread block;
/// K cut into `splits` chunks of k_chunk (raw partial sums, then a reduce kernel adds them
/// and applies the epilogue) when the output tiles alone cannot fill the GPU.
struct gemm_plan {
  int tm = 4, tn = 4;
  int splits = 1, k_chunk = 0;
  std::size_t partial_floats = 0;
};

inline constexpr int gemm_bk = 16;

inline gemm_plan plan_gemm(int m, int n, int k, bool allow_split, int sm_count) {
  const auto tiles = [&](int tm, int tn) {
    return static_cast<long long>((m + 16 * tm - 1) / (16 * tm)) * ((n + 16 * tn - 1) / (16 * tn));
  };
  const long long target = 2LL * sm_count;
  gemm_plan p;
  if (m <= 32) {
    p.tm = 2, p.tn = 4;
  } else if (tiles(8, 8) >= target) {
    p.tm = 8, p.tn = 8;
  } else {
    p.tm = 4, p.tn = 4;
  }
  // Split K until there are about four blocks per SM: the split product reads each weight
  // once, so more blocks in flight is what hides the memory latency.
  const long long t = tiles(p.tm, p.tn);
  long long splits = 1;
  if (allow_split && t < target && k >= 1024)
    splits = std::max(1LL, std::min((2 * target + t - 1) / t, static_cast<long long>(k) / (4 * gemm_bk)));
  const long long chunk = (k + splits - 1) / splits;
  p.k_chunk = static_cast<int>(std::max<long long>(gemm_bk, (chunk + gemm_bk - 1) / gemm_bk * gemm_bk));
  p.splits = static_cast<int>((k + p.k_chunk - 1) / p.k_chunk);
  if (p.splits < 1) p.splits = 1;
  p.partial_floats = p.splits > 1 ? static_cast<std::size_t>(p.splits) * m * n : 0;
  return p;
}

inline gemm_plan plan_dense_forward(const dense_geometry& g, int sm_count) {
  return plan_gemm(g.n, g.out, g.in, true, sm_count);
}

// The faster paths of detail/dense_fast.cuh, planned here because a model sizes its scratch
// from them.

/// The split-K forward product: x·wᵀ with `in` a multiple of 4 and at least 512 (and x, w
/// 16-byte aligned, checked at the call), 8·tm rows and 128 output features per block.
inline constexpr int splitk_bn = 128, splitk_bk = 32, splitk_stages = 4;
struct splitk_plan {
  int tm = 0, splits = 1, k_chunk = 0;
  std::size_t partial_floats = 0, shared_bytes = 0;
  bool ok() const noexcept { return tm > 0; }
};

inline splitk_plan plan_splitk(const dense_geometry& g, int sm_count) {
  splitk_plan p;
  if (g.in % 4 != 0 || g.in < 512) return p;
  p.tm = g.n <= 32 ? 4 : 8;
  const int bm = 8 * p.tm;
  const long long tiles = static_cast<long long>((g.n + bm - 1) / bm) * ((g.out + splitk_bn - 1) / splitk_bn);
  const int k_tiles = (g.in + splitk_bk - 1) / splitk_bk;
  // About two blocks per SM (each holds four stages of its tiles), at least 3 k-tiles each.
  const long long want = std::max(1LL, std::min((2LL * sm_count + tiles - 1) / tiles, k_tiles / 3LL));
  const int per_split = static_cast<int>((k_tiles + want - 1) / want);
  p.k_chunk = per_split * splitk_bk;
  p.splits = (k_tiles + per_split - 1) / per_split;
  p.partial_floats = p.splits > 1 ? static_cast<std::size_t>(p.splits) * g.n * g.out : 0;
  p.shared_bytes = static_cast<std::size_t>(splitk_stages) * (bm + splitk_bn) * (splitk_bk + 4) * sizeof(float);
  return p;
}

/// Whether one block computes the whole layer (forward, or loss and backward).
inline constexpr int small_dense_rows = 4096;  // the most n·out values a block keeps
inline bool dense_is_small(const dense_geometry& g) {
  const long long outputs = static_cast<long long>(g.n) * g.out;
  return outputs <= small_dense_rows && outputs * g.in <= (1LL << 20);
}

/// Whether the fused backward kernel takes g (x, w, dw, dx and dx_act_y must also be
/// 16-byte aligned: checked at the call).
inline constexpr int fused_tile = 128;  // input features per block, and the most output features
inline bool dense_backward_fuses(const dense_geometry& g, const void* x, const void* w, const void* dw, const void* dx,
                                 const void* dx_act_y) {
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  return g.out <= fused_tile && g.in % 4 == 0 && g.in >= 512 && !dense_is_small(g) && aligned(x) && aligned(w) &&
         aligned(dw) && aligned(dx) && aligned(dx_act_y);
}

inline std::size_t dense_forward_scratch_bytes(const dense_geometry& g, int sm_count) {
  scratch_plan s;
  s.add<float>(std::max(plan_dense_forward(g, sm_count).partial_floats, plan_splitk(g, sm_count).partial_floats));
  return s.bytes;
}
inline std::size_t dense_backward_scratch_bytes(const dense_geometry& g, activation act) {
  scratch_plan s;
  if (act != activation::none) s.add<float>(static_cast<std::size_t>(g.n) * g.out);
  return s.bytes;
}

#if defined(__CUDACC__)
// Defined in dense.cuh.
inline void dense_forward_gpu(const cuda_executor& exec, const dense_geometry& g, const float* x, const float* w,
                              const float* b, float* y, activation act, float* pre);
inline void dense_backward_gpu(const cuda_executor& exec, const dense_geometry& g, const float* x, const float* w,
                               const float* y, const float* dy, float* dw, float* db, float* dx, activation act,
                               const dense_backward_extras<float>& extra);
#endif

template <class Exec, class T>
void dense_forward_dispatch(const Exec& exec, const dense_geometry& g, const T* x, const T* w, const T* b, T* y,
                            activation act, T* pre) {
  if constexpr (is_gpu_executor_v<Exec>) {
#if defined(__CUDACC__)
    dense_forward_gpu(exec, g, x, w, b, y, act, pre);
#else
    static_assert(gpukit::detail::always_false<Exec>,
                  "gpukit::nn: a GPU layer called from a file compiled by the host compiler; compile it with nvcc (.cu)");
#endif
  } else {
    dense_forward_cpu(exec, g, x, w, b, y, act, pre);
  }
}

template <class Exec, class T>
void dense_backward_dispatch(const Exec& exec, const dense_geometry& g, const T* x, const T* w, const T* y, const T* dy,
                             T* dw, T* db, T* dx, activation act, const dense_backward_extras<T>& extra = {}) {
  if constexpr (is_gpu_executor_v<Exec>) {
#if defined(__CUDACC__)
    dense_backward_gpu(exec, g, x, w, y, dy, dw, db, dx, act, extra);
#else
    static_assert(gpukit::detail::always_false<Exec>,
                  "gpukit::nn: a GPU layer called from a file compiled by the host compiler; compile it with nvcc (.cu)");
#endif
  } else {
    dense_backward_cpu(exec, g, x, w, y, dy, dw, db, dx, act, extra);
  }
}

template <class Exec, class X, class W, class B, class Y, class P>
void dense_forward_impl(const Exec& exec, const dense& layer, const X& x, const W& w, const B& b, Y&& y,
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
  require_count(where, "b", bs.size(), layer.bias_count());
  require_shape(where, "y", yv.shape, layer.output_shape(xv.shape, where));
  const bool want_pre = !std::is_same_v<std::decay_t<P>, no_grad_t>;
  if (want_pre) require_shape(where, "pre", pv.shape, yv.shape);
  dense_forward_dispatch(exec, g, xv.data, ws.data(), bs.data(), yv.data, act, want_pre ? pv.data : nullptr);
}

}  // namespace detail

/// y = act(x·wᵀ + b); see the header comment for the contract.
template <class Exec, class X, class W, class B, class Y>
void dense_forward(const Exec& exec, const dense& layer, const X& x, const W& w, const B& b, Y&& y,
                   activation act = activation::none) {
  detail::dense_forward_impl(exec, layer, x, w, b, y, act, no_grad);
}

/// As above, and pre = x·wᵀ + b (the values before the activation).
template <class Exec, class X, class W, class B, class Y, class P>
void dense_forward(const Exec& exec, const dense& layer, const X& x, const W& w, const B& b, Y&& y, activation act,
                   P&& pre) {
  detail::dense_forward_impl(exec, layer, x, w, b, y, act, pre);
}

/// dw += dzᵀ·x, db += Σ dz, dx = dz·w (or nn::no_grad), dz = dy · act'(y).
template <class Exec, class X, class W, class Y, class DY, class DW, class DB, class DX>
void dense_backward(const Exec& exec, const dense& layer, const X& x, const W& w, const Y& y, const DY& dy, DW&& dw,
                    DB&& db, DX&& dx, activation act = activation::none) {
  constexpr const char* where = "gpukit::nn::dense_backward";
  const auto xv = detail::input_view<Exec>(x);
  using T = std::remove_const_t<std::remove_pointer_t<decltype(xv.data)>>;
  detail::require_element_type<Exec, T>();
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
  detail::require_count(where, "db", dbs.size(), layer.bias_count());
  detail::require_shape(where, "dy", dyv.shape, out);
  if (act != activation::none) detail::require_shape(where, "y", yv.shape, out);
  const bool want_dx = !std::is_same_v<std::decay_t<DX>, no_grad_t>;
  if (want_dx) detail::require_shape(where, "dx", dxv.shape, xv.shape);
  detail::dense_backward_dispatch(exec, g, xv.data, ws.data(), act != activation::none ? yv.data : nullptr, dyv.data,
                                  dws.data(), dbs.data(), want_dx ? dxv.data : nullptr, act);
}

}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/dense.cuh"
#endif
