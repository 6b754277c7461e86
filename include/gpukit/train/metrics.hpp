// gpukit/train/metrics.hpp — the running loss and accuracy of an epoch, accumulated where
// the model runs: on the GPU a one-block kernel after each step adds the step's loss and
// its correct predictions to three doubles in device memory, so a training loop reads
// them only when it reports (one copy), never per batch.
//
// A prediction is correct when, for a model with one output, (output >= threshold) equals
// (target >= 0.5) — threshold 0.5 for probabilities, 0 for logits — and, for several
// outputs, when the largest output and the largest target are at the same index (the first
// one on ties).
// Host-compilable; the GPU path is in metrics.cuh (nvcc), included from here under nvcc.
#pragma once

#include "gpukit/core/config.hpp"
#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/tensor.hpp"

#include <cstddef>
#include <limits>

namespace gpukit::train {

/// Sums over the samples seen so far (plain old data: it lives in device memory on the GPU).
struct running_metrics {
  double loss_sum = 0;  ///< Σ batch loss × batch size
  double correct = 0;   ///< correct predictions
  double count = 0;     ///< samples

  double loss() const noexcept { return count > 0 ? loss_sum / count : std::numeric_limits<double>::quiet_NaN(); }
  double accuracy() const noexcept { return count > 0 ? correct / count : std::numeric_limits<double>::quiet_NaN(); }
};

/// Whether one sample's `features` outputs predict its target (see the header comment).
GPUKIT_HOST_DEVICE inline bool prediction_correct(const float* out, const float* target, std::size_t features,
                                                  float threshold) {
  if (features == 1) return (out[0] >= threshold) == (target[0] >= 0.5f);
  std::size_t best_out = 0, best_target = 0;
  for (std::size_t k = 1; k < features; ++k) {
    if (out[k] > out[best_out]) best_out = k;
    if (target[k] > target[best_target]) best_target = k;
  }
  return best_out == best_target;
}

namespace detail {

/// A model output of the executor's memory.
template <class Exec>
using output_view_for = nn::tensor_view<const float, is_gpu_executor_v<Exec> ? memory_space::device : memory_space::host>;

inline void accumulate_metrics_impl(const cpu_executor&, const float* loss, nn::host_tensor_view<const float> output,
                                    const float* target, float threshold, running_metrics* acc) {
  const std::size_t n = output.shape.n, f = output.shape.features();
  std::size_t correct = 0;
  for (std::size_t i = 0; i < n; ++i) correct += prediction_correct(output.data + i * f, target + i * f, f, threshold);
  acc->loss_sum += static_cast<double>(*loss) * static_cast<double>(n);
  acc->correct += static_cast<double>(correct);
  acc->count += static_cast<double>(n);
}

#if defined(__CUDACC__)
// Defined in metrics.cuh.
inline void accumulate_metrics_impl(const cuda_executor& exec, const float* loss,
                                    nn::device_tensor_view<const float> output, const float* target, float threshold,
                                    running_metrics* acc);
#else
GPUKIT_GPU_ONLY_STUB(accumulate_metrics_impl)
#endif

}  // namespace detail

/// Adds one batch to `acc`: *loss (the batch mean) × n, and the correct predictions of
/// `output` (n samples) against `target` (the same shape). Every pointer is memory of the
/// executor. CPU: done now; GPU: queued on the executor's stream (capturable).
template <class Exec>
void accumulate_metrics(const Exec& exec, const float* loss, detail::output_view_for<Exec> output, const float* target,
                        float threshold, running_metrics* acc) {
  detail::accumulate_metrics_impl(exec, loss, output, target, threshold, acc);
}

}  // namespace gpukit::train

#if defined(__CUDACC__)
#include "gpukit/train/metrics.cuh"
#endif
