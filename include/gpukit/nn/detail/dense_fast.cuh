// gpukit/nn/detail/dense_fast.cuh — the GPU dense paths for the large layers of a small
// model; dense.cuh picks them when they fit and keeps the general tiled GEMM for the rest.
// Both are FP32 FMA (no TF32) and sum in a fixed order: replays give the same bits.
//
// split-K forward (K a multiple of 4, at least 512): y = x·wᵀ with the whole of x's rows
//   against 128 output features per block and K cut so that about two blocks run per SM.
//   Tiles stream through a four-stage cp.async pipeline; the partial sums are added by a
//   second kernel in split order, 16 groups of splits per output then the groups in order.
// fused backward (out ≤ 128, in a multiple of 4): one block per 128 input features keeps
//   that slice of w in shared memory and computes both dw = dzᵀ·x and dx = dz·w from it,
//   so w is read once; given an Adam state it also applies the update to the slice of w it
//   holds (the gradient is still written, so gradients() stays meaningful).
// Layers small enough for one block take detail/dense_small.cuh.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/detail/dense_fast.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/dense_plan.hpp"
#include "gpukit/nn/detail/dense_small.cuh"
#include "gpukit/nn/detail/kernels.cuh"
#include "gpukit/nn/optimizer.cuh"

#include <cstdint>

namespace gpukit::nn::detail {

// ---- split-K forward ----------------------------------------------------------------------

/// C (m x n) = A·Bᵀ with A(i, k) = a[i·a_m + k] and B(j, k) = b[j·b_n + k], then the
/// epilogue: + bias, keep the pre-activation, activation.
struct gemm_args {
  int m = 0, n = 0, k = 0;
  const float* a = nullptr;
  long long a_m = 0;
  const float* b = nullptr;
  long long b_n = 0;
  float* c = nullptr;  // C(i, j) = c[i·c_m + j]
  long long c_m = 0;
  const float* bias = nullptr;
  epilogue_activation act{};  // the identity for a GELU (the layer's pass follows)
  float* pre = nullptr;      // C before the activation, same indexing as c
  int k_chunk = 0;           // K per split (blockIdx.z)
  float* partial = nullptr;  // splits x m x n raw sums, when K is split
};

__device__ __forceinline__ void gemm_finish(const gemm_args& p, int i, int j, float v) {
  if (p.bias != nullptr) v += p.bias[j];
  const long long idx = static_cast<long long>(i) * p.c_m + j;
  if (p.pre != nullptr) p.pre[idx] = v;
  p.c[idx] = apply(p.act, v);
}

inline constexpr int splitk_row = splitk_bk + 4;  // floats per staged row: the B reads stay conflict-free

/// C = A·Bᵀ with A (m x k) and B (n x k) both k-contiguous. Thread
/// (ty, tx) owns rows m0 + ty + 8i (i < TM) and columns n0 + tx + 32j (j < 4): A is read as
/// a warp-wide broadcast, B without bank conflicts.
template <int TM>
__global__ void __launch_bounds__(256) dense_splitk_kernel(const gemm_args p) {
  constexpr int BM = 8 * TM;
  extern __shared__ __align__(16) float splitk_smem[];
  float* As = splitk_smem;                              // [stage][BM][splitk_row]
  float* Bs = splitk_smem + splitk_stages * BM * splitk_row;  // [stage][128][splitk_row]
  const int tid = static_cast<int>(threadIdx.x), tx = tid % 32, ty = tid / 32;
  const int m0 = static_cast<int>(blockIdx.y) * BM, n0 = static_cast<int>(blockIdx.x) * splitk_bn;
  const int k_begin = static_cast<int>(blockIdx.z) * p.k_chunk, k_end = ::min(p.k, k_begin + p.k_chunk);
  const int tiles = (k_end - k_begin + splitk_bk - 1) / splitk_bk;

  const auto load_tile = [&](int t, int stage) {
    const int k0 = k_begin + t * splitk_bk;
    for (int e = tid; e < BM * splitk_bk / 4; e += 256) {
      const int r = e / (splitk_bk / 4), c = e % (splitk_bk / 4) * 4, gm = m0 + r, gk = k0 + c;
      const bool ok = gm < p.m && gk < k_end;  // k and the chunks are multiples of 4
      cp_async16(As + (stage * BM + r) * splitk_row + c, ok ? p.a + static_cast<long long>(gm) * p.a_m + gk : p.a, ok);
    }
    for (int e = tid; e < splitk_bn * splitk_bk / 4; e += 256) {
      const int r = e / (splitk_bk / 4), c = e % (splitk_bk / 4) * 4, gn = n0 + r, gk = k0 + c;
      const bool ok = gn < p.n && gk < k_end;
      cp_async16(Bs + (stage * splitk_bn + r) * splitk_row + c, ok ? p.b + static_cast<long long>(gn) * p.b_n + gk : p.b,
                 ok);
    }
  };

  float acc[TM][4];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

#pragma unroll
  for (int s = 0; s < splitk_stages - 1; ++s) {
    if (s < tiles) load_tile(s, s);
    cp_async_commit();
  }
  for (int t = 0; t < tiles; ++t) {
    cp_async_wait<splitk_stages - 2>();  // tile t has landed
    __syncthreads();                     // ...for everyone, and tile t - 1 is consumed
    if (t + splitk_stages - 1 < tiles) load_tile(t + splitk_stages - 1, (t + splitk_stages - 1) % splitk_stages);
    cp_async_commit();
    const float* A = As + (t % splitk_stages) * BM * splitk_row;
    const float* B = Bs + (t % splitk_stages) * splitk_bn * splitk_row;
#pragma unroll
    for (int kk = 0; kk < splitk_bk; kk += 4) {
      float4 av[TM], bv[4];
#pragma unroll
      for (int i = 0; i < TM; ++i) av[i] = *reinterpret_cast<const float4*>(A + (ty + 8 * i) * splitk_row + kk);
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = *reinterpret_cast<const float4*>(B + (tx + 32 * j) * splitk_row + kk);
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          acc[i][j] = fmaf(av[i].x, bv[j].x, acc[i][j]);
          acc[i][j] = fmaf(av[i].y, bv[j].y, acc[i][j]);
          acc[i][j] = fmaf(av[i].z, bv[j].z, acc[i][j]);
          acc[i][j] = fmaf(av[i].w, bv[j].w, acc[i][j]);
        }
    }
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int gm = m0 + ty + 8 * i;
    if (gm >= p.m) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int gn = n0 + tx + 32 * j;
      if (gn >= p.n) continue;
      if (p.partial != nullptr) {
        p.partial[(static_cast<long long>(blockIdx.z) * p.m + gm) * p.n + gn] = acc[i][j];
      } else {
        gemm_finish(p, gm, gn, acc[i][j]);
      }
    }
  }
}

