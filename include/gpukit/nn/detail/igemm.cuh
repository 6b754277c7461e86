// gpukit/nn/detail/igemm.cuh — the implicit-GEMM engine: C = A · B over a mapping, with a
// block tile and a math policy chosen on the host (igemm_plan.hpp says which product is
// which mapping, and how tiles are chosen).
//
// A mapping (conv_igemm.cuh, dense_igemm.cuh) tells the engine how to read A and B and
// where each element of C goes:
//   a_k_fast / b_k_fast        which dimension of the operand is contiguous in memory: the
//                              loads then run along it across the warp (coalesced)
//   a_row_at(m), b_col_at(n)   per-thread state of one row of A / column of B, made once
//   a_k_at(k, ok), b_k_at(k, ok)  per-tile state of one k (ok false: past the split's end)
//   a_load(row, k), b_load(k, col)  one element, zero outside the matrix or the image
//   c_row_at(m), c_col_at(n), store(row, col, v)  the epilogue: bias, activation, slopes,
//                              accumulation, whatever the mapping's product needs
// Each thread loads bm/32 elements of A and bn/32 of B per step of k (a fixed row or column
// each, one k each), into registers while the tile before is multiplied, then into the
// other of two shared-memory stages ([k][m] and [k][n], each row padded by 8 floats so that
// both the SIMT float4 reads and the tensor-core fragment reads are free of bank conflicts).
// Both math policies give each thread (bm/16) x (bn/16) accumulators; `acc_row`/`acc_col`
// say which elements of the tile they are, so the epilogue is shared.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/detail/igemm.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/igemm_plan.hpp"
#include "gpukit/nn/detail/kernels.cuh"

#include <stdexcept>

