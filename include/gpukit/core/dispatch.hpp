// gpukit/core/dispatch.hpp — how every gpukit function picks its CPU or its GPU path.
//
// One mechanism for ops, nn, train and fractal:
//   1. The public front end (in a host-compilable .hpp) normalises and checks its arguments
//      and calls `detail::NAME_impl(exec, ...)`.
//   2. The CPU implementation is an overload taking `const cpu_executor&`, in the same .hpp.
//   3. The GPU implementation is an overload taking `const cuda_executor&`: declared in the
//      .hpp when nvcc compiles it and defined in the matching .cuh, which the .hpp includes
//      at its end under nvcc (so templates find it at instantiation).
//   4. In a file compiled by the host compiler, GPUKIT_GPU_ONLY_STUB(NAME_impl) stands in
//      for the GPU overload: calling it with a cuda_executor is a compile error that says
//      the file needs nvcc, instead of "no matching function".
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/config.hpp"
#include "gpukit/core/executor.hpp"

namespace gpukit::detail {
/// What a GPU-only stub returns: it converts to whatever the caller does with a GPU
/// implementation's result, so that the stub's static_assert is the only error a call from
/// a host-compiled file reports. Never defined: code that uses it does not compile anyway.
struct gpu_only_result {
  template <class T>
  operator T() const;
};
}  // namespace gpukit::detail

/// Declares `name(const cuda_executor&, ...)` as a template whose use is a static_assert
/// naming the function. Use it in the `#else` branch of `#if defined(__CUDACC__)`.
#define GPUKIT_GPU_ONLY_STUB(name)                                                                        \
  template <class... GpukitArgs>                                                                          \
  ::gpukit::detail::gpu_only_result name(const ::gpukit::cuda_executor&, GpukitArgs&&...) {               \
    static_assert(::gpukit::detail::always_false<GpukitArgs...>,                                          \
                  "gpukit: " #name " is the GPU path, called from a file compiled by the host compiler; " \
                  "compile this file with nvcc (.cu)");                                                   \
    return {};                                                                                            \
  }
