// gpukit/nn/conv2d.cuh — the GPU path of the conv layer (see conv2d.hpp for the contract).
//
// forward:  one block per (image, tile of block outputs, 8 output channels). The input tile
//           (with its zero padding) and the 8 channels' weights are staged in shared memory,
//           a chunk of input channels at a time; each thread computes one conv output for
//           the 8 channels (each input value read once from shared memory feeds 8 FMAs, the
//           weights are read as broadcast float4s). Bias and activation are applied and the
//           conv tile is pooled from shared memory, so only the block output and argmax
//           reach global memory: for the seed model 4x less than the conv output.
// weights:  one thread per block output (the gradient of a pooled output reaches exactly one
//           conv output, the argmax, so the seed's weight gradient costs a quarter of an
//           unpooled one); it accumulates gradient x input patch for 32 weights in
//           registers, and blocks reduce to per-split partials that a second kernel sums in a
//           fixed order (no atomics: the result is deterministic) into dw and db.
// input:    the gradient at every conv output is scattered back through the pool, then one
//           thread per input element gathers it through the kernel.
// These are the general paths. Faster ones for the common shapes (3x3 stride-1 forward with
// a 2x2 pool or none; weight gradients of at most 32 taps, as a first layer has) live in
// detail/conv_fast.cuh and are taken whenever they fit.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/conv2d.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/conv2d.hpp"
#include "gpukit/nn/detail/conv_fast.cuh"
#include "gpukit/nn/detail/kernels.cuh"

#include <cstdint>