/// The epilogue of a split product: block (32 columns of one row) x (16 groups of splits);
/// group g adds splits g, g + 16, ... in order, then the groups are added in order.
inline constexpr int splitk_groups = 16;

template <class = void>
__global__ void __launch_bounds__(32 * splitk_groups) splitk_reduce_kernel(const gemm_args p, int splits) {
  __shared__ float sums[splitk_groups][33];
  const int col_blocks = (p.n + 31) / 32;
  const int row = static_cast<int>(blockIdx.x) / col_blocks, col0 = static_cast<int>(blockIdx.x) % col_blocks * 32;
  const int c = static_cast<int>(threadIdx.x) % 32, group = static_cast<int>(threadIdx.x) / 32;
  const int col = col0 + c;
  const long long mn = static_cast<long long>(p.m) * p.n;
  float s = 0.0f;
  if (col < p.n) {
#pragma unroll 4
    for (int z = group; z < splits; z += splitk_groups) s += p.partial[z * mn + static_cast<long long>(row) * p.n + col];
  }
  sums[group][c] = s;
  __syncthreads();
  if (group == 0 && col < p.n) {
    float total = 0.0f;
#pragma unroll
    for (int k = 0; k < splitk_groups; ++k) total += sums[k][c];
    gemm_finish(p, row, col, total);
  }
}

