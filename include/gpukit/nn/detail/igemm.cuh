// gpukit/nn/detail/igemm.cuh — the implicit-GEMM engine: C = A · B over a mapping, with a
// block tile and a math policy chosen on the host (igemm_plan.hpp says which product is
// which mapping, and how tiles are chosen).
//
// A mapping (conv_igemm.cuh, dense_igemm.cuh) tells the engine how to read A and B and
// where each element of C goes:
//   a_k_fast / b_k_fast        which dimension of the operand is contiguous in memory: the
//                              loads then run along it across the warp (coalesced)
//   a_row_at(m), b_col_at(n)   per-thread state of one row of A / column of B, made once
//   a_k_at(k, ok), b_k_at(k, ok)  per-stage state of one k (ok false: past the split's end)
//   a_src(row, k, ok), b_src(k, col, ok)  the address of one element; ok false: it lies
//                              outside the matrix or the image, and reads as zero
//   b_constant(k, col, v)      (has_constant_column) an element that is a constant, not a
//                              load: the column of ones whose product is a bias gradient
//   c_row_at(m), c_col_at(n), store(row, col, v)  the epilogue: bias, activation, slopes,
//                              accumulation, whatever the mapping's product needs
// Each stage covers 16 of k. A thread copies bm/16 elements of A and bn/16 of B into each
// stage with cp.async (4 bytes each, zero-filled where outside), igemm_stages - 1 stages
// ahead of the one being multiplied, so the loads of a stage are in flight while two others
// are multiplied. Stages are [k][m] and [k][n], each row padded by 8 floats so that both the
// SIMT float4 reads and the tensor-core fragment reads are free of bank conflicts.
// A tile runs on wm x wn warps (igemm_plan.hpp's table): with tensor cores each warp owns a
// (bm/wm) x (bn/wn) warp tile of 16x8 mma tiles, so bigger warp tiles load and split each
// shared-memory fragment once for more products (64x64 warp tiles: one fragment instruction
// per tensor-core product, against three for 64x16). FP32 FMA tiles run on 8 warps, each
// thread an (bm/16) x (bn/16) sub-tile. `acc_row`/`acc_col` say which elements of the tile a
// thread's accumulators are, so the epilogue is shared. The two tensor-core maths share the
// layout: 3xTF32 splits each fragment element into two TF32 numbers and issues three mma per
// 16x8x8 tile; TF32 (a model in nn::precision::tf32) rounds each element once (cvt.rna) and
// issues one; BF16 (nn::precision::bf16) rounds pairs of elements into one register
// (cvt.rn.bf16x2) and issues one m16n8k16 product per 16 of k.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/detail/igemm.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/igemm_plan.hpp"
#include "gpukit/nn/detail/kernels.cuh"

#include <stdexcept>
#include <string>

