// gpukit/nn/detail/conv2d_plan.hpp — what the conv layer's kernels need to know, decided on
// the host: the conv block, its geometry, the extras a model's backward pass asks for, and
// the GPU paths (tiles, stride phases, scratch) with choose_conv2d_path, the layer's one
// selection function. conv2d.hpp is the layer's front end and CPU path; the GPU kernels
// (conv2d.cuh, conv_fast.cuh, conv_igemm.cuh) include this header, not conv2d.hpp, so that
// each compiles on its own.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/detail/conv_phase.hpp"
#include "gpukit/nn/detail/igemm_plan.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/path_target.hpp"
#include "gpukit/nn/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gpukit::nn {

/// A conv2d, then an optional activation, then an optional max-pool, computed as one layer.
struct conv_block {
  conv2d conv;
  activation act = activation::none;
  std::optional<maxpool2d> pool{};
};

namespace detail {

/// Everything a conv kernel needs to know, as ints (checked to fit).
struct conv_geometry {
  int n = 0, ic = 0, h = 0, w = 0;   // input
  int oc = 0, kh = 0, kw = 0, stride = 1;
  int pad_h = 0, pad_w = 0;          // the padding above and to the left (the sides the indices see)
  int dil = 1;                       // taps this far apart
  int oh = 0, ow = 0;                // conv output
  activation act = activation::none;
  bool pooled = false;
  int pkh = 1, pkw = 1, psh = 1, psw = 1;  // pool window and stride (1 without a pool)
  int ph = 0, pw = 0;                // block output: pooled, or the conv output

