// gpukit/ops/detail/cub_call.cuh — runs a CUB device algorithm with its temporary storage
// taken from a stream-ordered device_buffer (freed on the stream after the kernels).
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/ops/detail/cub_call.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"

#include <cstddef>

namespace gpukit::detail {

/// `call(void* temp, std::size_t& bytes)` is invoked CUB-style: once to size the temporary
/// storage, once to run. With the executor's workspace it first runs directly in the
/// workspace — CUB refuses a too-small block with cudaErrorInvalidValue before launching
/// anything — and sizes only when that fails, so a warm workspace costs one dispatch.
/// `what` names the algorithm in error messages.
template <class Call>
void cub_with_temp_storage(const cuda_executor& exec, const char* what, Call call) {
  std::size_t bytes = 0;
  cudaError_t status = cudaSuccess;
  if (workspace* ws = exec.scratch()) {
    bytes = ws->capacity();
    if (bytes != 0 && call(ws->data(), bytes) == cudaSuccess) return;
    bytes = 0;
    status = call(nullptr, bytes);
    if (status != cudaSuccess) throw_cuda_error(status, std::string(what) + " (sizing)", __FILE__, __LINE__);
    status = call(ws->reserve(bytes == 0 ? 1 : bytes), bytes);
    if (status != cudaSuccess) throw_cuda_error(status, what, __FILE__, __LINE__);
    return;
  }
  status = call(nullptr, bytes);
  if (status != cudaSuccess) throw_cuda_error(status, std::string(what) + " (sizing)", __FILE__, __LINE__);
  device_buffer<unsigned char> temp(bytes == 0 ? 1 : bytes, exec.stream());
  status = call(temp.data(), bytes);
  if (status != cudaSuccess) throw_cuda_error(status, what, __FILE__, __LINE__);
}

}  // namespace gpukit::detail