namespace gpukit::nn::detail {

inline constexpr int igemm_pad = 8;

// ---- tensor-core helpers (compute capability 8.0 and later) --------------------------------

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define GPUKIT_NN_HAS_MMA_TF32 1
#else
#define GPUKIT_NN_HAS_MMA_TF32 0
#endif

#if GPUKIT_NN_HAS_MMA_TF32
/// acc's 16x8 tile (mt, nt) += a · b, one 16x8x8 TF32 product (FP32 accumulation): the
/// tile's four accumulators of this thread are acc[2mt + {0,1}][2nt + {0,1}] (acc_row,
/// acc_col). Not volatile: independent products must be free to interleave, or each
/// dependent chain stalls on the latency.
template <int R, int C>
__device__ __forceinline__ void mma_tf32(float (&acc)[R][C], int mt, int nt, const unsigned (&a)[4],
                                         const unsigned (&b)[2]) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(acc[2 * mt][2 * nt]), "+f"(acc[2 * mt][2 * nt + 1]), "+f"(acc[2 * mt + 1][2 * nt]),
        "+f"(acc[2 * mt + 1][2 * nt + 1])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
/// x rounded to TF32 to nearest, ties away from zero (round_to_tf32's rounding, in one
/// instruction): the tensor cores then read it exactly.
__device__ __forceinline__ unsigned to_tf32(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}
/// The same for one 16x8x16 BF16 product.
template <int R, int C>
__device__ __forceinline__ void mma_bf16(float (&acc)[R][C], int mt, int nt, const unsigned (&a)[4],
                                         const unsigned (&b)[2]) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(acc[2 * mt][2 * nt]), "+f"(acc[2 * mt][2 * nt + 1]), "+f"(acc[2 * mt + 1][2 * nt]),
        "+f"(acc[2 * mt + 1][2 * nt + 1])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
/// lo and hi rounded to bf16 to nearest, ties to even (round_to_bf16's rounding), packed
/// into one register, lo in the low half (the lower k of an mma fragment's pair).
__device__ __forceinline__ unsigned to_bf16x2(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
/// x ≈ big + small: big is x truncated to TF32 (its low 13 mantissa bits cleared, so the
/// tensor cores read it exactly), small = x - big, exact in FP32 and read by the tensor
/// cores to TF32's precision (whether they truncate or round its low bits), so big + small
/// is x to about 2^-21 relative. Two instructions: this runs once per fragment element.
__device__ __forceinline__ void split_tf32(float x, unsigned& big, unsigned& small) {
  big = __float_as_uint(x) & 0xffffe000u;
  small = __float_as_uint(x - __uint_as_float(big));
}
#endif

/// Where a thread of a tensor-core tile reads its fragments: g = lane / 4 and tig = lane % 4
/// (the fragment's row or column and its k within the mma), and the first row (wm) and
/// column (wn) of its warp's tile.
template <int BM, int BN, int WM, int WN>
struct mma_lane {
  int g, tig, wm, wn;
  __device__ explicit mma_lane(int t)
      : g(t % 32 / 4), tig(t % 4), wm(t / 32 / WN * (BM / WM)), wn(t / 32 % WN * (BN / WN)) {}
};

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

/// Tensor cores: WM x WN warps, each a (BM/WM) x (BN/WN) warp tile of 16x8 mma tiles;
/// accumulator (i, j) is row g + 8·(i % 2) of m-tile i / 2 and column 2·tig + (j % 2) of
/// n-tile j / 2 (g = lane / 4, tig = lane % 4).
template <int BM, int BN, igemm_math Math, int WM = 2, int WN = 4>
__device__ __forceinline__ int acc_row(int t, int i) {
  if constexpr (Math == igemm_math::simt) {
    return simt_offset<BM>(t / 16, i);
  } else {
    const int warp = t / 32, lane = t % 32;
    return (warp / WN) * (BM / WM) + (i / 2) * 16 + (i % 2) * 8 + lane / 4;
  }
}
template <int BM, int BN, igemm_math Math, int WM = 2, int WN = 4>
__device__ __forceinline__ int acc_col(int t, int j) {
  if constexpr (Math == igemm_math::simt) {
    return simt_offset<BN>(t % 16, j);
  } else {
    const int warp = t / 32, lane = t % 32;
    return (warp % WN) * (BN / WN) + (j / 2) * 8 + (lane % 4) * 2 + (j % 2);
  }
}

/// Accumulators per thread: rows x columns of them (see acc_row / acc_col).
template <int BM, int BN, igemm_math Math, int WM, int WN>
struct igemm_acc_shape {
  static constexpr int threads = Math == igemm_math::simt ? 256 : 32 * WM * WN;
  static constexpr int rows = Math == igemm_math::simt ? BM / 16 : 2 * (BM / WM / 16);
  static constexpr int cols = Math == igemm_math::simt ? BN / 16 : 2 * (BN / WN / 8);
  static_assert(Math != igemm_math::simt || (WM * WN == 8 && BM <= 128 && BN <= 128),
                "FP32 FMA tiles run on 8 warps and are at most 128 wide");
  static_assert(BM % (16 * WM) == 0 && BN % (8 * WN) == 0, "a warp tile is a whole number of 16x8 mma tiles");
};

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

/// k per igemm_step: one tensor-core k-step (16 for BF16's m16n8k16, else 8).
template <igemm_math Math>
inline constexpr int igemm_step_k = Math == igemm_math::bf16 ? 16 : 8;

/// acc += As · Bs over igemm_step_k<Math> of k (one tensor-core k-step).
template <int BM, int BN, igemm_math Math, int WM, int WN>
__device__ __forceinline__ void igemm_step(
    const float (*As)[BM + igemm_pad], const float (*Bs)[BN + igemm_pad],
    float (&acc)[igemm_acc_shape<BM, BN, Math, WM, WN>::rows][igemm_acc_shape<BM, BN, Math, WM, WN>::cols]) {
  constexpr int R = igemm_acc_shape<BM, BN, Math, WM, WN>::rows, C = igemm_acc_shape<BM, BN, Math, WM, WN>::cols;
  const int t = static_cast<int>(threadIdx.x);
#if GPUKIT_NN_HAS_MMA_TF32
  if constexpr (Math != igemm_math::simt) {
    constexpr int MT = R / 2, NT = C / 2;
    const mma_lane<BM, BN, WM, WN> l(t);
    const int g = l.g, tig = l.tig;
    if constexpr (Math == igemm_math::tf32x3) {
      unsigned a_big[MT][4], a_small[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int r0 = l.wm + mt * 16 + g, r1 = r0 + 8;
        split_tf32(As[tig][r0], a_big[mt][0], a_small[mt][0]);
        split_tf32(As[tig][r1], a_big[mt][1], a_small[mt][1]);
        split_tf32(As[tig + 4][r0], a_big[mt][2], a_small[mt][2]);
        split_tf32(As[tig + 4][r1], a_big[mt][3], a_small[mt][3]);
      }
      // One column of mma tiles at a time (its B fragment lives only that long: wide warp
      // tiles would otherwise hold every B fragment, big and small, at once), three passes
      // over its MT independent tiles (the small terms first: they are the least significant).
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int c = l.wn + nt * 8 + g;
        unsigned b_big[2], b_small[2];
        split_tf32(Bs[tig][c], b_big[0], b_small[0]);
        split_tf32(Bs[tig + 4][c], b_big[1], b_small[1]);
#pragma unroll
        for (int pass = 0; pass < 3; ++pass)
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
            mma_tf32(acc, mt, nt, pass == 0 ? a_small[mt] : a_big[mt], pass == 1 ? b_small : b_big);
      }
    } else if constexpr (Math == igemm_math::tf32) {
      unsigned a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int r0 = l.wm + mt * 16 + g, r1 = r0 + 8;
        a[mt][0] = to_tf32(As[tig][r0]);
        a[mt][1] = to_tf32(As[tig][r1]);
        a[mt][2] = to_tf32(As[tig + 4][r0]);
        a[mt][3] = to_tf32(As[tig + 4][r1]);
      }
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int c = l.wn + nt * 8 + g;
        const unsigned b[2] = {to_tf32(Bs[tig][c]), to_tf32(Bs[tig + 4][c])};
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) mma_tf32(acc, mt, nt, a[mt], b);
      }
    } else {
      // BF16: the fragment's k pair (2·tig, 2·tig + 1) is read from stage rows (tig, tig + 4)
      // and (2·tig + 8, 2·tig + 9) from (tig + 8, tig + 12), for A and B alike: the same
      // permutation of k on both sides leaves the sum as it is, and keeps the reads of the
      // TF32 layout (a warp's 32 lanes in 32 banks).
      static_assert(Math == igemm_math::bf16, "a tensor-core math without a fragment layout");
      unsigned a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int r0 = l.wm + mt * 16 + g, r1 = r0 + 8;
        a[mt][0] = to_bf16x2(As[tig][r0], As[tig + 4][r0]);
        a[mt][1] = to_bf16x2(As[tig][r1], As[tig + 4][r1]);
        a[mt][2] = to_bf16x2(As[tig + 8][r0], As[tig + 12][r0]);
        a[mt][3] = to_bf16x2(As[tig + 8][r1], As[tig + 12][r1]);
      }
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int c = l.wn + nt * 8 + g;
        const unsigned b[2] = {to_bf16x2(Bs[tig][c], Bs[tig + 4][c]), to_bf16x2(Bs[tig + 8][c], Bs[tig + 12][c])};
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) mma_bf16(acc, mt, nt, a[mt], b);
      }
    }
    return;
  }
