// gpukit/nn/detail/igemm_plan.hpp — the tiles of the implicit-GEMM engine (igemm.cuh) and
// how they are chosen, decided on the host.
//
// Every conv and dense product of the nn layer is C (m x n) = A (m x k) · B (k x n) with A
// and B read through a mapping (implicit GEMM: the im2col matrix is never stored):
//   conv forward         m = out channels, n = output pixels (n·oh·ow), k = in channels·kh·kw
//   conv input gradient  m = in channels,  n = input pixels of one stride phase, k = out channels·taps
//   conv weight gradient m = out channels, n = in channels·kh·kw + 1 (the bias), k = output pixels
//   dense forward        m = batch, n = out, k = in;  dx: m = batch, n = in, k = out;
//   dense weights        m = out, n = in + 1 (the bias), k = batch
// A tile (block tile bm x bn on 4 or 8 warps, k in steps of 16 through a three-stage
// asynchronous-copy pipeline) and
// a math policy are two separate choices, and the mapping a third (igemm.cuh):
//   simt    FP32 FMA, each thread an (bm/16) x (bn/16) sub-tile of C in registers
//           (compiled only where GPUKIT_NN_IGEMM_SIMT is defined for the whole program, on
//           GPUs with tensor cores: the benchmarks compare the two; a precompiled kernel
//           library has them when made with FP32_FMA_TILES)
//   tf32x3  tensor cores, FP32-accurate (where the kernel is compiled for an architecture
//           before 8.0, the same kernel does the same sums with FP32 FMA): each operand
//           split as a = big + small with big and small TF32 numbers (big = a truncated to
//           TF32, small = a - big, which the tensor cores read to TF32's precision),
//           and a·b ≈ big·big + big·small + small·big accumulated in FP32 (the small·small
//           term, below 2^-22 relative, is dropped): products accurate to about FP32's
//           rounding, at tensor-core rate (compute capability 8.0 and later).
//   tf32    tensor cores, one product: each operand rounded to TF32 to nearest (ties away
//           from zero, round_to_tf32 in nn/precision.hpp), FP32 accumulation; the math of a
//           model whose precision is tf32 (before 8.0: FP32 FMA of the rounded operands,
//           the same products).
//   bf16    tensor cores, one m16n8k16 product per 16 of k: each operand rounded to
//           bfloat16 to nearest, ties to even (round_to_bf16), FP32 accumulation; the math
//           of a model whose precision is bf16 (before 8.0: FP32 FMA of the rounded
//           operands). The operands stay FP32 in memory and in shared memory: they are
//           rounded as the fragments are read, two to a register.
// When the output tiles alone cannot fill the GPU, k is split: each split writes raw
// partial sums and a second kernel adds them in split order (deterministic, no atomics)
// and applies the mapping's epilogue.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/nn/path_target.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

namespace gpukit::nn::detail {

enum class igemm_math { simt, tf32x3, tf32, bf16 };

inline const char* igemm_math_name(igemm_math m, bool tensor_cores = true) noexcept {
  if (m == igemm_math::tf32) return tensor_cores ? "TF32" : "TF32 operands, FP32 FMA";
  if (m == igemm_math::bf16) return tensor_cores ? "BF16" : "BF16 operands, FP32 FMA";
  return m == igemm_math::simt || !tensor_cores ? "FP32 FMA" : "3xTF32";
}

inline constexpr int igemm_bk = 16;     // k per pipeline stage
inline constexpr int igemm_stages = 3;  // shared-memory stages in flight (cp.async)

/// The block tiles the engine is compiled for: bm x bn on wm x wn warps (each warp a
/// (bm/wm) x (bn/wn) warp tile on the tensor cores), how fast a full SM runs the tile
/// relative to the others (bigger warp tiles load and split each shared-memory fragment once
/// for more products), and how many blocks of it an SM keeps resident (registers and shared
/// memory: the 8-warp 128x128 tile's 64 accumulators and fragments hold it to one).
/// FP32 FMA (simt) tiles exist for the 8-warp tiles up to 128 wide.
struct igemm_tile {
  int bm = 0, bn = 0;
  int wm = 2, wn = 4;
  double speed = 1.0;
  int resident = 1;
  constexpr int warps() const noexcept { return wm * wn; }
  constexpr bool has_simt() const noexcept { return wm * wn == 8 && bm <= 128 && bn <= 128; }
};
/// Speeds measured on an H100 (2026-12-06, gpukit_igemm_tune, the zoo's largest convolutions).
inline constexpr igemm_tile igemm_tiles[] = {
    {128, 256, 2, 4, 1.14, 1}, {64, 256, 1, 4, 1.07, 2}, {128, 128, 2, 2, 1.27, 2}, {64, 128, 2, 2, 1.0, 2},
    {128, 128, 2, 4, 1.0, 1},  {128, 64, 2, 4, 0.92, 2}, {64, 128, 2, 4, 0.96, 2}, {64, 64, 2, 4, 0.77, 4},
    {32, 64, 2, 4, 0.5, 4}};

struct igemm_config {
  int bm = 0, bn = 0;  // 0: not planned
  int wm = 2, wn = 4;  // the tile's warps along m and n
  igemm_math math = igemm_math::simt;
  int splits = 1;
  int k_chunk = 0;  // k per split, a multiple of igemm_bk
  long long m = 0, n = 0, k = 0;  // the product it was chosen for
  bool tensor_cores = false;      // the target has TF32 tensor cores

