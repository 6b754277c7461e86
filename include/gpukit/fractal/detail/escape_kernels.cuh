// gpukit/fractal/detail/escape_kernels.cuh — the escape-time kernels behind
// gpukit::fractal::escape_time and count_iterations (mandelbrot.cuh picks one; see
// detail::choose_strategy there, and gpu_strategy in escape_time.hpp, for when each wins).
//
// All of them run the per-pixel iteration of iteration.hpp with its periodicity schedule,
// so each pixel stops at the same iteration, with the same count and the same number of
// iterations performed, whichever kernel ran it and on the CPU alike.
//
// - pixel_kernel: one thread per pixel, no loop over pixels, no warp-level traffic. A warp
//   covers an 8 × 4 tile: neighbouring pixels have similar counts, so a compact tile's
//   slowest pixel (which the whole warp waits for) is closer to its average than a 32-pixel
//   row's. Share of the lanes' iterations that are useful, counted on the CPU for the
//   benchmark scenes: seed 92% with 8 × 4 tiles against 79% with 32 × 1 rows, seahorse
//   valley (4096², 4096 iterations) 53% against 48%, the whole set (8192²) 52% against 35%.
// - pair_kernel: two pixels per thread (the tile below the warp's own), stepped in one
//   instruction stream so that the two independent orbits hide each other's FP64 latency.
//   The warp waits for the slowest of 64 pixels.
// - lane_refill_kernel: a lane whose pixel is done takes the next pixel of the warp's batch
//   while the others keep their orbits, so lanes stay busy however uneven the counts; it
//   pays with warp votes, a divergent set-up phase and 8-warp blocks held by their slowest.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/fractal/detail/escape_kernels.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu), or include only gpukit's .hpp headers"
#endif

#include "gpukit/fractal/iteration.hpp"
#include "gpukit/fractal/scene.hpp"

#include <cstdint>
#include <type_traits>