#endif
  // SIMT FP32 FMA (also the tf32x3 policy where the tensor cores are missing: same sums).
  if constexpr (Math == igemm_math::simt) {
    const int tx = t % 16, ty = t / 16;
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
      float a[R], b[C];
      load_row_fragment<R, BM>(As[kk], ty, a);
      load_row_fragment<C, BN>(Bs[kk], tx, b);
#pragma unroll
      for (int i = 0; i < R; ++i)
#pragma unroll
        for (int j = 0; j < C; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
  } else {
    // Tensor-core layout without tensor cores: the same elements, one FMA at a time (TF32
    // and BF16: of the rounded operands, whose products FP32 holds exactly).
    const auto operand = [](float v) {
      return Math == igemm_math::tf32 ? round_to_tf32(v) : Math == igemm_math::bf16 ? round_to_bf16(v) : v;
    };
#pragma unroll
    for (int kk = 0; kk < igemm_step_k<Math>; ++kk)
#pragma unroll
      for (int i = 0; i < R; ++i)
#pragma unroll
        for (int j = 0; j < C; ++j)
          acc[i][j] = fmaf(operand(As[kk][acc_row<BM, BN, Math, WM, WN>(t, i)]),
                           operand(Bs[kk][acc_col<BM, BN, Math, WM, WN>(t, j)]), acc[i][j]);
  }
}