inline void run_splitk(gemm_args p, const splitk_plan& plan, float* partial, stream_view s) {
  p.k_chunk = plan.k_chunk;
  p.partial = plan.splits > 1 ? partial : nullptr;
  launch_config cfg;
  cfg.grid = dim3(static_cast<unsigned>((p.n + splitk_bn - 1) / splitk_bn),
                  static_cast<unsigned>((p.m + 8 * plan.tm - 1) / (8 * plan.tm)), static_cast<unsigned>(plan.splits));
  cfg.block = dim3(256);
  cfg.shared_bytes = plan.shared_bytes;
  if (plan.tm == 4) {
    allow_shared_bytes(dense_splitk_kernel<4>, cfg.shared_bytes);
    launch(dense_splitk_kernel<4>, cfg, s, p);
  } else {
    allow_shared_bytes(dense_splitk_kernel<8>, cfg.shared_bytes);
    launch(dense_splitk_kernel<8>, cfg, s, p);
  }
  if (plan.splits == 1) return;
  launch_config red;
  red.grid = dim3(static_cast<unsigned>(static_cast<long long>(p.m) * ((p.n + 31) / 32)));
  red.block = dim3(32 * splitk_groups);
  launch(splitk_reduce_kernel<>, red, s, p, plan.splits);
}

// ---- fused backward: dw and dx from one read of w ---------------------------------------------

inline constexpr int fused_rows = 32;  // samples staged at a time
inline constexpr int fused_w_row = fused_tile + 4, fused_dz_row = fused_rows + 4;

struct dense_backward_fused_args {
  dense_geometry g;
  const float* x;
  const float* w;
  const float* y;  // the forward output, read when act is not none
  activation act;
  const float* dy;
  float* dw;
  float* db;
  float* dx;  // nullptr: not wanted
  dense_backward_extras<float> e;
};

inline std::size_t fused_backward_shared_bytes() {  // the main loop's; the epilogue's 4 x 32 rows fit in it
  static_assert(4 * 32 <= fused_tile + fused_rows, "the epilogue's staging must fit in the main loop's memory");
  return static_cast<std::size_t>(fused_tile * fused_w_row + fused_rows * fused_w_row + fused_tile * fused_dz_row) *
         sizeof(float);
}

