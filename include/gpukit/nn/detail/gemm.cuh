// gpukit/nn/detail/gemm.cuh — the FP32 matrix product behind the dense layer:
//   C (m x n) = epilogue(A (m x k) · B (k x n))
// with A and B given by strides, so one kernel serves y = x·wᵀ, dx = dz·w and dw += dzᵀ·x.
//
// Classic shared-memory tiling: a 256-thread block computes a (16·TM) x (16·TN) tile, each
// thread a TM x TN sub-tile in registers, over K in steps of 16; the next step's tile is
// fetched into registers while the current one is multiplied. Which operand dimension is
// contiguous in memory is a template parameter, so global loads run along it (coalesced).
// When the output tiles cannot fill the GPU (y = x·wᵀ at batch 32 is one 32 x 128 tile
// over K = 30752), K is split: blocks write raw partial sums, and a second kernel adds them
// in split order (deterministic) and applies the epilogue: + bias, keep the pre-activation,
// activation, times an activation's slope (a backward pass), then store or accumulate.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/detail/gemm.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/dense.hpp"
#include "gpukit/nn/detail/kernels.cuh"

namespace gpukit::nn::detail {

struct gemm_args {
  int m = 0, n = 0, k = 0;
  const float* a = nullptr;  // A(i, kk) = a[i·a_m + kk·a_k]
  long long a_m = 0, a_k = 0;
  const float* b = nullptr;  // B(kk, j) = b[kk·b_k + j·b_n]
  long long b_k = 0, b_n = 0;
  float* c = nullptr;        // C(i, j) = c[i·c_m + j]
  long long c_m = 0;
  const float* bias = nullptr;  // + bias[j]
  activation act = activation::none;
  float* pre = nullptr;      // C before the activation, same indexing as c
  activation grad_act = activation::none;  // result ·= grad_act'(grad_y[same index])
  const float* grad_y = nullptr;
  bool accumulate = false;   // c += result instead of c = result
  int k_chunk = 0;           // K per split (blockIdx.z)
  float* partial = nullptr;  // splits x m x n raw sums, when K is split
};

__device__ __forceinline__ void gemm_finish(const gemm_args& p, int i, int j, float v) {
  if (p.bias != nullptr) v += p.bias[j];
  const long long idx = static_cast<long long>(i) * p.c_m + j;
  if (p.pre != nullptr) p.pre[idx] = v;
  v = activate(p.act, v);
  if (p.grad_y != nullptr) v *= activation_slope(p.grad_act, p.grad_y[idx]);
  if (p.accumulate) {
    p.c[idx] += v;
  } else {
    p.c[idx] = v;
  }
}

/// Loads `count` consecutive floats from shared memory (count 2, 4 or 8, suitably aligned).
template <int Count>
__device__ __forceinline__ void load_fragment(const float* src, float (&dst)[Count]) {
  if constexpr (Count % 4 == 0) {
#pragma unroll
    for (int i = 0; i < Count; i += 4) {
      const float4 v = *reinterpret_cast<const float4*>(src + i);
      dst[i] = v.x, dst[i + 1] = v.y, dst[i + 2] = v.z, dst[i + 3] = v.w;
    }
  } else {
    static_assert(Count == 2, "gemm fragments are 2, 4 or 8 floats");
    const float2 v = *reinterpret_cast<const float2*>(src);
    dst[0] = v.x, dst[1] = v.y;
  }
}

/// AKC: A's k is contiguous (a_k == 1), else its m (a_m == 1). BNC: B's n is contiguous
/// (b_n == 1), else its k (b_k == 1).
template <int TM, int TN, bool AKC, bool BNC>
__global__ void __launch_bounds__(256) gemm_kernel(const gemm_args p) {
  constexpr int BK = gemm_bk, BM = 16 * TM, BN = 16 * TN;
  constexpr int a_loads = BM * BK / 256, b_loads = BN * BK / 256;
  __shared__ __align__(16) float As[BK][BM + 4];
  __shared__ __align__(16) float Bs[BK][BN + 4];
  const int tid = static_cast<int>(threadIdx.x), tx = tid % 16, ty = tid / 16;
  const int m0 = static_cast<int>(blockIdx.y) * BM, n0 = static_cast<int>(blockIdx.x) * BN;
  const int k_begin = static_cast<int>(blockIdx.z) * p.k_chunk;
  const int k_end = ::min(p.k, k_begin + p.k_chunk);

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

  float ra[a_loads], rb[b_loads];
  const auto a_coord = [](int e, int& mm, int& kk) {
    mm = AKC ? e / BK : e % BM;
    kk = AKC ? e % BK : e / BM;
  };
  const auto b_coord = [](int e, int& nn, int& kk) {
    nn = BNC ? e % BN : e / BK;
    kk = BNC ? e / BN : e % BK;
  };
  const auto fetch = [&](int k0) {
#pragma unroll
    for (int r = 0; r < a_loads; ++r) {
      int mm, kk;
      a_coord(tid + r * 256, mm, kk);
      const int gm = m0 + mm, gk = k0 + kk;
      ra[r] = 0.0f;
      if (gm < p.m && gk < k_end)
        ra[r] = AKC ? p.a[gm * p.a_m + gk] : p.a[gm + gk * p.a_k];
    }
#pragma unroll
    for (int r = 0; r < b_loads; ++r) {
      int nn, kk;
      b_coord(tid + r * 256, nn, kk);
      const int gn = n0 + nn, gk = k0 + kk;
      rb[r] = 0.0f;
      if (gn < p.n && gk < k_end)
        rb[r] = BNC ? p.b[gk * p.b_k + gn] : p.b[gk + gn * p.b_n];
    }
  };

  if (k_begin < k_end) {
    fetch(k_begin);
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
      __syncthreads();  // everyone is done with the previous tile
#pragma unroll
      for (int r = 0; r < a_loads; ++r) {
        int mm, kk;
        a_coord(tid + r * 256, mm, kk);
        As[kk][mm] = ra[r];
      }
#pragma unroll
      for (int r = 0; r < b_loads; ++r) {
        int nn, kk;
        b_coord(tid + r * 256, nn, kk);
        Bs[kk][nn] = rb[r];
      }
      __syncthreads();
      if (k0 + BK < k_end) fetch(k0 + BK);
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
        float av[TM], bv[TN];
        load_fragment<TM>(&As[kk][ty * TM], av);
        load_fragment<TN>(&Bs[kk][tx * TN], bv);
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
    }
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int gm = m0 + ty * TM + i;
    if (gm >= p.m) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int gn = n0 + tx * TN + j;
      if (gn >= p.n) continue;
      if (p.partial != nullptr) {
        p.partial[(static_cast<long long>(blockIdx.z) * p.m + gm) * p.n + gn] = acc[i][j];
      } else {
        gemm_finish(p, gm, gn, acc[i][j]);
      }
    }
  }
}

