// gpukit/ops/reduce.hpp — reductions on either executor.
//
//   auto s = gpukit::sum(exec, x);          // value on the host; a GPU call waits for it
//   gpukit::sum_async(exec, x, result);     // result: 1 element in the executor's memory
//
// Contracts:
// - Inputs are spans, buffers or (CPU) vectors of float, double, int32_t, int64_t, half or
//   bfloat16. Sums, dot products and means of integers accumulate and return int64_t;
//   half/bfloat16 accumulate in float. Float sums accumulate in float on the GPU (CUB's tree
//   order) and in double on the CPU, so both sit well inside n·ε·Σ|x| of the exact sum.
// - The host-returning forms synchronise the executor's stream (that is how the value
//   reaches the host); the *_async forms only queue work, and their `result` must have
//   exactly one element of the documented type and lie outside the inputs (the reduction
//   reads them while it writes the result).
// - An empty input gives sum 0, product 1, count 0, any false, all true; min, max, argmin,
//   argmax and mean of nothing are undefined and throw std::invalid_argument.
// - argmin/argmax report the first index of the extreme value. NaN inputs give an
//   unspecified result for min, max, argmin and argmax.
// - transform_reduce's op must be associative and commutative (values are regrouped).
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/ops/detail/arguments.hpp"
#include "gpukit/ops/detail/numeric.hpp"
#include "gpukit/ops/detail/reduction.hpp"
#include "gpukit/ops/functors.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace gpukit {

template <class T>
using value_index = detail::value_index_pair<T>;

