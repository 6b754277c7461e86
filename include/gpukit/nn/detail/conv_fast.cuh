// gpukit/nn/detail/conv_fast.cuh — the GPU conv paths for the first layers of small
// models (few input taps, like the article's 3-channel 3x3 conv); choose_conv2d_path
// (conv2d.hpp) takes them there and the implicit GEMM everywhere else.
//
// forward (3x3 kernel, stride 1, a 2x2 stride-2 pool or none; plan_quad_forward): each
//   thread computes a 2x2 block of conv outputs (one pooled output) for 16 output
//   channels, so each input value loaded from shared memory feeds 64 FMAs and each weight
//   (a broadcast float4) 4 of them, and the pool is taken in registers.
// weights (at most 32 taps, ic·kh·kw; plan_wgrad_band): one block per band of block-output
//   rows of one image, with that band's input (zero padding included) in shared memory.
//   A lane is an output channel: at each block output the 32 lanes read at most as many
//   distinct input values as the pool window has positions, so the gathers are free of
//   bank conflicts; each lane keeps its channel's 32 tap sums in registers. Warps are
//   summed in a fixed order into per-block partials, which a second kernel adds, one warp
//   per weight in a fixed order: no atomics, the result is the same at every run.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/detail/conv_fast.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/conv2d_plan.hpp"
#include "gpukit/nn/maxpool2d.hpp"
#include "gpukit/nn/detail/kernels.cuh"

#include <cstdint>

