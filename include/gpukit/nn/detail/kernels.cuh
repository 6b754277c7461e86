// gpukit/nn/detail/kernels.cuh — what the nn kernels share: launch configurations that
// need no occupancy query (so a training step can be captured into a CUDA graph on its
// first call), and warp sums.
//
// Every nn kernel is a template (`template <class = void>` where nothing else makes it
// one, launched as kernel<>): a header-only library's kernels are compiled into each
// translation unit that includes them, and only templates may be defined more than once.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/detail/kernels.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/core/device.hpp"
#include "gpukit/core/launch.cuh"

#include <algorithm>
#include <cstddef>

namespace gpukit::nn::detail {

inline constexpr int elementwise_threads = 256;

/// A 1-D configuration for a grid-stride kernel over `count` items: one thread per item up
/// to a full device of resident threads (2048 per SM). count = 0 gives an empty launch.
inline launch_config grid_for(std::size_t count, int block = elementwise_threads) {
  launch_config cfg;
  cfg.block = dim3(static_cast<unsigned>(block));
  if (count == 0) return cfg;
  const std::size_t needed = (count + block - 1) / block;
  const std::size_t cap = static_cast<std::size_t>(current_sm_count()) * (2048 / block);
  cfg.grid = dim3(static_cast<unsigned>(std::min(needed, cap)));
  return cfg;
}

/// The indices [0, n) of a 1-D grid-stride loop, as 64-bit integers.
#define GPUKIT_NN_GRID_STRIDE(i, n)                                                                  \
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);         \
       i += static_cast<long long>(gridDim.x) * blockDim.x)

// Asynchronous global-to-shared copies (cp.async): a staging loop issues every copy without
// waiting for any, so a block's loads are in flight together instead of one round trip per
// loop iteration. `copy` false fills the destination with zeros (padding, ragged edges) and
// reads nothing from `gmem`. cp_async16 needs both addresses 16-byte aligned.
//
// cp.async exists from compute capability 8.0. Compiled for an older architecture the same
// functions copy synchronously (the data is in shared memory when they return) and
// commit/wait do nothing, so every kernel written against them stays correct: a copy that
// has already landed is one that a later wait would have waited for.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define GPUKIT_NN_HAS_CP_ASYNC 1
#else
#define GPUKIT_NN_HAS_CP_ASYNC 0
#endif

__device__ __forceinline__ void cp_async4(float* smem, const float* gmem, bool copy) {
#if GPUKIT_NN_HAS_CP_ASYNC
  const auto dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(gmem), "r"(copy ? 4 : 0));
#else
  *smem = copy ? *gmem : 0.0f;
#endif
}
__device__ __forceinline__ void cp_async16(float* smem, const float* gmem, bool copy) {
#if GPUKIT_NN_HAS_CP_ASYNC
  const auto dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(copy ? 16 : 0));
#else
  *reinterpret_cast<float4*>(smem) = copy ? *reinterpret_cast<const float4*>(gmem) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#endif
}
/// Closes this thread's copies issued since the last commit into one group.
__device__ __forceinline__ void cp_async_commit() {
#if GPUKIT_NN_HAS_CP_ASYNC
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
/// Waits until at most `Pending` committed groups of this thread are still in flight.
template <int Pending>
__device__ __forceinline__ void cp_async_wait() {
#if GPUKIT_NN_HAS_CP_ASYNC
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
#endif
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

/// Raises a kernel's dynamic shared memory limit when it needs more than the default 48 KiB.
template <class Kernel>
void allow_shared_bytes(Kernel* kernel, std::size_t bytes) {
  if (bytes > 48 * 1024)
    GPUKIT_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

}  // namespace gpukit::nn::detail