  bool planned() const noexcept { return bm > 0; }
  /// Floats of raw partial sums a split product needs (m x n per split).
  std::size_t partial_floats(long long m, long long n) const noexcept {
    return splits > 1 ? static_cast<std::size_t>(splits) * static_cast<std::size_t>(m) * static_cast<std::size_t>(n) : 0;
  }
  /// "64x32768x576: tile 128x64, split-K 4, 3xTF32".
  std::string describe() const {
    std::string s = std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + ": tile " +
                    std::to_string(bm) + "x" + std::to_string(bn);
    if (wm * wn != 8) s += " on " + std::to_string(wm * wn) + " warps";
    if (splits > 1) s += ", split-K " + std::to_string(splits);
    return s + ", " + igemm_math_name(math, tensor_cores);
  }
};

/// What a caller may force (tests and benchmarks reach every tile this way).
struct igemm_request {
  int bm = 0, bn = 0;  // 0: choose
  int warps = 0;       // with bm, bn: the tile on this many warps (0: the first such tile)
  int splits = 0;      // 0: choose
  bool allow_split = true;
  bool force_simt = false;  // FP32 FMA tiles (needs GPUKIT_NN_IGEMM_SIMT where tensor cores exist)
};

/// How a product's operands lie in memory (its mapping's b_k_fast): a B contiguous along k
/// keeps per-thread load state for bn·16/threads of its columns, which the widest tile on 4
/// warps cannot hold in registers (its loads spill: a conv weight gradient ran 1.8x slower on
/// it than on 64x128), so such products skip tiles that would need more than 16.
struct igemm_operands {
  bool b_k_fast = false;
};

/// Estimated seconds of one product with the given tile and split on `t` (a model good
/// enough to rank choices: compute at the tile's rate over the waves it takes, plus the
/// partial sums' round trip through memory when k is split).
inline double igemm_estimate(long long m, long long n, long long k, const igemm_tile& tile, int splits,
                             igemm_math math, const path_target& t) {
  const int bm = tile.bm, bn = tile.bn;
  const double sms = static_cast<double>(std::max(1, t.sm_count));
  const double tiles_m = static_cast<double>((m + bm - 1) / bm), tiles_n = static_cast<double>((n + bn - 1) / bn);
  const double blocks = tiles_m * tiles_n * splits;
  const double slots = sms * tile.resident;
  const double waves = std::ceil(blocks / slots);
  // FLOP/s; one TF32 product where 3xTF32 takes three, but the loads do not shrink: about
  // 2.2x. BF16 is ranked as TF32 (the same loads and stages; half the mma instructions).
  const double per_sm = math == igemm_math::tf32 || math == igemm_math::bf16 ? 2.2e12 * tile.speed
                        : math == igemm_math::tf32x3 ? 1.0e12 * tile.speed
                                                     : 0.38e12 * std::min(tile.speed, 1.0);
  const double k_per_split = std::ceil(static_cast<double>(k) / splits / igemm_bk) * igemm_bk;
  // The busiest SM runs `active` blocks at once, sharing its rate; with fewer than the
  // resident blocks it hides less latency: its rate falls as the square root of the
  // fraction (fitted to the zoo's products on an H100, 2026-12-06: a lone small tile beats a
  // lone large one when the product cannot fill the GPU).
  const double active = std::min(static_cast<double>(tile.resident), std::ceil(blocks / sms));
  const double block_flops = 2.0 * bm * bn * k_per_split;
  const double wave_seconds = block_flops * active / (per_sm * std::sqrt(active / tile.resident));
  double seconds = waves * wave_seconds + 2e-6;  // + the launch
  if (splits > 1) seconds += (splits + 1.0) * static_cast<double>(m) * static_cast<double>(n) * 4.0 / 3.0e12 + 2e-6;
  return seconds;
}

/// The math of a product on `t`: TF32 or BF16 for a model in that precision (on any GPU:
/// without tensor cores the kernel multiplies the rounded operands with FP32 FMA), else
/// 3xTF32, or FP32 FMA tiles when asked for where tensor cores exist.
inline igemm_math igemm_math_for(const path_target& t, const igemm_request& r) noexcept {
  if (t.numbers == precision::tf32) return igemm_math::tf32;
  if (t.numbers == precision::bf16) return igemm_math::bf16;
  return t.has_tf32_tensor_cores() && r.force_simt ? igemm_math::simt : igemm_math::tf32x3;
}

/// The tile, split and math for an m x n x k product on `t`.
inline igemm_config choose_igemm(long long m, long long n, long long k, const path_target& t,
                                 const igemm_request& r = {}, const igemm_operands& ops = {}) {
  igemm_config best;
  const igemm_math math = igemm_math_for(t, r);
  double best_seconds = std::numeric_limits<double>::infinity();
  const long long k_steps = std::max<long long>(1, (k + igemm_bk - 1) / igemm_bk);
  for (const igemm_tile tile : igemm_tiles) {
    if (r.bm != 0 && (tile.bm != r.bm || tile.bn != r.bn || (r.warps != 0 && tile.warps() != r.warps))) continue;
    if (math == igemm_math::simt && !tile.has_simt()) continue;
    if (r.bm == 0 && ops.b_k_fast && tile.bn * igemm_bk / (32 * tile.warps()) > 16) continue;
    const long long blocks = ((m + tile.bm - 1) / tile.bm) * ((n + tile.bn - 1) / tile.bn);
    const long long slots = static_cast<long long>(std::max(1, t.sm_count)) * tile.resident;
    // Splits worth trying: none, and enough to fill the resident slots once or twice, each
    // split keeping at least 8 steps of k (the pipeline needs a few to fill).
    int candidates[3] = {1, 1, 1};
    if (r.splits > 0) {
      candidates[0] = candidates[1] = candidates[2] = r.splits;
    } else if (r.allow_split && blocks < slots) {
      const long long most = std::max<long long>(1, k_steps / 8);
      candidates[1] = static_cast<int>(std::min<long long>(most, (slots + blocks - 1) / blocks));
      candidates[2] = static_cast<int>(std::min<long long>(most, (2 * slots + blocks - 1) / blocks));
    }
    for (int splits : candidates) {
      splits = static_cast<int>(std::min<long long>(splits, k_steps));
      const double s = igemm_estimate(m, n, k, tile, splits, math, t);
      if (s < best_seconds) {
        best_seconds = s;
        best.bm = tile.bm, best.bn = tile.bn, best.wm = tile.wm, best.wn = tile.wn, best.math = math,
        best.splits = splits;
      }
    }
  }
  best.m = m, best.n = n, best.k = k;
  best.tensor_cores = t.has_tf32_tensor_cores();
  if (!best.planned()) return best;
  const long long per_split = (k_steps + best.splits - 1) / best.splits;
  best.k_chunk = static_cast<int>(std::max<long long>(1, per_split) * igemm_bk);
  best.splits = static_cast<int>(std::max<long long>(1, (k + best.k_chunk - 1) / best.k_chunk));
  return best;
}

/// Whether an m x n x k product fits the engine's 32-bit indexing (the callers cut larger
/// batches into pieces that do).
inline bool igemm_fits(long long m, long long n, long long k) noexcept {
  constexpr long long limit = 0x7fffffffLL;
  return m >= 1 && n >= 1 && k >= 0 && m <= limit && n <= limit && k <= limit;
}

}  // namespace gpukit::nn::detail