namespace gpukit::nn::detail {

// ---- forward ----------------------------------------------------------------------------

template <class = void>
__global__ void __launch_bounds__(256, 2) conv_quad_forward_kernel(const conv_geometry g, const quad_plan q,
                                                                    const float* x, const float* w, const float* b,
                                                                    float* y, std::int32_t* argmax) {
  extern __shared__ __align__(16) float quad_smem[];
  float* s_in = quad_smem;                         // [icb][18][66]
  float* s_w = quad_smem + q.icb * quad_in_floats;  // [icb][9 taps][16 channels]
  const int tiles = q.tiles_h * q.tiles_w;
  const int n = static_cast<int>(blockIdx.x) / tiles, tile = static_cast<int>(blockIdx.x) % tiles;
  const int r0 = (tile / q.tiles_w) * quad_rows, c0 = (tile % q.tiles_w) * quad_cols;
  const int oc0 = static_cast<int>(blockIdx.y) * quad_oc;
  const int tid = static_cast<int>(threadIdx.x), tr = tid / quad_cols, tc = tid % quad_cols;
  const int iy0 = 2 * r0 - g.pad_h, ix0 = 2 * c0 - g.pad_w;
  const float* xn = x + static_cast<long long>(n) * g.ic * g.h * g.w;
  const epilogue_activation act = epilogue_form(g.act);  // the path takes no GELU

  float acc[4][quad_oc], bias[quad_oc];
#pragma unroll
  for (int o = 0; o < quad_oc; ++o) {
    bias[o] = oc0 + o < g.oc ? b[oc0 + o] : 0.0f;  // loaded now, used at the end
#pragma unroll
    for (int k = 0; k < 4; ++k) acc[k][o] = 0.0f;
  }

  for (int ic0 = 0; ic0 < g.ic; ic0 += q.icb) {
    const int icn = ::min(q.icb, g.ic - ic0);
    __syncthreads();  // the previous chunk is consumed
    for (int e = tid; e < icn * quad_in_floats; e += 256) {
      const int c = e / quad_in_floats, r = e - c * quad_in_floats;
      const int gy = iy0 + r / quad_in_cols, gx = ix0 + r % quad_in_cols;
      const bool inside = gy >= 0 && gy < g.h && gx >= 0 && gx < g.w;
      cp_async4(s_in + e, inside ? xn + (static_cast<long long>(ic0 + c) * g.h + gy) * g.w + gx : xn, inside);
    }
    for (int e = tid; e < icn * 9 * quad_oc; e += 256) {
      const int oc = oc0 + e % quad_oc;
      cp_async4(s_w + e, oc < g.oc ? w + (static_cast<long long>(oc) * g.ic + ic0) * 9 + e / quad_oc : w, oc < g.oc);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    for (int c = 0; c < icn; ++c) {
      float p[4][4];  // the 4x4 input patch under this thread's 2x2 conv outputs
      const float* src = s_in + c * quad_in_floats + 2 * tr * quad_in_cols + 2 * tc;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float2 lo = *reinterpret_cast<const float2*>(src + i * quad_in_cols);
        const float2 hi = *reinterpret_cast<const float2*>(src + i * quad_in_cols + 2);
        p[i][0] = lo.x, p[i][1] = lo.y, p[i][2] = hi.x, p[i][3] = hi.y;
      }
      const float* wc = s_w + c * 9 * quad_oc;
#pragma unroll
      for (int t = 0; t < 9; ++t) {
        const int ky = t / 3, kx = t % 3;
        float wv[quad_oc];
#pragma unroll
        for (int o = 0; o < quad_oc; o += 4) {
          const float4 v = *reinterpret_cast<const float4*>(wc + t * quad_oc + o);
          wv[o] = v.x, wv[o + 1] = v.y, wv[o + 2] = v.z, wv[o + 3] = v.w;
        }
#pragma unroll
        for (int o = 0; o < quad_oc; ++o) {
          acc[0][o] = fmaf(p[ky][kx], wv[o], acc[0][o]);
          acc[1][o] = fmaf(p[ky][kx + 1], wv[o], acc[1][o]);
          acc[2][o] = fmaf(p[ky + 1][kx], wv[o], acc[2][o]);
          acc[3][o] = fmaf(p[ky + 1][kx + 1], wv[o], acc[3][o]);
        }
      }
    }
  }

  const int qr = r0 + tr, qc = c0 + tc;
  if (qr >= q.rows || qc >= q.cols) return;
#pragma unroll
  for (int o = 0; o < quad_oc; ++o) {
    const int oc = oc0 + o;
    if (oc >= g.oc) break;
    float z[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) z[k] = apply(act, acc[k][o] + bias[o]);
    if (g.pooled) {  // window order (0,0) (0,1) (1,0) (1,1), strict '>': the CPU's choice
      float best = z[0];
      int pick = 0;
#pragma unroll
      for (int k = 1; k < 4; ++k)
        if (z[k] > best) best = z[k], pick = k;
      const long long out = ((static_cast<long long>(n) * g.oc + oc) * g.ph + qr) * g.pw + qc;
      y[out] = best;
      argmax[out] = pack_position(2 * qr + pick / 2, 2 * qc + pick % 2);
    } else {
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const int oy = 2 * qr + k / 2, ox = 2 * qc + k % 2;
        if (oy < g.oh && ox < g.ow) y[((static_cast<long long>(n) * g.oc + oc) * g.oh + oy) * g.ow + ox] = z[k];
      }
    }
  }
}

inline void conv_quad_forward(const cuda_executor& exec, const conv_geometry& g, const quad_plan& q, const float* x,
                              const float* w, const float* b, float* y, std::int32_t* argmax) {
  launch_config cfg;
  cfg.grid = dim3(static_cast<unsigned>(static_cast<long long>(g.n) * q.tiles_h * q.tiles_w),
                  static_cast<unsigned>((g.oc + quad_oc - 1) / quad_oc));
  cfg.block = dim3(256);
  cfg.shared_bytes = q.shared_bytes;
  launch(conv_quad_forward_kernel<>, cfg, exec.stream(), g, q, x, w, b, y, argmax);
}

// ---- weight gradient ----------------------------------------------------------------------

inline constexpr int band_threads = 256;

struct conv_wgrad_band_args {
  conv_geometry g;
  wgrad_band_plan p;
  const float* x;
  const float* y;  // nullptr: no activation slope to apply
  const std::int32_t* argmax;
  const float* dy;
  float* partials;  // [oc][kdim + 1][blocks]: a row's last entry is the bias
};

