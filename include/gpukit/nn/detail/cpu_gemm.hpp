// gpukit/nn/detail/cpu_gemm.hpp — the CPU fallback's matrix product: a cache-blocked GEMM
// over packed panels with a register-blocked micro-kernel, compiled for several x86 ISAs
// in one build and chosen at run time, parallel over output blocks.
//
//   cpu_gemm(threads, m, n, k, alpha, a, a_row, a_col, b, b_row, b_col, beta, c, ldc)
//     C (m x n, row-major, leading dimension ldc) = alpha·A·B + beta·C, where element
//     (i, p) of A is a[i·a_row + p·a_col] and element (p, j) of B is b[p·b_row + j·b_col]:
//     a transpose is only a swap of the two strides.
//
// The loops are Goto's (and BLIS's): for each block of nc columns of C and each step of kc
// along k, B's kc x nc block is copied into panels of NR columns (each panel read from L1
// by the micro-kernel), and for each block of mc rows A's mc x kc block into panels of MR
// rows (kept in L2); the micro-kernel then adds an MR x NR tile of A·B held in registers.
// Packing makes every operand layout (strides, transposes, the conv layer's implicit
// im2col) the same contiguous stream for the kernel, and it is where the layout is paid
// for: once per element per block instead of once per multiply-add.
//
// ISAs: the micro-kernel is written with GCC/Clang vector extensions (no intrinsics), so
// the same source becomes an AVX-512 kernel (12 x 32 floats), an AVX2+FMA kernel (6 x 16)
// or the baseline SSE2/NEON one (6 x 8) depending on the target attribute of the function
// it is inlined into; best_cpu_isa() asks the CPU once (__builtin_cpu_supports, which also
// checks that the OS saves the wider registers). The library is built without -march
// flags and still runs AVX-512 or AVX2 where the CPU has it. Other compilers get a
// scalar kernel of the same shape (GPUKIT_CPU_GEMM_VECTOR_EXT is 0). The environment
// variable GPUKIT_CPU_GEMM_ISA=portable|avx2|avx512 caps the choice (to measure one
// kernel against another); it never raises it past what the CPU supports.
//
// Determinism: every element of C is summed in one fixed order (k in steps of kc from 0,
// each step a chain of multiply-adds in p order whose alpha·sum is then added to C),
// whatever the blocking of m and n and the number of threads: work is split over blocks
// of C, never over k. The same inputs give the same bits for any thread count on one
// machine (the ISA chosen may differ between machines: AVX2/AVX-512 fuse the
// multiply-adds, SSE2 rounds twice).
//
// Threads and memory: a product runs on up to the threads it is given, fewer when it is
// too small to pay for a team; the packing buffers (a few hundred KiB per thread) are
// allocated before the team starts and kept by the calling thread for its next call.
// Host-only: plain C++17 (OpenMP pragmas when compiled with OpenMP).
#pragma once

#include "gpukit/nn/precision.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#if defined(_OPENMP)
#include <omp.h>
#endif

// GCC and Clang (and nvcc's front end, which hands host code to one of them) have vector
// extensions and per-function target attributes; x86 has the ISAs worth compiling for.
#if !defined(GPUKIT_CPU_GEMM_VECTOR_EXT)
#if defined(__GNUC__) || defined(__clang__)
#define GPUKIT_CPU_GEMM_VECTOR_EXT 1
#else
#define GPUKIT_CPU_GEMM_VECTOR_EXT 0
#endif
#endif
#if !defined(GPUKIT_CPU_GEMM_MULTIVERSION)
#if GPUKIT_CPU_GEMM_VECTOR_EXT && (defined(__x86_64__) || defined(__i386__))
#define GPUKIT_CPU_GEMM_MULTIVERSION 1
#else
#define GPUKIT_CPU_GEMM_MULTIVERSION 0
#endif
#endif

#if GPUKIT_CPU_GEMM_VECTOR_EXT
// The kernel's loops over its tile must be unrolled completely so that the accumulators
// become registers; -O2 alone does not unroll loops that grow the code.
#define GPUKIT_CPU_GEMM_UNROLL _Pragma("GCC unroll 32")
#define GPUKIT_CPU_GEMM_INLINE inline __attribute__((always_inline))
#define GPUKIT_CPU_GEMM_RESTRICT __restrict__
#else
#define GPUKIT_CPU_GEMM_UNROLL
#define GPUKIT_CPU_GEMM_INLINE inline
#define GPUKIT_CPU_GEMM_RESTRICT
#endif
// Transposing copies (a row-major operand packed along k, an image made channels-last) go
// 8 x 8 elements at a time through vector shuffles where the compiler has them (GCC 12,
// Clang); element by element elsewhere.
#if !defined(GPUKIT_CPU_GEMM_SHUFFLE)
#if GPUKIT_CPU_GEMM_VECTOR_EXT && defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define GPUKIT_CPU_GEMM_SHUFFLE 1
#endif
#endif
#endif
#if !defined(GPUKIT_CPU_GEMM_SHUFFLE)
#define GPUKIT_CPU_GEMM_SHUFFLE 0
#endif
#if GPUKIT_CPU_GEMM_MULTIVERSION
#define GPUKIT_CPU_GEMM_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define GPUKIT_CPU_GEMM_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif

