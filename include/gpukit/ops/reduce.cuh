// gpukit/ops/reduce.cuh — the GPU path of the reductions: cub::DeviceReduce on the
// executor's stream. A plain load of the reduced type hands CUB the raw pointer, so sum,
// min and max get CUB's vectorised loads; anything else goes through a transform iterator.
#pragma once

#if !defined(__CUDACC__)
#error "gpukit/ops/reduce.cuh launches kernels and needs nvcc: compile this file as CUDA (.cu)"
#endif

#include "gpukit/ops/detail/cub_call.cuh"
#include "gpukit/ops/reduce.hpp"

#include <cub/device/device_reduce.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <type_traits>

namespace gpukit::detail {

template <class R>
struct widen_to {
  template <class T>
  __host__ __device__ R operator()(T x) const {
    return static_cast<R>(widen(x));
  }
};

template <class G>
auto reduction_input(const G& g) {
  return thrust::make_transform_iterator(thrust::counting_iterator<std::int64_t>(0), g);
}
template <class T, class R>
auto reduction_input(const load<T, R>& g) {
  if constexpr (std::is_same_v<T, R>) {
    return g.p;
  } else {
    return thrust::make_transform_iterator(g.p, widen_to<R>{});
  }
}
template <class T, class F>
auto reduction_input(const load_transformed<T, F>& g) {
  return thrust::make_transform_iterator(g.p, g.f);
}

template <class A, class R, class Op, class G>
void reduce_impl(const cuda_executor& exec, const reduction<A, R, Op, G>& r, R* result) {
  const auto input = reduction_input(r.g);
  cub_with_temp_storage(exec, "cub::DeviceReduce::Reduce", [&](void* temp, std::size_t& bytes) {
    return cub::DeviceReduce::Reduce(temp, bytes, input, result, r.n, r.op, r.init, exec.stream().value());
  });
}

template <class T>
void arg_extreme_impl(const cuda_executor& exec, device_span<const T> x, bool want_max, value_index_pair<T>* result) {
  const auto n = static_cast<std::int64_t>(x.size());
  // CUB writes the two fields; zeroing the pair first defines its padding bytes too (4 for
  // 32-bit T), so copying the whole pair never reads uninitialised memory (initcheck).
  GPUKIT_CUDA_TRY(cudaMemsetAsync(result, 0, sizeof *result, exec.stream().value()));
  T* value = &result->value;  // device addresses: computed, never dereferenced, on the host
  std::int64_t* index = &result->index;
  if (want_max) {
    cub_with_temp_storage(exec, "cub::DeviceReduce::ArgMax", [&](void* temp, std::size_t& bytes) {
      return cub::DeviceReduce::ArgMax(temp, bytes, x.data(), value, index, n, exec.stream().value());
    });
  } else {
    cub_with_temp_storage(exec, "cub::DeviceReduce::ArgMin", [&](void* temp, std::size_t& bytes) {
      return cub::DeviceReduce::ArgMin(temp, bytes, x.data(), value, index, n, exec.stream().value());
    });
  }
}

}  // namespace gpukit::detail
