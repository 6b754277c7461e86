// gpukit/ops/transform.hpp — the fused N-ary transform every elementwise op is built on:
//
//   gpukit::transform(exec, out, f, in0, in1, ...);   // out[i] = f(in0[i], in1[i], ...)
//   gpukit::generate(exec, out, g);                   // out[i] = g(i)
//
// One pass over memory whatever the number of inputs. Contracts:
// - `out` and every input have the same length (std::invalid_argument otherwise);
// - `out` may be exactly one of the inputs (in place); any other overlap is refused;
// - `f` (and `g`) is a function object or a GPUKIT_HOST_DEVICE lambda callable on host and
//   device with the inputs' element types; its result converts to out's element type. It
//   must not depend on the order of evaluation or on the address of its arguments;
// - cpu_executor: host memory, OpenMP threads, returns when done; cuda_executor: device
//   memory, queued on the executor's stream through cub::DeviceTransform, returns at once.
//
// Host-only header: with a cuda_executor the call compiles only under nvcc, where the GPU
// path (transform.cuh) is included automatically.
#pragma once

#include "gpukit/core/config.hpp"
#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/ops/detail/arguments.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>

namespace gpukit {
namespace detail {

// Below this many elements the OpenMP team costs more than the loop.
inline constexpr std::ptrdiff_t parallel_threshold = 1 << 15;

// Raw pointers as plain parameters: the loop the compiler sees is the textbook one.
template <class T, class F, class... U>
void transform_loop(int threads, std::ptrdiff_t n, T* o, F f, const U*... in) {
#pragma omp parallel for num_threads(threads) schedule(static) if (n > parallel_threshold)
  for (std::ptrdiff_t i = 0; i < n; ++i) o[i] = static_cast<T>(f(in[i]...));
}

template <class T, class F, class... U>
void transform_impl(const cpu_executor& exec, host_span<T> out, F f, host_span<const U>... in) {
  transform_loop(exec.threads(), static_cast<std::ptrdiff_t>(out.size()), out.data(), f, in.data()...);
}

template <class T, class G>
void generate_impl(const cpu_executor& exec, host_span<T> out, G g) {
  const auto n = static_cast<std::ptrdiff_t>(out.size());
  T* o = out.data();
#pragma omp parallel for num_threads(exec.threads()) schedule(static) if (n > parallel_threshold)
  for (std::ptrdiff_t i = 0; i < n; ++i) o[i] = static_cast<T>(g(static_cast<std::int64_t>(i)));
}

#if defined(__CUDACC__)
// Defined in transform.cuh; declared here so the calls below find them.
template <class T, class F, class... U>
void transform_impl(const cuda_executor& exec, device_span<T> out, F f, device_span<const U>... in);
template <class T, class G>
void generate_impl(const cuda_executor& exec, device_span<T> out, G g);
#else
// A host-compiled file cannot launch kernels: a compile error saying so (core/dispatch.hpp).
GPUKIT_GPU_ONLY_STUB(transform_impl)
GPUKIT_GPU_ONLY_STUB(generate_impl)
#endif

/// The front end every elementwise op shares: normalise the arguments, check them (the
/// messages name `op` and the arguments: names[0] is the output's, then one per input),
/// then run on the executor.
template <class Exec, class Out, class F, class... In>
void checked_transform(const Exec& exec, const char* op, const char* const* names, Out&& out, F f, const In&... in) {
  auto o = output_for<Exec>(out);
  const auto ins = std::make_tuple(input_for<Exec>(in)...);
  std::apply(
      [&](const auto&... s) {
        std::size_t k = 1;
        require_sizes(op, {{names[0], o.size()}, {names[k++], s.size()}...});
        k = 1;
        (require_no_partial_overlap(op, names[0], o, names[k++], s), ...);
        transform_impl(exec, o, f, s...);
      },
      ins);
}

}  // namespace detail

/// out[i] = f(in[i]...) for every i; see the header comment for the contract.
template <class Exec, class Out, class F, class... In>
void transform(const Exec& exec, Out&& out, F f, const In&... in) {
  static_assert(sizeof...(In) >= 1 && sizeof...(In) <= 8, "gpukit::transform takes 1 to 8 inputs");
  static constexpr const char* names[] = {"out", "input 0", "input 1", "input 2", "input 3",
                                          "input 4", "input 5", "input 6", "input 7"};
  detail::checked_transform(exec, "gpukit::transform", names, out, f, in...);
}

/// out[i] = g(i) for every i (i is a std::int64_t).
template <class Exec, class Out, class G>
void generate(const Exec& exec, Out&& out, G g) {
  detail::generate_impl(exec, detail::output_for<Exec>(out), g);
}

}  // namespace gpukit

#if defined(__CUDACC__)
#include "gpukit/ops/transform.cuh"
#endif