#if defined(__CUDACC__)
// nvcc's front end does not know "#pragma GCC unroll" and says so, but passes it on to the
// host compiler, which is all the pragma is for.
#pragma nv_diagnostic push
#pragma nv_diag_suppress 1675
#endif

namespace gpukit::nn::detail {

/// The instruction sets the CPU GEMM has a kernel for.
enum class cpu_isa { portable, avx2, avx512 };

inline const char* cpu_isa_name(cpu_isa isa) noexcept {
  switch (isa) {
    case cpu_isa::avx512: return "avx512";
    case cpu_isa::avx2: return "avx2";
    default: return "portable";
  }
}

/// Whether this build has a kernel for `isa` and the CPU (and OS) can run it.
inline bool cpu_isa_supported(cpu_isa isa) noexcept {
  if (isa == cpu_isa::portable) return true;
#if GPUKIT_CPU_GEMM_MULTIVERSION
  __builtin_cpu_init();  // may run before libgcc's constructor when called from a static initialiser
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == cpu_isa::avx2) return avx2;
  return avx2 && __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

/// The widest supported kernel, capped by GPUKIT_CPU_GEMM_ISA when set; asked once.
inline cpu_isa best_cpu_isa() noexcept {
  static const cpu_isa best = [] {
    cpu_isa isa = cpu_isa::portable;
    if (cpu_isa_supported(cpu_isa::avx512)) {
      isa = cpu_isa::avx512;
    } else if (cpu_isa_supported(cpu_isa::avx2)) {
      isa = cpu_isa::avx2;
    }
    if (const char* cap = std::getenv("GPUKIT_CPU_GEMM_ISA")) {
      const std::string s = cap;
      if (s == "portable") isa = cpu_isa::portable;
      if (s == "avx2" && isa == cpu_isa::avx512) isa = cpu_isa::avx2;
    }
    return isa;
  }();
  return best;
}

namespace cpu_gemm_impl {

using index = long long;

// ---- the micro-kernel ---------------------------------------------------------------------

#if GPUKIT_CPU_GEMM_VECTOR_EXT
template <class T, int VW>
struct vector_of {
  typedef T type __attribute__((vector_size(VW * sizeof(T))));
};
// Vectors pass by reference only: a wide vector by value changes the ABI of a function
// compiled without the ISA (GCC's -Wpsabi), even where it is always inlined.
template <class V, class T>
GPUKIT_CPU_GEMM_INLINE void load_vector(V& v, const T* p) {
  std::memcpy(&v, p, sizeof v);  // one unaligned vector load
}
template <class V, class T>
GPUKIT_CPU_GEMM_INLINE void store_vector(T* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}
#else
// The same kernel, with a lane loop the compiler may vectorise on its own.
template <class T, int VW>
struct vector_of {
  struct type {
    T lane[VW];
    type& operator+=(const type& o) {
      for (int i = 0; i < VW; ++i) lane[i] += o.lane[i];
      return *this;
    }
  };
};
template <class V, class T>
inline void load_vector(V& v, const T* p) {
  std::memcpy(&v, p, sizeof v);
}
template <class V, class T>
inline void store_vector(T* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}
template <class V, class T>
inline V operator*(T s, const V& v) {
  V r;
  for (std::size_t i = 0; i < sizeof(V) / sizeof(T); ++i) r.lane[i] = s * v.lane[i];
  return r;
}
template <class V>
inline V operator+(V a, const V& b) {
  return a += b;
}
#endif

/// d[0, n) = s[0, n) for the short runs packing copies (a row of a panel, a row of an
/// image), 0 <= n <= MaxN (the panel width): whole 64-byte moves, then one more ending at
/// n that overlaps the last (the same values written twice); 16-byte moves the same way for
/// runs shorter than 64 bytes. Every loop has a constant trip count and is unrolled: a
/// loop bounded by n is turned by GCC into a memmove call, which costs more than the run.
template <int MaxN, class T>
GPUKIT_CPU_GEMM_INLINE void copy_run(T* GPUKIT_CPU_GEMM_RESTRICT d, const T* GPUKIT_CPU_GEMM_RESTRICT s, index n) {
  constexpr index wide = static_cast<index>(64 / sizeof(T)), narrow = static_cast<index>(16 / sizeof(T));
  if (MaxN >= wide && n >= wide) {
    GPUKIT_CPU_GEMM_UNROLL
    for (index e = 0; e + wide < MaxN; e += wide)
      if (e + wide < n) std::memcpy(d + e, s + e, 64);
    std::memcpy(d + n - wide, s + n - wide, 64);
  } else if (n >= narrow) {
    GPUKIT_CPU_GEMM_UNROLL
    for (index e = 0; e + narrow < wide; e += narrow)
      if (e + narrow < n) std::memcpy(d + e, s + e, 16);
    std::memcpy(d + n - narrow, s + n - narrow, 16);
  } else {
    GPUKIT_CPU_GEMM_UNROLL
    for (index e = 0; e < narrow - 1; ++e)
      if (e < n) d[e] = s[e];
  }
}
/// d[0, n) = 0 for 0 <= n <= MaxN, as copy_run.
template <int MaxN, class T>
GPUKIT_CPU_GEMM_INLINE void zero_run(T* d, index n) {
  constexpr index wide = static_cast<index>(64 / sizeof(T)), narrow = static_cast<index>(16 / sizeof(T));
  if (MaxN >= wide && n >= wide) {
    GPUKIT_CPU_GEMM_UNROLL
    for (index e = 0; e + wide < MaxN; e += wide)
      if (e + wide < n) std::memset(d + e, 0, 64);
    std::memset(d + n - wide, 0, 64);
  } else if (n >= narrow) {
    GPUKIT_CPU_GEMM_UNROLL
    for (index e = 0; e + narrow < wide; e += narrow)
      if (e + narrow < n) std::memset(d + e, 0, 16);
    std::memset(d + n - narrow, 0, 16);
  } else {
    GPUKIT_CPU_GEMM_UNROLL
    for (index e = 0; e < narrow - 1; ++e)
      if (e < n) d[e] = T(0);
  }
}

/// dst[j·ld + i] = src[i·ls + j] for an 8 x 8 block, in registers where shuffles exist.
template <class T>
GPUKIT_CPU_GEMM_INLINE void transpose8(const T* GPUKIT_CPU_GEMM_RESTRICT src, index ls, T* GPUKIT_CPU_GEMM_RESTRICT dst,
                                       index ld) {
#if GPUKIT_CPU_GEMM_SHUFFLE
  using V = typename vector_of<T, 8>::type;
  V r0, r1, r2, r3, r4, r5, r6, r7;
  load_vector(r0, src), load_vector(r1, src + ls), load_vector(r2, src + 2 * ls), load_vector(r3, src + 3 * ls);
  load_vector(r4, src + 4 * ls), load_vector(r5, src + 5 * ls), load_vector(r6, src + 6 * ls);
  load_vector(r7, src + 7 * ls);
  // Pairs of rows interleaved, then pairs of pairs, then the two halves.
  const V t0 = __builtin_shufflevector(r0, r1, 0, 8, 1, 9, 4, 12, 5, 13);
  const V t1 = __builtin_shufflevector(r0, r1, 2, 10, 3, 11, 6, 14, 7, 15);
  const V t2 = __builtin_shufflevector(r2, r3, 0, 8, 1, 9, 4, 12, 5, 13);
  const V t3 = __builtin_shufflevector(r2, r3, 2, 10, 3, 11, 6, 14, 7, 15);
  const V t4 = __builtin_shufflevector(r4, r5, 0, 8, 1, 9, 4, 12, 5, 13);
  const V t5 = __builtin_shufflevector(r4, r5, 2, 10, 3, 11, 6, 14, 7, 15);
  const V t6 = __builtin_shufflevector(r6, r7, 0, 8, 1, 9, 4, 12, 5, 13);
  const V t7 = __builtin_shufflevector(r6, r7, 2, 10, 3, 11, 6, 14, 7, 15);
  const V u0 = __builtin_shufflevector(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13);
  const V u1 = __builtin_shufflevector(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
  const V u2 = __builtin_shufflevector(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13);
  const V u3 = __builtin_shufflevector(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
  const V u4 = __builtin_shufflevector(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13);
  const V u5 = __builtin_shufflevector(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15);
  const V u6 = __builtin_shufflevector(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13);
  const V u7 = __builtin_shufflevector(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
  const V o0 = __builtin_shufflevector(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11);
  const V o1 = __builtin_shufflevector(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11);
  const V o2 = __builtin_shufflevector(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11);
  const V o3 = __builtin_shufflevector(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11);
  const V o4 = __builtin_shufflevector(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15);
  const V o5 = __builtin_shufflevector(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15);
  const V o6 = __builtin_shufflevector(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15);
  const V o7 = __builtin_shufflevector(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15);
  store_vector(dst, o0), store_vector(dst + ld, o1), store_vector(dst + 2 * ld, o2), store_vector(dst + 3 * ld, o3);
  store_vector(dst + 4 * ld, o4), store_vector(dst + 5 * ld, o5), store_vector(dst + 6 * ld, o6);
  store_vector(dst + 7 * ld, o7);
#else
  for (int j = 0; j < 8; ++j)
    for (int i = 0; i < 8; ++i) dst[j * ld + i] = src[i * ls + j];
#endif
}

/// dst[j·ld + i] = src[i·ls + j] for i < rows, j < cols: 8 x 8 blocks, then the edges.
template <class T>
GPUKIT_CPU_GEMM_INLINE void transpose_block(const T* src, index ls, index rows, index cols, T* dst, index ld) {
  index i = 0;
  for (; i + 8 <= rows; i += 8) {
    index j = 0;
    for (; j + 8 <= cols; j += 8) transpose8(src + i * ls + j, ls, dst + j * ld + i, ld);
    for (; j < cols; ++j)
      for (index e = 0; e < 8; ++e) dst[j * ld + i + e] = src[(i + e) * ls + j];
  }
  for (; i < rows; ++i)
    for (index j = 0; j < cols; ++j) dst[j * ld + i] = src[i * ls + j];
}

/// One MR x NR tile: C = alpha·(A panel · B panel) + beta·C, where the A panel holds kc
/// columns of MR values (a[p·MR + i]) and the B panel kc rows of NR = NV·VW values
/// (b[p·NR + j]). beta == 0 writes without reading C. Each element is a chain of kc
/// multiply-adds in p order, whatever its place in the tile.
template <class T, int MR, int NV, int VW>
GPUKIT_CPU_GEMM_INLINE void micro_tile(index kc, const T* GPUKIT_CPU_GEMM_RESTRICT a,
                                       const T* GPUKIT_CPU_GEMM_RESTRICT b, T alpha, T beta, T* c, index ldc) {
  using V = typename vector_of<T, VW>::type;
  constexpr int NR = NV * VW;
  V acc[MR][NV];
  GPUKIT_CPU_GEMM_UNROLL
  for (int i = 0; i < MR; ++i) {
    GPUKIT_CPU_GEMM_UNROLL
    for (int v = 0; v < NV; ++v) acc[i][v] = V{};
  }
  for (index p = 0; p < kc; ++p) {
    V bv[NV];
    GPUKIT_CPU_GEMM_UNROLL
    for (int v = 0; v < NV; ++v) load_vector(bv[v], b + p * NR + v * VW);
    GPUKIT_CPU_GEMM_UNROLL
    for (int i = 0; i < MR; ++i) {
      const T ai = a[p * MR + i];
      GPUKIT_CPU_GEMM_UNROLL
      for (int v = 0; v < NV; ++v) acc[i][v] += ai * bv[v];
    }
  }
  if (beta == T(0)) {
    GPUKIT_CPU_GEMM_UNROLL
    for (int i = 0; i < MR; ++i) {
      GPUKIT_CPU_GEMM_UNROLL
      for (int v = 0; v < NV; ++v) {
        const V out = alpha * acc[i][v];
        store_vector(c + i * ldc + v * VW, out);
      }
    }
  } else {
    GPUKIT_CPU_GEMM_UNROLL
    for (int i = 0; i < MR; ++i) {
      GPUKIT_CPU_GEMM_UNROLL
      for (int v = 0; v < NV; ++v) {
        V out;
        load_vector(out, c + i * ldc + v * VW);
        out = alpha * acc[i][v] + beta * out;
        store_vector(c + i * ldc + v * VW, out);
      }
    }
  }
}

/// Every MR x NR tile of an mc x nc block of C from packed A (mc rows, in panels of MR) and
/// packed B (nc columns, in panels of NR). The B panel stays in L1 while the A panels
/// stream past it. Tiles cut by the block's edge go through a local tile with the same
/// kernel, so an element's bits do not depend on where the tile boundaries fall.
template <class T, int MR, int NV, int VW>
GPUKIT_CPU_GEMM_INLINE void block_tiles(index mc, index nc, index kc, const T* ap, const T* bp, T alpha, T beta,
                                        T* c, index ldc) {
  constexpr int NR = NV * VW;
  alignas(64) T edge[MR * NR];
  bool edge_ready = false;
  for (index jr = 0; jr < nc; jr += NR) {
    const int nr = static_cast<int>(std::min<index>(NR, nc - jr));
    for (index ir = 0; ir < mc; ir += MR) {
      const int mr = static_cast<int>(std::min<index>(MR, mc - ir));
      T* tile = c + ir * ldc + jr;
      const bool full = mr == MR && nr == NR;
      if (!full) {
        if (!edge_ready) std::fill(edge, edge + MR * NR, T(0)), edge_ready = true;
        if (beta != T(0))
          for (int i = 0; i < mr; ++i)
            for (int j = 0; j < nr; ++j) edge[i * NR + j] = tile[i * ldc + j];
      }
      micro_tile<T, MR, NV, VW>(kc, ap + ir * kc, bp + jr * kc, alpha, beta, full ? tile : edge,
                                full ? ldc : NR);
      if (!full)
        for (int i = 0; i < mr; ++i)
          for (int j = 0; j < nr; ++j) tile[i * ldc + j] = edge[i * NR + j];
    }
  }
}

// ---- packing ----------------------------------------------------------------------------------
//
// A packer copies `lanes` lanes (rows of A, or columns of B) from lane l0 on, `depth` steps
// of k from d0 on, into panels of R lanes: lane l, step d lands at
// dst[(l / R)·R·depth + d·R + l % R], and the lanes past the end of the last panel are
// zeros (the kernel computes them and block_tiles drops them). Packers are inlined into
// the kernel's block function, so their copies are compiled for its ISA too; a packer is
// any type with `template <int R> void pack(T* dst, index l0, index lanes, index d0,
// index depth) const`, marked GPUKIT_CPU_GEMM_INLINE.

template <class T>
struct strided_panels {
  const T* data;
  index lane_stride, depth_stride;  // element (lane, d) = data[lane·lane_stride + d·depth_stride]

  template <int R>
  GPUKIT_CPU_GEMM_INLINE void pack(T* dst, index l0, index lanes, index d0, index depth) const {
    for (index lp = 0; lp < lanes; lp += R) {
      const int count = static_cast<int>(std::min<index>(R, lanes - lp));
      T* panel = dst + lp * depth;
      const T* src = data + (l0 + lp) * lane_stride + d0 * depth_stride;
      if (count == R && lane_stride == 1) {  // each step's R lanes are contiguous: a row copy
        for (index d = 0; d < depth; ++d) std::memcpy(panel + d * R, src + d * depth_stride, R * sizeof(T));
      } else if (depth_stride == 1) {  // each lane is contiguous along k: a transpose
        transpose_block(src, lane_stride, count, depth, panel, R);
        for (int r = count; r < R; ++r)
          for (index d = 0; d < depth; ++d) panel[d * R + r] = T(0);
      } else {
        for (index d = 0; d < depth; ++d)
          for (int r = 0; r < R; ++r)
            panel[d * R + r] = r < count ? src[r * lane_stride + d * depth_stride] : T(0);
      }
    }
  }
};

/// A packer that rounds what `inner` packs to the operand format of `numbers` (TF32 or
/// bf16, nn/precision.hpp): the operands of a model in that precision, rounded as the GPU
/// rounds them for its tensor cores, so that the CPU stays the GPU's reference. In fp32 it
/// costs one test per packed block.
template <class T, class P>
struct rounding_panels {
  P inner;
  precision numbers = precision::fp32;

  template <int R>
  GPUKIT_CPU_GEMM_INLINE void pack(T* dst, index l0, index lanes, index d0, index depth) const {
    inner.template pack<R>(dst, l0, lanes, d0, depth);
    const index count = (lanes + R - 1) / R * R * depth;
    if (numbers == precision::tf32) {
      for (index i = 0; i < count; ++i) dst[i] = round_to_tf32(dst[i]);
    } else if (numbers == precision::bf16) {
      for (index i = 0; i < count; ++i) dst[i] = round_to_bf16(dst[i]);
    }
  }
};
/// `packer` with its elements rounded to the operand format of `numbers`.
template <class T, class P>
rounding_panels<T, P> operands_of(const P& packer, precision numbers) {
  return {packer, numbers};
}

/// Per-thread packing buffers (and room for the caller's own scratch).
template <class T>
struct gemm_scratch {
  T* a = nullptr;
  T* b = nullptr;
  T* extra = nullptr;
};

/// An operand packed once for the whole product (the conv layer's weights: every task
/// would otherwise pack the same matrix again): step d0 of k (a multiple of kc) of lanes
/// from l0 (a multiple of the panel width) on is at data + d0·padded_lanes + l0·depth,
/// where depth is that step's length, min(kc, k - d0).
template <class T>
struct prepacked_panels {
  const T* data = nullptr;
  index padded_lanes = 0;
};

// ---- one kernel per ISA ---------------------------------------------------------------------
//
// mr x nr is the register tile (accumulators: mr·nr/lanes of the 16 or 32 vector registers,
// leaving room for the B vectors and the broadcast A value); kc x nr elements of B fill
// about two thirds of a 48 KiB L1, mc x kc of A a fraction of L2, kc x nc of B the part of
// L2 a thread can count on. tiles(), pack() and transpose() are the entry points compiled
// for the ISA (packers are inlined into pack(), so their copies use its vectors too); the
// kernel stays a function of its own so that its loop has every register to itself.

#define GPUKIT_CPU_GEMM_ENTRY_POINTS(TARGET)                                                                    \
  TARGET static void tiles(index m, index n, index k, const T* ap, const T* bp, T alpha, T beta, T* c,         \
                           index ldc) {                                                                         \
    block_tiles<T, mr, nv, vw>(m, n, k, ap, bp, alpha, beta, c, ldc);                                          \
  }                                                                                                             \
  template <int R, class P>                                                                                    \
  TARGET static void pack(const P& packer, T* dst, index l0, index lanes, index d0, index depth) {             \
    packer.template pack<R>(dst, l0, lanes, d0, depth);                                                        \
  }                                                                                                             \
  TARGET static void transpose(const T* src, index ls, index rows, index cols, T* dst, index ld) {             \
    transpose_block(src, ls, rows, cols, dst, ld);                                                             \
  }

template <class T, cpu_isa I>
struct kernel;

template <class T>
struct kernel<T, cpu_isa::portable> {
#if GPUKIT_CPU_GEMM_VECTOR_EXT
  static constexpr int vw = static_cast<int>(16 / sizeof(T)), nv = 2, mr = 6;  // SSE2 / NEON: 16 registers
#else
  static constexpr int vw = 1, nv = 4, mr = 4;
#endif
  static constexpr int nr = nv * vw;
  static constexpr index kc = 256, mc = 96, nc = 1024;
  GPUKIT_CPU_GEMM_ENTRY_POINTS()
};

#if GPUKIT_CPU_GEMM_MULTIVERSION
template <class T>
struct kernel<T, cpu_isa::avx2> {
  static constexpr int vw = static_cast<int>(32 / sizeof(T)), nv = 2, mr = 6;  // 12 accumulators of 16 ymm
  static constexpr int nr = nv * vw;
  static constexpr index kc = 256, mc = 96, nc = 1024;
  GPUKIT_CPU_GEMM_ENTRY_POINTS(GPUKIT_CPU_GEMM_TARGET_AVX2)
};

template <class T>
struct kernel<T, cpu_isa::avx512> {
  static constexpr int vw = static_cast<int>(64 / sizeof(T)), nv = 2, mr = 12;  // 24 accumulators of 32 zmm
  static constexpr int nr = nv * vw;
  static constexpr index kc = 256, mc = 144, nc = 1024;
  GPUKIT_CPU_GEMM_ENTRY_POINTS(GPUKIT_CPU_GEMM_TARGET_AVX512)
};
#endif
#undef GPUKIT_CPU_GEMM_ENTRY_POINTS

template <class K>
struct kernel_tag {
  using type = K;
};

/// Calls f(kernel_tag<kernel<T, isa>>{}): everything that depends on the tile shape (the
/// packing, the blocking, the task grid) is instantiated once per ISA.
template <class T, class F>
void with_kernel(cpu_isa isa, F&& f) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gpukit: the CPU GEMM takes float or double");
#if GPUKIT_CPU_GEMM_MULTIVERSION
  if (isa == cpu_isa::avx512) return f(kernel_tag<kernel<T, cpu_isa::avx512>>{});
  if (isa == cpu_isa::avx2) return f(kernel_tag<kernel<T, cpu_isa::avx2>>{});
#endif
  (void)isa;
  f(kernel_tag<kernel<T, cpu_isa::portable>>{});
}

/// The packing buffer sizes for kernel K when no task spans more than `cols` columns.
template <class K>
constexpr index a_buffer_elements() {
  return K::mc * K::kc;
}
template <class K>
index b_buffer_elements(index cols) {
  const index nc = std::min<index>(K::nc, std::max<index>(cols, 1));
  return (nc + K::nr - 1) / K::nr * K::nr * K::kc;
}

/// The panels the kernel multiplies: packed into `buffer` by the packer (compiled for K's
/// ISA), or, for an operand packed in advance, where they already are.
template <class K, int R, class P, class T>
const T* panels_of(const P& packer, T* buffer, index l0, index lanes, index d0, index depth) {
  K::template pack<R>(packer, buffer, l0, lanes, d0, depth);
  return buffer;
}
template <class K, int R, class T>
const T* panels_of(const prepacked_panels<T>& packed, T*, index l0, index, index d0, index depth) {
  return packed.data + d0 * packed.padded_lanes + l0 * depth;
}

/// C rows [m0, m1) x columns [n0, n1) = alpha·A·B + beta·C on the calling thread, with A
/// read through packer pa (lanes = rows of A) and B through pb (lanes = columns of B); c
/// points at element (m0, n0) of C, rows ldc apart (so C may be a scratch block of just
/// that region). k == 0 or alpha == 0 scales C by beta (beta == 0: zeros, C not read) and
/// reads neither A nor B. With a prepacked operand, m0 (for A) or n0 (for B) must be a
/// multiple of the panel width.
template <class K, class T, class PA, class PB>
void gemm_block(const PA& pa, const PB& pb, index m0, index m1, index n0, index n1, index k, T alpha, T beta, T* c,
                index ldc, const gemm_scratch<T>& s) {
  if (m0 >= m1 || n0 >= n1) return;
  if (k == 0 || alpha == T(0)) {
    for (index i = 0; i < m1 - m0; ++i) {
      T* row = c + i * ldc;
      for (index j = 0; j < n1 - n0; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
    }
    return;
  }
  for (index jc = n0; jc < n1; jc += K::nc) {
    const index nc = std::min<index>(K::nc, n1 - jc);
    for (index pc = 0; pc < k; pc += K::kc) {
      const index kc = std::min<index>(K::kc, k - pc);
      const T* bp = panels_of<K, K::nr>(pb, s.b, jc, nc, pc, kc);
      const T step_beta = pc == 0 ? beta : T(1);  // later steps add to what the first wrote
      for (index ic = m0; ic < m1; ic += K::mc) {
        const index mc = std::min<index>(K::mc, m1 - ic);
        const T* ap = panels_of<K, K::mr>(pa, s.a, ic, mc, pc, kc);
        K::tiles(mc, nc, kc, ap, bp, alpha, step_beta, c + (ic - m0) * ldc + (jc - n0), ldc);
      }
    }
  }
}

// ---- the task grid -----------------------------------------------------------------------------

/// `batches` independent products of m x n, each cut into row_blocks x col_blocks blocks:
/// one task per block. Blocks are whole register tiles, so tiles never straddle tasks.
struct gemm_grid {
  index batches = 1, m = 0, n = 0;
  index row_block = 0, col_block = 0;  // rows and columns per task (the last may be short)
  index row_blocks = 1, col_blocks = 1;

  index tasks() const noexcept { return batches * row_blocks * col_blocks; }
  struct task_range {
    index batch, m0, m1, n0, n1;
  };
  task_range task(index t) const noexcept {
    const index per_batch = row_blocks * col_blocks;
    const index bt = t / per_batch, r = (t % per_batch) / col_blocks, q = t % col_blocks;
    return {bt, r * row_block, std::min(m, (r + 1) * row_block), q * col_block, std::min(n, (q + 1) * col_block)};
  }
};

/// Threads worth starting for `work` multiply-adds: each should get at least 2^17 (about
/// 20 us of one core), below which starting the team costs more than it saves.
inline int useful_threads(int threads, double work) {
  const double per_thread = 131072.0;
  if (threads <= 1 || work < 2 * per_thread) return 1;
  return static_cast<int>(std::min<double>(threads, work / per_thread));
}

/// The grid that finishes first on `threads` threads by a simple model: a task costs its
/// multiply-adds plus its packing (one packed element ~ 16 multiply-adds of kernel time:
/// a copy against a vector FMA), tasks run in rounds of `threads`. `whole_columns` keeps
/// every task to complete rows of C (the conv layer's pool needs whole planes);
/// `max_block` bounds a task's rows x columns where the caller keeps its block of C in
/// scratch (at least one register tile high is always allowed). Bits do not depend on the
/// grid (see the header comment), only the time does.
template <class K>
gemm_grid plan_grid(int threads, index batches, index m, index n, index k, bool whole_columns = false,
                    index max_block = std::numeric_limits<index>::max()) {
  gemm_grid g;
  g.batches = std::max<index>(batches, 0);
  g.m = m, g.n = n;
  const index mt = std::max<index>(1, (m + K::mr - 1) / K::mr), nt = std::max<index>(1, (n + K::nr - 1) / K::nr);
  g.row_block = mt * K::mr, g.col_block = nt * K::nr;
  const bool capped = static_cast<double>(g.row_block) * static_cast<double>(g.col_block) > static_cast<double>(max_block);
  threads = std::max(threads, 1);
  if ((threads == 1 && !capped) || g.batches == 0) return g;
  const double pack_cost = 16.0;
  double best = -1;
  const index reach = capped ? 256 : 4LL * threads;
  const index gm_max = std::min<index>(mt, reach), gn_max = whole_columns ? 1 : std::min<index>(nt, reach);
  for (index gm = 1; gm <= gm_max; ++gm) {
    const index rt = (mt + gm - 1) / gm, rows = (mt + rt - 1) / rt;
    for (index gn = 1; gn <= gn_max; ++gn) {
      const index ct = (nt + gn - 1) / gn, cols = (nt + ct - 1) / ct;
      const double mb = static_cast<double>(rt * K::mr), nb = static_cast<double>(ct * K::nr);
      if (mb * nb > static_cast<double>(max_block) && !(gm == gm_max && gn == gn_max)) continue;
      const index tasks = g.batches * rows * cols;
      const double rounds = static_cast<double>((tasks + threads - 1) / threads);
      const double cost = rounds * (mb * nb + pack_cost * (mb + nb)) * static_cast<double>(std::max<index>(k, 1));
      if (best < 0 || cost < best * 0.999) {
        best = cost;
        g.row_block = rt * K::mr, g.col_block = ct * K::nr, g.row_blocks = rows, g.col_blocks = cols;
      }
    }
  }
  return g;
}

/// 64-byte aligned scratch kept by the calling thread between calls (a training step makes
/// the same calls every step: no allocation, no page faults after the first). Each Slot is
/// a separate buffer: run_grid takes slot 0, prepack slot 1, the layers' own buffers 2 on.
/// The contents do not survive the next request for the same slot and type.
template <class T, int Slot = 0>
T* thread_scratch(std::size_t elements) {
  struct block {
    void* p = nullptr;
    std::size_t bytes = 0;
    ~block() { ::operator delete(p, std::align_val_t{64}); }
  };
  thread_local block cached;
  const std::size_t bytes = elements * sizeof(T);
  if (bytes > cached.bytes) {
    void* fresh = ::operator new(bytes, std::align_val_t{64});  // throws before any work starts
    ::operator delete(cached.p, std::align_val_t{64});
    cached.p = fresh, cached.bytes = bytes;
  }
  return static_cast<T*>(cached.p);
}

/// Runs task(range, scratch) for every task of `grid` on up to `threads` OpenMP threads
/// (static schedule), each thread with packing buffers for kernel K and `extra` elements of
/// its own. Scratch is allocated before the team starts, so an allocation failure throws
/// std::bad_alloc on the caller's thread and no task has run. Tasks must not throw.
template <class K, class T, class F>
void run_grid(int threads, const gemm_grid& grid, std::size_t extra, F&& task) {
  const index tasks = grid.tasks();
  if (tasks <= 0) return;
  const int team = static_cast<int>(std::max<index>(1, std::min<index>(threads, tasks)));
  const auto round = [](std::size_t e) { return (e + 15) / 16 * 16; };
  const std::size_t a_size = round(static_cast<std::size_t>(a_buffer_elements<K>()));
  const std::size_t b_size = round(static_cast<std::size_t>(b_buffer_elements<K>(grid.col_block)));
  const std::size_t per_thread = a_size + b_size + round(extra);
  T* base = thread_scratch<T>(per_thread * static_cast<std::size_t>(team));
  const auto scratch_of = [&](int t) {
    T* p = base + per_thread * static_cast<std::size_t>(t);
    return gemm_scratch<T>{p, p + a_size, p + a_size + b_size};
  };
  if (team == 1) {
    const gemm_scratch<T> s = scratch_of(0);
    for (index t = 0; t < tasks; ++t) task(grid.task(t), s);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(team)
  {
    const gemm_scratch<T> s = scratch_of(omp_get_thread_num());
#pragma omp for schedule(static)
    for (index t = 0; t < tasks; ++t) task(grid.task(t), s);
  }
#else
  const gemm_scratch<T> s = scratch_of(0);
  for (index t = 0; t < tasks; ++t) task(grid.task(t), s);
#endif
}

/// Packs lanes x depth of `packer` for kernel K into panels of R lanes (K::mr for A, K::nr
/// for B) laid out as prepacked_panels says, on up to `threads` threads, into slot 1 of the
/// calling thread's scratch (valid until the next prepack on this thread).
template <class K, int R, class T, class P>
prepacked_panels<T> prepack(int threads, const P& packer, index lanes, index depth) {
  const index padded = (lanes + R - 1) / R * R;
  T* data = thread_scratch<T, 1>(static_cast<std::size_t>(std::max<index>(padded * depth, 1)));
  const index steps = (depth + K::kc - 1) / K::kc, panels = padded / R, jobs = steps * panels;
  const int team = useful_threads(threads, static_cast<double>(padded) * static_cast<double>(depth) * 8.0);
  const auto job = [&](index t) {
    const index d0 = (t / panels) * K::kc, l0 = (t % panels) * R;
    const index kc = std::min<index>(K::kc, depth - d0);
    K::template pack<R>(packer, data + d0 * padded + l0 * kc, l0, std::min<index>(R, lanes - l0), d0, kc);
  };
  if (team <= 1) {
    for (index t = 0; t < jobs; ++t) job(t);
  } else {
#if defined(_OPENMP)
#pragma omp parallel for num_threads(team) schedule(static)
#endif
    for (index t = 0; t < jobs; ++t) job(t);
  }
  return {data, padded};
}

}  // namespace cpu_gemm_impl

/// C (m x n) = alpha·A·B + beta·C on the CPU.
///
/// - Element (i, p) of A (m x k) is a[i·a_row + p·a_col]; element (p, j) of B (k x n) is
///   b[p·b_row + j·b_col]: row-major A is (lda, 1), its transpose (1, lda). Any strides
///   that address valid elements work, including 0 (a broadcast row or column).
/// - C is row-major: element (i, j) is c[i·ldc + j], ldc >= n. It must not overlap A or B.
/// - beta == 0 assigns (C is not read: it may hold NaNs or be uninitialised); k == 0 or
///   alpha == 0 only scales C by beta and reads neither A nor B (the BLAS convention).
/// - Runs on up to `threads` OpenMP threads (cpu_executor::threads()), fewer for small
///   products; returns when done. The result's bits do not depend on `threads`.
/// - `isa` picks the kernel (default: the widest the CPU runs); one the CPU cannot run is
///   refused with std::invalid_argument, as are negative sizes or ldc < n.
template <class T>
void cpu_gemm(int threads, long long m, long long n, long long k, T alpha, const T* a, long long a_row, long long a_col,
              const T* b, long long b_row, long long b_col, T beta, T* c, long long ldc, cpu_isa isa = best_cpu_isa()) {
  using namespace cpu_gemm_impl;
  if (m < 0 || n < 0 || k < 0 || (m > 1 && ldc < n))
    throw std::invalid_argument("gpukit::nn::detail::cpu_gemm: sizes m = " + std::to_string(m) + ", n = " +
                                std::to_string(n) + ", k = " + std::to_string(k) + " with ldc = " +
                                std::to_string(ldc) + " (sizes must be >= 0 and ldc >= n)");
  if (!cpu_isa_supported(isa))
    throw std::invalid_argument(std::string("gpukit::nn::detail::cpu_gemm: argument 'isa' = ") + cpu_isa_name(isa) +
                                " is not supported by this CPU or build");
  if (m == 0 || n == 0) return;
  with_kernel<T>(isa, [&](auto tag) {
    using K = typename decltype(tag)::type;
    const strided_panels<T> pa{a, a_row, a_col}, pb{b, b_col, b_row};
    const int team = useful_threads(threads, static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
    const gemm_grid grid = plan_grid<K>(team, 1, m, n, k);
    run_grid<K, T>(team, grid, 0, [&](const gemm_grid::task_range& r, const gemm_scratch<T>& s) {
      gemm_block<K>(pa, pb, r.m0, r.m1, r.n0, r.n1, k, alpha, beta, c + r.m0 * ldc + r.n0, ldc, s);
    });
  });
}

}  // namespace gpukit::nn::detail

#if defined(__CUDACC__)
#pragma nv_diagnostic pop
#endif