  GPUKIT_HOST_DEVICE long long kdim() const noexcept { return static_cast<long long>(ic) * kh * kw; }
  /// Rows and columns the taps span.
  GPUKIT_HOST_DEVICE int extent_h() const noexcept { return (kh - 1) * dil + 1; }
  GPUKIT_HOST_DEVICE int extent_w() const noexcept { return (kw - 1) * dil + 1; }
  GPUKIT_HOST_DEVICE long long input_size() const noexcept { return static_cast<long long>(n) * ic * h * w; }
  GPUKIT_HOST_DEVICE long long conv_size() const noexcept { return static_cast<long long>(n) * oc * oh * ow; }
  GPUKIT_HOST_DEVICE long long output_size() const noexcept { return static_cast<long long>(n) * oc * ph * pw; }
  shape4 output_shape() const noexcept {
    return {static_cast<std::size_t>(n), static_cast<std::size_t>(oc), static_cast<std::size_t>(ph),
            static_cast<std::size_t>(pw)};
  }
};

inline conv_geometry make_conv_geometry(const conv_block& block, const shape4& in, const std::string& who) {
  const shape4 conv_out = block.conv.output_shape(in, who);
  shape4 out = conv_out;
  if (block.pool) out = block.pool->output_shape(conv_out, who);
  const char* where = who.c_str();
  require_dimension(where, "input height", in.h);
  require_dimension(where, "input width", in.w);
  require_dimension(where, "batch size", in.n, 1u << 30);
  require_dimension(where, "channels", std::max(in.c, conv_out.c));
  require_dimension(where, "kernel size", std::max(block.conv.kernel.h, block.conv.kernel.w), 4096);
  require_dimension(where, "elements of one input sample", in.features(), 0x7fffffff);
  require_dimension(where, "elements of one conv output sample", conv_out.features(), 0x7fffffff);
  require_dimension(where, "stride", block.conv.stride, 4096);
  const conv_padding pad = block.conv.padding_for(in);
  require_dimension(where, "padding", std::max({pad.top, pad.bottom, pad.left, pad.right}), 4096);
  require_dimension(where, "dilation", block.conv.dilation, 4096);
  require_dimension(where, "kernel extent (dilation included)",
                    std::max(block.conv.extent().h, block.conv.extent().w), 1u << 20);
  conv_geometry g;
  g.n = static_cast<int>(in.n);
  g.ic = static_cast<int>(in.c);
  g.h = static_cast<int>(in.h);
  g.w = static_cast<int>(in.w);
  g.oc = static_cast<int>(conv_out.c);
  g.kh = static_cast<int>(block.conv.kernel.h);
  g.kw = static_cast<int>(block.conv.kernel.w);
  g.stride = static_cast<int>(block.conv.stride);
  g.pad_h = static_cast<int>(pad.top);
  g.pad_w = static_cast<int>(pad.left);
  g.dil = static_cast<int>(block.conv.dilation);
  g.oh = static_cast<int>(conv_out.h);
  g.ow = static_cast<int>(conv_out.w);
  g.act = block.act;
  g.pooled = block.pool.has_value();
  if (g.pooled) {
    g.pkh = static_cast<int>(block.pool->window.h);
    g.pkw = static_cast<int>(block.pool->window.w);
    g.psh = static_cast<int>(std::min<std::size_t>(block.pool->stride.h, 65535));
    g.psw = static_cast<int>(std::min<std::size_t>(block.pool->stride.w, 65535));
  }
  g.ph = static_cast<int>(out.h);
  g.pw = static_cast<int>(out.w);
  return g;
}


/// What a model's training step asks of a conv backward pass beyond the public contract:
/// assigning the parameter gradients (no zeroing pass first), and folding the activation
/// of the layer that produced x into dx (dx ·= act'(its output)), so that layer's backward
/// pass skips it.
template <class T>
struct conv_backward_extras {
  bool accumulate = true;
  activation dx_act = activation::none;
  const T* dx_act_y = nullptr;  // the producing layer's output, x's shape
};

// ---- GPU paths: tiles, phases and scratch, decided on the host ---------------------------

inline constexpr int conv_channels_per_block = 8;  // output channels one direct forward block computes
inline constexpr int conv_threads = 256;
inline constexpr std::size_t conv_shared_budget = 48 * 1024;

/// How a direct forward block covers the output: a tph x tpw tile of block outputs, whose
/// conv outputs (cth x ctw, one per thread) need an ith x itw input tile per channel; icb
/// input channels are staged in shared memory at a time.
struct conv_tile {
  int tph = 0, tpw = 0, cth = 0, ctw = 0, ith = 0, itw = 0, icb = 0;
  int tiles_h = 0, tiles_w = 0;
  std::size_t input_floats = 0, weight_floats = 0, output_floats = 0;
  std::size_t shared_bytes() const noexcept { return (input_floats + weight_floats + output_floats) * sizeof(float); }
};

/// The direct tile for `g`, or icb = 0 when even the smallest tile does not fit (or g is
/// dilated).
inline conv_tile plan_conv_tile(const conv_geometry& g) {
  conv_tile t;
  if (g.pkh > 16 || g.pkw > 16 || g.dil != 1) return t;  // its input tile holds adjacent taps
  int want_w = std::min(g.pw, (16 - g.pkw) / g.psw + 1);
  int want_h = 0;
  for (;;) {
    t.tpw = std::max(1, want_w);
    t.ctw = (t.tpw - 1) * g.psw + g.pkw;
    const int max_cth = conv_threads / t.ctw;
    if (max_cth < g.pkh) return conv_tile{};
    t.tph = std::max(1, std::min(want_h > 0 ? want_h : g.ph, (max_cth - g.pkh) / g.psh + 1));
    t.cth = (t.tph - 1) * g.psh + g.pkh;
    t.ith = (t.cth - 1) * g.stride + g.kh;
    t.itw = (t.ctw - 1) * g.stride + g.kw;
    t.output_floats = static_cast<std::size_t>(conv_channels_per_block) * t.cth * t.ctw;
    const std::size_t per_channel_in = (static_cast<std::size_t>(t.ith) * t.itw + 3) / 4 * 4;
    const std::size_t per_channel_w = static_cast<std::size_t>(g.kh) * g.kw * conv_channels_per_block;
    const std::size_t budget = conv_shared_budget / sizeof(float) - t.output_floats;
    const std::size_t fit = budget / (per_channel_in + per_channel_w);
    if (fit >= 1) {
      t.icb = static_cast<int>(std::min<std::size_t>(fit, static_cast<std::size_t>(g.ic)));
      t.input_floats = per_channel_in * t.icb;
      t.weight_floats = per_channel_w * t.icb;
      t.tiles_h = (g.ph + t.tph - 1) / t.tph;
      t.tiles_w = (g.pw + t.tpw - 1) / t.tpw;
      return t;
    }
    if (t.tph == 1 && t.tpw == 1) return conv_tile{};
    want_h = std::max(1, t.tph / 2);
    want_w = std::max(1, t.tpw / 2);
  }
}

/// The 3x3 stride-1 forward block (detail/conv_fast.cuh): each thread a 2x2 block of conv
/// outputs (one pooled output) for 16 output channels.
inline constexpr int quad_oc = 16;                              // output channels per thread
inline constexpr int quad_rows = 8, quad_cols = 32;             // 2x2 blocks per thread block
inline constexpr int quad_in_cols = 2 * quad_cols + 2;          // a channel's input tile: 18 x 66
inline constexpr int quad_in_floats = (2 * quad_rows + 2) * quad_in_cols;

struct quad_plan {
  int rows = 0, cols = 0;  // 2x2 blocks: pooled outputs, or the conv output in 2x2 blocks
  int tiles_h = 0, tiles_w = 0, icb = 0;
  std::size_t shared_bytes = 0;
};

/// The plan for g, or icb = 0 when the kernel does not take g (3x3, stride 1, no dilation,
/// a 2x2 stride-2 pool or none).
inline quad_plan plan_quad_forward(const conv_geometry& g) {
  quad_plan q;
  const bool pool_fits = !g.pooled || (g.pkh == 2 && g.pkw == 2 && g.psh == 2 && g.psw == 2);
  if (g.kh != 3 || g.kw != 3 || g.stride != 1 || g.dil != 1 || !pool_fits) return q;
  q.rows = g.pooled ? g.ph : (g.oh + 1) / 2;
  q.cols = g.pooled ? g.pw : (g.ow + 1) / 2;
  q.tiles_h = (q.rows + quad_rows - 1) / quad_rows;
  q.tiles_w = (q.cols + quad_cols - 1) / quad_cols;
  const int per_channel = quad_in_floats + 9 * quad_oc;
  q.icb = std::min(g.ic, static_cast<int>(conv_shared_budget / sizeof(float)) / per_channel);
  q.shared_bytes = static_cast<std::size_t>(q.icb) * per_channel * sizeof(float);
  return q;
}

inline constexpr int band_taps = 32;   // taps (ic·kh·kw) the band weight-gradient kernel sums in registers
inline constexpr int band_chunk = 64;  // block outputs it stages at a time

/// The band weight-gradient kernel (detail/conv_fast.cuh): one block per band of `rows`
/// block-output rows of one image, whose input (in_rows rows of row_stride floats per
/// channel, padding included) sits in shared memory.
struct wgrad_band_plan {
  int rows = 0, bands = 0, in_rows = 0, row_stride = 0;
  std::size_t shared_bytes = 0;
  bool ok() const noexcept { return rows > 0; }
  std::size_t partial_floats(const conv_geometry& g) const noexcept {
    return static_cast<std::size_t>(g.n) * bands * g.oc * static_cast<std::size_t>(g.kdim() + 1);
  }
};

/// The band plan for g (about two blocks per SM), or one with rows = 0 when g has more than
/// band_taps taps, is dilated, or even one row's band does not fit in shared memory.
inline wgrad_band_plan plan_wgrad_band(const conv_geometry& g, int sm_count) {
  wgrad_band_plan p;
  if (g.kdim() > band_taps || g.dil != 1) return p;
  int stride = (g.ow - 1) * g.stride + g.kw;
  // A pool window's positions at row distance 1 must fall in different banks.
  while (stride % 32 == 0 || stride % 32 == 1 || stride % 32 == 31) ++stride;
  const std::size_t staging = 2 * 32 * (band_chunk + 1) * sizeof(float);
  const long long want_bands = (2LL * sm_count + g.n - 1) / g.n;
  for (int rows = static_cast<int>(std::max<long long>(1, (g.ph + want_bands - 1) / want_bands)); rows >= 1; rows /= 2) {
    const int in_rows = ((rows - 1) * g.psh + g.pkh - 1) * g.stride + g.kh;
    const std::size_t bytes = static_cast<std::size_t>(g.ic) * in_rows * stride * sizeof(float) + staging;
    if (bytes <= conv_shared_budget) {
      p.rows = rows, p.bands = (g.ph + rows - 1) / rows, p.in_rows = in_rows, p.row_stride = stride;
      p.shared_bytes = bytes;
      return p;
    }
  }
  return p;
}

/// The most stride phases an input gradient may take (an 11x11 stride-4 conv has 16).
inline constexpr int max_dgrad_phases = 256;

enum class conv_forward_kind { igemm, quad, direct };
enum class conv_wgrad_kind { igemm, band };

struct conv_dgrad_step {
  dgrad_phase phase;
  igemm_config gemm;
};

/// What a test or benchmark may force; left empty, choose_conv2d_path decides.
struct conv2d_request {
  std::optional<conv_forward_kind> forward;
  std::optional<conv_wgrad_kind> wgrad;
  igemm_request gemm;
};

/// The GPU kernels of one conv block for one geometry, with their tiles and scratch.
struct conv2d_path {
  path_target target;
  conv2d_request request;
  bool want_dx = false;
  int piece_images = 0;  // images per launch: every tensor of a piece has fewer than 2^31 elements