inline constexpr std::size_t igemm_shared_bytes(int bm, int bn, int bk = igemm_bk, int stages = igemm_stages) {
  return static_cast<std::size_t>(stages) * bk * (bm + bn + 2 * igemm_pad) * sizeof(float);
}

/// One block tile of C over the split blockIdx.z of k. `partial` (split products): raw sums
/// into partial[z][m][n]; otherwise the mapping's epilogue. BK (k per stage, 16 or 32) and
/// S (stages) shape the pipeline; WM x WN warps share the tile (tensor cores; FP32 FMA tiles
/// run on 8 warps whatever the tile's warp grid).
template <int BM, int BN, igemm_math Math, class Map, int BK = igemm_bk, int S = igemm_stages, int WM = 2, int WN = 4>
__global__ void __launch_bounds__(igemm_acc_shape<BM, BN, Math, WM, WN>::threads)
    igemm_kernel(const Map map, const int k_chunk, float* partial) {
  using shape = igemm_acc_shape<BM, BN, Math, WM, WN>;
  constexpr int R = shape::rows, C = shape::cols, T = shape::threads, NW = T / 32;
  constexpr int AS = BM + igemm_pad, BS = BN + igemm_pad;  // row strides of a stage (8 mod 32 banks)
  static_assert((BK == 16 || BK == 32) && NW >= BK / 4, "stages of 16 or 32 of k, at least BK/4 warps");
  // Load slots. A k-fast operand: lane l of warp w copies k 4·(w % (BK/4)) + l % 4 of rows
  // 8·(w / (BK/4)) + l / 4 + (T/BK)·j: four k of eight rows per warp, so that its shared
  // stores (k·stride + row, stride = 8 mod 32) fall in 32 different banks and each row's
  // four floats are one 16-byte piece of global memory. An m- or n-fast operand: rows
  // l + 32j at the k w + NW·q (each warp a run of 32 consecutive floats).
  constexpr int KF_ROWS = T / BK;  // rows a k-fast pass covers
  constexpr int EA = Map::a_k_fast ? BM / KF_ROWS : BM / 32, KA = Map::a_k_fast ? 1 : BK / NW;
  constexpr int EB = Map::b_k_fast ? BN / KF_ROWS : BN / 32, KB = Map::b_k_fast ? 1 : BK / NW;
  constexpr int a_row_step = Map::a_k_fast ? KF_ROWS : 32, b_col_step = Map::b_k_fast ? KF_ROWS : 32;
  static_assert(EA >= 1 && EB >= 1 && BK % NW == 0, "tiles of at least 32 rows");
  extern __shared__ __align__(16) float igemm_smem[];
  float* const As = igemm_smem;               // [S][BK][AS]
  float* const Bs = igemm_smem + S * BK * AS;  // [S][BK][BS]
  const int t = static_cast<int>(threadIdx.x), lane = t % 32, warp = t / 32;
  const int m0 = static_cast<int>(blockIdx.y) * BM, n0 = static_cast<int>(blockIdx.x) * BN;
  const int k_begin = static_cast<int>(blockIdx.z) * k_chunk;
  const int k_end = ::min(map.k, k_begin + k_chunk);

  constexpr int KGROUPS = BK / 4;
  const int kf_k = 4 * (warp % KGROUPS) + lane % 4, kf_row = 8 * (warp / KGROUPS) + lane / 4;
  const int a_kk = Map::a_k_fast ? kf_k : warp, a_r = Map::a_k_fast ? kf_row : lane;
  const int b_kk = Map::b_k_fast ? kf_k : warp, b_c = Map::b_k_fast ? kf_row : lane;
  typename Map::a_row ar[EA];
  typename Map::b_col bc[EB];
#pragma unroll
  for (int j = 0; j < EA; ++j) ar[j] = map.a_row_at(m0 + a_r + a_row_step * j);
#pragma unroll
  for (int j = 0; j < EB; ++j) bc[j] = map.b_col_at(n0 + b_c + b_col_step * j);

  // Queues the copies of the stage covering k0.. into shared-memory stage `buf`.
  const auto issue = [&](int k0, int buf) {
    float* a_stage = As + buf * BK * AS;
    float* b_stage = Bs + buf * BK * BS;
#pragma unroll
    for (int q = 0; q < KA; ++q) {
      const int kk = a_kk + NW * q, k = k0 + kk;
      const typename Map::a_kpos ak = map.a_k_at(k, k < k_end);
#pragma unroll
      for (int j = 0; j < EA; ++j) {
        bool ok;
        const float* src = map.a_src(ar[j], ak, ok);
        cp_async4(a_stage + kk * AS + a_r + a_row_step * j, src, ok);
      }
    }
#pragma unroll
    for (int q = 0; q < KB; ++q) {
      const int kk = b_kk + NW * q, k = k0 + kk;
      const typename Map::b_kpos bk = map.b_k_at(k, k < k_end);
#pragma unroll
      for (int j = 0; j < EB; ++j) {
        float* dst = b_stage + kk * BS + b_c + b_col_step * j;
        if constexpr (Map::has_constant_column) {
          float v;
          if (map.b_constant(bk, bc[j], v)) {  // an ordinary store: visible after the same barrier
            *dst = v;
            continue;
          }
        }
        bool ok;
        const float* src = map.b_src(bk, bc[j], ok);
        cp_async4(dst, src, ok);
      }
    }
  };

  float acc[R][C];
#pragma unroll
  for (int i = 0; i < R; ++i)
#pragma unroll
    for (int j = 0; j < C; ++j) acc[i][j] = 0.0f;

  const int steps = k_end > k_begin ? (k_end - k_begin + BK - 1) / BK : 0;
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < steps) issue(k_begin + s * BK, s);
    cp_async_commit();  // empty groups too: the wait below counts groups
  }
  for (int s = 0; s < steps; ++s) {
    cp_async_wait<S - 2>();  // this thread's copies of stage s have landed
    __syncthreads();         // ...everyone's, and stage s - 1 is no longer being read
    if (s + S - 1 < steps) issue(k_begin + (s + S - 1) * BK, (s + S - 1) % S);
    cp_async_commit();
    const float* a_stage = As + (s % S) * BK * AS;
    const float* b_stage = Bs + (s % S) * BK * BS;
    constexpr int KS = igemm_step_k<Math>;
#pragma unroll
    for (int step = 0; step < BK / KS; ++step)
      igemm_step<BM, BN, Math, WM, WN>(reinterpret_cast<const float(*)[AS]>(a_stage + step * KS * AS),
                                       reinterpret_cast<const float(*)[BS]>(b_stage + step * KS * BS), acc);
  }
  cp_async_wait<0>();

  if (partial != nullptr) {
    const long long plane = static_cast<long long>(map.m) * map.n;
    float* out = partial + static_cast<long long>(blockIdx.z) * plane;
#pragma unroll
    for (int i = 0; i < R; ++i) {
      const int m = m0 + acc_row<BM, BN, Math, WM, WN>(t, i);
      if (m >= map.m) continue;
#pragma unroll
      for (int j = 0; j < C; ++j) {
        const int n = n0 + acc_col<BM, BN, Math, WM, WN>(t, j);
        if (n < map.n) out[static_cast<long long>(m) * map.n + n] = acc[i][j];
      }
    }
    return;
  }
  typename Map::c_col cc[C];