namespace gpukit::nn::detail {

inline constexpr int igemm_pad = 8;

// ---- tensor-core helpers (compute capability 8.0 and later) --------------------------------

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define GPUKIT_NN_HAS_MMA_TF32 1
#else
#define GPUKIT_NN_HAS_MMA_TF32 0
#endif

#if GPUKIT_NN_HAS_MMA_TF32
/// x rounded to TF32 (10 mantissa bits, to nearest, ties away), as the tensor cores take it.
__device__ __forceinline__ unsigned tf32_bits(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}
/// d += a · b for one 16x8x8 TF32 product (FP32 accumulation).
__device__ __forceinline__ void mma_tf32(float& d0, float& d1, float& d2, float& d3, const unsigned (&a)[4],
                                         const unsigned (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

// ---- where a thread's accumulators lie in the tile -----------------------------------------

/// SIMT: thread (tx, ty) = (t % 16, t / 16) owns rows ty·4 + i of each half of the tile
/// (tiles 128 high: two float4 groups, half a tile apart; 64: one group; 32: two rows) and
/// the same for columns.
template <int Extent>
__device__ __forceinline__ int simt_offset(int lane16, int i) {
  constexpr int per = Extent / 16;
  if constexpr (per == 8) return (i / 4) * (Extent / 2) + lane16 * 4 + i % 4;
  return lane16 * per + i;
}

/// Tensor cores: 8 warps as 2 (m) x 4 (n), each a (bm/2) x (bn/4) warp tile of 16x8 mma
/// tiles; accumulator (i, j) is row g + 8·(i % 2) of m-tile i / 2 and column
/// 2·tig + (j % 2) of n-tile j / 2 (g = lane / 4, tig = lane % 4).
template <int BM, int BN, igemm_math Math>
__device__ __forceinline__ int acc_row(int t, int i) {
  if constexpr (Math == igemm_math::simt) {
    return simt_offset<BM>(t / 16, i);
  } else {
    const int warp = t / 32, lane = t % 32;
    return (warp / 4) * (BM / 2) + (i / 2) * 16 + (i % 2) * 8 + lane / 4;
  }
}
template <int BM, int BN, igemm_math Math>
__device__ __forceinline__ int acc_col(int t, int j) {
  if constexpr (Math == igemm_math::simt) {
    return simt_offset<BN>(t % 16, j);
  } else {
    const int warp = t / 32, lane = t % 32;
    return (warp % 4) * (BN / 4) + (j / 2) * 8 + (lane % 4) * 2 + (j % 2);
  }
}

template <int Count, int Extent>
__device__ __forceinline__ void load_row_fragment(const float* row, int lane16, float (&out)[Count]) {
  if constexpr (Count == 8) {
    const float4 lo = *reinterpret_cast<const float4*>(row + lane16 * 4);
    const float4 hi = *reinterpret_cast<const float4*>(row + Extent / 2 + lane16 * 4);
    out[0] = lo.x, out[1] = lo.y, out[2] = lo.z, out[3] = lo.w;
    out[4] = hi.x, out[5] = hi.y, out[6] = hi.z, out[7] = hi.w;
  } else if constexpr (Count == 4) {
    const float4 v = *reinterpret_cast<const float4*>(row + lane16 * 4);
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
  } else {
    static_assert(Count == 2, "igemm tiles are 32, 64 or 128 wide");
    const float2 v = *reinterpret_cast<const float2*>(row + lane16 * 2);
    out[0] = v.x, out[1] = v.y;
  }
}

/// acc += As · Bs over one step of k (igemm_bk).
template <int BM, int BN, igemm_math Math>
__device__ __forceinline__ void igemm_step(const float (*As)[BM + igemm_pad], const float (*Bs)[BN + igemm_pad],
                                           float (&acc)[BM / 16][BN / 16]) {
  constexpr int R = BM / 16, C = BN / 16;
  const int t = static_cast<int>(threadIdx.x);
#if GPUKIT_NN_HAS_MMA_TF32
  if constexpr (Math == igemm_math::tf32x3) {
    constexpr int MT = R / 2, NT = C / 2;
    const int warp = t / 32, lane = t % 32, g = lane / 4, tig = lane % 4;
    const int wm = (warp / 4) * (BM / 2), wn = (warp % 4) * (BN / 4);
    unsigned a_big[MT][4], a_small[MT][4], b_big[NT][2], b_small[NT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      const float v[4] = {As[tig][wm + mt * 16 + g], As[tig][wm + mt * 16 + g + 8], As[tig + 4][wm + mt * 16 + g],
                          As[tig + 4][wm + mt * 16 + g + 8]};
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        a_big[mt][r] = tf32_bits(v[r]);
        a_small[mt][r] = tf32_bits(v[r] - __uint_as_float(a_big[mt][r]));
      }
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const float v[2] = {Bs[tig][wn + nt * 8 + g], Bs[tig + 4][wn + nt * 8 + g]};
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        b_big[nt][r] = tf32_bits(v[r]);
        b_small[nt][r] = tf32_bits(v[r] - __uint_as_float(b_big[nt][r]));
      }
    }
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        float& d0 = acc[2 * mt][2 * nt];
        float& d1 = acc[2 * mt][2 * nt + 1];
        float& d2 = acc[2 * mt + 1][2 * nt];
        float& d3 = acc[2 * mt + 1][2 * nt + 1];
        mma_tf32(d0, d1, d2, d3, a_small[mt], b_big[nt]);  // the small terms first: they are the least significant
        mma_tf32(d0, d1, d2, d3, a_big[mt], b_small[nt]);
        mma_tf32(d0, d1, d2, d3, a_big[mt], b_big[nt]);
      }
    return;
  }
#endif
  // SIMT FP32 FMA (also the tf32x3 policy where the tensor cores are missing: same sums).
  if constexpr (Math == igemm_math::simt) {
    const int tx = t % 16, ty = t / 16;
#pragma unroll
    for (int kk = 0; kk < igemm_bk; ++kk) {
      float a[R], b[C];
      load_row_fragment<R, BM>(As[kk], ty, a);
      load_row_fragment<C, BN>(Bs[kk], tx, b);
#pragma unroll
      for (int i = 0; i < R; ++i)
#pragma unroll
        for (int j = 0; j < C; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
  } else {
    // Tensor-core layout without tensor cores: the same elements, one FMA at a time.
#pragma unroll
    for (int kk = 0; kk < igemm_bk; ++kk)
#pragma unroll
      for (int i = 0; i < R; ++i)
#pragma unroll
        for (int j = 0; j < C; ++j)
          acc[i][j] = fmaf(As[kk][acc_row<BM, BN, Math>(t, i)], Bs[kk][acc_col<BM, BN, Math>(t, j)], acc[i][j]);
  }
}

/// One block tile of C over the split blockIdx.z of k. `partial` (split products): raw sums
/// into partial[z][m][n]; otherwise the mapping's epilogue.
template <int BM, int BN, igemm_math Math, class Map>
__global__ void __launch_bounds__(igemm_threads) igemm_kernel(const Map map, const int k_chunk, float* partial) {
  constexpr int BK = igemm_bk, R = BM / 16, C = BN / 16, EA = BM / 32, EB = BN / 32;
  static_assert(igemm_threads == 256 && BK == 8, "the load slots assume 256 threads and steps of 8");
  __shared__ __align__(16) float As[2][BK][BM + igemm_pad];
  __shared__ __align__(16) float Bs[2][BK][BN + igemm_pad];
  const int t = static_cast<int>(threadIdx.x);
  const int m0 = static_cast<int>(blockIdx.y) * BM, n0 = static_cast<int>(blockIdx.x) * BN;
  const int k_begin = static_cast<int>(blockIdx.z) * k_chunk;
  const int k_end = ::min(map.k, k_begin + k_chunk);

  // Load slots: a k-fast operand gives a thread one k (t % 8) and rows t / 8 + 32j; an
  // m- or n-fast one rows t % 32 + 32j and one k (t / 32).
  const int a_kk = Map::a_k_fast ? t % 8 : t / 32, a_r = Map::a_k_fast ? t / 8 : t % 32;
  const int b_kk = Map::b_k_fast ? t % 8 : t / 32, b_c = Map::b_k_fast ? t / 8 : t % 32;
  typename Map::a_row ar[EA];
  typename Map::b_col bc[EB];
#pragma unroll
  for (int j = 0; j < EA; ++j) ar[j] = map.a_row_at(m0 + a_r + 32 * j);
#pragma unroll
  for (int j = 0; j < EB; ++j) bc[j] = map.b_col_at(n0 + b_c + 32 * j);
  float ra[EA], rb[EB];
  const auto fetch = [&](int k0) {
    const int ka = k0 + a_kk, kb = k0 + b_kk;
    const typename Map::a_kpos ak = map.a_k_at(ka, ka < k_end);
    const typename Map::b_kpos bk = map.b_k_at(kb, kb < k_end);
#pragma unroll
    for (int j = 0; j < EA; ++j) ra[j] = map.a_load(ar[j], ak);
#pragma unroll
    for (int j = 0; j < EB; ++j) rb[j] = map.b_load(bk, bc[j]);
  };
  const auto stash = [&](int buf) {
#pragma unroll
    for (int j = 0; j < EA; ++j) As[buf][a_kk][a_r + 32 * j] = ra[j];
#pragma unroll
    for (int j = 0; j < EB; ++j) Bs[buf][b_kk][b_c + 32 * j] = rb[j];
  };

  float acc[R][C];
#pragma unroll
  for (int i = 0; i < R; ++i)
#pragma unroll
    for (int j = 0; j < C; ++j) acc[i][j] = 0.0f;

  const int steps = k_end > k_begin ? (k_end - k_begin + BK - 1) / BK : 0;
  if (steps > 0) {
    fetch(k_begin);
    stash(0);
  }
  __syncthreads();
  for (int s = 0; s < steps; ++s) {
    const int buf = s & 1;
    if (s + 1 < steps) fetch(k_begin + (s + 1) * BK);  // in flight while this step multiplies
    igemm_step<BM, BN, Math>(As[buf], Bs[buf], acc);
    if (s + 1 < steps) stash(buf ^ 1);  // the other stage was last read before the previous barrier
    __syncthreads();
  }

  if (partial != nullptr) {
    const long long plane = static_cast<long long>(map.m) * map.n;
    float* out = partial + static_cast<long long>(blockIdx.z) * plane;
#pragma unroll
    for (int i = 0; i < R; ++i) {
      const int m = m0 + acc_row<BM, BN, Math>(t, i);
      if (m >= map.m) continue;
#pragma unroll
      for (int j = 0; j < C; ++j) {
        const int n = n0 + acc_col<BM, BN, Math>(t, j);
        if (n < map.n) out[static_cast<long long>(m) * map.n + n] = acc[i][j];
      }
    }
    return;
  }
  typename Map::c_col cc[C];
#pragma unroll
  for (int j = 0; j < C; ++j) cc[j] = map.c_col_at(n0 + acc_col<BM, BN, Math>(t, j));
#pragma unroll
  for (int i = 0; i < R; ++i) {
    const typename Map::c_row cr = map.c_row_at(m0 + acc_row<BM, BN, Math>(t, i));
#pragma unroll
    for (int j = 0; j < C; ++j) map.store(cr, cc[j], acc[i][j]);
  }
}

/// C = Σ over splits of partial[z] (in split order), through the mapping's epilogue.
template <class Map>
__global__ void igemm_reduce_kernel(const Map map, const float* partial, int splits) {
  const long long plane = static_cast<long long>(map.m) * map.n;
  GPUKIT_NN_GRID_STRIDE(i, plane) {
    float total = 0.0f;
    for (int z = 0; z < splits; ++z) total += partial[z * plane + i];
    const int m = static_cast<int>(i / map.n), n = static_cast<int>(i - static_cast<long long>(m) * map.n);
    map.store(map.c_row_at(m), map.c_col_at(n), total);
  }
}

template <int BM, int BN, class Map>
void launch_igemm_tile(const Map& map, const igemm_config& c, float* partial, stream_view s) {
  launch_config cfg;
  cfg.grid = dim3(static_cast<unsigned>((map.n + BN - 1) / BN), static_cast<unsigned>((map.m + BM - 1) / BM),
                  static_cast<unsigned>(c.splits));
  cfg.block = dim3(igemm_threads);
  float* p = c.splits > 1 ? partial : nullptr;
#if defined(GPUKIT_NN_IGEMM_SIMT)
  if (c.math == igemm_math::simt) return launch(igemm_kernel<BM, BN, igemm_math::simt, Map>, cfg, s, map, c.k_chunk, p);
#endif
  // Without tensor cores the tf32x3 kernel was compiled as FP32 FMA (GPUKIT_NN_HAS_MMA_TF32 0).
  if (c.math == igemm_math::simt && c.tensor_cores)
    throw std::logic_error("gpukit::nn::detail::run_igemm: FP32 FMA tiles were asked for (" + c.describe() +
                           ") but not compiled: define GPUKIT_NN_IGEMM_SIMT for the whole program");
  launch(igemm_kernel<BM, BN, igemm_math::tf32x3, Map>, cfg, s, map, c.k_chunk, p);
}

/// Runs `map` as `c` plans it; `partial` must hold c.partial_floats(map.m, map.n) floats
/// when k is split. The grid's y dimension counts m tiles: callers keep m/bm below 65536.
template <class Map>
void run_igemm(const Map& map, const igemm_config& c, float* partial, stream_view s) {
  if (map.m == 0 || map.n == 0) return;
  switch (c.bm * 1000 + c.bn) {
    case 128128: launch_igemm_tile<128, 128>(map, c, partial, s); break;
    case 128064: launch_igemm_tile<128, 64>(map, c, partial, s); break;
    case 64128: launch_igemm_tile<64, 128>(map, c, partial, s); break;
    case 64064: launch_igemm_tile<64, 64>(map, c, partial, s); break;
    case 32064: launch_igemm_tile<32, 64>(map, c, partial, s); break;
    default: throw std::logic_error("gpukit::nn::detail::run_igemm: no kernel for tile " + c.describe());
  }
  if (c.splits > 1)
    launch(igemm_reduce_kernel<Map>, grid_for(static_cast<std::size_t>(map.m) * static_cast<std::size_t>(map.n)), s,
           map, static_cast<const float*>(partial), c.splits);
}

}  // namespace gpukit::nn::detail
