// gpukit/ops/scan.cuh — the GPU path of the scans: cub::DeviceScan on the stream.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/ops/scan.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/ops/detail/cub_call.cuh"
#include "gpukit/ops/scan.hpp"

#include <cub/device/device_scan.cuh>

namespace gpukit::detail {

template <class T, class Op>
void scan_impl(const cuda_executor& exec, device_span<const T> in, device_span<T> out, Op op, bool exclusive, T init) {
  if (in.empty()) return;
  const auto n = static_cast<std::int64_t>(in.size());
  if (exclusive) {
    cub_with_temp_storage(exec, "cub::DeviceScan::ExclusiveScan", [&](void* temp, std::size_t& bytes) {
      return cub::DeviceScan::ExclusiveScan(temp, bytes, in.data(), out.data(), op, init, n, exec.stream().value());
    });
  } else {
    cub_with_temp_storage(exec, "cub::DeviceScan::InclusiveScan", [&](void* temp, std::size_t& bytes) {
      return cub::DeviceScan::InclusiveScan(temp, bytes, in.data(), out.data(), op, n, exec.stream().value());
    });
  }
}

}  // namespace gpukit::detail