template <class = void>
__global__ void __launch_bounds__(band_threads, 2) conv_wgrad_band_kernel(const conv_wgrad_band_args a) {
  extern __shared__ __align__(16) float band_smem[];
  const conv_geometry& g = a.g;
  const wgrad_band_plan& p = a.p;
  const int plane = p.in_rows * p.row_stride;
  float* s_x = band_smem;                                     // [ic][in_rows][row_stride]
  float* s_s = s_x + g.ic * plane;                            // [32 channels][band_chunk + 1]
  int* s_pos = reinterpret_cast<int*>(s_s + 32 * (band_chunk + 1));
  const int band = static_cast<int>(blockIdx.x) % p.bands, n = static_cast<int>(blockIdx.x) / p.bands;
  const int oc0 = static_cast<int>(blockIdx.y) * 32;
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int r0 = band * p.rows, r1 = ::min(g.ph, r0 + p.rows);
  const int iy0 = r0 * g.psh * g.stride - g.pad_h;  // the input row of staged row 0
  const float* xn = a.x + static_cast<long long>(n) * g.ic * g.h * g.w;
  for (int c = 0; c < g.ic; ++c)
    for (int r = warp; r < p.in_rows; r += band_threads / 32)
      for (int col = lane; col < p.row_stride; col += 32) {
        const int gy = iy0 + r, gx = col - g.pad_w;
        const bool inside = gy >= 0 && gy < g.h && gx >= 0 && gx < g.w;
        cp_async4(s_x + c * plane + r * p.row_stride + col,
                  inside ? xn + (static_cast<long long>(c) * g.h + gy) * g.w + gx : xn, inside);
      }
  cp_async_commit();
  __shared__ int s_tap[band_taps];  // where each tap lies from a window's corner in s_x
  const int taps = static_cast<int>(g.kdim()), kk = g.kh * g.kw;
  if (tid < band_taps) {
    const int t = ::min(tid, taps - 1), r = t % kk;
    s_tap[tid] = (t / kk) * plane + (r / g.kw) * p.row_stride + r % g.kw;
  }
  float acc[band_taps];
#pragma unroll
  for (int t = 0; t < band_taps; ++t) acc[t] = 0.0f;
  float bias_acc = 0.0f;

  const long long out_plane = static_cast<long long>(g.ph) * g.pw, first = static_cast<long long>(r0) * g.pw;
  const int count = (r1 - r0) * g.pw;  // the band's block outputs of one channel: contiguous
  constexpr int batch = 4, per_thread = 32 * band_chunk / band_threads;
  for (int q0 = 0; q0 < count; q0 += band_chunk) {
    __syncthreads();  // the previous chunk is consumed
    for (int k0 = 0; k0 < per_thread; k0 += batch) {
      // Gradients, slopes and argmaxes of the batch: every load issued before any is used.
      float dy[batch], slope[batch];
      std::int32_t at[batch];
#pragma unroll
      for (int k = 0; k < batch; ++k) {
        const int e = tid + (k0 + k) * band_threads, oc = oc0 + e / band_chunk, j = e % band_chunk;
        const long long i = (static_cast<long long>(n) * g.oc + oc) * out_plane + first + q0 + j;
        const bool valid = oc < g.oc && q0 + j < count;
        dy[k] = valid ? a.dy[i] : 0.0f;
        slope[k] = valid && a.y != nullptr ? a.y[i] : 1.0f;
        at[k] = valid && a.argmax != nullptr ? a.argmax[i] : 0;
      }
#pragma unroll
      for (int k = 0; k < batch; ++k) {
        const int e = tid + (k0 + k) * band_threads, o = e / band_chunk, j = e % band_chunk;
        int oy, ox;
        if (a.argmax != nullptr) {
          oy = static_cast<int>(static_cast<std::uint32_t>(at[k]) >> 16), ox = at[k] & 0xffff;
        } else {
          const long long q = first + q0 + j;
          oy = static_cast<int>(q / g.pw), ox = static_cast<int>(q % g.pw);
        }
        s_s[o * (band_chunk + 1) + j] = a.y != nullptr ? dy[k] * activation_slope(g.act, slope[k]) : dy[k];
        s_pos[o * (band_chunk + 1) + j] =
            dy[k] == 0.0f ? 0 : (oy * g.stride - g.pad_h - iy0) * p.row_stride + ox * g.stride;
      }
    }
    cp_async_wait<0>();  // the first time: the input band has landed
    __syncthreads();
    // Warp w takes outputs w, w + 8, ...: their gradients and window corners in registers,
    // then tap by tap (each tap's offset read once) the gathers for all of them.
    constexpr int per_warp = band_chunk / (band_threads / 32);
    float sv[per_warp];
    int pv[per_warp];
#pragma unroll
    for (int jj = 0; jj < per_warp; ++jj) {
      const int j = warp + jj * (band_threads / 32);
      sv[jj] = s_s[lane * (band_chunk + 1) + j];
      pv[jj] = s_pos[lane * (band_chunk + 1) + j];
      bias_acc += sv[jj];
    }
#pragma unroll
    for (int t = 0; t < band_taps; ++t) {
      if (t >= taps) break;
      const float* xt = s_x + s_tap[t];
#pragma unroll
      for (int jj = 0; jj < per_warp; ++jj) acc[t] = fmaf(sv[jj], xt[pv[jj]], acc[t]);
    }
  }

  // Warps add their sums in warp order; s_s is free again.
  float* s_sum = s_s;  // [32 channels][band_taps + 1]
  for (int w = 0; w < band_threads / 32; ++w) {
    __syncthreads();
    if (warp == w) {
      float* row = s_sum + lane * (band_taps + 1);
#pragma unroll
      for (int t = 0; t < band_taps; ++t) row[t] = (w == 0 ? 0.0f : row[t]) + acc[t];
      row[band_taps] = (w == 0 ? 0.0f : row[band_taps]) + bias_acc;
    }
  }
  __syncthreads();
  for (int e = tid; e < 32 * (taps + 1); e += band_threads) {
    const int o = e / (taps + 1), t = e % (taps + 1), oc = oc0 + o;
    if (oc < g.oc)
      a.partials[(static_cast<long long>(oc) * (taps + 1) + t) * gridDim.x + blockIdx.x] =
          s_sum[o * (band_taps + 1) + (t == taps ? band_taps : t)];
  }
}

