// gpukit/nn/detail/conv_cpu.hpp — the conv and dense layers' CPU path as products on the
// packed GEMM of cpu_gemm.hpp (the direct loops in conv2d.hpp and dense.hpp are the
// reference these are tested against).
//
//   conv_forward_gemm_cpu(exec, g, x, w, b, y, argmax[, numbers])
//   conv_backward_gemm_cpu(exec, g, x, w, y, argmax, dy, dw, db, dx[, extra[, numbers]])
//   dense_forward_gemm_cpu(exec, g, x, w, b, y, act, pre[, numbers])
//   dense_backward_gemm_cpu(exec, g, x, w, y, dy, dw, db, dx, act[, extra[, numbers]])
//
// Each takes exactly the arguments, and keeps exactly the contract, of the direct function
// of the same name without "_gemm" (conv_forward_cpu and so on): the geometry's fields, the
// fused activation, the max-pool with argmax as (row << 16) | column of the first maximum
// in row-major window order (strict '>', as window_max in maxpool2d.hpp), parameter
// gradients accumulated or assigned per extra.accumulate, dx assigned and multiplied by
// act'(extra.dx_act_y) when extra.dx_act is set, dx == nullptr skipping the input
// gradient. No output may overlap an input. Only the rounding differs: sums run in the
// GEMM's order (see cpu_gemm.hpp), the same for every thread count. The geometry and the
// extras are template parameters because conv2d.hpp and dense.hpp, which define them,
// include this header. The *_isa variants take the GEMM kernel to use (tests run each).
// `numbers` (precision.hpp, default fp32): with tf32 or bf16 every GEMM operand is rounded
// to that format (round_operand) as it is packed, and a bias gradient sums the rounded dz, as the GPU's tensor-core
// products do (the bias is one more column of ones in its weight-gradient product).
//
// How each pass becomes a GEMM (the im2col matrix is never stored: the packers read it
// straight from the tensors, a panel at a time):
//   forward   per image: y (oc x oh·ow) = w (oc x ic·kh·kw) · im2col(x); bias, activation
//             and pool in the epilogue of each task, while its block is in cache.
//   weights   dw (oc x ic·kh·kw) = dz (oc x pixels) · im2col(x)ᵀ, k running over the pixels
//             of the batch (image after image), read from channels-last copies of x and dz
//             (so that a packed row is a contiguous run of channels, not a gather); k cut
//             into a power of two of equal parts when dw alone has too few tiles to keep
//             the threads busy, the parts' sums added in part order afterwards (the parts
//             depend only on the shape, so the bits do not depend on the thread count).
//   input     per image and stride phase (the input pixels one set of taps reaches, as on
//             the GPU): dx (ic x phase pixels) = wᵀ gathered (ic x oc·taps) · im2col(dz)
//             with the kernel flipped; stride 1 is one phase written in place.
// dz, the gradient at the conv output (through the pool and the activation), is formed
// first when there is a pool or an activation, as in the direct path. Scratch (dz, the
// channels-last copies, the weight gradient's group sums, the packed weights) is kept by
// the calling thread between calls (cpu_gemm_impl::thread_scratch): about the size of x
// plus twice the conv output, allocated on the first call of a shape.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/executor.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/detail/conv_phase.hpp"
#include "gpukit/nn/detail/cpu_gemm.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace gpukit::nn::detail {
namespace conv_cpu_impl {

using cpu_gemm_impl::gemm_grid;
using cpu_gemm_impl::gemm_scratch;
using cpu_gemm_impl::index;

/// What a backward call without extras means: accumulate, no activation to fold.
template <class T>
struct default_backward_extras {
  bool accumulate = true;
  activation dx_act = activation::none;
  const T* dx_act_y = nullptr;
};

// ---- packers over conv tensors (see cpu_gemm_impl::strided_panels for the panel layout) ----

/// d[e] = src[e·S] for e in [0, n): a strided run of a panel with the stride a constant, so
/// that the compiler can vectorise the gather (stride 2: two loads and a shuffle).
template <int S, class T>
GPUKIT_CPU_GEMM_INLINE void gather_run(T* GPUKIT_CPU_GEMM_RESTRICT d, const T* GPUKIT_CPU_GEMM_RESTRICT src,
                                       index n) {
  for (index e = 0; e < n; ++e) d[e] = src[e * S];
}

/// B of the forward pass (and, on dz with the kernel flipped, of the input gradient): element
/// (p, j) with p = (c, ty, tx) over channels x th x tw taps and j = (a, b) over a grid gw
/// wide is src[c·plane + (a·s + ty·td + oy0)·sw + (b·s + tx·td + ox0)] (td: the taps'
/// spacing, the dilation), zero outside the sh x sw plane (the padding). A panel's columns are split into runs along grid rows once; each
/// step of k then copies each run with its out-of-plane ends zeroed.
template <class T>
struct im2col_panels {
  const T* src;
  index plane;
  int sh, sw, gw, th, tw, s, oy0, ox0;
  int td = 1;