/// Block b owns input features [128b, 128b + 128): w's columns there (all out ≤ 128 rows)
/// stay in shared memory while the batch streams through in chunks of 32 samples.
///   dw: thread (to, tf) owns rows to + 16i (i < 8), columns tf·4 + j + 64h (j < 4, h < 2)
///   dx: thread (tn, lane) owns samples tn·4 + i, columns lane·4 + j of each chunk
/// The epilogue (dw, and Adam's update) goes 32 rows at a time: the old gradients, moments
/// and weights of those rows are copied into shared memory together first, so each pass
/// waits for memory once with all its loads in flight.
template <class = void>
__global__ void __launch_bounds__(256, 2) dense_backward_fused_kernel(const dense_backward_fused_args a) {
  extern __shared__ __align__(16) float fused_smem[];
  const dense_geometry& g = a.g;
  float* s_w = fused_smem;                          // [out][fused_w_row]
  float* s_x = s_w + fused_tile * fused_w_row;      // [sample][fused_w_row]
  float* s_dz = s_x + fused_rows * fused_w_row;     // [out][fused_dz_row]: dz transposed
  const int tid = static_cast<int>(threadIdx.x);
  const long long in = g.in;
  const int f0 = static_cast<int>(blockIdx.x) * fused_tile;
  for (int e = tid; e < fused_tile * fused_tile / 4; e += 256) {
    const int o = e / (fused_tile / 4), c = e % (fused_tile / 4) * 4;
    const bool inside = o < g.out && f0 + c < g.in;
    cp_async16(s_w + o * fused_w_row + c, inside ? a.w + o * in + f0 + c : a.w, inside);
  }
  cp_async_commit();
  const int to = tid / 16, tf = tid % 16, tn = tid / 32, lane = tid % 32;
  float gw[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) gw[i][j] = 0.0f;
  float bias = 0.0f;  // block 0, thread o < out: db[o]

  constexpr int dz_batch = 8;  // dz values a thread loads at once (16 per chunk)
  for (int r0 = 0; r0 < g.n; r0 += fused_rows) {
    const int rows = ::min(fused_rows, g.n - r0);
    __syncthreads();  // the previous chunk is consumed
    for (int e = tid; e < fused_rows * fused_tile / 4; e += 256) {
      const int r = e / (fused_tile / 4), c = e % (fused_tile / 4) * 4;
      const bool inside = r < rows && f0 + c < g.in;
      cp_async16(s_x + r * fused_w_row + c, inside ? a.x + (r0 + r) * in + f0 + c : a.x, inside);
    }
    cp_async_commit();
    for (int k0 = 0; k0 < fused_rows * fused_tile / 256; k0 += dz_batch) {
      float dz[dz_batch], yv[dz_batch];  // the batch's loads are all issued before any is used
#pragma unroll
      for (int k = 0; k < dz_batch; ++k) {
        const int e = tid + (k0 + k) * 256, r = e / fused_tile, o = e % fused_tile;
        const long long i = static_cast<long long>(r0 + r) * g.out + o;
        const bool valid = r < rows && o < g.out;
        dz[k] = valid ? a.dy[i] : 0.0f;
        yv[k] = valid && a.act != activation::none ? a.y[i] : 0.0f;
      }
#pragma unroll
      for (int k = 0; k < dz_batch; ++k) {
        const int e = tid + (k0 + k) * 256;
        s_dz[(e % fused_tile) * fused_dz_row + e / fused_tile] =
            a.act == activation::none ? dz[k] : dz[k] * activation_slope(a.act, yv[k]);
      }
    }
    cp_async_wait<0>();  // x (and the first time w) has landed
    __syncthreads();
    if (blockIdx.x == 0 && tid < g.out)
      for (int r = 0; r < rows; ++r) bias += s_dz[tid * fused_dz_row + r];
    for (int r = 0; r < rows; ++r) {
      float d[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) d[i] = s_dz[(to + 16 * i) * fused_dz_row + r];
      const float4 xa = *reinterpret_cast<const float4*>(s_x + r * fused_w_row + tf * 4);
      const float4 xb = *reinterpret_cast<const float4*>(s_x + r * fused_w_row + 64 + tf * 4);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        gw[i][0] = fmaf(d[i], xa.x, gw[i][0]);
        gw[i][1] = fmaf(d[i], xa.y, gw[i][1]);
        gw[i][2] = fmaf(d[i], xa.z, gw[i][2]);
        gw[i][3] = fmaf(d[i], xa.w, gw[i][3]);
        gw[i][4] = fmaf(d[i], xb.x, gw[i][4]);
        gw[i][5] = fmaf(d[i], xb.y, gw[i][5]);
        gw[i][6] = fmaf(d[i], xb.z, gw[i][6]);
        gw[i][7] = fmaf(d[i], xb.w, gw[i][7]);
      }
    }
    if (a.dx == nullptr) continue;
    float sx[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) sx[i][j] = 0.0f;
    for (int o = 0; o < g.out; ++o) {
      const float4 dv = *reinterpret_cast<const float4*>(s_dz + o * fused_dz_row + tn * 4);
      const float4 wv = *reinterpret_cast<const float4*>(s_w + o * fused_w_row + lane * 4);
      const float dd[4] = {dv.x, dv.y, dv.z, dv.w}, ww[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) sx[i][j] = fmaf(dd[i], ww[j], sx[i][j]);
    }
    const int f = f0 + lane * 4;
    if (f >= g.in) continue;
    float4 slope[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = tn * 4 + i;
      slope[i] = make_float4(1.0f, 1.0f, 1.0f, 1.0f);
      if (r < rows && a.e.dx_act != activation::none)
        slope[i] = *reinterpret_cast<const float4*>(a.e.dx_act_y + (r0 + r) * in + f);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = tn * 4 + i;
      if (r >= rows) break;
      if (a.e.dx_act != activation::none) {
        sx[i][0] *= activation_slope(a.e.dx_act, slope[i].x);
        sx[i][1] *= activation_slope(a.e.dx_act, slope[i].y);
        sx[i][2] *= activation_slope(a.e.dx_act, slope[i].z);
        sx[i][3] *= activation_slope(a.e.dx_act, slope[i].w);
      }
      *reinterpret_cast<float4*>(a.dx + (r0 + r) * in + f) = make_float4(sx[i][0], sx[i][1], sx[i][2], sx[i][3]);
    }
  }

  if (blockIdx.x == 0 && tid < g.out) a.db[tid] = a.e.accumulate ? a.db[tid] + bias : bias;
  const fused_adam& adam = a.e.adam;
  const bool update = adam.m != nullptr && !vetoed(adam.guard);
  adam_coefficients k{};
  if (update) k = coefficients_of(adam.config, adam.clock);
  constexpr int pass_rows = 32, row = fused_w_row;
  float* s_old = fused_smem;  // [pass_rows][row] each: old dw, m, v, w
  float* s_m = s_old + pass_rows * row;
  float* s_v = s_m + pass_rows * row;
  float* s_p = s_v + pass_rows * row;