template <class = void>
__global__ void gemm_split_reduce_kernel(const gemm_args p, int splits) {
  const long long mn = static_cast<long long>(p.m) * p.n;
  GPUKIT_NN_GRID_STRIDE(idx, mn) {
    float total = 0.0f;
    for (int s = 0; s < splits; ++s) total += p.partial[s * mn + idx];
    gemm_finish(p, static_cast<int>(idx / p.n), static_cast<int>(idx % p.n), total);
  }
}

template <int TM, int TN, bool AKC, bool BNC>
void launch_gemm_tiles(const gemm_args& p, int splits, stream_view s) {
  launch_config cfg;
  cfg.grid = dim3(static_cast<unsigned>((p.n + 16 * TN - 1) / (16 * TN)),
                  static_cast<unsigned>((p.m + 16 * TM - 1) / (16 * TM)), static_cast<unsigned>(splits));
  cfg.block = dim3(256);
  launch(gemm_kernel<TM, TN, AKC, BNC>, cfg, s, p);
}

template <bool AKC, bool BNC>
void launch_gemm_layout(const gemm_args& p, const gemm_plan& plan, stream_view s) {
  if (plan.tm == 8) {
    launch_gemm_tiles<8, 8, AKC, BNC>(p, plan.splits, s);
  } else if (plan.tm == 4) {
    launch_gemm_tiles<4, 4, AKC, BNC>(p, plan.splits, s);
  } else {
    launch_gemm_tiles<2, 4, AKC, BNC>(p, plan.splits, s);
  }
}

/// Runs `p` as planned; `partial` must hold plan.partial_floats floats when K is split.
/// Supported layouts: (A k-contiguous, B k-contiguous), (A k-contiguous, B n-contiguous),
/// (A m-contiguous, B n-contiguous).
inline void run_gemm(gemm_args p, const gemm_plan& plan, float* partial, stream_view s) {
  if (p.m == 0 || p.n == 0) return;
  p.k_chunk = plan.k_chunk;
  p.partial = plan.splits > 1 ? partial : nullptr;
  const bool akc = p.a_k == 1, bnc = p.b_n == 1;
  if (akc && !bnc) {
    launch_gemm_layout<true, false>(p, plan, s);
  } else if (akc && bnc) {
    launch_gemm_layout<true, true>(p, plan, s);
  } else {
    launch_gemm_layout<false, true>(p, plan, s);
  }
  if (plan.splits > 1) launch(gemm_split_reduce_kernel<>, grid_for(static_cast<std::size_t>(p.m) * p.n), s, p, plan.splits);
}

}  // namespace gpukit::nn::detail
