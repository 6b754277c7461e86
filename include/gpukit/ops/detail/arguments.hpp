// gpukit/ops/detail/arguments.hpp — how ops accept their arguments.
//
// An op's inputs and outputs may be spans, gpukit buffers or (CPU only) std::vectors; they
// are normalised to spans here, and their memory space must match the executor's
// (static_assert). The checks every op shares — equal sizes, and no overlap between an
// output and an input except exact aliasing (in-place) — throw std::invalid_argument
// naming the op and the arguments before anything is written.
#pragma once

#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/host_buffer.hpp"
#include "gpukit/core/span.hpp"

#include <string>
#include <type_traits>
#include <vector>

namespace gpukit::detail {

template <class Exec>
inline constexpr memory_space space_of_v = is_gpu_executor_v<Exec> ? memory_space::device : memory_space::host;

// ---- read-only views ---------------------------------------------------------------
template <class T, memory_space S>
span<const T, S> as_input(span<T, S> s) noexcept {
  return s;
}
template <class T>
device_span<const T> as_input(const device_buffer<T>& b) noexcept {
  return b.span();
}
template <class T>
host_span<const T> as_input(const host_buffer<T>& b) noexcept {
  return b.span();
}
template <class T, class A>
host_span<const T> as_input(const std::vector<T, A>& v) noexcept {
  return {v.data(), v.size()};
}

// ---- writable views ----------------------------------------------------------------
template <class T, memory_space S>
span<T, S> as_output(span<T, S> s) noexcept {
  static_assert(!std::is_const_v<T>, "gpukit: an op's output must be writable (got a span of const elements)");
  return s;
}
template <class T>
device_span<T> as_output(device_buffer<T>& b) noexcept {
  return b.span();
}
template <class T>
host_span<T> as_output(host_buffer<T>& b) noexcept {
  return b.span();
}
template <class T, class A>
host_span<T> as_output(std::vector<T, A>& v) noexcept {
  return {v.data(), v.size()};
}

template <class Exec, class Span>
constexpr void require_executor_memory() {
  static_assert(Span::space == space_of_v<Exec>,
                "gpukit: memory does not match the executor: cpu_executor ops take host memory "
                "(host_span, host_buffer, std::vector), cuda_executor ops take device memory "
                "(device_span, device_buffer)");
}

/// The span an input (output) argument becomes, checked against the executor's memory space.
template <class Exec, class X>
auto input_for(const X& x) {
  auto s = as_input(x);
  require_executor_memory<Exec, decltype(s)>();
  return s;
}
template <class Exec, class X>
auto output_for(X&& x) {
  auto s = as_output(x);
  require_executor_memory<Exec, decltype(s)>();
  return s;
}

template <class X>
using element_of = typename decltype(as_input(std::declval<const X&>()))::value_type;

/// All of `sizes` equal to `expected`, else invalid_argument naming each argument's size.
inline void require_sizes(const char* op, std::initializer_list<std::pair<const char*, std::size_t>> sizes) {
  const std::size_t expected = sizes.begin()->second;
  bool ok = true;
  for (const auto& s : sizes) ok = ok && s.second == expected;
  if (ok) return;
  std::string message = "arguments differ in length:";
  for (const auto& s : sizes) message += std::string(" '") + s.first + "' has " + std::to_string(s.second) + ",";
  message.back() = ' ';
  message += "elements";
  require(false, op, message);
}

/// `out` may be exactly `in` (in place) or disjoint from it; any other overlap is refused.
template <class T, class U, memory_space S>
void require_no_partial_overlap(const char* op, const char* out_name, span<T, S> out, const char* in_name,
                                span<U, S> in) {
  const bool same = static_cast<const void*>(out.data()) == static_cast<const void*>(in.data()) &&
                    out.size_bytes() == in.size_bytes();
  require(same || !overlaps(out, in), op,
          std::string("argument '") + out_name + "' overlaps argument '" + in_name +
              "' without being the same range (only exact in-place aliasing is allowed)");
}

}  // namespace gpukit::detail