  template <int R>
  GPUKIT_CPU_GEMM_INLINE void pack(T* dst, index j0, index lanes, index d0, index depth) const {
    struct run {
      int r0, len, a, b0;
    };
    using cpu_gemm_impl::copy_run;
    using cpu_gemm_impl::zero_run;
    for (index lp = 0; lp < lanes; lp += R) {
      const int count = static_cast<int>(std::min<index>(R, lanes - lp));
      run runs[R];
      int nrun = 0;
      {
        const index j = j0 + lp;
        int a = static_cast<int>(j / gw), b = static_cast<int>(j % gw);
        for (int r = 0; r < count;) {
          const int len = std::min(count - r, gw - b);
          runs[nrun++] = {r, len, a, b};
          r += len, ++a, b = 0;
        }
      }
      T* panel = dst + lp * depth;
      const int taps = th * tw;
      int c = static_cast<int>(d0 / taps), t = static_cast<int>(d0 % taps);
      int ty = t / tw, tx = t % tw;
      for (index d = 0; d < depth; ++d) {
        T* o = panel + d * R;
        const T* pl = src + c * plane;
        for (int q = 0; q < nrun; ++q) {
          const run& u = runs[q];
          T* os = o + u.r0;
          const int iy = u.a * s + ty * td + oy0;
          if (iy < 0 || iy >= sh) {
            zero_run<R>(os, u.len);
            continue;
          }
          const T* row = pl + static_cast<index>(iy) * sw;
          const int ix0 = u.b0 * s + tx * td + ox0;
          // e in [lo, hi) reads inside the row: 0 <= ix0 + e·s < sw. Found by stepping in
          // from the ends rather than by dividing: the padding is a few elements at most,
          // and the steps are bounded by the run (an idiv per end per run per step of k
          // cost more than the copy).
          int lo = 0, hi = u.len;
          while (lo < hi && ix0 + lo * s < 0) ++lo;
          while (hi > lo && ix0 + (hi - 1) * s >= sw) --hi;
          zero_run<R>(os, lo);
          if (s == 1) {
            copy_run<R>(os + lo, row + ix0 + lo, hi - lo);
          } else if (s == 2) {
            gather_run<2>(os + lo, row + ix0 + 2 * lo, hi - lo);
          } else {
            for (int e = lo; e < hi; ++e) os[e] = row[ix0 + e * s];
          }
          zero_run<R>(os + hi, u.len - hi);
        }
        if (count < R) zero_run<R>(o + count, R - count);
        if (++tx == tw) {
          tx = 0;
          if (++ty == th) ty = 0, ++c;
        }
      }
    }
  }
};

/// B of the weight gradient, read from channels-last copies of the images: element (p, j)
/// with first + p = (image, oy, ox) over the output pixels of the batch, image after image,
/// and j = (ky, kx, c) (taps outer, channels inner, so that a panel's lanes are runs of
/// contiguous channels) is xt[image][oy·s - pad_h + ky·dil][ox·s - pad_w + kx·dil][c], zero
/// in the padding. `first` lets a part of k start anywhere, mid-image included.
template <class T>
struct channels_last_taps_panels {
  const T* xt;  // the batch's first image, (h, w, ic)
  index image;  // elements per image
  index first;  // the batch pixel that p = 0 stands for
  int h, w, ic, oh, ow, kw, s, pad_h, pad_w, dil;

  template <int R>
  GPUKIT_CPU_GEMM_INLINE void pack(T* dst, index j0, index lanes, index d0, index depth) const {
    struct run {
      int r0, len, dy, dx, c0;
    };
    using cpu_gemm_impl::copy_run;
    using cpu_gemm_impl::zero_run;
    const index pixels = static_cast<index>(oh) * ow;
    for (index lp = 0; lp < lanes; lp += R) {
      const int count = static_cast<int>(std::min<index>(R, lanes - lp));
      run runs[R];
      int nrun = 0;
      for (int r = 0; r < count;) {
        const index j = j0 + lp + r;
        const int tap = static_cast<int>(j / ic), c = static_cast<int>(j % ic);
        const int len = std::min(count - r, ic - c);
        runs[nrun++] = {r, len, tap / kw * dil - pad_h, tap % kw * dil - pad_w, c};
        r += len;
      }
      T* panel = dst + lp * depth;
      const index p0 = first + d0;
      index img = p0 / pixels;
      int oy = static_cast<int>((p0 % pixels) / ow), ox = static_cast<int>(p0 % ow);
      for (index d = 0; d < depth; ++d) {
        T* o = panel + d * R;
        const T* xi = xt + img * image;
        for (int q = 0; q < nrun; ++q) {
          const run& u = runs[q];
          const int iy = oy * s + u.dy, ix = ox * s + u.dx;
          if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
            zero_run<R>(o + u.r0, u.len);
          } else {
            copy_run<R>(o + u.r0, xi + (static_cast<index>(iy) * w + ix) * ic + u.c0, u.len);
          }
        }
        if (count < R) zero_run<R>(o + count, R - count);
        if (++ox == ow) {
          ox = 0;
          if (++oy == oh) oy = 0, ++img;
        }
      }
    }
  }
};