namespace gpukit::fractal::detail {

/// What a lane writes for a finished pixel: the output element, or (Work) the number of
/// iterations performed.
template <class Out, bool Work>
__device__ __forceinline__ void store(Out* out, std::uint32_t pixel, const escape_result& r) {
  if constexpr (Work) {
    out[pixel] = r.executed;
  } else {
    out[pixel] = to_output<Out>(r);
  }
}

// --- tiled kernels ----------------------------------------------------------------------

/// A warp's tile is 8 pixels wide and 4 high (per pixel of a thread); a block is 2 × 2 warp
/// tiles.
inline constexpr std::uint32_t warp_tile_width = 8;
inline constexpr std::uint32_t warp_tile_height = 4;
inline constexpr std::uint32_t block_tile_width = 2 * warp_tile_width;
/// Threads per block of the tiled kernels: four warps. A block keeps its registers until
/// its slowest warp ends, so blocks are small (with eight warps one long orbit holds seven
/// finished warps' share of the SM), but not the smallest: on the whole set, where many
/// warps end after a few iterations, blocks of two warps were not started fast enough to
/// keep the SMs full (10% slower on the 8192² benchmark scene; 256 threads were 2–6%
/// slower there and no faster anywhere).
inline constexpr int tile_block_threads = 128;
/// Minimum resident blocks asked of ptxas for pixel_kernel: enough to fill an SM's 2048
/// threads (32 registers per thread) where that costs no spills — float and double counts;
/// double-double and the smooth count need more registers than that and get them.
template <class T, class Out, bool Work>
inline constexpr int pixel_kernel_min_blocks =
    std::is_same_v<T, dd_real> || (std::is_same_v<Out, float> && !Work) ? 1 : 2048 / tile_block_threads;

/// The image as a grid of block tiles, one block per tile and no loop in the kernels (a
/// loop over tile rows cost the seed scene 1 µs of its 15): blockIdx.x picks the column of
/// tiles, blockIdx.z · gridDim.y + blockIdx.y the row (gridDim.y is at most 65535).
struct tiling {
  std::uint32_t width;
  std::uint32_t height;
  std::uint32_t tile_rows;    ///< rows of block tiles
  std::uint32_t tile_height;  ///< pixel rows of a block tile
};

/// Block tiles with `pixels` pixels per thread (the warp tiles of one thread's pixels
/// stacked) covering the scene's image, and their grid.
inline tiling make_tiling(const scene& s, std::uint32_t pixels, dim3& grid) {
  constexpr std::uint32_t warp_rows = tile_block_threads / 64;
  constexpr std::uint32_t max_grid_y = 65535;
  const std::uint32_t tile_height = warp_tile_height * pixels * warp_rows;
  const tiling t{static_cast<std::uint32_t>(s.view.width), static_cast<std::uint32_t>(s.view.height),
                 static_cast<std::uint32_t>((s.view.height + tile_height - 1) / tile_height), tile_height};
  const std::uint32_t grid_y = t.tile_rows < max_grid_y ? t.tile_rows : max_grid_y;
  grid = dim3(static_cast<unsigned>((s.view.width + block_tile_width - 1) / block_tile_width), grid_y,
              (t.tile_rows + grid_y - 1) / grid_y);
  return t;
}

/// This block's row of tiles (may lie past the last one in the grid's last z layer).
__device__ __forceinline__ std::uint32_t tile_row_index() { return blockIdx.z * gridDim.y + blockIdx.y; }

/// This thread's column (64-bit: the last tile of a row may reach past 2^32).
__device__ __forceinline__ std::uint64_t tile_column() {
  return static_cast<std::uint64_t>(blockIdx.x) * block_tile_width + ((threadIdx.x >> 5) & 1u) * warp_tile_width +
         threadIdx.x % warp_tile_width;
}

/// This thread's first row in block tile row `by`, with `Pixels` pixels per thread.
template <std::uint32_t Pixels>
__device__ __forceinline__ std::uint64_t tile_row(const tiling& t, std::uint32_t by) {
  return static_cast<std::uint64_t>(by) * t.tile_height + (threadIdx.x >> 6) * (warp_tile_height * Pixels) +
         (threadIdx.x & 31u) / warp_tile_width;
}

/// Pixel column x's and row y's plane coordinates, as escape_pixel computes them.
template <class T>
__device__ __forceinline__ T column_coordinate(const scene& s, std::uint32_t x) {
  return pixel_coordinate<T>(s.view.origin_x, s.view.step_x, s.view.offset_x, static_cast<double>(x));
}
template <class T>
__device__ __forceinline__ T row_coordinate(const scene& s, std::uint32_t y) {
  return pixel_coordinate<T>(s.view.origin_y, s.view.step_y, s.view.offset_y, static_cast<double>(y));
}

/// One thread per pixel: the CPU's own per-pixel function.
template <class T, class Out, bool Work>
__global__ void __launch_bounds__(tile_block_threads, (pixel_kernel_min_blocks<T, Out, Work>))
    pixel_kernel(const scene s, Out* __restrict__ out, const tiling t) {
  constexpr bool smooth = std::is_same_v<Out, float> && !Work;
  const std::uint64_t column = tile_column();
  if (column >= t.width) return;
  const auto x = static_cast<std::uint32_t>(column);
  const std::uint64_t row = tile_row<1>(t, tile_row_index());
  if (row >= t.height) return;
  const auto y = static_cast<std::uint32_t>(row);
  const escape_result r = escape_pixel<smooth, T>(s, static_cast<double>(x), static_cast<double>(y));
  store<Out, Work>(out, y * t.width + x, r);
}

/// One orbit of pair_kernel: iterate()'s state, so that two of them interleave.
template <class T>
struct pair_lane {
  orbit<T> o, saved;
  T cr, ci;
  bool live;        ///< still iterating (false from the start for interior or absent pixels)
  escape_result r;  ///< the result, once decided
};

template <class T>
__device__ __forceinline__ pair_lane<T> start_pair_lane(const scene& s, T re, std::uint32_t y, bool pixel) {
  pair_lane<T> l{};
  if (!pixel) return l;  // below the image: never live, never stored
  const T im = row_coordinate<T>(s, y);
  const orbit_run<T> run = start_at(s, re, im);
  l.o = l.saved = run.o;
  l.cr = run.cr;
  l.ci = run.ci;
  l.live = !decided_interior(s, re, im);
  l.r = interior_result(s.max_iters, 0);
  return l;
}

/// After a block that started at `start` after `done` iterations: records an escape.
template <bool Smooth, class T>
__device__ __forceinline__ void pair_escape(pair_lane<T>& l, const orbit<T>& start, const bool (&out)[escape_block],
                                            std::uint32_t done, std::uint32_t max_iters) {
  bool any = false;
  for (std::uint32_t u = 0; u < escape_block; ++u) any = any | out[u];
  if (l.live && any) {
    l.r = block_escape_result<Smooth>(start, l.cr, l.ci, done, first_escape(out), max_iters);
    l.live = false;
  }
}

/// The periodicity test after a period, as in iterate().
template <class T>
__device__ __forceinline__ void pair_period(pair_lane<T>& l, std::uint32_t done, std::uint32_t max_iters) {
  if (!l.live) return;
  if (same_point(l.o, l.saved)) {
    l.r = interior_result(max_iters, done);
    l.live = false;
  } else if (save_point(done)) {
    l.saved = l.o;
  }
}

/// One step of the last partial period (fewer than period_block iterations left): the
/// result iterate() gets there, one step at a time.
template <bool Smooth, class T>
__device__ __forceinline__ void pair_tail_step(pair_lane<T>& l, std::uint32_t index, std::uint32_t max_iters) {
  step(l.o, l.cr, l.ci);
  if (l.live && escaped(l.o)) {
    l.r = escaped_result<Smooth>(l.o, l.cr, l.ci, index, max_iters);
    l.live = false;
  }
}

/// Two pixels per thread: (x, y) and (x, y + 4), a warp covering 8 × 8. A lane that is no
/// longer live keeps stepping with its partner (its values are never read again): that
/// costs the same issue slots as masking it and keeps the two streams free of branches.
template <class T, class Out, bool Work>
__global__ void __launch_bounds__(tile_block_threads) pair_kernel(const scene s, Out* __restrict__ out, const tiling t) {
  constexpr bool smooth = std::is_same_v<Out, float> && !Work;
  const std::uint64_t column = tile_column();
  if (column >= t.width) return;
  const auto x = static_cast<std::uint32_t>(column);
  const std::uint32_t max_iters = s.max_iters;
  const bool periodicity = periodicity_on(s);
  const std::uint64_t row = tile_row<2>(t, tile_row_index());
  if (row >= t.height) return;  // the second pixel lies further down still
  const bool second = row + warp_tile_height < t.height;
  const auto y = static_cast<std::uint32_t>(row);
  const T re = column_coordinate<T>(s, x);
  pair_lane<T> a = start_pair_lane<T>(s, re, y, true);
  pair_lane<T> b = start_pair_lane<T>(s, re, y + warp_tile_height, second);
  std::uint32_t i = 0;
  while ((a.live || b.live) && max_iters - i >= period_block) {
    for (std::uint32_t blk = 0; blk < period_block; blk += escape_block) {
      const orbit<T> a0 = a.o, b0 = b.o;
      bool out_a[escape_block], out_b[escape_block];
      for (std::uint32_t u = 0; u < escape_block; ++u) {
        step(a.o, a.cr, a.ci);
        step(b.o, b.cr, b.ci);
        out_a[u] = escaped(a.o);
        out_b[u] = escaped(b.o);
      }
      pair_escape<smooth>(a, a0, out_a, i + blk, max_iters);
      pair_escape<smooth>(b, b0, out_b, i + blk, max_iters);
    }
    i += period_block;
    if (periodicity) {
      pair_period(a, i, max_iters);
      pair_period(b, i, max_iters);
    }
  }
  for (; (a.live || b.live) && i < max_iters; ++i) {
    pair_tail_step<smooth>(a, i, max_iters);
    pair_tail_step<smooth>(b, i, max_iters);
  }
  if (a.live) a.r = interior_result(max_iters, max_iters);
  if (b.live) b.r = interior_result(max_iters, max_iters);
  store<Out, Work>(out, y * t.width + x, a.r);
  if (second) store<Out, Work>(out, (y + warp_tile_height) * t.width + x, b.r);
}

// --- lane refill --------------------------------------------------------------------------

inline constexpr unsigned full_warp = 0xffffffffu;
inline constexpr int lane_block_threads = 256;
/// A pass iterates at most this many periods (period_block iterations each) before the warp
/// refills its idle lanes...
inline constexpr int pass_periods = 4;
/// ...and ends early once this many lanes are idle.
inline constexpr int refill_threshold = 8;

/// The lane-refill kernel. Each warp takes batches of consecutive pixels; a lane whose pixel
/// is done (escaped, periodic, or decided by an interior test) writes it, and once a
/// quarter of the warp is idle (or after 32 iterations) the idle lanes take the next pixels
/// while the busy ones keep their orbits. `counter` (zeroed) hands out batches of `batch`
/// pixels; nullptr assigns warp w the batches w, w + warps, w + 2·warps...
template <class T, class Out, bool Work>
__global__ void __launch_bounds__(lane_block_threads)
    lane_refill_kernel(const scene s, Out* __restrict__ out, const std::uint32_t pixels, const std::uint32_t batch,
                       std::uint32_t* __restrict__ counter) {
  constexpr bool smooth = std::is_same_v<Out, float> && !Work;
  const unsigned lane = threadIdx.x & 31u;
  const unsigned lanes_below = (1u << lane) - 1u;
  const std::uint32_t warps = (gridDim.x * blockDim.x) >> 5;
  const std::uint32_t width = static_cast<std::uint32_t>(s.view.width);
  const std::uint32_t max_iters = s.max_iters;
  const bool periodicity = periodicity_on(s);

  // The warp's current batch [next, end) — the same in every lane.
  std::uint32_t next = 0, end = 0;
  std::uint32_t static_batch = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  bool exhausted = false;

  // This lane's pixel.
  bool busy = false;
  std::uint32_t pixel = 0;
  orbit_run<T> run{};

  for (;;) {
    // Refill idle lanes from the batch (taking new batches as needed); pixels an interior
    // test decides are written at once and their lanes go round again.
    for (;;) {
      const unsigned need = __ballot_sync(full_warp, !busy);
      if (need == 0u || exhausted) break;
      if (next == end) {
        std::uint32_t b = static_batch;
        if (counter != nullptr) {
          if (lane == 0) b = atomicAdd(counter, 1u);
          b = __shfl_sync(full_warp, b, 0);
        } else {
          static_batch += warps;
        }
        const std::uint64_t first = static_cast<std::uint64_t>(b) * batch;
        if (first >= pixels) {
          exhausted = true;
          break;
        }
        next = static_cast<std::uint32_t>(first);
        end = static_cast<std::uint32_t>(first + batch < pixels ? first + batch : pixels);
      }
      const unsigned avail = end - next;
      const unsigned rank = __popc(need & lanes_below);
      if (!busy && rank < avail) {
        pixel = next + rank;
        const std::uint32_t y = pixel / width, x = pixel - y * width;
        const T re = column_coordinate<T>(s, x), im = row_coordinate<T>(s, y);
        if (decided_interior(s, re, im)) {
          store<Out, Work>(out, pixel, interior_result(max_iters, 0));
        } else {
          run = start_at(s, re, im);
          busy = true;
        }
      }
      const unsigned taken = __popc(need);
      next += taken < avail ? taken : avail;
    }
    if (__ballot_sync(full_warp, busy) == 0u) return;

    // A pass: periods of the schedule, each lane on its own pixel.
    for (int p = 0; p < pass_periods; ++p) {
      if (busy) {
        escape_result r{};
        if (advance<smooth>(run, max_iters, periodicity, r)) {
          store<Out, Work>(out, pixel, r);
          busy = false;
        }
      }
      const unsigned idle = __ballot_sync(full_warp, !busy);
      if (idle == full_warp || (!exhausted && __popc(idle) >= refill_threshold)) break;
    }
  }
}

}  // namespace gpukit::fractal::detail
