// gpukit/nn/detail/dense_plan.hpp — what the dense layer's kernels need to know, decided on
// the host: the geometry, the extras a model's backward pass asks for, the arguments of the
// last layer fused with its loss, and the GPU paths with choose_dense_path, the layer's one
// selection function. dense.hpp is the layer's front end and CPU path; the GPU kernels
// (dense.cuh, dense_fast.cuh, dense_small.cuh, dense_igemm.cuh) include this header, not
// dense.hpp, so that each compiles on its own.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/detail/igemm_plan.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/loss.hpp"
#include "gpukit/nn/optimizer.hpp"
#include "gpukit/nn/path_target.hpp"
#include "gpukit/nn/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

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

// ---- GPU paths, decided on the host -----------------------------------------------------

/// The split-K forward product (detail/dense_fast.cuh): x·wᵀ with `in` a multiple of 4 and
/// at least 512 (x and w 16-byte aligned), 8·tm rows and 128 output features per block.
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

/// Whether one block computes the whole layer (forward, or loss and backward): where the
/// whole product is at most 2^16 multiply-adds, one SM does it in a few microseconds and
/// the launches of a grid-wide product would cost more (measured on an H200: at 2^20, as
/// LeNet's 400 -> 120 at batch 32, one block took 80 us).
inline constexpr int small_dense_rows = 4096;  // the most n·out values a block keeps
inline bool dense_is_small(const dense_geometry& g) {
  const long long outputs = static_cast<long long>(g.n) * g.out;
  return outputs <= small_dense_rows && outputs * g.in <= (1LL << 16);
}

/// Whether the fused backward kernel (dw and dx from one read of w) takes g.
inline constexpr int fused_tile = 128;  // input features per block, and the most output features
inline bool dense_backward_fusable(const dense_geometry& g) {
  return g.out <= fused_tile && g.in % 4 == 0 && g.in >= 512 && !dense_is_small(g);
}

/// Whether the fused backward kernel's grid (one block per 128 input features, each over
/// the whole batch) keeps at least half of the SMs busy. Narrower layers leave most of the
/// GPU idle and lose to the implicit GEMM (measured on an H100, batch 256: 1024 -> 10 took
/// 56 us in 8 blocks, 2048 -> 10 55 us in 16; the article's 30752 -> 128 runs 240 blocks).
inline bool dense_backward_fills_gpu(const dense_geometry& g, int sm_count) {
  return 2LL * ((g.in + fused_tile - 1) / fused_tile) >= sm_count;
}

/// What the caller knows about a dense layer's call beyond its shape.
struct dense_context {
  bool aligned16 = true;        // x, w, dw, dx (and the dx activation's input) are 16-byte aligned
  bool adam_available = false;  // a GPU training step with Adam: the backward kernel may apply it
  bool loss_head = false;       // the model's last layer before an elementwise loss
  bool want_dx = true;
  activation act = activation::none;  // the activation the backward pass differentiates
};

enum class dense_forward_kind { small, splitk, igemm };
enum class dense_backward_kind { small, fused, igemm };

/// What a test or benchmark may force; left empty, choose_dense_path decides.
struct dense_request {
  std::optional<dense_forward_kind> forward;
  std::optional<dense_backward_kind> backward;
  igemm_request gemm;
};

/// The GPU kernels of one dense layer for one geometry, with their tiles and scratch.
struct dense_path {
  path_target target;
  dense_context context;
  dense_request request;
  int piece_rows = 0;  // rows per launch when a tensor reaches 2^31 elements (0: one launch)

  dense_forward_kind forward = dense_forward_kind::igemm;
  splitk_plan splitk{};
  igemm_config forward_gemm{};
  dense_backward_kind backward = dense_backward_kind::igemm;
  igemm_config dw_gemm{}, dx_gemm{};
  bool head_fused = false;  // the loss, its gradient and this layer's backward pass are one launch
  bool adam_fused = false;  // the backward kernel applies Adam to the weights it has the gradient of

  std::size_t forward_scratch = 0, forward_partial_at = 0;
  std::size_t backward_scratch = 0, dz_at = 0, dw_partial_at = 0, dx_partial_at = 0;

  std::string describe() const {
    if (!target.gpu)
      return std::string("CPU blocked GEMM (OpenMP") + target.cpu_rounding() + ")";
    std::string s = "forward: ";
    switch (forward) {
      case dense_forward_kind::small: s += "one block (a small layer)"; break;
      case dense_forward_kind::splitk:
        s += "split-K pipeline, " + std::to_string(splitk.splits) + " splits (a long input: w streamed once)";
        break;
      default: s += "implicit GEMM " + forward_gemm.describe(); break;
    }
    if (forward != dense_forward_kind::small && !fits_epilogue(context.act))
      s += ", then a " + std::string(activation_name(context.act)) + " pass";
    if (head_fused) return s + " | loss and backward: in one block with the forward";
    s += " | backward: ";
    switch (backward) {
      case dense_backward_kind::small: s += "one block"; break;
      case dense_backward_kind::fused: s += "dw and dx from one read of w (at most 128 outputs)"; break;
      default:
        s += "implicit GEMM dw " + dw_gemm.describe();
        if (context.want_dx) s += "; dx " + dx_gemm.describe();
        break;
    }
    if (piece_rows > 0) s += " | " + std::to_string(piece_rows) + " rows per launch";
    return s;
  }
};