/// dst (cols x rows) = srcᵀ for a row-major rows x cols src: one image from channels-first
/// to channels-last, in strips of 64 columns so that both sides stay in cache, with kernel
/// K's vectors.
template <class K, class T>
void transpose(const T* src, index rows, index cols, T* dst) {
  constexpr index strip = 64;
  for (index j0 = 0; j0 < cols; j0 += strip)
    K::transpose(src + j0, cols, rows, std::min(strip, cols - j0), dst + j0 * rows, rows);
}

/// A of one input-gradient phase (conv_phase.hpp): element (i, p) = w[oc][i][ky][kx] for
/// p = (oc, ty, tx) over oc x tky x tkx, with ky = ky0 + step·(tky - 1 - ty) and
/// kx = kx0 + step·(tkx - 1 - tx): the phase's taps, flipped, as the im2col of dz needs them.
template <class T>
struct dgrad_weight_panels {
  const T* w;
  int ic, kh, kw, step, ky0, kx0, tky, tkx;

  template <int R>
  GPUKIT_CPU_GEMM_INLINE void pack(T* dst, index l0, index lanes, index d0, index depth) const {
    const index taps = static_cast<index>(kh) * kw, per_oc = static_cast<index>(tky) * tkx;
    for (index lp = 0; lp < lanes; lp += R) {
      const int count = static_cast<int>(std::min<index>(R, lanes - lp));
      T* panel = dst + lp * depth;
      for (index d = 0; d < depth; ++d) {
        const index p = d0 + d, oc = p / per_oc, t = p % per_oc;
        const int ky = ky0 + step * (tky - 1 - static_cast<int>(t / tkx));
        const int kx = kx0 + step * (tkx - 1 - static_cast<int>(t % tkx));
        const T* src = w + (oc * ic + l0 + lp) * taps + static_cast<index>(ky) * kw + kx;
        T* o = panel + d * R;
        for (int r = 0; r < count; ++r) o[r] = src[r * taps];
        for (int r = count; r < R; ++r) o[r] = T(0);
      }
    }
  }
};

// ---- epilogues ---------------------------------------------------------------------------

/// f(j) for j < n, in fixed-length chunks: at -O2 GCC vectorises only loops that need no
/// remainder, and these chunks are such loops.
template <class F>
GPUKIT_CPU_GEMM_INLINE void for_each_index(index n, F&& f) {
  index j = 0;
  for (; j + 16 <= n; j += 16)
    for (index l = 0; l < 16; ++l) f(j + l);
  for (; j < n; ++j) f(j);
}

/// row[j] = act(row[j] + bias) for j < n, the switch outside the loop.
template <class T>
void bias_activation(T* row, index n, T bias, activation act) {
  switch (act) {
    case activation::relu:
      for_each_index(n, [&](index j) { row[j] = activate(activation::relu, row[j] + bias); });
      break;
    case activation::sigmoid:
      for_each_index(n, [&](index j) { row[j] = activate(activation::sigmoid, row[j] + bias); });
      break;
    case activation::tanh:
      for_each_index(n, [&](index j) { row[j] = activate(activation::tanh, row[j] + bias); });
      break;
    case activation::none: for_each_index(n, [&](index j) { row[j] += bias; }); break;
    default: for_each_index(n, [&](index j) { row[j] = activate(act, row[j] + bias); }); break;
  }
}

/// row[j] = act(row[j]) for j < n.
template <class T>
void activation_row(T* row, index n, activation act) {
  switch (act) {
    case activation::relu: for_each_index(n, [&](index j) { row[j] = activate(activation::relu, row[j]); }); break;
    case activation::sigmoid:
      for_each_index(n, [&](index j) { row[j] = activate(activation::sigmoid, row[j]); });
      break;
    case activation::tanh: for_each_index(n, [&](index j) { row[j] = activate(activation::tanh, row[j]); }); break;
    case activation::none: break;
    default: for_each_index(n, [&](index j) { row[j] = activate(act, row[j]); }); break;
  }
}

/// v[j] *= act'(y[j]) for j < n (slope_from_output(act)).
template <class T>
void fold_slope(T* v, const T* y, index n, activation act) {
  switch (act) {
    case activation::relu:
      for_each_index(n, [&](index j) { v[j] *= activation_slope(activation::relu, y[j]); });
      break;
    case activation::sigmoid:
      for_each_index(n, [&](index j) { v[j] *= activation_slope(activation::sigmoid, y[j]); });
      break;
    case activation::tanh:
      for_each_index(n, [&](index j) { v[j] *= activation_slope(activation::tanh, y[j]); });
      break;
    case activation::none: break;
    default: for_each_index(n, [&](index j) { v[j] *= activation_slope(act, y[j]); }); break;
  }
}

