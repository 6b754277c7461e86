// gpukit/train/metrics.cuh — the GPU path of accumulate_metrics (see metrics.hpp): one
// block counts the batch's correct predictions and one thread adds them and the loss to
// the running sums, so consecutive steps on one stream never race. Needs nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/train/metrics.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/core/launch.cuh"
#include "gpukit/train/metrics.hpp"

#include <cub/block/block_reduce.cuh>

namespace gpukit::train {

namespace detail {

inline constexpr int metrics_threads = 256;

template <class = void>
__global__ void __launch_bounds__(metrics_threads)
    metrics_kernel(const float* loss, const float* out, const float* target, std::size_t n, std::size_t features,
                   float threshold, running_metrics* acc) {
  using reduce = cub::BlockReduce<unsigned, metrics_threads>;
  __shared__ typename reduce::TempStorage scratch;
  unsigned correct = 0;
  for (std::size_t i = threadIdx.x; i < n; i += metrics_threads)
    correct += prediction_correct(out + i * features, target + i * features, features, threshold) ? 1u : 0u;
  const unsigned total = reduce(scratch).Sum(correct);
  if (threadIdx.x == 0) {
    acc->loss_sum += static_cast<double>(*loss) * static_cast<double>(n);
    acc->correct += static_cast<double>(total);
    acc->count += static_cast<double>(n);
  }
}

inline void accumulate_metrics_impl(const cuda_executor& exec, const float* loss,
                                    nn::device_tensor_view<const float> output, const float* target, float threshold,
                                    running_metrics* acc) {
  launch_config cfg;
  cfg.grid = dim3(1);
  cfg.block = dim3(metrics_threads);
  launch(metrics_kernel<>, cfg, exec.stream(), loss, static_cast<const float*>(output.data), target,
         static_cast<std::size_t>(output.shape.n), output.shape.features(), threshold, acc);
}

}  // namespace detail

}  // namespace gpukit::train
