// gpukit/nn/detail/conv_igemm.cuh — the convolution as three mappings of the implicit-GEMM
// engine (igemm.cuh), for any kernel size, stride, padding and channel count:
//
//   forward   y[i][o][p] = act(b[o] + Σ_k w[o][k] · x(i, k, p))
//             m = out channel o, n = output pixel (i, p), k = (in channel, ky, kx)
//   input     dx[i][c][q] = Σ over (o, ky, kx) of w[o][c][ky][kx] · dz[i][o][(q + pad - d·tap) / s]
//   gradient  one product per stride phase (conv_phase.hpp): the input pixels whose row and
//             column are ry and rx modulo the stride (after padding) meet only the taps of
//             that phase, so each phase is a dense product over its own taps (at stride 1:
//             one phase, every tap) and no multiply is spent on a tap that misses; epilogue:
//             times the slope of the activation that produced x, when the model folds it in
//   weight    dw[o][k] (+)= Σ over (i, p) of dz[i][o][p] · x(i, k, p), and db[o] as the
//   gradient  column k = ic·kh·kw of ones: m = o, n = k (+1), k = output pixels; split over
//             the pixels, partial sums added in a fixed order
//
// dz is the gradient at the conv output (after the pool and the activation have been
// routed back: conv2d.cuh does that first). Indices are 32-bit: every tensor of the call
// must have fewer than 2^31 elements (conv2d.cuh cuts larger batches into pieces).
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/detail/conv_igemm.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/conv2d_plan.hpp"
#include "gpukit/nn/detail/fast_divmod.hpp"
#include "gpukit/nn/detail/igemm.cuh"

#include <type_traits>

namespace gpukit::nn::detail {

struct conv_fprop_map {
  static constexpr bool a_k_fast = true, b_k_fast = false, has_constant_column = false;
  int m = 0, n = 0, k = 0;  // out channels, output pixels, taps
  const float* w = nullptr;
  const float* x = nullptr;
  const float* bias = nullptr;
  float* y = nullptr;
  epilogue_activation act{};  // the block's; the identity for a GELU (its pass follows)
  int h = 0, wd = 0, stride = 1, pad_h = 0, pad_w = 0, dil = 1, plane = 0, chw = 0, ohw = 0;
  fast_divmod by_ohw, by_ow, by_kk, by_kw;

  struct a_row { int off; bool ok; };
  struct a_kpos { int k; bool ok; };
  struct b_col { int base, iy0, ix0; bool ok; };
  struct b_kpos { int off, ky, kx; bool ok; };
  struct c_row { int off; float bias; bool ok; };
  struct c_col { int off; bool ok; };

