// gpukit/ops/transform.cuh — the GPU path of gpukit::transform and gpukit::generate:
// cub::DeviceTransform, which picks the fastest memory-access scheme for the chip (bulk
// copies into shared memory on Hopper), so gpukit's elementwise ops run at CUB's speed.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/ops/transform.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/ops/transform.hpp"

#include <cub/device/device_transform.cuh>
#include <cuda/std/tuple>
#include <thrust/iterator/counting_iterator.h>

#include <cstdint>

namespace gpukit::detail {

template <class T, class F, class... U>
void transform_impl(const cuda_executor& exec, device_span<T> out, F f, device_span<const U>... in) {
  if (out.empty()) return;
  GPUKIT_CUDA_TRY(cub::DeviceTransform::Transform(::cuda::std::make_tuple(in.data()...), out.data(),
                                                  static_cast<std::int64_t>(out.size()), f, exec.stream().value()));
}

template <class T, class G>
void generate_impl(const cuda_executor& exec, device_span<T> out, G g) {
  if (out.empty()) return;
  GPUKIT_CUDA_TRY(cub::DeviceTransform::Transform(thrust::counting_iterator<std::int64_t>(0), out.data(),
                                                  static_cast<std::int64_t>(out.size()), g, exec.stream().value()));
}

}  // namespace gpukit::detail