  conv_forward_kind forward = conv_forward_kind::igemm;
  conv_tile direct{};
  quad_plan quad{};
  igemm_config forward_gemm{};
  bool pool_pass = false;  // igemm with a pool: the pool is a pass over the conv output
  // igemm with a GELU (no epilogue form, fits_epilogue): the product has no activation and a
  // pass of this one follows over the conv output; none: the epilogue applies the activation
  activation activation_pass = activation::none;

  conv_wgrad_kind wgrad = conv_wgrad_kind::igemm;
  wgrad_band_plan band{};
  igemm_config wgrad_gemm{};
  bool needs_dz = false;  // the conv-output gradient is made first (through the pool, the activation)

  std::vector<conv_dgrad_step> dgrad;  // the phases that meet a tap (empty without dx)
  bool dgrad_zero_fill = false;        // some input pixels meet no tap: dx is zeroed first

  // Scratch, in bytes from the start of the call's scratch region.
  std::size_t forward_scratch = 0, conv_out_at = 0, forward_partial_at = 0;
  std::size_t backward_scratch = 0, wgrad_partial_at = 0, dz_at = 0, dgrad_partial_at = 0;

  long long taps = 0;  // in channels x kh x kw

  std::string why_few_taps() const { return std::to_string(taps) + " taps: too few for the implicit GEMM's k"; }