namespace gpukit::nn::detail {

struct conv_forward_args {
  conv_geometry g;
  conv_tile t;
  const float* x;
  const float* w;
  const float* b;
  float* y;
  std::int32_t* argmax;  // nullptr without a pool
};

/// KH, KW > 0 fix the kernel size at compile time (the tap loops unroll: 3x3 is the common
/// case); 0 reads it from the geometry.
template <int KH = 0, int KW = 0>
__global__ void __launch_bounds__(conv_threads) conv_forward_kernel(const conv_forward_args a) {
  constexpr int ocb = conv_channels_per_block;
  extern __shared__ __align__(16) float conv_smem[];
  const conv_geometry& g = a.g;
  const conv_tile& t = a.t;
  float* s_in = conv_smem;
  float* s_w = conv_smem + t.input_floats;
  float* s_out = s_w + t.weight_floats;

  const int tiles = t.tiles_h * t.tiles_w;
  const int n = static_cast<int>(blockIdx.x / tiles);
  const int tile = static_cast<int>(blockIdx.x % tiles);
  const int ph0 = (tile / t.tiles_w) * t.tph, pw0 = (tile % t.tiles_w) * t.tpw;
  const int oy0 = ph0 * g.psh, ox0 = pw0 * g.psw;
  const int iy0 = oy0 * g.stride - g.pad, ix0 = ox0 * g.stride - g.pad;
  const int oc0 = static_cast<int>(blockIdx.y) * ocb;
  const int tid = static_cast<int>(threadIdx.x);
  const int cy = tid / t.ctw, cx = tid % t.ctw;
  const bool active = tid < t.cth * t.ctw && oy0 + cy < g.oh && ox0 + cx < g.ow;
  const int in_tile = t.ith * t.itw;
  const int in_stride = (in_tile + 3) / 4 * 4;
  const int kh = KH > 0 ? KH : g.kh, kw = KW > 0 ? KW : g.kw;
  const int kk = kh * kw;
  const float* xn = a.x + static_cast<long long>(n) * g.ic * g.h * g.w;

  float acc[ocb];
#pragma unroll
  for (int o = 0; o < ocb; ++o) acc[o] = 0.0f;

  for (int ic0 = 0; ic0 < g.ic; ic0 += t.icb) {
    const int icn = ::min(t.icb, g.ic - ic0);
    __syncthreads();  // the previous chunk is consumed
    for (int e = tid; e < icn * in_tile; e += conv_threads) {
      const int c = e / in_tile, r = e - c * in_tile;
      const int yy = r / t.itw, xx = r - yy * t.itw;
      const int gy = iy0 + yy, gx = ix0 + xx;
      float v = 0.0f;
      if (gy >= 0 && gy < g.h && gx >= 0 && gx < g.w) v = xn[(static_cast<long long>(ic0 + c) * g.h + gy) * g.w + gx];
      s_in[c * in_stride + r] = v;
    }
    // Weights as [channel][ky][kx][8 output channels]: one float4 pair per tap.
    for (int e = tid; e < icn * kk * ocb; e += conv_threads) {
      const int o = e % ocb, r = e / ocb;
      const int oc = oc0 + o;
      s_w[e] = oc < g.oc ? a.w[(static_cast<long long>(oc) * g.ic + ic0) * kk + r] : 0.0f;
    }
    __syncthreads();
    if (active) {
      for (int c = 0; c < icn; ++c) {
        const float* in_c = s_in + c * in_stride + cy * g.stride * t.itw + cx * g.stride;
        const float* w_c = s_w + c * kk * ocb;
#pragma unroll
        for (int ky = 0; ky < kh; ++ky) {
          const float* in_row = in_c + ky * t.itw;
          const float* w_row = w_c + ky * kw * ocb;
#pragma unroll
          for (int kx = 0; kx < kw; ++kx) {
            const float v = in_row[kx];
            const float4 w0 = *reinterpret_cast<const float4*>(w_row + kx * ocb);
            const float4 w1 = *reinterpret_cast<const float4*>(w_row + kx * ocb + 4);
            acc[0] = fmaf(v, w0.x, acc[0]);
            acc[1] = fmaf(v, w0.y, acc[1]);
            acc[2] = fmaf(v, w0.z, acc[2]);
            acc[3] = fmaf(v, w0.w, acc[3]);
            acc[4] = fmaf(v, w1.x, acc[4]);
            acc[5] = fmaf(v, w1.y, acc[5]);
            acc[6] = fmaf(v, w1.z, acc[6]);
            acc[7] = fmaf(v, w1.w, acc[7]);
          }
        }
      }
    }
  }

  if (active) {
#pragma unroll
    for (int o = 0; o < ocb; ++o) {
      const int oc = oc0 + o;
      const float z = acc[o] + (oc < g.oc ? a.b[oc] : 0.0f);
      s_out[(o * t.cth + cy) * t.ctw + cx] = activate(g.act, z);
    }
  }
  __syncthreads();

  // Pool the conv tile (a 1x1 window with stride 1 without a pool: a copy).
  const int tile_out = t.tph * t.tpw;
  for (int e = tid; e < ocb * tile_out; e += conv_threads) {
    const int o = e / tile_out, r = e - o * tile_out;
    const int py = r / t.tpw, px = r - py * t.tpw;
    const int oc = oc0 + o, gy = ph0 + py, gx = pw0 + px;
    if (oc >= g.oc || gy >= g.ph || gx >= g.pw) continue;
    const float* win = s_out + (o * t.cth + py * g.psh) * t.ctw + px * g.psw;
    float best = win[0];
    int by = 0, bx = 0;
    for (int wy = 0; wy < g.pkh; ++wy)
      for (int wx = 0; wx < g.pkw; ++wx) {
        const float v = win[wy * t.ctw + wx];
        if (v > best) best = v, by = wy, bx = wx;
      }
    const long long out = ((static_cast<long long>(n) * g.oc + oc) * g.ph + gy) * g.pw + gx;
    a.y[out] = best;
    if (a.argmax != nullptr) a.argmax[out] = pack_position(oy0 + py * g.psh + by, ox0 + px * g.psw + bx);
  }
}

inline constexpr int wgrad_chunk = 32;  // weights one pass accumulates, one register each
inline constexpr int wgrad_threads = 256;

struct conv_wgrad_args {
  conv_geometry g;
  conv_wgrad_plan p;
  const float* x;
  const float* y;  // nullptr without an activation
  const std::int32_t* argmax;
  const float* dy;
  float* partials;  // [split][oc][kdim + 1], the last entry of a row the bias
};

template <class = void>
__global__ void __launch_bounds__(wgrad_threads) conv_wgrad_kernel(const conv_wgrad_args a) {
  const conv_geometry& g = a.g;
  const int oc = static_cast<int>(blockIdx.x), split = static_cast<int>(blockIdx.y);
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const long long kdim = g.kdim();
  const long long out_plane = static_cast<long long>(g.ph) * g.pw;
  const long long in_plane = static_cast<long long>(g.h) * g.w;
  const long long unit_begin = split * a.p.units_per_split;
  const long long unit_end = ::min(a.p.units, unit_begin + a.p.units_per_split);
  float* partial_row = a.partials + (static_cast<long long>(split) * g.oc + oc) * (kdim + 1);

  __shared__ int s_offset[wgrad_chunk];
  __shared__ int s_tap[wgrad_chunk];
  __shared__ float s_sum[wgrad_threads / 32][wgrad_chunk + 1];

  for (long long k0 = 0; k0 < kdim; k0 += wgrad_chunk) {
    const int kn = static_cast<int>(::min(static_cast<long long>(wgrad_chunk), kdim - k0));
    __syncthreads();  // the previous pass has read s_sum
    if (tid < wgrad_chunk) {
      const long long k = k0 + ::min(tid, kn - 1);
      const int ic = static_cast<int>(k / (g.kh * g.kw));
      const int r = static_cast<int>(k % (g.kh * g.kw));
      const int ky = r / g.kw, kx = r % g.kw;
      s_offset[tid] = static_cast<int>(ic * in_plane + static_cast<long long>(ky) * g.w + kx);
      s_tap[tid] = (ky << 16) | kx;
    }
    __syncthreads();
    int offset[wgrad_chunk];
    float acc[wgrad_chunk];
#pragma unroll
    for (int c = 0; c < wgrad_chunk; ++c) offset[c] = s_offset[c], acc[c] = 0.0f;
    float bias_acc = 0.0f;

    for (long long u = unit_begin; u < unit_end; ++u) {
      const int n = static_cast<int>(u / a.p.units_per_image);
      const long long q0 = (u % a.p.units_per_image) * a.p.unit;
      const long long q1 = ::min(out_plane, q0 + a.p.unit);
      const float* xn = a.x + static_cast<long long>(n) * g.ic * in_plane;
      const long long row = (static_cast<long long>(n) * g.oc + oc) * out_plane;
      for (long long q = q0 + tid; q < q1; q += wgrad_threads) {
        const long long i = row + q;
        float s = a.dy[i];
        if (a.y != nullptr) s *= activation_slope(g.act, a.y[i]);
        int oy, ox;
        if (a.argmax != nullptr) {
          const std::int32_t p = a.argmax[i];
          oy = static_cast<int>(static_cast<std::uint32_t>(p) >> 16);
          ox = p & 0xffff;
        } else {
          oy = static_cast<int>(q / g.pw);
          ox = static_cast<int>(q - static_cast<long long>(oy) * g.pw);
        }
        const int iy0 = oy * g.stride - g.pad, ix0 = ox * g.stride - g.pad;
        const long long base = static_cast<long long>(iy0) * g.w + ix0;
        if (g.pad == 0) {  // every tap of a valid output lies inside the image
#pragma unroll
          for (int c = 0; c < wgrad_chunk; ++c)
            if (c < kn) acc[c] = fmaf(s, xn[base + offset[c]], acc[c]);
        } else {  // padded: taps may fall outside (their (ky, kx) come from shared memory)
#pragma unroll
          for (int c = 0; c < wgrad_chunk; ++c) {
            const int tap = s_tap[c];
            const int iy = iy0 + (tap >> 16), ix = ix0 + (tap & 0xffff);
            if (c < kn && iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) acc[c] = fmaf(s, xn[base + offset[c]], acc[c]);
          }
        }
        bias_acc += s;
      }
    }

#pragma unroll
    for (int c = 0; c < wgrad_chunk; ++c) {
      const float v = warp_sum(acc[c]);
      if (lane == 0) s_sum[warp][c] = v;
    }
    const float b = warp_sum(bias_acc);
    if (lane == 0) s_sum[warp][wgrad_chunk] = b;
    __syncthreads();
    if (tid <= wgrad_chunk) {
      float total = 0.0f;
      for (int w = 0; w < wgrad_threads / 32; ++w) total += s_sum[w][tid];
      if (tid < kn) partial_row[k0 + tid] = total;
      if (tid == wgrad_chunk && k0 == 0) partial_row[kdim] = total;
    }
  }
}

/// dw (+)= Σ over splits, db (+)= Σ over splits, in split order.
template <class = void>
__global__ void conv_wgrad_reduce_kernel(const float* partials, int splits, int oc, long long kdim, float* dw,
                                         float* db, bool accumulate) {
  const long long row = kdim + 1;
  GPUKIT_NN_GRID_STRIDE(i, oc * row) {
    float total = 0.0f;
    for (int s = 0; s < splits; ++s) total += partials[static_cast<long long>(s) * oc * row + i];
    const long long o = i / row, k = i - o * row;
    float* dst = k < kdim ? dw + o * kdim + k : db + o;
    *dst = accumulate ? *dst + total : total;
  }
}

/// dz (conv-output shape) from the block-output gradient: through the activation, and back
/// to the argmax when pooled (dz zeroed first; atomics only when windows overlap).
template <class = void>
__global__ void conv_scatter_kernel(const conv_geometry g, const float* y, const std::int32_t* argmax,
                                    const float* dy, float* dz, bool overlapping) {
  const long long out_plane = static_cast<long long>(g.ph) * g.pw, conv_plane = static_cast<long long>(g.oh) * g.ow;
  GPUKIT_NN_GRID_STRIDE(i, g.output_size()) {
    float s = dy[i];
    if (y != nullptr) s *= activation_slope(g.act, y[i]);
    if (argmax == nullptr) {
      dz[i] = s;
      continue;
    }
    const std::int32_t p = argmax[i];
    const long long dst = (i / out_plane) * conv_plane +
                          static_cast<long long>(static_cast<std::uint32_t>(p) >> 16) * g.ow + (p & 0xffff);
    if (overlapping) {
      atomicAdd(dz + dst, s);
    } else {
      dz[dst] = s;
    }
  }
}

/// dx = Σ over output channels and taps of dz · w, one thread per input element.
template <class = void>
__global__ void conv_dgrad_kernel(const conv_geometry g, const float* w, const float* dz, float* dx) {
  GPUKIT_NN_GRID_STRIDE(i, g.input_size()) {
    const int ix = static_cast<int>(i % g.w);
    const int iy = static_cast<int>((i / g.w) % g.h);
    const int ic = static_cast<int>((i / (static_cast<long long>(g.w) * g.h)) % g.ic);
    const int n = static_cast<int>(i / (static_cast<long long>(g.w) * g.h * g.ic));
    float sum = 0.0f;
    for (int oc = 0; oc < g.oc; ++oc) {
      const float* dzp = dz + (static_cast<long long>(n) * g.oc + oc) * g.oh * g.ow;
      const float* wp = w + (static_cast<long long>(oc) * g.ic + ic) * g.kh * g.kw;
      for (int ky = 0; ky < g.kh; ++ky) {
        const int ty = iy + g.pad - ky;
        if (ty < 0 || ty % g.stride != 0 || ty / g.stride >= g.oh) continue;
        const int oy = ty / g.stride;
        for (int kx = 0; kx < g.kw; ++kx) {
          const int tx = ix + g.pad - kx;
          if (tx < 0 || tx % g.stride != 0 || tx / g.stride >= g.ow) continue;
          sum = fmaf(dzp[static_cast<long long>(oy) * g.ow + tx / g.stride], wp[ky * g.kw + kx], sum);
        }
      }
    }
    dx[i] = sum;
  }
}

inline void conv_forward_gpu(const cuda_executor& exec, const conv_geometry& g, const float* x, const float* w,
                             const float* b, float* y, std::int32_t* argmax) {
  if (const quad_plan q = plan_quad_forward(g); q.icb > 0) return conv_quad_forward(exec, g, q, x, w, b, y, argmax);
  const conv_tile t = plan_conv_tile(g);
  launch_config cfg;
  cfg.grid = dim3(static_cast<unsigned>(static_cast<long long>(g.n) * t.tiles_h * t.tiles_w),
                  static_cast<unsigned>((g.oc + conv_channels_per_block - 1) / conv_channels_per_block));
  cfg.block = dim3(conv_threads);
  cfg.shared_bytes = t.shared_bytes();
  const conv_forward_args args{g, t, x, w, b, y, argmax};
  if (g.kh == 3 && g.kw == 3) {
    launch(conv_forward_kernel<3, 3>, cfg, exec.stream(), args);
  } else {
    launch(conv_forward_kernel<0, 0>, cfg, exec.stream(), args);
  }
}

inline void conv_backward_gpu(const cuda_executor& exec, const conv_geometry& g, const float* x, const float* w,
                              const float* y, const std::int32_t* argmax, const float* dy, float* dw, float* db,
                              float* dx, bool accumulate) {
  const int sms = current_sm_count();
  const conv_wgrad_plan plan = plan_conv_wgrad(g, sms);
  const conv_backward_scratch layout = plan_conv_backward_scratch(g, dx != nullptr, sms);
  const device_scratch scratch(exec, layout.plan.bytes);
  float* partials = scratch.at<float>(layout.partials);
  const float* act_y = g.act != activation::none ? y : nullptr;

  if (const wgrad_band_plan band = plan_wgrad_band(g, sms); band.ok()) {
    conv_wgrad_band(exec, g, band, x, act_y, argmax, dy, partials, dw, db, accumulate);
  } else {
    launch_config wcfg;
    wcfg.grid = dim3(static_cast<unsigned>(g.oc), static_cast<unsigned>(plan.splits));
    wcfg.block = dim3(wgrad_threads);
    launch(conv_wgrad_kernel<>, wcfg, exec.stream(), conv_wgrad_args{g, plan, x, act_y, argmax, dy, partials});
    launch(conv_wgrad_reduce_kernel<>, grid_for(static_cast<std::size_t>(g.oc) * (g.kdim() + 1)), exec.stream(),
           static_cast<const float*>(partials), plan.splits, g.oc, g.kdim(), dw, db, accumulate);
  }
  if (dx == nullptr) return;

  const float* dz = dy;
  if (layout.needs_dz) {
    float* buffer = scratch.at<float>(layout.dz);
    const bool overlapping = g.pooled && (g.pkh > g.psh || g.pkw > g.psw);
    if (g.pooled) GPUKIT_CUDA_TRY(cudaMemsetAsync(buffer, 0, static_cast<std::size_t>(g.conv_size()) * sizeof(float),
                                                  exec.stream()));
    launch(conv_scatter_kernel<>, grid_for(static_cast<std::size_t>(g.output_size())), exec.stream(), g, act_y, argmax,
           dy, buffer, overlapping);
    dz = buffer;
  }
  launch(conv_dgrad_kernel<>, grid_for(static_cast<std::size_t>(g.input_size())), exec.stream(), g, w, dz, dx);
}

}  // namespace gpukit::nn::detail