/// dw (+)= and db (+)= the sums of `count` partials per row (row = oc·(kdim + 1) + tap, the
/// last tap the bias), one warp per row, each lane a fixed subset, then a fixed shuffle tree.
template <class = void>
__global__ void wgrad_rows_reduce_kernel(const float* partials, long long rows, int count, long long kdim, float* dw,
                                         float* db, bool accumulate) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const long long warps = static_cast<long long>(gridDim.x) * blockDim.x / 32;
  for (long long row = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; row < rows; row += warps) {
    float s = 0.0f;
    for (int i = lane; i < count; i += 32) s += partials[row * count + i];
    s = warp_sum(s);
    if (lane == 0) {
      const long long o = row / (kdim + 1), k = row % (kdim + 1);
      float* dst = k < kdim ? dw + o * kdim + k : db + o;
      *dst = accumulate ? *dst + s : s;
    }
  }
}

inline void conv_wgrad_band(const cuda_executor& exec, const conv_geometry& g, const wgrad_band_plan& p,
                            const float* x, const float* act_y, const std::int32_t* argmax, const float* dy,
                            float* partials, float* dw, float* db, bool accumulate) {
  launch_config cfg;
  cfg.grid = dim3(static_cast<unsigned>(static_cast<long long>(g.n) * p.bands), static_cast<unsigned>((g.oc + 31) / 32));
  cfg.block = dim3(band_threads);
  cfg.shared_bytes = p.shared_bytes;
  launch(conv_wgrad_band_kernel<>, cfg, exec.stream(), conv_wgrad_band_args{g, p, x, act_y, argmax, dy, partials});
  const long long rows = static_cast<long long>(g.oc) * (g.kdim() + 1);
  launch(wgrad_rows_reduce_kernel<>, grid_for(static_cast<std::size_t>(rows) * 32), exec.stream(),
         static_cast<const float*>(partials), rows, static_cast<int>(cfg.grid.x), g.kdim(), dw, db, accumulate);
}

}  // namespace gpukit::nn::detail