namespace detail {

/// n values g(0..n) folded with op from init; A is the CPU path's accumulator type.
template <class A, class R, class Op, class G>
struct reduction {
  std::int64_t n;
  R init;
  Op op;
  G g;
};
template <class A, class R, class Op, class G>
reduction<A, R, Op, G> make_reduction(std::int64_t n, R init, Op op, G g) {
  return {n, init, op, g};
}

template <class A, class R, class Op, class G>
void reduce_impl(const cpu_executor& exec, const reduction<A, R, Op, G>& r, R* result) {
  *result = reduce_impl_cpu<A>(exec, r.n, r.init, r.op, r.g);
}

template <class T>
void arg_extreme_impl(const cpu_executor& exec, host_span<const T> x, bool want_max, value_index_pair<T>* result) {
  const auto n = static_cast<std::int64_t>(x.size());
  const T* p = x.data();
  // Ties go to the lower index, which makes the op commutative as the CPU fold requires.
  const auto prefer = [want_max](const value_index_pair<T>& a, const value_index_pair<T>& b) {
    const bool a_wins = want_max ? b.value < a.value : a.value < b.value;
    const bool tie = !(a.value < b.value) && !(b.value < a.value);
    return a_wins || (tie && a.index < b.index) ? a : b;
  };
  const auto best = reduce_impl_cpu<value_index_pair<T>>(
      exec, n, value_index_pair<T>{p[0], 0}, prefer,
      [p](std::int64_t i) { return value_index_pair<T>{p[i], i}; });
  *result = best;
}

#if defined(__CUDACC__)
// Defined in reduce.cuh; declared here so the calls below find them.
template <class A, class R, class Op, class G>
void reduce_impl(const cuda_executor& exec, const reduction<A, R, Op, G>& r, R* result);
template <class T>
void arg_extreme_impl(const cuda_executor& exec, device_span<const T> x, bool want_max, value_index_pair<T>* result);
#else
GPUKIT_GPU_ONLY_STUB(reduce_impl)
GPUKIT_GPU_ONLY_STUB(arg_extreme_impl)
#endif

/// Runs a reduction and brings the value to the host (waiting for the stream on the GPU,
/// where a failure of earlier work on it surfaces as cuda_error naming `op`).
template <class Exec, class A, class R, class Op, class G>
R reduce_to_host(const Exec& exec, const char* op, const reduction<A, R, Op, G>& r) {
  if constexpr (is_gpu_executor_v<Exec>) {
    return in_operation(op, [&] {
      device_buffer<R> d(1, exec.stream());
      reduce_impl(exec, r, d.data());
      R value;
      GPUKIT_CUDA_TRY(cudaMemcpyAsync(&value, d.data(), sizeof(R), cudaMemcpyDeviceToHost, exec.stream()));
      exec.synchronize();
      return value;
    });
  } else {
    R value;
    reduce_impl(exec, r, &value);
    return value;
  }
}

/// The single-element result of an *_async reduction, checked.
template <class Exec, class R, class Result>
auto async_result(const char* op, Result&& result) {
  auto out = output_for<Exec>(result);
  static_assert(std::is_same_v<typename decltype(out)::value_type, R>,
                "gpukit: the result of this *_async reduction has the wrong element type (see reduce.hpp)");
  require(out.size() == 1, op, "argument 'result' must have exactly 1 element, has " + std::to_string(out.size()));
  return out;
}

/// An *_async result inside an input would be written while the reduction still reads it.
template <class Exec, class Result, class X>
void require_result_apart(const char* op, Result& result, const char* name, const X& x) {
  require(!overlaps(as_output(result), input_for<Exec>(x)), op,
          std::string("argument 'result' overlaps argument '") + name + "'");
}

template <class Exec, class A, class R, class Op, class G, class Result>
void reduce_async(const Exec& exec, const char* op, const reduction<A, R, Op, G>& r, Result&& result) {
  auto out = async_result<Exec, R>(op, result);
  reduce_impl(exec, r, out.data());
}

template <class X>
constexpr void require_arithmetic_input() {
  static_assert(is_arithmetic_v<element_of<X>>, "gpukit: reductions take arithmetic element types");
}

template <class Exec, class X>
auto sum_reduction(const X& x) {
  require_arithmetic_input<X>();
  using T = element_of<X>;
  using R = sum_t<T>;
  const auto s = input_for<Exec>(x);
  return make_reduction<cpu_accumulator_t<R>>(static_cast<std::int64_t>(s.size()), R(0), fn::plus{},
                                              load<T, R>{s.data()});
}

template <class Exec, class X>
auto product_reduction(const X& x) {
  require_arithmetic_input<X>();
  using T = element_of<X>;
  using R = compute_t<T>;
  const auto s = input_for<Exec>(x);
  return make_reduction<R>(static_cast<std::int64_t>(s.size()), R(1), fn::multiplies{}, load<T, R>{s.data()});
}

template <class Exec, class X, class Op>
auto extreme_reduction(const char* op_name, const X& x, Op op, bool want_max) {
  require_arithmetic_input<X>();
  using T = element_of<X>;
  using R = compute_t<T>;
  const auto s = input_for<Exec>(x);
  require(!s.empty(), op_name, "argument 'x' is empty: the extreme of no elements is undefined");
  const R identity = want_max ? std::numeric_limits<R>::lowest() : std::numeric_limits<R>::max();
  return make_reduction<R>(static_cast<std::int64_t>(s.size()), identity, op, load<T, R>{s.data()});
}

template <class Exec, class A, class B>
auto dot_reduction(const A& a, const B& b) {
  require_arithmetic_input<A>();
  static_assert(std::is_same_v<element_of<A>, element_of<B>>, "gpukit::dot: 'a' and 'b' must have the same element type");
  using T = element_of<A>;
  using R = sum_t<T>;
  const auto sa = input_for<Exec>(a);
  const auto sb = input_for<Exec>(b);
  require_sizes("gpukit::dot", {{"a", sa.size()}, {"b", sb.size()}});
  return make_reduction<cpu_accumulator_t<R>>(static_cast<std::int64_t>(sa.size()), R(0), fn::plus{},
                                              product_term<T, R>{sa.data(), sb.data()});
}

template <class P>
struct predicate_count {
  P pred;
  template <class T>
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::int64_t operator()(T x) const {
    return pred(x) ? 1 : 0;
  }
};

template <class Exec, class X, class P>
auto count_reduction(const X& x, P pred) {
  using T = element_of<X>;
  const auto s = input_for<Exec>(x);
  return make_reduction<std::int64_t>(static_cast<std::int64_t>(s.size()), std::int64_t{0}, fn::plus{},
                                      load_transformed<T, predicate_count<P>>{s.data(), {pred}});
}

template <class Exec, class X, class R, class ReduceOp, class TransformOp>
auto general_reduction(const X& x, R init, ReduceOp reduce_op, TransformOp transform_op) {
  using T = element_of<X>;
  const auto s = input_for<Exec>(x);
  return make_reduction<R>(static_cast<std::int64_t>(s.size()), init, reduce_op,
                           load_transformed<T, TransformOp>{s.data(), transform_op});
}

template <class T>
struct square {
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE compute_t<T> operator()(T x) const { return widen(x) * widen(x); }
};

}  // namespace detail

