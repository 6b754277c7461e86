// gpukit/nn/conv2d.hpp — the 2-D convolution layer, alone or fused with the activation
// and the max-pool that follow it (the seed model's Conv2D + relu + MaxPool 2x2 is one
// pass that writes only the pooled result and where each maximum came from).
//
//   nn::conv2d_forward(exec, conv, x, w, b, y)
//   nn::conv2d_backward(exec, conv, x, w, dy, dw, db, dx)
//   nn::conv2d_block_forward(exec, block, x, w, b, y, argmax)
//   nn::conv2d_block_backward(exec, block, x, w, y, argmax, dy, dw, db, dx)
//
// Contracts (all checked before anything is written; std::invalid_argument names the
// argument and both shapes):
// - x (n, in, h, w); w has out·in·kh·kw elements, (out, in, kh, kw); b has out elements;
//   y the block's output shape: the conv's (n, out, oh, ow), pooled when block.pool is set.
// - argmax (int32, y's shape) receives, for each pooled output, the conv-output element
//   it came from as (row << 16) | column; unused (may be empty) without a pool.
// - backward: dy has y's shape; y and argmax are the forward's outputs (y is read only
//   when there is an activation). Parameter gradients ACCUMULATE (dw += ..., db += ...);
//   the input gradient dx (x's shape) is ASSIGNED, or skipped when nn::no_grad is passed.
// - No output may overlap an input. cuda_executor: float, queued on its stream, scratch
//   from its workspace if it has one; cpu_executor: float or double, OpenMP, returns when
//   done.
// - GPU limits: pool windows up to 16x16 fuse (use maxpool2d separately beyond), and one
//   input channel's tile must fit in shared memory (kernels up to about 36x36).
#pragma once

#include "gpukit/core/executor.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/layers.hpp"
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
  int oc = 0, kh = 0, kw = 0, stride = 1, pad = 0;
  int oh = 0, ow = 0;                // conv output
  activation act = activation::none;
  bool pooled = false;
  int pkh = 1, pkw = 1, psh = 1, psw = 1;  // pool window and stride (1 without a pool)
  int ph = 0, pw = 0;                // block output: pooled, or the conv output

  GPUKIT_HOST_DEVICE long long kdim() const noexcept { return static_cast<long long>(ic) * kh * kw; }
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
  require_dimension(where, "padding", block.conv.padding, 4096);
  conv_geometry g;
  g.n = static_cast<int>(in.n);
  g.ic = static_cast<int>(in.c);
  g.h = static_cast<int>(in.h);
  g.w = static_cast<int>(in.w);
  g.oc = static_cast<int>(conv_out.c);
  g.kh = static_cast<int>(block.conv.kernel.h);
  g.kw = static_cast<int>(block.conv.kernel.w);
  g.stride = static_cast<int>(block.conv.stride);
  g.pad = static_cast<int>(block.conv.padding);
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

/// (row << 16) | column of a conv-output element, as argmax stores it.
GPUKIT_HOST_DEVICE inline constexpr std::int32_t pack_position(int row, int column) noexcept {
  return static_cast<std::int32_t>((static_cast<std::uint32_t>(row) << 16) | static_cast<std::uint32_t>(column));
}

// ---- CPU path ------------------------------------------------------------------------

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
        const int shift = kx - g.pad;  // input column = ox·s + shift
        const int ox_lo = shift >= 0 ? 0 : (-shift + s - 1) / s;
        const int ox_hi = g.w - 1 - shift < 0 ? -1 : std::min(g.ow - 1, (g.w - 1 - shift) / s);
        for (int oy = 0; oy < g.oh; ++oy) {
          const int iy = oy * s - g.pad + ky;
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
          const int y0 = py * g.psh, x0 = px * g.psw;
          T best = plane[static_cast<long long>(y0) * g.ow + x0];
          int by = y0, bx = x0;
          for (int wy = 0; wy < g.pkh; ++wy)
            for (int wx = 0; wx < g.pkw; ++wx) {
              const T v = plane[static_cast<long long>(y0 + wy) * g.ow + x0 + wx];
              if (v > best) best = v, by = y0 + wy, bx = x0 + wx;
            }
          yp[py * g.pw + px] = best;
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

/// `accumulate` false assigns the parameter gradients instead (a training step that would
/// otherwise zero them first).
template <class T>
void conv_backward_cpu(const cpu_executor& exec, const conv_geometry& g, const T* x, const T* w, const T* y,
                       const std::int32_t* argmax, const T* dy, T* dw, T* db, T* dx, bool accumulate = true) {
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
        const int iy0 = oy * g.stride - g.pad, ix0 = ox * g.stride - g.pad;
        for (int ic = 0; ic < g.ic; ++ic)
          for (int ky = 0; ky < g.kh; ++ky) {
            const int iy = iy0 + ky;
            if (iy < 0 || iy >= g.h) continue;
            const T* row = xn + ic * in_plane + static_cast<long long>(iy) * g.w;
            T* a = acc.data() + (static_cast<long long>(ic) * g.kh + ky) * g.kw;
            for (int kx = 0; kx < g.kw; ++kx) {
              const int ix = ix0 + kx;
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
          const int shift = kx - g.pad;
          const int ox_lo = shift >= 0 ? 0 : (-shift + g.stride - 1) / g.stride;
          const int ox_hi = g.w - 1 - shift < 0 ? -1 : std::min(g.ow - 1, (g.w - 1 - shift) / g.stride);
          for (int oy = 0; oy < g.oh; ++oy) {
            const int iy = oy * g.stride - g.pad + ky;
            if (iy < 0 || iy >= g.h) continue;
            T* row = plane + static_cast<long long>(iy) * g.w;
            const T* drow = dzp + static_cast<long long>(oy) * g.ow;
            for (int ox = ox_lo; ox <= ox_hi; ++ox) row[ox * g.stride + shift] += wv * drow[ox];
          }
        }
    }
  }
}