#pragma unroll
  for (int pass = 0; pass < fused_tile / pass_rows; ++pass) {
    const int o0 = pass * pass_rows;
    if (o0 >= g.out) break;
    __syncthreads();  // the shared memory is free again
    for (int e = tid; e < pass_rows * fused_tile / 4; e += 256) {
      const int r = e / (fused_tile / 4), c = e % (fused_tile / 4) * 4;
      const bool inside = o0 + r < g.out && f0 + c < g.in;
      const long long at = inside ? (o0 + r) * in + f0 + c : 0;
      if (a.e.accumulate) cp_async16(s_old + r * row + c, a.dw + at, inside);
      if (update) {
        cp_async16(s_m + r * row + c, adam.m + at, inside);
        cp_async16(s_v + r * row + c, adam.v + at, inside);
        cp_async16(s_p + r * row + c, adam.params + at, inside);
      }
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
#pragma unroll
    for (int ii = 0; ii < pass_rows / 16; ++ii) {
      const int i = pass * (pass_rows / 16) + ii, r = to + 16 * ii, o = o0 + r;
      if (o >= g.out) continue;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c = tf * 4 + 64 * h;
        if (f0 + c >= g.in) continue;
        const long long at = o * in + f0 + c;
        float4 grad = make_float4(gw[i][4 * h], gw[i][4 * h + 1], gw[i][4 * h + 2], gw[i][4 * h + 3]);
        if (a.e.accumulate) {
          const float4 old = *reinterpret_cast<const float4*>(s_old + r * row + c);
          grad.x += old.x, grad.y += old.y, grad.z += old.z, grad.w += old.w;
        }
        *reinterpret_cast<float4*>(a.dw + at) = grad;
        if (!update) continue;
        float4 p = *reinterpret_cast<const float4*>(s_p + r * row + c);
        float4 m = *reinterpret_cast<const float4*>(s_m + r * row + c);
        float4 v = *reinterpret_cast<const float4*>(s_v + r * row + c);
        k.update(p.x, grad.x, m.x, v.x);
        k.update(p.y, grad.y, m.y, v.y);
        k.update(p.z, grad.z, m.z, v.z);
        k.update(p.w, grad.w, m.w, v.w);
        *reinterpret_cast<float4*>(adam.params + at) = p;
        *reinterpret_cast<float4*>(adam.m + at) = m;
        *reinterpret_cast<float4*>(adam.v + at) = v;
      }
    }
  }
}

inline void dense_backward_fused(const cuda_executor& exec, const dense_backward_fused_args& a) {
  launch_config cfg;
  cfg.grid = dim3(static_cast<unsigned>((a.g.in + fused_tile - 1) / fused_tile));
  cfg.block = dim3(256);
  cfg.shared_bytes = fused_backward_shared_bytes();
  allow_shared_bytes(dense_backward_fused_kernel<>, cfg.shared_bytes);
  launch(dense_backward_fused_kernel<>, cfg, exec.stream(), a);
}

}  // namespace gpukit::nn::detail