/// Σ x (int64_t for integers, float for half/bfloat16, else the element type).
template <class Exec, class X>
auto sum(const Exec& exec, const X& x) {
  return detail::reduce_to_host(exec, "gpukit::sum", detail::sum_reduction<Exec>(x));
}
template <class Exec, class X, class Result>
void sum_async(const Exec& exec, const X& x, Result&& result) {
  detail::require_result_apart<Exec>("gpukit::sum_async", result, "x", x);
  detail::reduce_async(exec, "gpukit::sum_async", detail::sum_reduction<Exec>(x), result);
}

/// Π x (in the element type; float for half/bfloat16).
template <class Exec, class X>
auto product(const Exec& exec, const X& x) {
  return detail::reduce_to_host(exec, "gpukit::product", detail::product_reduction<Exec>(x));
}
template <class Exec, class X, class Result>
void product_async(const Exec& exec, const X& x, Result&& result) {
  detail::require_result_apart<Exec>("gpukit::product_async", result, "x", x);
  detail::reduce_async(exec, "gpukit::product_async", detail::product_reduction<Exec>(x), result);
}

/// The smallest element (x must not be empty).
template <class Exec, class X>
auto min(const Exec& exec, const X& x) {
  return detail::reduce_to_host(exec, "gpukit::min", detail::extreme_reduction<Exec>("gpukit::min", x, fn::minimum{}, false));
}
template <class Exec, class X, class Result>
void min_async(const Exec& exec, const X& x, Result&& result) {
  detail::require_result_apart<Exec>("gpukit::min_async", result, "x", x);
  detail::reduce_async(exec, "gpukit::min_async",
                       detail::extreme_reduction<Exec>("gpukit::min_async", x, fn::minimum{}, false), result);
}

/// The largest element (x must not be empty).
template <class Exec, class X>
auto max(const Exec& exec, const X& x) {
  return detail::reduce_to_host(exec, "gpukit::max", detail::extreme_reduction<Exec>("gpukit::max", x, fn::maximum{}, true));
}
template <class Exec, class X, class Result>
void max_async(const Exec& exec, const X& x, Result&& result) {
  detail::require_result_apart<Exec>("gpukit::max_async", result, "x", x);
  detail::reduce_async(exec, "gpukit::max_async",
                       detail::extreme_reduction<Exec>("gpukit::max_async", x, fn::maximum{}, true), result);
}

/// Σ a[i]·b[i]; a and b have the same length.
template <class Exec, class A, class B>
auto dot(const Exec& exec, const A& a, const B& b) {
  return detail::reduce_to_host(exec, "gpukit::dot", detail::dot_reduction<Exec>(a, b));
}
template <class Exec, class A, class B, class Result>
void dot_async(const Exec& exec, const A& a, const B& b, Result&& result) {
  detail::require_result_apart<Exec>("gpukit::dot_async", result, "a", a);
  detail::require_result_apart<Exec>("gpukit::dot_async", result, "b", b);
  detail::reduce_async(exec, "gpukit::dot_async", detail::dot_reduction<Exec>(a, b), result);
}

/// √(Σ x²), floating types.
template <class Exec, class X>
auto norm2(const Exec& exec, const X& x) {
  using T = detail::element_of<X>;
  static_assert(detail::is_floating_v<T>, "gpukit::norm2 takes floating-point elements");
  using R = detail::compute_t<T>;
  const auto s = detail::input_for<Exec>(x);
  const auto r = detail::make_reduction<detail::cpu_accumulator_t<R>>(static_cast<std::int64_t>(s.size()), R(0),
                                                                      fn::plus{}, detail::load_transformed<T, detail::square<T>>{s.data(), {}});
  return static_cast<R>(std::sqrt(detail::reduce_to_host(exec, "gpukit::norm2", r)));
}

/// Σ x / n (double for integer elements); x must not be empty.
template <class Exec, class X>
auto mean(const Exec& exec, const X& x) {
  using T = detail::element_of<X>;
  using R = std::conditional_t<std::is_integral_v<T>, double, detail::compute_t<T>>;
  const auto s = detail::input_for<Exec>(x);
  detail::require(!s.empty(), "gpukit::mean", "argument 'x' is empty: the mean of no elements is undefined");
  return static_cast<R>(static_cast<R>(sum(exec, x)) / static_cast<R>(s.size()));
}