/// v[0] + ... + v[n - 1] in a fixed order: 16 running sums (element i goes to sum i % 16),
/// then added pairwise. One running sum would be a chain of dependent additions; these
/// vectorise, and the order depends on n only.
template <class T>
T plane_sum(const T* v, index n, precision numbers = precision::fp32) {
  constexpr int lanes = 16;
  T acc[lanes] = {};
  index i = 0;
  if (numbers != precision::fp32) {
    for (; i + lanes <= n; i += lanes)
      for (int l = 0; l < lanes; ++l) acc[l] += round_operand(numbers, v[i + l]);
    for (int l = 0; i < n; ++i, ++l) acc[l] += round_operand(numbers, v[i]);
  }
  for (; i + lanes <= n; i += lanes)
    for (int l = 0; l < lanes; ++l) acc[l] += v[i + l];
  for (int l = 0; i < n; ++i, ++l) acc[l] += v[i];
  for (int width = lanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
  return acc[0];
}

/// The max-pool of one conv output plane (oh x ow) into py x pw outputs and their argmax,
/// by the rule of window_max in maxpool2d.hpp: the first maximum in row-major window order
/// (strict '>'), as (row << 16) | column.
template <class Geometry, class T>
void pool_plane(const Geometry& g, const T* plane, T* out, std::int32_t* argmax) {
  const auto pack = [](int row, int col) {
    return static_cast<std::int32_t>((static_cast<std::uint32_t>(row) << 16) | static_cast<std::uint32_t>(col));
  };
  if (g.pkh == 2 && g.pkw == 2) {  // the common window, written out: the same rule, no loop overhead
    for (int py = 0; py < g.ph; ++py) {
      const int y0 = py * g.psh;
      const T* r0 = plane + static_cast<index>(y0) * g.ow;
      const T* r1 = r0 + g.ow;
      for (int px = 0; px < g.pw; ++px) {
        const int x0 = px * g.psw;
        T best = r0[x0];
        int by = y0, bx = x0;
        const auto consider = [&](T v, int row, int col) {
          // Masks rather than branches: the compiler turns a conditional index update into a
          // jump, which mispredicts about half the time on data-dependent maxima.
          const int take = -static_cast<int>(v > best);
          best = v > best ? v : best;
          by = (by & ~take) | (row & take);
          bx = (bx & ~take) | (col & take);
        };
        consider(r0[x0 + 1], y0, x0 + 1);
        consider(r1[x0], y0 + 1, x0);
        consider(r1[x0 + 1], y0 + 1, x0 + 1);
        out[py * g.pw + px] = best;
        argmax[py * g.pw + px] = pack(by, bx);
      }
    }
    return;
  }
  for (int py = 0; py < g.ph; ++py)
    for (int px = 0; px < g.pw; ++px) {
      const int y0 = py * g.psh, x0 = px * g.psw;
      T best = plane[static_cast<index>(y0) * g.ow + x0];
      int by = y0, bx = x0;
      for (int wy = 0; wy < g.pkh; ++wy)
        for (int wx = 0; wx < g.pkw; ++wx) {
          const T v = plane[static_cast<index>(y0 + wy) * g.ow + x0 + wx];
          const int take = -static_cast<int>(v > best);  // as in the 2 x 2 case above
          best = v > best ? v : best;
          by = (by & ~take) | ((y0 + wy) & take);
          bx = (bx & ~take) | ((x0 + wx) & take);
        }
      out[py * g.pw + px] = best;
      argmax[py * g.pw + px] = pack(by, bx);
    }
}

/// The most elements of C a task keeps in its own scratch (a pooled forward's conv output,
/// a strided input gradient's phase): 2^20 (4 MiB of floats) per thread however large the
/// planes, beyond one register tile of rows.
inline constexpr index scratch_block = index{1} << 20;

/// Runs f(i) for i in [0, count) on up to `threads` threads (static schedule).
template <class F>
void parallel_for(int threads, index count, F&& f) {
  if (threads <= 1 || count <= 1) {
    for (index i = 0; i < count; ++i) f(i);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for num_threads(static_cast<int>(std::min<index>(threads, count))) schedule(static)
#endif
  for (index i = 0; i < count; ++i) f(i);
}

/// The parts k (= depth, the batch's pixels) of the weight gradient is cut into: one, unless
/// dw (rows x cols) has fewer than 2048 register tiles; then parts x tiles reaches 2048.
/// dw is small next to k (k = batch x pixels), and cutting m and n alone into blocks for
/// 16 threads leaves short edge blocks and threads waiting at the end; equal parts of k
/// divide evenly and add no packing per multiply-add, only the sum of the parts (VGG's
/// training step at batch 32 on 16 Xeon cores: 0.9x the time with 2048 tiles as with 512,
/// for up to 4% more on one thread). A power of two, so that the parts divide evenly among
/// the common thread counts, with every part at least one step of k (kc) long and at most
/// 2^22 partial sums in all. Depends on the shape only.
template <class K>
index wgrad_parts(index depth, index rows, index cols) {
  const index tiles = ((rows + K::mr - 1) / K::mr) * ((cols + K::nr - 1) / K::nr);
  const index wanted = (2048 + tiles - 1) / tiles;
  const index memory = (index{1} << 22) / std::max<index>(1, rows * cols);
  const index limit = std::min(depth / K::kc, memory);
  index parts = 1;
  while (parts < wanted && parts * 2 <= limit) parts *= 2;
  return parts;
}

}  // namespace conv_cpu_impl

// ---- conv forward --------------------------------------------------------------------------

/// conv_forward_cpu's contract (conv2d.hpp) with the GEMM kernel `isa`.
template <class Geometry, class T>
void conv_forward_gemm_cpu_isa(cpu_isa isa, const cpu_executor& exec, const Geometry& g, const T* x, const T* w,
                               const T* b, T* y, std::int32_t* argmax, precision numbers = precision::fp32) {
  using namespace conv_cpu_impl;
  using namespace cpu_gemm_impl;
  const index pixels = static_cast<index>(g.oh) * g.ow, taps = g.kdim(), oc = g.oc;
  const index image = static_cast<index>(g.ic) * g.h * g.w, out_plane = static_cast<index>(g.ph) * g.pw;
  if (g.n <= 0 || oc <= 0 || pixels <= 0) return;
  with_kernel<T>(isa, [&](auto tag) {
    using K = typename decltype(tag)::type;
    const int threads = useful_threads(exec.threads(), static_cast<double>(g.conv_size()) * static_cast<double>(taps));
    const auto a = prepack<K, K::mr, T>(threads, operands_of<T>(strided_panels<T>{w, taps, 1}, numbers), oc, taps);
    // With a pool a task takes whole planes (windows cross any split of the pixels) and
    // computes them into its scratch; without one it writes y in place.
    const gemm_grid grid = plan_grid<K>(threads, g.n, oc, pixels, taps, g.pooled, scratch_block);
    const std::size_t extra = g.pooled ? static_cast<std::size_t>(grid.row_block * pixels) : 0;
    run_grid<K, T>(threads, grid, extra, [&](const gemm_grid::task_range& r, const gemm_scratch<T>& s) {
      const auto bp = operands_of<T>(im2col_panels<T>{x + r.batch * image, static_cast<index>(g.h) * g.w, g.h, g.w,
                                                      g.ow, g.kh, g.kw, g.stride, -g.pad_h, -g.pad_w, g.dil},
                                     numbers);
      T* c = g.pooled ? s.extra : y + (r.batch * oc + r.m0) * pixels + r.n0;
      gemm_block<K>(a, bp, r.m0, r.m1, r.n0, r.n1, taps, T(1), T(0), c, pixels, s);
      for (index o = r.m0; o < r.m1; ++o) {
        T* row = c + (o - r.m0) * pixels;
        bias_activation(row, r.n1 - r.n0, b[o], g.act);
        if (g.pooled) {
          const index p = r.batch * oc + o;
          pool_plane(g, row, y + p * out_plane, argmax + p * out_plane);
        }
      }
    });
  });
}

/// conv_forward_cpu (conv2d.hpp) on the packed GEMM: y = pool(act(conv(x, w) + b)), argmax
/// filled when g.pooled. Same arguments, same contract.
template <class Geometry, class T>
void conv_forward_gemm_cpu(const cpu_executor& exec, const Geometry& g, const T* x, const T* w, const T* b, T* y,
                           std::int32_t* argmax, precision numbers = precision::fp32) {
  conv_forward_gemm_cpu_isa(best_cpu_isa(), exec, g, x, w, b, y, argmax, numbers);
}

// ---- conv backward -------------------------------------------------------------------------

/// conv_backward_cpu's contract (conv2d.hpp) with the GEMM kernel `isa`.
template <class Geometry, class T, class Extras>
void conv_backward_gemm_cpu_isa(cpu_isa isa, const cpu_executor& exec, const Geometry& g, const T* x, const T* w,
                                const T* y, const std::int32_t* argmax, const T* dy, T* dw, T* db, T* dx,
                                const Extras& extra, precision numbers = precision::fp32) {
  using namespace conv_cpu_impl;
  using namespace cpu_gemm_impl;
  const bool accumulate = extra.accumulate;
  const index pixels = static_cast<index>(g.oh) * g.ow, taps = g.kdim(), oc = g.oc, images = g.n;
  const index image = static_cast<index>(g.ic) * g.h * g.w, in_plane = static_cast<index>(g.h) * g.w;
  const index out_plane = static_cast<index>(g.ph) * g.pw;
  const int threads = exec.threads();

  with_kernel<T>(isa, [&](auto tag) {
    using K = typename decltype(tag)::type;
    const double work = static_cast<double>(g.conv_size()) * static_cast<double>(taps);
    const int team = useful_threads(threads, work);
    const index conv_image = oc * pixels;

    // One pass per image: dz, the gradient at every conv output (through the pool and the
    // activation; dy itself without either), the sum of each of its planes for the bias,
    // and channels-last copies of x and dz for the weight gradient.
    const bool form_dz = g.pooled || g.act != activation::none;
    T* dz_buffer = form_dz ? thread_scratch<T, 2>(static_cast<std::size_t>(std::max<index>(g.conv_size(), 1))) : nullptr;
    const T* dz = form_dz ? dz_buffer : dy;
    T* xt = thread_scratch<T, 4>(static_cast<std::size_t>(std::max<index>(g.input_size(), 1)));
    T* dzt = thread_scratch<T, 5>(static_cast<std::size_t>(std::max<index>(g.conv_size(), 1)));
    T* plane_sums = thread_scratch<T, 6>(static_cast<std::size_t>(std::max<index>(images * oc, 1)));
    parallel_for(useful_threads(threads, static_cast<double>(g.input_size() + g.conv_size()) * 8), images, [&](index n) {
      for (index o = 0; o < oc; ++o) {
        const index p = n * oc + o;
        const T* dyp = dy + p * out_plane;
        if (form_dz) {
          T* plane = dz_buffer + p * pixels;
          const T* yp = y != nullptr ? y + p * out_plane : nullptr;
          if (!g.pooled) {
            std::copy(dyp, dyp + pixels, plane);
            fold_slope(plane, yp, pixels, g.act);
          } else {
            std::fill(plane, plane + pixels, T(0));
            const std::int32_t* ap = argmax + p * out_plane;
            for (index q = 0; q < out_plane; ++q) {
              const T v = g.act == activation::none ? dyp[q] : dyp[q] * activation_slope(g.act, yp[q]);
              const std::uint32_t at = static_cast<std::uint32_t>(ap[q]);
              plane[static_cast<index>(at >> 16) * g.ow + (at & 0xffff)] += v;
            }
          }
        }
        plane_sums[p] = plane_sum(dz + p * pixels, pixels, numbers);
      }
      transpose<K>(x + n * image, static_cast<index>(g.ic), in_plane, xt + n * image);
      transpose<K>(dz + n * conv_image, oc, pixels, dzt + n * conv_image);
    });
    for (index o = 0; o < oc; ++o) {  // images in order
      T sum = T(0);
      for (index n = 0; n < images; ++n) sum += plane_sums[n * oc + o];
      db[o] = (accumulate ? db[o] : T(0)) + sum;
    }

    // Weights: dw = dz · im2col(x)ᵀ per part of the batch's pixels, from the channels-last
    // copies (taps outer, channels inner: every packed run is a contiguous copy), the
    // parts' sums added in order and put back in (c, ky, kx) order.
    {
      const index depth = images * pixels;
      const index wanted = wgrad_parts<K>(depth, oc, taps);
      const index per_part = std::max<index>(1, (depth + wanted - 1) / wanted);
      const index parts = (depth + per_part - 1) / per_part;
      const index count = oc * taps;
      T* partial = thread_scratch<T, 3>(static_cast<std::size_t>(std::max<index>(parts * count, 1)));
      const gemm_grid grid = plan_grid<K>(team, parts, oc, taps, per_part);
      run_grid<K, T>(team, grid, 0, [&](const gemm_grid::task_range& r, const gemm_scratch<T>& s) {
        const index first = r.batch * per_part, last = std::min(depth, first + per_part);
        const auto ap = operands_of<T>(strided_panels<T>{dzt + first * oc, 1, oc}, numbers);  // dzt: (pixel, oc)
        const auto bp = operands_of<T>(
            channels_last_taps_panels<T>{xt, image, first, g.h, g.w, g.ic, g.oh, g.ow, g.kw, g.stride, g.pad_h, g.pad_w,
                                         g.dil},
            numbers);
        gemm_block<K>(ap, bp, r.m0, r.m1, r.n0, r.n1, last - first, T(1), T(0),
                      partial + r.batch * count + r.m0 * taps + r.n0, taps, s);
      });
      const index kk = static_cast<index>(g.kh) * g.kw;
      parallel_for(useful_threads(threads, static_cast<double>(count * parts)), oc, [&](index o) {
        for (index t = 0; t < kk; ++t)
          for (index c = 0; c < g.ic; ++c) {
            const index from = o * taps + t * g.ic + c, to = o * taps + c * kk + t;
            T sum = parts > 0 ? partial[from] : T(0);
            for (index q = 1; q < parts; ++q) sum += partial[q * count + from];
            dw[to] = (accumulate ? dw[to] : T(0)) + sum;
          }
      });
    }
    if (dx == nullptr) return;

    // Input: per stride phase (conv_phase.hpp), dx (ic x phase pixels) = flipped wᵀ · im2col(dz).
    const int s = g.stride;
    for (int ry = 0; ry < s; ++ry)
      for (int rx = 0; rx < s; ++rx) {
        const dgrad_phase ph = make_dgrad_phase(g, ry, rx);
        const int tky = ph.tky, tkx = ph.tkx, iy_first = ph.iy_first, ix_first = ph.ix_first, ny = ph.ny, nx = ph.nx;
        if (ny == 0 || nx == 0) continue;
        const index phase_pixels = static_cast<index>(ny) * nx;
        const auto store = [&](index n, index c0, index c1, index j0, index j1, const T* block, index ld) {
          // block holds rows c0..c1 x phase columns j0..j1 (nullptr: zeros). The columns go
          // a phase row at a time: one division per row, not per element.
          for (index c = c0; c < c1; ++c) {
            T* plane = dx + n * image + c * in_plane;
            const T* act_y = extra.dx_act != activation::none ? extra.dx_act_y + n * image + c * in_plane : nullptr;
            const T* from = block != nullptr ? block + (c - c0) * ld : nullptr;
            for (index j = j0; j < j1;) {
              const index py = j / nx, px = j % nx, len = std::min(j1 - j, nx - px);
              const index at = (iy_first + s * py) * g.w + ix_first + s * px;
              T* to = plane + at;
              if (from == nullptr) {
                for (index e = 0; e < len; ++e) to[e * s] = T(0);
              } else if (act_y == nullptr) {
                for (index e = 0; e < len; ++e) to[e * s] = from[j - j0 + e];
              } else {
                for (index e = 0; e < len; ++e)
                  to[e * s] = from[j - j0 + e] * activation_slope(extra.dx_act, act_y[at + e * s]);
              }
              j += len;
            }
          }
        };
        if (tky == 0 || tkx == 0) {  // no tap reaches these pixels: their gradient is zero
          parallel_for(useful_threads(threads, static_cast<double>(images * g.ic * phase_pixels)), images,
                       [&](index n) { store(n, 0, g.ic, 0, phase_pixels, nullptr, 0); });
          continue;
        }
        const index depth = oc * tky * tkx;
        const int phase_team =
            useful_threads(threads, static_cast<double>(images * g.ic) * static_cast<double>(phase_pixels * depth));
        const auto a = prepack<K, K::mr, T>(
            phase_team,
            operands_of<T>(dgrad_weight_panels<T>{w, g.ic, g.kh, g.kw, ph.tap_step, ph.ky0, ph.kx0, tky, tkx}, numbers),
            g.ic, depth);
        const int ds = ph.dz_step;
        const bool in_place = s == 1;
        const gemm_grid grid = plan_grid<K>(phase_team, images, g.ic, phase_pixels, depth, false,
                                            in_place ? std::numeric_limits<index>::max() : scratch_block);
        const std::size_t scratch = in_place ? 0 : static_cast<std::size_t>(grid.row_block * grid.col_block);
        run_grid<K, T>(phase_team, grid, scratch, [&](const gemm_grid::task_range& r, const gemm_scratch<T>& sc) {
          const auto bp = operands_of<T>(im2col_panels<T>{dz + r.batch * oc * pixels, pixels, g.oh, g.ow, nx, tky, tkx,
                                                          1, ph.cy - (tky - 1) * ds, ph.cx - (tkx - 1) * ds, ds},
                                         numbers);
          if (in_place) {
            T* c = dx + r.batch * image + r.m0 * in_plane + r.n0;
            gemm_block<K>(a, bp, r.m0, r.m1, r.n0, r.n1, depth, T(1), T(0), c, in_plane, sc);
            if (extra.dx_act != activation::none)
              for (index ch = r.m0; ch < r.m1; ++ch) {
                const index off = r.batch * image + ch * in_plane + r.n0;
                fold_slope(dx + off, extra.dx_act_y + off, r.n1 - r.n0, extra.dx_act);
              }
          } else {
            const index ld = r.n1 - r.n0;
            gemm_block<K>(a, bp, r.m0, r.m1, r.n0, r.n1, depth, T(1), T(0), sc.extra, ld, sc);
            store(r.batch, r.m0, r.m1, r.n0, r.n1, sc.extra, ld);
          }
        });
      }
  });
}

/// conv_backward_cpu (conv2d.hpp) on the packed GEMM: dw, db accumulated (or assigned when
/// extra.accumulate is false), dx assigned (skipped for nullptr) and folded with
/// extra.dx_act. Same arguments, same contract.
template <class Geometry, class T, class Extras = conv_cpu_impl::default_backward_extras<T>>
void conv_backward_gemm_cpu(const cpu_executor& exec, const Geometry& g, const T* x, const T* w, const T* y,
                            const std::int32_t* argmax, const T* dy, T* dw, T* db, T* dx, const Extras& extra = {},
                            precision numbers = precision::fp32) {
  conv_backward_gemm_cpu_isa(best_cpu_isa(), exec, g, x, w, y, argmax, dy, dw, db, dx, extra, numbers);
}

// ---- dense -----------------------------------------------------------------------------------

/// dense_forward_cpu's contract (dense.hpp) with the GEMM kernel `isa`.
template <class Geometry, class T>
void dense_forward_gemm_cpu_isa(cpu_isa isa, const cpu_executor& exec, const Geometry& g, const T* x, const T* w,
                                const T* b, T* y, activation act, T* pre, precision numbers = precision::fp32) {
  using namespace conv_cpu_impl;
  using namespace cpu_gemm_impl;
  const index rows = g.n, in = g.in, outs = g.out;
  if (rows <= 0 || outs <= 0) return;
  with_kernel<T>(isa, [&](auto tag) {
    using K = typename decltype(tag)::type;
    const int threads = useful_threads(exec.threads(), static_cast<double>(rows) * outs * in);
    const gemm_grid grid = plan_grid<K>(threads, 1, rows, outs, in);
    // wᵀ is packed once when several row blocks would each pack it again.
    const auto xa = operands_of<T>(strided_panels<T>{x, in, 1}, numbers);
    const auto wb = operands_of<T>(strided_panels<T>{w, in, 1}, numbers);
    T* z = pre != nullptr ? pre : y;
    const auto run = [&](const auto& bp) {
      run_grid<K, T>(threads, grid, 0, [&](const gemm_grid::task_range& r, const gemm_scratch<T>& s) {
        gemm_block<K>(xa, bp, r.m0, r.m1, r.n0, r.n1, in, T(1), T(0), z + r.m0 * outs + r.n0, outs, s);
        for (index i = r.m0; i < r.m1; ++i) {
          T* zr = z + i * outs;
          T* yr = y + i * outs;
          for_each_index(r.n1 - r.n0, [&](index j) { zr[r.n0 + j] += b[r.n0 + j]; });
          if (pre != nullptr) std::copy(zr + r.n0, zr + r.n1, yr + r.n0);
          activation_row(yr + r.n0, r.n1 - r.n0, act);
        }
      });
    };
    if (grid.row_blocks > 1) {
      run(prepack<K, K::nr, T>(threads, wb, outs, in));
    } else {
      run(wb);
    }
  });
}

/// dense_forward_cpu (dense.hpp) on the packed GEMM: y = act(x·wᵀ + b), pre = x·wᵀ + b when
/// not null. Same arguments, same contract.
template <class Geometry, class T>
void dense_forward_gemm_cpu(const cpu_executor& exec, const Geometry& g, const T* x, const T* w, const T* b, T* y,
                            activation act, T* pre, precision numbers = precision::fp32) {
  dense_forward_gemm_cpu_isa(best_cpu_isa(), exec, g, x, w, b, y, act, pre, numbers);
}

/// dense_backward_cpu's contract (dense.hpp) with the GEMM kernel `isa`.
template <class Geometry, class T, class Extras>
void dense_backward_gemm_cpu_isa(cpu_isa isa, const cpu_executor& exec, const Geometry& g, const T* x, const T* w,
                                 const T* y, const T* dy, T* dw, T* db, T* dx, activation act, const Extras& extra,
                                 precision numbers = precision::fp32) {
  using namespace conv_cpu_impl;
  using namespace cpu_gemm_impl;
  const index rows = g.n, in = g.in, outs = g.out;
  const int threads = exec.threads();
  const T* dz = dy;
  if (act != activation::none && rows * outs > 0) {
    T* buffer = thread_scratch<T, 2>(static_cast<std::size_t>(rows * outs));
    std::copy(dy, dy + rows * outs, buffer);
    fold_slope(buffer, y, rows * outs, act);
    dz = buffer;
  }
  if (outs > 0) {  // db: rows in order, for every output at once
    T* sum = thread_scratch<T, 3>(static_cast<std::size_t>(outs));
    std::fill(sum, sum + outs, T(0));
    for (index n = 0; n < rows; ++n)
      for (index o = 0; o < outs; ++o)
        sum[o] += round_operand(numbers, dz[n * outs + o]);
    for (index o = 0; o < outs; ++o) db[o] = (extra.accumulate ? db[o] : T(0)) + sum[o];
  }
  with_kernel<T>(isa, [&](auto tag) {
    using K = typename decltype(tag)::type;
    const int team = useful_threads(threads, static_cast<double>(rows) * outs * in);
    // dw (out x in) = dzᵀ · x, k over the batch.
    {
      const auto ap = operands_of<T>(strided_panels<T>{dz, 1, outs}, numbers);
      const auto bp = operands_of<T>(strided_panels<T>{x, 1, in}, numbers);
      const gemm_grid grid = plan_grid<K>(team, 1, outs, in, rows);
      const T beta = extra.accumulate ? T(1) : T(0);
      run_grid<K, T>(team, grid, 0, [&](const gemm_grid::task_range& r, const gemm_scratch<T>& s) {
        gemm_block<K>(ap, bp, r.m0, r.m1, r.n0, r.n1, rows, T(1), beta, dw + r.m0 * in + r.n0, in, s);
      });
    }
    if (dx == nullptr) return;
    // dx (n x in) = dz · w, k over the outputs.
    const auto ap = operands_of<T>(strided_panels<T>{dz, outs, 1}, numbers);
    const auto bp = operands_of<T>(strided_panels<T>{w, 1, in}, numbers);
    const gemm_grid grid = plan_grid<K>(team, 1, rows, in, outs);
    run_grid<K, T>(team, grid, 0, [&](const gemm_grid::task_range& r, const gemm_scratch<T>& s) {
      gemm_block<K>(ap, bp, r.m0, r.m1, r.n0, r.n1, outs, T(1), T(0), dx + r.m0 * in + r.n0, in, s);
      if (extra.dx_act != activation::none)
        for (index i = r.m0; i < r.m1; ++i)
          fold_slope(dx + i * in + r.n0, extra.dx_act_y + i * in + r.n0, r.n1 - r.n0, extra.dx_act);
    });
  });
}

/// dense_backward_cpu (dense.hpp) on the packed GEMM: dw += dzᵀ·x, db += Σ dz (assigned
/// when extra.accumulate is false), dx = dz·w (skipped for nullptr, folded with
/// extra.dx_act), dz = dy · act'(y). Same arguments, same contract; extra.adam is a GPU
/// option and is ignored here, as in the direct path.
template <class Geometry, class T, class Extras = conv_cpu_impl::default_backward_extras<T>>
void dense_backward_gemm_cpu(const cpu_executor& exec, const Geometry& g, const T* x, const T* w, const T* y,
                             const T* dy, T* dw, T* db, T* dx, activation act, const Extras& extra = {},
                             precision numbers = precision::fp32) {
  dense_backward_gemm_cpu_isa(best_cpu_isa(), exec, g, x, w, y, dy, dw, db, dx, act, extra, numbers);
}

}  // namespace gpukit::nn::detail