#pragma unroll
  for (int j = 0; j < C; ++j) cc[j] = map.c_col_at(n0 + acc_col<BM, BN, Math, WM, WN>(t, j));
#pragma unroll
  for (int i = 0; i < R; ++i) {
    const typename Map::c_row cr = map.c_row_at(m0 + acc_row<BM, BN, Math, WM, WN>(t, i));
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

template <int BM, int BN, class Map, int BK = igemm_bk, int S = igemm_stages, int WM = 2, int WN = 4>
void launch_igemm_tile(const Map& map, const igemm_config& c, float* partial, stream_view s) {
  launch_config cfg;
  cfg.grid = dim3(static_cast<unsigned>((map.n + BN - 1) / BN), static_cast<unsigned>((map.m + BM - 1) / BM),
                  static_cast<unsigned>(c.splits));
  cfg.shared_bytes = igemm_shared_bytes(BM, BN, BK, S);
  float* p = c.splits > 1 ? partial : nullptr;
#if defined(GPUKIT_NN_IGEMM_SIMT)
  if constexpr (WM * WN == 8 && BM <= 128 && BN <= 128) {
    if (c.math == igemm_math::simt) {
      constexpr auto kernel = igemm_kernel<BM, BN, igemm_math::simt, Map, BK, S, WM, WN>;
      cfg.block = dim3(igemm_acc_shape<BM, BN, igemm_math::simt, WM, WN>::threads);
      allow_shared_bytes(kernel, cfg.shared_bytes);
      return launch(kernel, cfg, s, map, c.k_chunk, p);
    }
  }
#endif
  if (c.math == igemm_math::tf32) {
    constexpr auto kernel = igemm_kernel<BM, BN, igemm_math::tf32, Map, BK, S, WM, WN>;
    cfg.block = dim3(igemm_acc_shape<BM, BN, igemm_math::tf32, WM, WN>::threads);
    allow_shared_bytes(kernel, cfg.shared_bytes);
    return launch(kernel, cfg, s, map, c.k_chunk, p);
  }
  if (c.math == igemm_math::bf16) {
    constexpr auto kernel = igemm_kernel<BM, BN, igemm_math::bf16, Map, BK, S, WM, WN>;
    cfg.block = dim3(igemm_acc_shape<BM, BN, igemm_math::bf16, WM, WN>::threads);
    allow_shared_bytes(kernel, cfg.shared_bytes);
    return launch(kernel, cfg, s, map, c.k_chunk, p);
  }
  // Without tensor cores the tf32x3 kernel was compiled as FP32 FMA (GPUKIT_NN_HAS_MMA_TF32 0).
  if (c.math == igemm_math::simt && c.tensor_cores)
    throw std::logic_error("gpukit::nn::detail::run_igemm: FP32 FMA tiles were asked for (" + c.describe() +
                           ") but not compiled: define GPUKIT_NN_IGEMM_SIMT for the whole program (or link a kernel "
                           "library made with gpukit_add_kernel_library(... FP32_FMA_TILES)), 8-warp tiles only");
  constexpr auto kernel = igemm_kernel<BM, BN, igemm_math::tf32x3, Map, BK, S, WM, WN>;
  cfg.block = dim3(igemm_acc_shape<BM, BN, igemm_math::tf32x3, WM, WN>::threads);
  allow_shared_bytes(kernel, cfg.shared_bytes);
  launch(kernel, cfg, s, map, c.k_chunk, p);
}

/// Calls f.template operator()<BM, BN, WM, WN>() for the compiled tile `c` names; false when
/// none matches.
template <class F>
bool with_igemm_tile(const igemm_config& c, F&& f) {
  switch (c.bm * 100000 + c.bn * 100 + c.wm * 10 + c.wn) {
    case 12825624: f.template operator()<128, 256, 2, 4>(); return true;
    case 6425614: f.template operator()<64, 256, 1, 4>(); return true;
    case 12812822: f.template operator()<128, 128, 2, 2>(); return true;
    case 6412822: f.template operator()<64, 128, 2, 2>(); return true;
    case 12812824: f.template operator()<128, 128, 2, 4>(); return true;
    case 12806424: f.template operator()<128, 64, 2, 4>(); return true;
    case 6412824: f.template operator()<64, 128, 2, 4>(); return true;
    case 6406424: f.template operator()<64, 64, 2, 4>(); return true;
    case 3206424: f.template operator()<32, 64, 2, 4>(); return true;
    default: return false;
  }
}

/// C = Σ over splits of partial[z], through the mapping's epilogue, when `c` splits k.
template <class Map>
void reduce_igemm_splits(const Map& map, const igemm_config& c, const float* partial, stream_view s) {
  if (c.splits > 1)
    launch(igemm_reduce_kernel<Map>, grid_for(static_cast<std::size_t>(map.m) * static_cast<std::size_t>(map.n)), s,
           map, partial, c.splits);
}

/// Launches one product's tiles with the pipeline BK x S (tiles of fewer than BK/4 warps
/// cannot stage BK of k: asking for one is a logic_error).
template <class Map, int BK = igemm_bk, int S = igemm_stages>
struct igemm_tile_launcher {
  const Map& map;
  const igemm_config& c;
  float* partial;
  stream_view s;
  template <int BM, int BN, int WM, int WN>
  void operator()() const {
    if constexpr (WM * WN >= BK / 4) {
      launch_igemm_tile<BM, BN, Map, BK, S, WM, WN>(map, c, partial, s);
    } else {
      throw std::logic_error("gpukit::nn::detail::run_igemm: tile " + c.describe() + " cannot stage " +
                             std::to_string(BK) + " of k per step");
    }
  }
};

/// Runs `map` as `c` plans it; `partial` must hold c.partial_floats(map.m, map.n) floats
/// when k is split. The grid's y dimension counts m tiles: callers keep m/bm below 65536.
template <class Map>
void run_igemm(const Map& map, const igemm_config& c, float* partial, stream_view s) {
  if (map.m == 0 || map.n == 0) return;
  if (!with_igemm_tile(c, igemm_tile_launcher<Map>{map, c, partial, s}))
    throw std::logic_error("gpukit::nn::detail::run_igemm: no kernel for tile " + c.describe());
  reduce_igemm_splits(map, c, partial, s);
}

}  // namespace gpukit::nn::detail

/// `prefix template void run_igemm<Map>(...);` — with prefix `extern`, the explicit
/// instantiation declaration that GPUKIT_PRECOMPILED_KERNELS puts after each mapping (a
/// translation unit then compiles none of that product's tiles: each is most of the device
/// code of a file that includes the nn headers); with an empty prefix, the one definition,
/// in the kernel library's sources (src/kernels/, made by gpukit_add_kernel_library()).
/// Use inside namespace gpukit::nn::detail.
#define GPUKIT_NN_IGEMM_INSTANCE(prefix, Map) \
  prefix template void run_igemm<Map>(const Map&, const igemm_config&, float*, stream_view);