/// The number of elements for which pred(x) is true (int64_t).
template <class Exec, class X, class P>
std::int64_t count_if(const Exec& exec, const X& x, P pred) {
  return detail::reduce_to_host(exec, "gpukit::count_if", detail::count_reduction<Exec>(x, pred));
}
template <class Exec, class X, class P, class Result>
void count_if_async(const Exec& exec, const X& x, P pred, Result&& result) {
  detail::require_result_apart<Exec>("gpukit::count_if_async", result, "x", x);
  detail::reduce_async(exec, "gpukit::count_if_async", detail::count_reduction<Exec>(x, pred), result);
}

/// Whether pred holds for at least one element / for every element.
template <class Exec, class X, class P>
bool any(const Exec& exec, const X& x, P pred) {
  return count_if(exec, x, pred) > 0;
}
template <class Exec, class X, class P>
bool all(const Exec& exec, const X& x, P pred) {
  return count_if(exec, x, pred) == static_cast<std::int64_t>(detail::input_for<Exec>(x).size());
}

/// reduce_op over transform_op(x[i]), starting from init; reduce_op associative and
/// commutative.
template <class Exec, class X, class R, class ReduceOp, class TransformOp>
R transform_reduce(const Exec& exec, const X& x, R init, ReduceOp reduce_op, TransformOp transform_op) {
  return detail::reduce_to_host(exec, "gpukit::transform_reduce", detail::general_reduction<Exec>(x, init, reduce_op, transform_op));
}
template <class Exec, class X, class R, class ReduceOp, class TransformOp, class Result>
void transform_reduce_async(const Exec& exec, const X& x, R init, ReduceOp reduce_op, TransformOp transform_op,
                            Result&& result) {
  detail::require_result_apart<Exec>("gpukit::transform_reduce_async", result, "x", x);
  detail::reduce_async(exec, "gpukit::transform_reduce_async",
                       detail::general_reduction<Exec>(x, init, reduce_op, transform_op), result);
}

namespace detail {
template <class Exec, class X>
auto arg_extreme_to_host(const Exec& exec, const char* op, const X& x, bool want_max) {
  using T = element_of<X>;
  static_assert(std::is_arithmetic_v<T>, "gpukit::argmin/argmax take float, double or integer elements");
  const auto s = input_for<Exec>(x);
  require(!s.empty(), op, "argument 'x' is empty: the extreme of no elements is undefined");
  if constexpr (is_gpu_executor_v<Exec>) {
    return in_operation(op, [&] {
      device_buffer<value_index_pair<T>> d(1, exec.stream());
      arg_extreme_impl(exec, s, want_max, d.data());
      value_index_pair<T> v;
      GPUKIT_CUDA_TRY(cudaMemcpyAsync(&v, d.data(), sizeof v, cudaMemcpyDeviceToHost, exec.stream()));
      exec.synchronize();
      return v;
    });
  } else {
    value_index_pair<T> v;
    arg_extreme_impl(exec, s, want_max, &v);
    return v;
  }
}
template <class Exec, class X, class Result>
void arg_extreme_async(const Exec& exec, const char* op, const X& x, bool want_max, Result&& result) {
  using T = element_of<X>;
  const auto s = input_for<Exec>(x);
  require(!s.empty(), op, "argument 'x' is empty: the extreme of no elements is undefined");
  auto out = async_result<Exec, value_index_pair<T>>(op, result);
  require_result_apart<Exec>(op, result, "x", x);
  arg_extreme_impl(exec, s, want_max, out.data());
}
}  // namespace detail

/// The smallest element and the first index holding it (x must not be empty).
template <class Exec, class X>
auto argmin(const Exec& exec, const X& x) {
  return detail::arg_extreme_to_host(exec, "gpukit::argmin", x, false);
}
/// The largest element and the first index holding it (x must not be empty).
template <class Exec, class X>
auto argmax(const Exec& exec, const X& x) {
  return detail::arg_extreme_to_host(exec, "gpukit::argmax", x, true);
}
/// As argmin/argmax, into `result`: one value_index<element type> in the executor's memory.
template <class Exec, class X, class Result>
void argmin_async(const Exec& exec, const X& x, Result&& result) {
  detail::arg_extreme_async(exec, "gpukit::argmin_async", x, false, result);
}
template <class Exec, class X, class Result>
void argmax_async(const Exec& exec, const X& x, Result&& result) {
  detail::arg_extreme_async(exec, "gpukit::argmax_async", x, true, result);
}

}  // namespace gpukit

#if defined(__CUDACC__)
#include "gpukit/ops/reduce.cuh"
#endif