// ---- GPU path: tiles and scratch, decided on the host --------------------------------

inline constexpr int conv_channels_per_block = 8;  // output channels one forward block computes
inline constexpr int conv_threads = 256;
inline constexpr std::size_t conv_shared_budget = 48 * 1024;

/// How a forward block covers the output: a tph x tpw tile of block outputs, whose conv
/// outputs (cth x ctw, one per thread) need an ith x itw input tile per channel; icb input
/// channels are staged in shared memory at a time.
struct conv_tile {
  int tph = 0, tpw = 0, cth = 0, ctw = 0, ith = 0, itw = 0, icb = 0;
  int tiles_h = 0, tiles_w = 0;
  std::size_t input_floats = 0, weight_floats = 0, output_floats = 0;
  std::size_t shared_bytes() const noexcept { return (input_floats + weight_floats + output_floats) * sizeof(float); }
};

/// The tile for `g`, or icb = 0 when even the smallest tile does not fit.
inline conv_tile plan_conv_tile(const conv_geometry& g) {
  conv_tile t;
  if (g.pkh > 16 || g.pkw > 16) return t;
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

/// How the weight-gradient pass splits the block outputs of one channel over blocks: work
/// units of up to `unit` outputs of one image, `units_per_split` units per block.
struct conv_wgrad_plan {
  long long unit = 2048, units_per_image = 0, units = 0, units_per_split = 0;
  int splits = 0;
};

inline conv_wgrad_plan plan_conv_wgrad(const conv_geometry& g, int sm_count) {
  conv_wgrad_plan p;
  const long long out_plane = static_cast<long long>(g.ph) * g.pw;
  p.units_per_image = (out_plane + p.unit - 1) / p.unit;
  p.units = p.units_per_image * g.n;
  const long long target = std::max<long long>(1, (4LL * sm_count + g.oc - 1) / g.oc);
  const long long splits = std::max<long long>(1, std::min(p.units, target));
  p.units_per_split = (p.units + splits - 1) / splits;
  p.splits = static_cast<int>((p.units + p.units_per_split - 1) / p.units_per_split);
  return p;
}

inline constexpr int band_taps = 32;   // taps (ic·kh·kw) the fast weight-gradient pass sums in registers
inline constexpr int band_chunk = 64;  // block outputs it stages at a time

/// The fast weight-gradient pass (detail/conv_fast.cuh): one block per band of `rows`
/// block-output rows of one image, whose input (in_rows rows of row_stride floats per
/// channel, padding included) sits in shared memory.
struct wgrad_band_plan {
  int rows = 0, bands = 0, in_rows = 0, row_stride = 0;
  std::size_t shared_bytes = 0;
  bool ok() const noexcept { return rows > 0; }
};

/// The band plan for g (about two blocks per SM), or one with rows = 0 when g has more than
/// band_taps taps or even one row's band does not fit in shared memory.
inline wgrad_band_plan plan_wgrad_band(const conv_geometry& g, int sm_count) {
  wgrad_band_plan p;
  if (g.kdim() > band_taps) return p;
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

/// Scratch regions of the GPU backward pass.
struct conv_backward_scratch {
  std::size_t partials = 0, dz = 0;
  bool needs_dz = false;
  scratch_plan plan;
};

inline conv_backward_scratch plan_conv_backward_scratch(const conv_geometry& g, bool want_dx, int sm_count) {
  conv_backward_scratch s;
  const conv_wgrad_plan w = plan_conv_wgrad(g, sm_count);
  const wgrad_band_plan band = plan_wgrad_band(g, sm_count);
  const std::size_t blocks = band.ok() ? static_cast<std::size_t>(g.n) * band.bands : static_cast<std::size_t>(w.splits);
  s.partials = s.plan.add<float>(blocks * g.oc * static_cast<std::size_t>(g.kdim() + 1));
  s.needs_dz = want_dx && (g.pooled || g.act != activation::none);
  if (s.needs_dz) s.dz = s.plan.add<float>(static_cast<std::size_t>(g.conv_size()));
  return s;
}

#if defined(__CUDACC__)
// Defined in conv2d.cuh.
inline void conv_forward_gpu(const cuda_executor& exec, const conv_geometry& g, const float* x, const float* w,
                             const float* b, float* y, std::int32_t* argmax);
inline void conv_backward_gpu(const cuda_executor& exec, const conv_geometry& g, const float* x, const float* w,
                              const float* y, const std::int32_t* argmax, const float* dy, float* dw, float* db,
                              float* dx, bool accumulate);
#endif

template <class Exec, class T>
void conv_forward_dispatch(const Exec& exec, const conv_geometry& g, const T* x, const T* w, const T* b, T* y,
                           std::int32_t* argmax) {
  if constexpr (is_gpu_executor_v<Exec>) {
#if defined(__CUDACC__)
    conv_forward_gpu(exec, g, x, w, b, y, argmax);
#else
    static_assert(gpukit::detail::always_false<Exec>,
                  "gpukit::nn: a GPU layer called from a file compiled by the host compiler; compile it with nvcc (.cu)");
#endif
  } else {
    conv_forward_cpu(exec, g, x, w, b, y, argmax);
  }
}

template <class Exec, class T>
void conv_backward_dispatch(const Exec& exec, const conv_geometry& g, const T* x, const T* w, const T* y,
                            const std::int32_t* argmax, const T* dy, T* dw, T* db, T* dx, bool accumulate = true) {
  if constexpr (is_gpu_executor_v<Exec>) {
#if defined(__CUDACC__)
    conv_backward_gpu(exec, g, x, w, y, argmax, dy, dw, db, dx, accumulate);
#else
    static_assert(gpukit::detail::always_false<Exec>,
                  "gpukit::nn: a GPU layer called from a file compiled by the host compiler; compile it with nvcc (.cu)");
#endif
  } else {
    conv_backward_cpu(exec, g, x, w, y, argmax, dy, dw, db, dx, accumulate);
  }
}

/// The checks every conv entry point shares; returns the geometry.
template <class Exec, class XV, class WS>
conv_geometry checked_conv_geometry(const char* where, const conv_block& block, const XV& x, const WS& w) {
  const conv_geometry g = make_conv_geometry(block, x.shape, where);
  require_count(where, "w", w.size(), block.conv.weight_count());
  if constexpr (is_gpu_executor_v<Exec>) {
    const conv_tile t = plan_conv_tile(g);
    require(t.icb > 0, where,
            "the GPU path cannot tile kernel " + to_string(block.conv.kernel) + " with stride " +
                std::to_string(block.conv.stride) + " and pool window " +
                (block.pool ? to_string(block.pool->window) : std::string("1x1")) +
                " in shared memory (pool windows up to 16x16; run maxpool2d separately beyond)");
  }
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
  detail::require_count(where, "b", bs.size(), block.conv.bias_count());
  detail::require_shape(where, "y", yv.shape, g.output_shape());
  if (block.pool) detail::require_shape(where, "argmax", av.shape, g.output_shape());
  detail::conv_forward_dispatch(exec, g, xv.data, ws.data(), bs.data(), yv.data, block.pool ? av.data : nullptr);
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
  const detail::conv_geometry g = detail::checked_conv_geometry<Exec>(where, block, xv, ws);
  detail::require_count(where, "dw", dws.size(), block.conv.weight_count());
  detail::require_count(where, "db", dbs.size(), block.conv.bias_count());
  detail::require_shape(where, "dy", dyv.shape, g.output_shape());
  if (block.act != activation::none) detail::require_shape(where, "y", yv.shape, g.output_shape());
  if (block.pool) detail::require_shape(where, "argmax", av.shape, g.output_shape());
  const bool want_dx = !std::is_same_v<std::decay_t<DX>, no_grad_t>;
  if (want_dx) detail::require_shape(where, "dx", dxv.shape, xv.shape);
  detail::conv_backward_dispatch(exec, g, xv.data, ws.data(), block.act != activation::none ? yv.data : nullptr,
                                 block.pool ? av.data : nullptr, dyv.data, dws.data(), dbs.data(),
                                 want_dx ? dxv.data : nullptr);
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
