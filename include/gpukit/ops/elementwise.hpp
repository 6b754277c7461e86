// gpukit/ops/elementwise.hpp — the named elementwise ops, each one fused pass of
// gpukit::transform over the executor's memory.
//
// Common contract (see transform.hpp): inputs first, output last; all the same length and
// element type (std::invalid_argument / a compile error otherwise); the output may be
// exactly one of the inputs (in place), any other overlap is refused; cuda_executor ops
// are queued on its stream and return at once, cpu_executor ops return when done.
// Element types: float, double, int32_t, int64_t, and half / bfloat16 for the arithmetic
// ops (computed in float, rounded once). Transcendental ops take floating types only.
// Integer division by zero is undefined, as in C++.
#pragma once

#include "gpukit/ops/detail/numeric.hpp"
#include "gpukit/ops/functors.hpp"
#include "gpukit/ops/transform.hpp"

#include <cmath>
#include <string>
#include <type_traits>

namespace gpukit {
namespace detail {

template <class Out, class... In>
constexpr void require_same_elements() {
  using T = element_of<std::remove_reference_t<Out>>;
  static_assert((std::is_same_v<T, element_of<In>> && ...), "gpukit: an elementwise op's inputs and output must have the same element type (use gpukit::cast to convert)");
  static_assert(is_arithmetic_v<T>, "gpukit: elementwise ops take arithmetic element types");
}

template <class Out>
constexpr void require_floating_output() {
  static_assert(is_floating_v<element_of<std::remove_reference_t<Out>>>,
                "gpukit: this op takes floating-point elements (float, double, half, bfloat16)");
}

template <class F, class Exec, class Out, class... In>
void named_op(const Exec& exec, const char* op, const char* const* names, Out&& out, F f, const In&... in) {
  require_same_elements<Out, In...>();
  checked_transform(exec, op, names, out, f, in...);
}

inline constexpr const char* out_a_b[] = {"out", "a", "b"};
inline constexpr const char* out_x[] = {"out", "x"};

}  // namespace detail

// ---- binary ------------------------------------------------------------------------
/// out = a + b
template <class Exec, class A, class B, class Out>
void add(const Exec& exec, const A& a, const B& b, Out&& out) {
  detail::named_op(exec, "gpukit::add", detail::out_a_b, out, fn::plus{}, a, b);
}
/// out = a - b
template <class Exec, class A, class B, class Out>
void subtract(const Exec& exec, const A& a, const B& b, Out&& out) {
  detail::named_op(exec, "gpukit::subtract", detail::out_a_b, out, fn::minus{}, a, b);
}
/// out = a · b
template <class Exec, class A, class B, class Out>
void multiply(const Exec& exec, const A& a, const B& b, Out&& out) {
  detail::named_op(exec, "gpukit::multiply", detail::out_a_b, out, fn::multiplies{}, a, b);
}
/// out = a / b
template <class Exec, class A, class B, class Out>
void divide(const Exec& exec, const A& a, const B& b, Out&& out) {
  detail::named_op(exec, "gpukit::divide", detail::out_a_b, out, fn::divides{}, a, b);
}
/// out = min(a, b), elementwise (a wins ties)
template <class Exec, class A, class B, class Out>
void minimum(const Exec& exec, const A& a, const B& b, Out&& out) {
  detail::named_op(exec, "gpukit::minimum", detail::out_a_b, out, fn::minimum{}, a, b);
}
/// out = max(a, b), elementwise (a wins ties)
template <class Exec, class A, class B, class Out>
void maximum(const Exec& exec, const A& a, const B& b, Out&& out) {
  detail::named_op(exec, "gpukit::maximum", detail::out_a_b, out, fn::maximum{}, a, b);
}
/// out = a ^ b (floating types)
template <class Exec, class A, class B, class Out>
void pow(const Exec& exec, const A& a, const B& b, Out&& out) {
  detail::require_floating_output<Out>();
  detail::named_op(exec, "gpukit::pow", detail::out_a_b, out, fn::power{}, a, b);
}

// ---- unary -------------------------------------------------------------------------
/// out = -x
template <class Exec, class X, class Out>
void negate(const Exec& exec, const X& x, Out&& out) {
  detail::named_op(exec, "gpukit::negate", detail::out_x, out, fn::negate{}, x);
}
/// out = |x|
template <class Exec, class X, class Out>
void abs(const Exec& exec, const X& x, Out&& out) {
  detail::named_op(exec, "gpukit::abs", detail::out_x, out, fn::absolute{}, x);
}
/// out = max(x, 0)
template <class Exec, class X, class Out>
void relu(const Exec& exec, const X& x, Out&& out) {
  detail::named_op(exec, "gpukit::relu", detail::out_x, out, fn::relu{}, x);
}

#define GPUKIT_FLOATING_UNARY_OP(name, functor)                                        \
  template <class Exec, class X, class Out>                                            \
  void name(const Exec& exec, const X& x, Out&& out) {                                 \
    detail::require_floating_output<Out>();                                            \
    detail::named_op(exec, "gpukit::" #name, detail::out_x, out, fn::functor{}, x);   \
  }
/// out = √x
GPUKIT_FLOATING_UNARY_OP(sqrt, square_root)
/// out = eˣ
GPUKIT_FLOATING_UNARY_OP(exp, exponential)
/// out = ln x
GPUKIT_FLOATING_UNARY_OP(log, logarithm)
/// out = 1 / (1 + e⁻ˣ)
GPUKIT_FLOATING_UNARY_OP(sigmoid, sigmoid)
/// out = tanh x
GPUKIT_FLOATING_UNARY_OP(tanh, hyperbolic_tangent)
#undef GPUKIT_FLOATING_UNARY_OP

// ---- with scalars ------------------------------------------------------------------
/// out = alpha · x
template <class Exec, class X, class Out>
void scale(const Exec& exec, detail::compute_t<detail::element_of<X>> alpha, const X& x, Out&& out) {
  detail::named_op(exec, "gpukit::scale", detail::out_x, out, fn::scale_by<decltype(alpha)>{alpha}, x);
}

/// y = alpha · x + y, in place in y
template <class Exec, class X, class Y>
void axpy(const Exec& exec, detail::compute_t<detail::element_of<X>> alpha, const X& x, Y&& y) {
  static constexpr const char* names[] = {"y", "x", "y"};
  detail::named_op(exec, "gpukit::axpy", names, y, fn::axpy_with<decltype(alpha)>{alpha}, x, y);
}

/// out = a · b + c (rounded once where the executor fuses it, which the GPU does)
template <class Exec, class A, class B, class C, class Out>
void fma(const Exec& exec, const A& a, const B& b, const C& c, Out&& out) {
  static constexpr const char* names[] = {"out", "a", "b", "c"};
  detail::named_op(exec, "gpukit::fma", names, out, fn::fused_multiply_add{}, a, b, c);
}

/// out = min(max(x, lo), hi); lo ≤ hi and neither NaN (std::invalid_argument otherwise)
template <class Exec, class X, class Out>
void clamp(const Exec& exec, const X& x, detail::compute_t<detail::element_of<X>> lo,
           detail::compute_t<detail::element_of<X>> hi, Out&& out) {
  detail::require(lo <= hi, "gpukit::clamp",
                  "arguments 'lo' = " + std::to_string(lo) + " and 'hi' = " + std::to_string(hi) +
                      " do not satisfy lo <= hi");
  detail::named_op(exec, "gpukit::clamp", detail::out_x, out, fn::clamp_to<decltype(lo)>{lo, hi}, x);
}

// ---- generators and conversions -----------------------------------------------------
/// out[i] = value
template <class Exec, class Out>
void fill(const Exec& exec, Out&& out, detail::element_of<std::remove_reference_t<Out>> value) {
  generate(exec, out, fn::constant<decltype(value)>{value});
}

/// out[i] = start + i · step (computed per element, so no error accumulates)
template <class Exec, class Out>
void sequence(const Exec& exec, Out&& out, detail::element_of<std::remove_reference_t<Out>> start,
              detail::element_of<std::remove_reference_t<Out>> step = detail::element_of<std::remove_reference_t<Out>>(1)) {
  generate(exec, out, fn::arithmetic_sequence<decltype(start)>{start, step});
}

/// out = in
template <class Exec, class In, class Out>
void copy(const Exec& exec, const In& in, Out&& out) {
  static constexpr const char* names[] = {"out", "in"};
  detail::named_op(exec, "gpukit::copy", names, out, fn::cast_to<detail::element_of<In>>{}, in);
}

/// out = static_cast<element type of out>(in), through float for half/bfloat16
template <class Exec, class In, class Out>
void cast(const Exec& exec, const In& in, Out&& out) {
  using To = detail::element_of<std::remove_reference_t<Out>>;
  static constexpr const char* names[] = {"out", "in"};
  detail::checked_transform(exec, "gpukit::cast", names, out, fn::cast_to<To>{}, in);
}

}  // namespace gpukit