  /// e.g. "forward: implicit GEMM 64x32768x576: tile 128x128, 3xTF32, then a pool pass |
  /// dw: implicit GEMM 64x577x32768: tile 64x64, split-K 8, 3xTF32 | dx: implicit GEMM ...".
  std::string describe() const {
    if (!target.gpu)
      return std::string("CPU blocked GEMM (implicit im2col, OpenMP") + target.cpu_rounding() + ")";
    std::string s = "forward: ";
    switch (forward) {
      case conv_forward_kind::quad: s += "3x3 quad block, pool in registers (" + why_few_taps() + ")"; break;
      case conv_forward_kind::direct: s += "direct tiled, pool fused"; break;
      default:
        s += "implicit GEMM " + forward_gemm.describe();
        if (activation_pass != activation::none) s += ", then a " + std::string(activation_name(activation_pass)) + " pass";
        if (pool_pass) s += ", then a pool pass";
        break;
    }
    s += " | dw: ";
    s += wgrad == conv_wgrad_kind::band ? "band kernel, " + std::to_string(band.bands) + " bands (" + why_few_taps() + ")"
                                          : "implicit GEMM " + wgrad_gemm.describe();
    if (want_dx) {
      s += " | dx: implicit GEMM";
      if (dgrad.size() > 1) s += ", " + std::to_string(dgrad.size()) + " stride phases, the first";
      if (!dgrad.empty()) s += " " + dgrad.front().gemm.describe();
      if (dgrad_zero_fill) s += ", zero fill";
    }
    if (piece_images > 0) s += " | " + std::to_string(piece_images) + " images per launch";
    return s;
  }
};

/// The first layers of small CNNs (a handful of input channels) have too few taps for the
/// implicit GEMM's k to pay: there the article's dedicated kernels win.
inline constexpr long long few_taps = 32;

/// The GPU path of a conv block with geometry `g` (batch g.n) on `t`: the one selection
/// function of the conv layer. `want_dx`: the input gradient is needed.
inline conv2d_path choose_conv2d_path(const conv_geometry& g, const path_target& t, bool want_dx,
                                      const conv2d_request& r = {}) {
  conv2d_path p;
  p.target = t, p.request = r, p.want_dx = want_dx;
  p.taps = g.kdim();
  if (!t.gpu) return p;
  const long long per_image = std::max<long long>(static_cast<long long>(g.ic) * g.h * g.w,
                                                  static_cast<long long>(g.oc) * g.oh * g.ow);
  const int piece = static_cast<int>(std::min<long long>(g.n, std::max<long long>(1, 0x7fffffffLL / per_image)));
  p.piece_images = piece < g.n ? piece : 0;
  conv_geometry gp = g;
  gp.n = piece;
  const long long taps = g.kdim(), pixels = static_cast<long long>(piece) * g.oh * g.ow;

  // Forward.
  const quad_plan quad = plan_quad_forward(gp);
  const conv_tile direct = plan_conv_tile(gp);
  conv_forward_kind fwd = conv_forward_kind::igemm;
  if (quad.icb > 0 && taps <= few_taps) fwd = conv_forward_kind::quad;
  if (r.forward) fwd = *r.forward;
  if (fwd == conv_forward_kind::quad && quad.icb == 0) fwd = conv_forward_kind::igemm;
  if (fwd == conv_forward_kind::direct && direct.icb == 0) fwd = conv_forward_kind::igemm;
  if (!fits_epilogue(g.act)) fwd = conv_forward_kind::igemm;  // the others fuse epilogue forms only
  p.forward = fwd;
  p.quad = quad, p.direct = direct;
  scratch_plan fs;
  if (fwd == conv_forward_kind::igemm) {
    p.forward_gemm = choose_igemm(g.oc, pixels, taps, t, r.gemm);
    p.pool_pass = g.pooled;
    if (!fits_epilogue(g.act)) p.activation_pass = g.act;
    p.conv_out_at = fs.add<float>(p.pool_pass ? static_cast<std::size_t>(pixels) * g.oc : 0);
    p.forward_partial_at = fs.add<float>(p.forward_gemm.partial_floats(g.oc, pixels));
  }
  p.forward_scratch = fs.bytes;

  // Weight gradient (and bias).
  const wgrad_band_plan band = plan_wgrad_band(gp, t.sm_count);
  conv_wgrad_kind wk = band.ok() ? conv_wgrad_kind::band : conv_wgrad_kind::igemm;
  if (r.wgrad) wk = *r.wgrad;
  if (wk == conv_wgrad_kind::band && !band.ok()) wk = conv_wgrad_kind::igemm;
  p.wgrad = wk, p.band = band;
  scratch_plan bs;
  if (wk == conv_wgrad_kind::band) {
    p.wgrad_partial_at = bs.add<float>(band.partial_floats(gp));
  } else {
    p.wgrad_gemm = choose_igemm(g.oc, taps + 1, pixels, t, r.gemm, igemm_operands{true});
    p.wgrad_partial_at = bs.add<float>(p.wgrad_gemm.partial_floats(g.oc, taps + 1));
  }
  p.needs_dz = (g.pooled || g.act != activation::none) && (want_dx || wk == conv_wgrad_kind::igemm);
  p.dz_at = bs.add<float>(p.needs_dz ? static_cast<std::size_t>(pixels) * g.oc : 0);

  // Input gradient, one product per stride phase that meets a tap.
  std::size_t dgrad_partials = 0;
  if (want_dx) {
    // Rows (and columns) of a residue no tap reaches (a stride above the kernel, or a
    // dilation sharing a factor with the stride) are left to a zero fill first; the others
    // pair up into phases.
    std::vector<int> rows, cols;
    for (int residue = 0; residue < g.stride; ++residue) {
      const dgrad_phase along_y = make_dgrad_phase(gp, residue, 0), along_x = make_dgrad_phase(gp, 0, residue);
      if (along_y.ny > 0 && along_y.tky == 0) p.dgrad_zero_fill = true;
      if (along_x.nx > 0 && along_x.tkx == 0) p.dgrad_zero_fill = true;
      if (along_y.ny > 0 && along_y.tky > 0) rows.push_back(residue);
      if (along_x.nx > 0 && along_x.tkx > 0) cols.push_back(residue);
    }
    const long long phases = static_cast<long long>(rows.size()) * static_cast<long long>(cols.size());
    require(phases <= max_dgrad_phases, "gpukit::nn::choose_conv2d_path",
            "kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " with stride " + std::to_string(g.stride) +
                (g.dil > 1 ? " and dilation " + std::to_string(g.dil) : std::string()) + " needs " +
                std::to_string(phases) + " input-gradient phases on the GPU, more than " +
                std::to_string(max_dgrad_phases));
    for (const int ry : rows)
      for (const int rx : cols) {
        const dgrad_phase ph = make_dgrad_phase(gp, ry, rx);
        conv_dgrad_step step{ph, choose_igemm(g.ic, ph.pixels(piece), static_cast<long long>(g.oc) * ph.taps(), t, r.gemm)};
        dgrad_partials = std::max(dgrad_partials, step.gemm.partial_floats(g.ic, ph.pixels(piece)));
        p.dgrad.push_back(step);
      }
  }
  p.dgrad_partial_at = bs.add<float>(dgrad_partials);
  p.backward_scratch = bs.bytes;
  return p;
}

}  // namespace detail

using detail::choose_conv2d_path;
using detail::conv2d_path;

}  // namespace gpukit::nn