  __device__ a_row a_row_at(int o) const { return {o * k, o < m}; }
  __device__ a_kpos a_k_at(int kk, bool ok) const { return {kk, ok}; }
  __device__ const float* a_src(const a_row& r, const a_kpos& p, bool& ok) const {
    ok = r.ok && p.ok;
    return w + (ok ? r.off + p.k : 0);
  }
  __device__ b_col b_col_at(int pix) const {
    int img, q, oy, ox;
    by_ohw.divmod(pix, img, q);
    by_ow.divmod(q, oy, ox);
    const int iy0 = oy * stride - pad_h, ix0 = ox * stride - pad_w;
    return {img * chw + iy0 * wd + ix0, iy0, ix0, pix < n};
  }
  __device__ b_kpos b_k_at(int kk, bool ok) const {
    int c, r, ky, kx;
    by_kk.divmod(kk, c, r);
    by_kw.divmod(r, ky, kx);
    ky *= dil, kx *= dil;  // the tap's row and column offsets
    return {c * plane + ky * wd + kx, ky, kx, ok};
  }
  __device__ const float* b_src(const b_kpos& p, const b_col& c, bool& ok) const {
    const int iy = c.iy0 + p.ky, ix = c.ix0 + p.kx;
    ok = p.ok && c.ok && static_cast<unsigned>(iy) < static_cast<unsigned>(h) &&
         static_cast<unsigned>(ix) < static_cast<unsigned>(wd);
    return x + (ok ? c.base + p.off : 0);
  }
  __device__ c_row c_row_at(int o) const { return {o * ohw, o < m ? bias[o] : 0.0f, o < m}; }
  __device__ c_col c_col_at(int pix) const {
    int img, q;
    by_ohw.divmod(pix, img, q);
    return {img * m * ohw + q, pix < n};
  }
  __device__ void store(const c_row& r, const c_col& c, float v) const {
    if (r.ok && c.ok) y[r.off + c.off] = apply(act, v + r.bias);
  }
};

/// floor(a / b) and ceil(a / b) for b > 0, a of either sign.
__device__ __forceinline__ int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
__device__ __forceinline__ int ceil_div_signed(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/// Taps a per-pixel mask can hold (one bit each).
inline constexpr int max_masked_taps = 32;

/// One stride phase (ry, rx) of the input gradient. TapMask (phases of at most 32 taps): each
/// input pixel a thread loads keeps one bit per tap of the phase (a·tkx + b) saying whether
/// that tap's dz lies inside the output, made once per tile, so that a copy tests one bit
/// instead of two bounds; larger phases test the bounds (TapMask false). (The same masks in
/// the forward product measured slower at batch 256 on an H100, for reasons not found yet:
/// the forward product tests bounds.)
template <bool TapMask>
struct conv_dgrad_map_t {
  static constexpr bool a_k_fast = true, b_k_fast = false, has_constant_column = false;
  int m = 0, n = 0, k = 0;  // in channels, input pixels of the phase, out channels x the phase's taps
  const float* w = nullptr;
  const float* dz = nullptr;
  float* dx = nullptr;
  activation dx_act = activation::none;  // dx ·= dx_act'(dx_act_y): the producer's activation
  const float* dx_act_y = nullptr;
  int ic = 0, kk = 0, kw = 0, stride = 1, ky0 = 0, kx0 = 0, tap_step = 1, dz_step = 1;
  int oh = 0, ow = 0, ohw = 0, ochw = 0;  // conv output: rows, columns, plane, one image
  int w_in = 0, hw = 0;                    // input row length and plane
  int iy_first = 0, ix_first = 0, cy = 0, cx = 0, tky = 0, tkx = 0;
  fast_divmod by_lattice, by_nx, by_taps, by_tkx;

  struct a_row { int off; bool ok; };
  struct a_kpos { int off; bool ok; };
  struct bounds_col { int base, oy0, ox0; bool ok; };
  struct bounds_kpos { int off, a, b; bool ok; };  // a, b: dz rows and columns back from (oy0, ox0)
  struct mask_col { int base; unsigned taps; };  // bit a·tkx + b: that tap's dz lies inside
  struct mask_kpos { int off; unsigned bit; };
  using b_col = std::conditional_t<TapMask, mask_col, bounds_col>;
  using b_kpos = std::conditional_t<TapMask, mask_kpos, bounds_kpos>;
  struct c_row { int off; bool ok; };
  struct c_col { int off; bool ok; };

  __device__ a_row a_row_at(int c) const { return {c * kk, c < m}; }
  __device__ a_kpos a_k_at(int kidx, bool ok) const {
    int o, t, a, b;
    by_taps.divmod(kidx, o, t);
    by_tkx.divmod(t, a, b);
    return {o * ic * kk + (ky0 + tap_step * a) * kw + kx0 + tap_step * b, ok};
  }
  __device__ const float* a_src(const a_row& r, const a_kpos& p, bool& ok) const {
    ok = r.ok && p.ok;
    return w + (ok ? r.off + p.off : 0);
  }
  __device__ b_col b_col_at(int pix) const {
    int img, j, jy, jx;
    by_lattice.divmod(pix, img, j);
    by_nx.divmod(j, jy, jx);
    const int oy0 = cy + jy, ox0 = cx + jx;
    const int base = img * ochw + oy0 * ow + ox0;
    if constexpr (TapMask) {
      // Taps inside: oy0 - dz_step·a in [0, oh) and ox0 - dz_step·b in [0, ow).
      int a_lo, a_hi, b_lo, b_hi;
      if (dz_step == 1) {
        a_lo = ::max(0, oy0 - oh + 1), a_hi = ::min(tky, oy0 + 1);
        b_lo = ::max(0, ox0 - ow + 1), b_hi = ::min(tkx, ox0 + 1);
      } else {
        a_lo = ::max(0, ceil_div_signed(oy0 - oh + 1, dz_step)), a_hi = ::min(tky, floor_div(oy0, dz_step) + 1);
        b_lo = ::max(0, ceil_div_signed(ox0 - ow + 1, dz_step)), b_hi = ::min(tkx, floor_div(ox0, dz_step) + 1);
      }
      unsigned row = 0, taps = 0;
      if (b_lo < b_hi) row = ((b_hi - b_lo == 32 ? 0u : 1u << (b_hi - b_lo)) - 1u) << b_lo;
      if (pix < n)
        for (int a = a_lo; a < a_hi; ++a) taps |= row << (a * tkx);
      return {base, taps};
    } else {
      return {base, oy0, ox0, pix < n};
    }
  }
  __device__ b_kpos b_k_at(int kidx, bool ok) const {
    int o, t, a, b;
    by_taps.divmod(kidx, o, t);
    by_tkx.divmod(t, a, b);
    a *= dz_step, b *= dz_step;
    if constexpr (TapMask) {
      return {o * ohw - a * ow - b, ok ? 1u << t : 0u};
    } else {
      return {o * ohw - a * ow - b, a, b, ok};
    }
  }
  __device__ const float* b_src(const b_kpos& p, const b_col& c, bool& ok) const {
    if constexpr (TapMask) {
      ok = (c.taps & p.bit) != 0u;
    } else {
      const int oy = c.oy0 - p.a, ox = c.ox0 - p.b;
      ok = p.ok && c.ok && static_cast<unsigned>(oy) < static_cast<unsigned>(oh) &&
           static_cast<unsigned>(ox) < static_cast<unsigned>(ow);
    }
    return dz + (ok ? c.base + p.off : 0);
  }
  __device__ c_row c_row_at(int c) const { return {c * hw, c < m}; }
  __device__ c_col c_col_at(int pix) const {
    int img, j, jy, jx;
    by_lattice.divmod(pix, img, j);
    by_nx.divmod(j, jy, jx);
    return {img * m * hw + (iy_first + stride * jy) * w_in + ix_first + stride * jx, pix < n};
  }
  __device__ void store(const c_row& r, const c_col& c, float v) const {
    if (!r.ok || !c.ok) return;
    const int at = r.off + c.off;
    if (dx_act != activation::none) v *= activation_slope(dx_act, dx_act_y[at]);
    dx[at] = v;
  }
};
using conv_dgrad_map = conv_dgrad_map_t<false>;
using conv_dgrad_masked_map = conv_dgrad_map_t<true>;

struct conv_wgrad_map {
  static constexpr bool a_k_fast = true, b_k_fast = true, has_constant_column = true;
  int m = 0, n = 0, k = 0;  // out channels, taps + 1 (the bias), output pixels
  const float* dz = nullptr;
  const float* x = nullptr;
  float* dw = nullptr;
  float* db = nullptr;
  bool accumulate = false;
  int taps = 0, ohw = 0, ochw = 0, h = 0, wd = 0, plane = 0, chw = 0, stride = 1, pad_h = 0, pad_w = 0, dil = 1;
  fast_divmod by_ohw, by_ow, by_kk, by_kw;

  struct a_row { int off; bool ok; };
  struct a_kpos { int off; bool ok; };
  struct b_col { int off, ky, kx; bool ones, ok; };
  struct b_kpos { int base, iy0, ix0; bool ok; };
  struct c_row { int o; bool ok; };
  struct c_col { int t; bool ok; };

  __device__ a_row a_row_at(int o) const { return {o * ohw, o < m}; }
  __device__ a_kpos a_k_at(int pix, bool ok) const {
    int img, q;
    by_ohw.divmod(pix, img, q);
    return {img * ochw + q, ok};
  }
  __device__ const float* a_src(const a_row& r, const a_kpos& p, bool& ok) const {
    ok = r.ok && p.ok;
    return dz + (ok ? r.off + p.off : 0);
  }
  __device__ b_col b_col_at(int t) const {
    int c, r, ky, kx;
    by_kk.divmod(t, c, r);
    by_kw.divmod(r, ky, kx);
    ky *= dil, kx *= dil;  // the tap's row and column offsets
    return {c * plane + ky * wd + kx, ky, kx, t == taps, t < n};
  }
  __device__ b_kpos b_k_at(int pix, bool ok) const {
    int img, q, oy, ox;
    by_ohw.divmod(pix, img, q);
    by_ow.divmod(q, oy, ox);
    const int iy0 = oy * stride - pad_h, ix0 = ox * stride - pad_w;
    return {img * chw + iy0 * wd + ix0, iy0, ix0, ok};
  }
  __device__ const float* b_src(const b_kpos& p, const b_col& c, bool& ok) const {
    const int iy = p.iy0 + c.ky, ix = p.ix0 + c.kx;
    ok = !c.ones && p.ok && c.ok && static_cast<unsigned>(iy) < static_cast<unsigned>(h) &&
         static_cast<unsigned>(ix) < static_cast<unsigned>(wd);
    return x + (ok ? p.base + c.off : 0);
  }
  /// The column of ones (the bias): its elements are constants, not loads.
  __device__ bool b_constant(const b_kpos& p, const b_col& c, float& v) const {
    v = p.ok ? 1.0f : 0.0f;
    return c.ones;
  }
  __device__ c_row c_row_at(int o) const { return {o, o < m}; }
  __device__ c_col c_col_at(int t) const { return {t, t < n}; }
  __device__ void store(const c_row& r, const c_col& c, float v) const {
    if (!r.ok || !c.ok) return;
    float* dst = c.t < taps ? dw + static_cast<long long>(r.o) * taps + c.t : db + r.o;
    *dst = accumulate ? *dst + v : v;
  }
};

// ---- the maps of one geometry ---------------------------------------------------------------

inline conv_fprop_map make_fprop_map(const conv_geometry& g, const float* x, const float* w, const float* b, float* y) {
  conv_fprop_map p;
  p.m = g.oc, p.n = g.n * g.oh * g.ow, p.k = g.ic * g.kh * g.kw;
  p.w = w, p.x = x, p.bias = b, p.y = y, p.act = epilogue_form(g.act);
  p.h = g.h, p.wd = g.w, p.stride = g.stride, p.pad_h = g.pad_h, p.pad_w = g.pad_w, p.dil = g.dil;
  p.plane = g.h * g.w, p.chw = g.ic * g.h * g.w, p.ohw = g.oh * g.ow;
  p.by_ohw = fast_divmod(p.ohw), p.by_ow = fast_divmod(g.ow), p.by_kk = fast_divmod(g.kh * g.kw),
  p.by_kw = fast_divmod(g.kw);
  return p;
}

template <bool TapMask = false>
conv_dgrad_map_t<TapMask> make_dgrad_map(const conv_geometry& g, const dgrad_phase& ph, const float* w,
                                         const float* dz, float* dx, activation dx_act, const float* dx_act_y) {
  conv_dgrad_map_t<TapMask> p;
  p.m = g.ic, p.n = g.n * ph.ny * ph.nx, p.k = g.oc * ph.tky * ph.tkx;
  p.w = w, p.dz = dz, p.dx = dx, p.dx_act = dx_act, p.dx_act_y = dx_act_y;
  p.ic = g.ic, p.kk = g.kh * g.kw, p.kw = g.kw, p.stride = g.stride, p.ky0 = ph.ky0, p.kx0 = ph.kx0;
  p.tap_step = ph.tap_step, p.dz_step = ph.dz_step;
  p.oh = g.oh, p.ow = g.ow, p.ohw = g.oh * g.ow, p.ochw = g.oc * g.oh * g.ow;
  p.w_in = g.w, p.hw = g.h * g.w;
  p.iy_first = ph.iy_first, p.ix_first = ph.ix_first, p.tky = ph.tky, p.tkx = ph.tkx;
  p.cy = ph.cy, p.cx = ph.cx;
  p.by_lattice = fast_divmod(std::max(1, ph.ny * ph.nx)), p.by_nx = fast_divmod(std::max(1, ph.nx));
  p.by_taps = fast_divmod(std::max(1, ph.tky * ph.tkx)), p.by_tkx = fast_divmod(std::max(1, ph.tkx));
  return p;
}

inline conv_wgrad_map make_wgrad_map(const conv_geometry& g, const float* dz, const float* x, float* dw, float* db,
                                     bool accumulate) {
  conv_wgrad_map p;
  p.taps = g.ic * g.kh * g.kw;
  p.m = g.oc, p.n = p.taps + 1, p.k = g.n * g.oh * g.ow;
  p.dz = dz, p.x = x, p.dw = dw, p.db = db, p.accumulate = accumulate;
  p.ohw = g.oh * g.ow, p.ochw = g.oc * g.oh * g.ow, p.h = g.h, p.wd = g.w, p.plane = g.h * g.w,
  p.chw = g.ic * g.h * g.w, p.stride = g.stride, p.pad_h = g.pad_h, p.pad_w = g.pad_w, p.dil = g.dil;
  p.by_ohw = fast_divmod(p.ohw), p.by_ow = fast_divmod(g.ow), p.by_kk = fast_divmod(g.kh * g.kw),
  p.by_kw = fast_divmod(g.kw);
  return p;
}

/// f(map) with the input-gradient map of phase ph: the tap-mask one for at most 32 taps.
template <class F>
void with_dgrad_map(const conv_geometry& g, const dgrad_phase& ph, const float* w, const float* dz, float* dx,
                    activation dx_act, const float* dx_act_y, F&& f) {
  if (ph.taps() <= max_masked_taps) return f(make_dgrad_map<true>(g, ph, w, dz, dx, dx_act, dx_act_y));
  f(make_dgrad_map<false>(g, ph, w, dz, dx, dx_act, dx_act_y));
}

// Compiled once, in the kernel library (src/kernels/), where the program links one.
#if defined(GPUKIT_PRECOMPILED_KERNELS)
GPUKIT_NN_IGEMM_INSTANCE(extern, conv_fprop_map)
GPUKIT_NN_IGEMM_INSTANCE(extern, conv_dgrad_map)
GPUKIT_NN_IGEMM_INSTANCE(extern, conv_dgrad_masked_map)
GPUKIT_NN_IGEMM_INSTANCE(extern, conv_wgrad_map)
#endif

}  // namespace gpukit::nn::detail