/// The long-k layers of small models (the article's 30752 -> 128) stream w once through
/// the split-K pipeline; the implicit GEMM takes the rest.
inline constexpr int splitk_min_in = 4096;

/// The GPU path of a dense layer with geometry `g` (batch g.n) on `t`: the one selection
/// function of the dense layer.
inline dense_path choose_dense_path(const dense_geometry& g, const path_target& t, const dense_context& c = {},
                                    const dense_request& r = {}) {
  dense_path p;
  p.target = t, p.context = c, p.request = r;
  if (!t.gpu) return p;
  require(static_cast<long long>(g.in) * g.out <= 0x7fffffffLL, "gpukit::nn::choose_dense_path",
          "the weight matrix " + std::to_string(g.out) + " x " + std::to_string(g.in) +
              " has 2^31 elements or more, beyond the GPU kernels' 32-bit indexing");
  const long long widest = std::max(g.in, g.out) + 1LL;
  const int rows = static_cast<int>(std::min<long long>(g.n, std::max<long long>(1, 0x7fffffffLL / widest)));
  p.piece_rows = rows < g.n ? rows : 0;
  dense_geometry gp = g;
  gp.n = rows;
  const bool small = dense_is_small(gp) && p.piece_rows == 0;
  const splitk_plan sk = plan_splitk(gp, t.sm_count);

  dense_forward_kind fwd = dense_forward_kind::igemm;
  if (small) {
    fwd = dense_forward_kind::small;
  } else if (sk.ok() && c.aligned16 && g.in >= splitk_min_in && p.piece_rows == 0) {
    fwd = dense_forward_kind::splitk;
  }
  if (r.forward) fwd = *r.forward;
  if (fwd == dense_forward_kind::small && !small) fwd = dense_forward_kind::igemm;
  if (fwd == dense_forward_kind::splitk && !(sk.ok() && c.aligned16 && p.piece_rows == 0))
    fwd = dense_forward_kind::igemm;
  p.forward = fwd;
  p.splitk = sk;
  scratch_plan fs;
  if (fwd == dense_forward_kind::splitk) {
    p.forward_partial_at = fs.add<float>(sk.partial_floats);
  } else if (fwd == dense_forward_kind::igemm) {
    p.forward_gemm = choose_igemm(rows, g.out, g.in, t, r.gemm, igemm_operands{true});
    p.forward_partial_at = fs.add<float>(p.forward_gemm.partial_floats(rows, g.out));
  }
  p.forward_scratch = fs.bytes;

  dense_backward_kind bwd = dense_backward_kind::igemm;
  if (small) {
    bwd = dense_backward_kind::small;
  } else if (dense_backward_fusable(gp) && dense_backward_fills_gpu(gp, t.sm_count) && c.aligned16 &&
             p.piece_rows == 0) {
    bwd = dense_backward_kind::fused;
  }
  if (r.backward) bwd = *r.backward;
  if (bwd == dense_backward_kind::small && !small) bwd = dense_backward_kind::igemm;
  if (bwd == dense_backward_kind::fused && !(dense_backward_fusable(gp) && c.aligned16 && p.piece_rows == 0))
    bwd = dense_backward_kind::igemm;
  p.backward = bwd;
  p.head_fused = c.loss_head && bwd == dense_backward_kind::small && fwd == dense_forward_kind::small;
  p.adam_fused = c.adam_available && bwd == dense_backward_kind::fused;
  scratch_plan bs;
  if (bwd == dense_backward_kind::igemm) {
    p.dz_at = bs.add<float>(c.act != activation::none ? static_cast<std::size_t>(rows) * g.out : 0);
    p.dw_gemm = choose_igemm(g.out, g.in + 1LL, rows, t, r.gemm);
    p.dw_partial_at = bs.add<float>(p.dw_gemm.partial_floats(g.out, g.in + 1LL));
    if (c.want_dx) {
      p.dx_gemm = choose_igemm(rows, g.in, g.out, t, r.gemm);
      p.dx_partial_at = bs.add<float>(p.dx_gemm.partial_floats(rows, g.in));
    }
  }
  p.backward_scratch = bs.bytes;
  return p;
}

/// The last layer of a model with its loss, as one call (dense_path::head_fused on the GPU:
/// one block): the forward product (unless `forward` is false: it ran already), the loss
/// (the mean over the n·out elements) into *loss_out and its gradient (through the
/// activation unless the loss takes the logits), then the layer's backward pass.
template <class T>
struct dense_head_args {
  dense_geometry g;
  const T* x;
  const T* w;
  const T* b;
  bool forward;    // compute y (and logits) first
  activation act;  // the layer's activation
  T* y;
  T* logits;  // the loss takes these (binary cross-entropy on logits) when not null
  loss_kind kind;
  const T* target;
  T* loss_out;
  T* dw;
  T* db;
  T* dx;
  dense_backward_extras<T> e;
};

}  // namespace detail

using detail::choose_dense_path;
using detail::dense_path;

}  // namespace gpukit::nn
