// gpukit/train/augment.cuh — the GPU path of augment_batch (see augment.hpp): one thread
// per output pixel computes all its channels with the same per-pixel function as the CPU
// path; writes are coalesced along each output row, the four source pixels it blends come
// through L1. Needs nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/train/augment.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu), or include gpukit/train/augment.hpp for the CPU path"
#endif

#include "gpukit/core/launch.cuh"
#include "gpukit/train/augment.hpp"

#include <algorithm>

namespace gpukit::train {

namespace detail {

inline constexpr unsigned augment_threads = 256;

// Blocks along y walk the images, along x the pixels of one image: the per-image map and
// source pointer are uniform across a block, and pixel indices stay 32-bit (an image holds
// fewer than 2^31 bytes).
template <bool Augment>
__global__ void __launch_bounds__(augment_threads)
    augment_kernel(const std::uint8_t* __restrict__ images, int width, int height, int channels,
                   const std::uint32_t* __restrict__ rows, const sample_map* __restrict__ maps, unsigned count,
                   float scale, float* __restrict__ out) {
  const unsigned plane = static_cast<unsigned>(width) * static_cast<unsigned>(height);
  const std::size_t image_bytes = static_cast<std::size_t>(plane) * static_cast<unsigned>(channels);
  for (unsigned n = blockIdx.y; n < count; n += gridDim.y) {
    const std::uint8_t* src = images + static_cast<std::size_t>(rows[n]) * image_bytes;
    float* dst = out + static_cast<std::size_t>(n) * image_bytes;
    sample_map m;
    if constexpr (Augment) m = maps[n];
    for (unsigned p = blockIdx.x * augment_threads + threadIdx.x; p < plane; p += gridDim.x * augment_threads) {
      const unsigned y = p / static_cast<unsigned>(width), x = p - y * static_cast<unsigned>(width);
      if constexpr (Augment) {
        augment_pixel(src, width, height, channels, m, static_cast<int>(x), static_cast<int>(y), scale, dst + p, plane);
      } else {
        rescale_pixel(src, width, channels, static_cast<int>(x), static_cast<int>(y), scale, dst + p, plane);
      }
    }
  }
}

inline void augment_batch_impl(const cuda_executor& exec, device_span<const std::uint8_t> images, std::size_t width,
                               std::size_t height, std::size_t channels, device_span<const std::uint32_t> rows,
                               device_span<const sample_map> maps, float scale, device_span<float> out) {
  if (rows.empty()) return;
  const std::size_t plane = width * height;
  launch_config cfg;
  cfg.block = dim3(augment_threads);
  cfg.grid = dim3(static_cast<unsigned>(std::min<std::size_t>((plane + augment_threads - 1) / augment_threads, 1u << 16)),
                  static_cast<unsigned>(std::min<std::size_t>(rows.size(), 65535)));
  const auto kernel = maps.empty() ? &augment_kernel<false> : &augment_kernel<true>;
  launch(kernel, cfg, exec.stream(), images.data(), static_cast<int>(width), static_cast<int>(height),
         static_cast<int>(channels), rows.data(), maps.empty() ? nullptr : maps.data(),
         static_cast<unsigned>(rows.size()), scale, out.data());
}

}  // namespace detail
}  // namespace gpukit::train
