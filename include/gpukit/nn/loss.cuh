// gpukit/nn/loss.cuh — the GPU path of the losses and of the input checks (see loss.hpp).
//
// The check kernel records the first bad index of the input and of the target with
// atomicMin in a step_record on the device, and its last block the values found there: a
// training step queues it without waiting, and the optimizer kernels read the record and
// update nothing when it holds an index.
// The loss kernel is one block (a batch's loss is a few thousand terms at most): each
// thread handles elements (or whole samples for softmax), the sum is reduced in double.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/nn/loss.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/nn/detail/kernels.cuh"
#include "gpukit/nn/loss.hpp"

#include <cub/block/block_reduce.cuh>

#include <cstddef>

namespace gpukit::nn::detail {

template <class = void>
__global__ void validate_kernel(value_check check, const float* input, long long n_input, loss_kind kind,
                                const float* target, long long n_target, step_record* record) {
  const long long n = n_input > n_target ? n_input : n_target;
  GPUKIT_NN_GRID_STRIDE(i, n) {
    if (i < n_input && !value_ok(check, input[i]))
      atomicMin(&record->bad_input, static_cast<unsigned long long>(i));
    if (i < n_target && !target_ok(kind, target[i]))
      atomicMin(&record->bad_target, static_cast<unsigned long long>(i));
  }
  // The last block to finish copies the values at the final indices into the record while
  // the batch is certainly alive (stream order), so no error message reads it later.
  // checked_blocks starts at all ones: the block whose increment returns gridDim.x - 2 is
  // the last one.
  __shared__ bool last_block;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last_block = atomicAdd(&record->checked_blocks, 1u) + 2u == gridDim.x;
  __syncthreads();
  if (last_block && threadIdx.x == 0) {
    const unsigned long long bad_input = atomicOr(&record->bad_input, 0ull);
    const unsigned long long bad_target = atomicOr(&record->bad_target, 0ull);
    if (bad_input != no_bad_index) record->bad_input_value = input[bad_input];
    if (bad_target != no_bad_index) record->bad_target_value = target[bad_target];
  }
}

inline constexpr int loss_threads = 512;

template <class = void>
__global__ void __launch_bounds__(loss_threads) loss_kernel(loss_kind kind, long long rows, long long cols,
                                                            const float* pred, const float* target, float* grad,
                                                            float* loss_out) {
  using block_sum = cub::BlockReduce<double, loss_threads>;
  __shared__ typename block_sum::TempStorage sum_storage;
  const int tid = static_cast<int>(threadIdx.x);
  double local = 0.0;
  double terms = 0.0;
  if (kind == loss_kind::softmax_ce) {
    const float scale = 1.0f / static_cast<float>(rows);
    for (long long r = tid; r < rows; r += loss_threads)
      local += softmax_row(static_cast<int>(cols), pred + r * cols, target + r * cols,
                           grad != nullptr ? grad + r * cols : nullptr, scale);
    terms = static_cast<double>(rows);
  } else {
    const long long count = rows * cols;
    const float scale = 1.0f / static_cast<float>(count);
    for (long long i = tid; i < count; i += loss_threads) {
      float value, slope;
      elementwise_loss(kind, pred[i], target[i], value, slope);
      local += value;
      if (grad != nullptr) grad[i] = slope * scale;
    }
    terms = static_cast<double>(count);
  }
  const double total = block_sum(sum_storage).Sum(local);
  if (tid == 0) *loss_out = static_cast<float>(total / terms);
}

inline void validate_impl(const cuda_executor& exec, value_check check, const float* input, long long n_input,
                          loss_kind kind, const float* target, long long n_target, step_record* record) {
  GPUKIT_CUDA_TRY(cudaMemsetAsync(record, 0xff, offsetof(step_record, loss), exec.stream()));
  const long long n = n_input > n_target ? n_input : n_target;
  launch(validate_kernel<>, grid_for(static_cast<std::size_t>(n)), exec.stream(), check, input, n_input, kind, target,
         n_target, record);
}

inline void step_loss_impl(const cuda_executor& exec, loss_kind kind, long long rows, long long cols, const float* pred,
                           const float* target, float* grad, float* loss_out) {
  launch_config cfg;
  cfg.grid = dim3(1);
  cfg.block = dim3(loss_threads);
  launch(loss_kernel<>, cfg, exec.stream(), kind, rows, cols, pred, target, grad, loss_out);
}

inline step_record read_record_impl(const cuda_executor& exec, const step_record* record, step_record* staging) {
  GPUKIT_CUDA_TRY(cudaMemcpyAsync(staging, record, sizeof(step_record), cudaMemcpyDeviceToHost, exec.stream()));
  exec.synchronize();
  return *staging;
}

inline checked_loss<float> checked_loss_impl(const cuda_executor& exec, value_check check, loss_kind k, long long rows,
                                             long long cols, const float* pred, const float* target, float* grad) {
  const long long count = rows * cols;
  device_buffer<step_record> record(1, exec.stream(), zero_init);
  validate_impl(exec, check, pred, count, k, target, count, record.data());
  step_record host;
  const auto read = [&] {
    GPUKIT_CUDA_TRY(cudaMemcpyAsync(&host, record.data(), sizeof host, cudaMemcpyDeviceToHost, exec.stream()));
    exec.synchronize();
  };
  read();
  checked_loss<float> r;
  r.bad_input = host.bad_input, r.bad_target = host.bad_target;
  r.bad_input_value = host.bad_input_value, r.bad_target_value = host.bad_target_value;
  if (r.bad_input != no_bad_index || r.bad_target != no_bad_index) return r;
  step_loss_impl(exec, k, rows, cols, pred, target, grad, &record.data()->loss);
  read();
  r.loss = host.loss;
  return r;
}

}  // namespace gpukit::nn::detail
