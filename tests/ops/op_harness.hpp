// tests/ops/op_harness.hpp — drives one elementwise op on both executors over random
// inputs: the CPU path against a double-precision reference, the GPU path against the
// reference and bit-for-bit against the CPU path where the op is exactly rounded, and
// in-place use. Outputs are poisoned first, so an unwritten element fails.
#pragma once

#include "gpukit/gpukit.cuh"
#include "support/numeric_checks.hpp"

#include <cstring>
#include <optional>
#include <vector>

namespace ops_test {

using namespace gpukit;
using gpukit_test::as_double;

enum class where { cpu, gpu };

inline std::vector<std::size_t> sizes(where w, bool include_huge = false) {
  std::vector<std::size_t> s{0, 1, 31, 1000003};
  if (w == where::gpu && include_huge) s.push_back(gpukit_test::large_size(std::size_t{1} << 28));
  return s;
}

template <class T>
std::vector<T> poisoned(std::size_t n) {
  std::vector<T> v(n);
  if (n != 0) std::memset(static_cast<void*>(v.data()), 0xff, n * sizeof(T));  // NaN for floats, -1 for ints
  return v;
}

template <class T>
device_buffer<T> poisoned_device(std::size_t n, stream_view s) {
  device_buffer<T> d(n, s);
  if (n != 0) GPUKIT_CUDA_TRY(cudaMemsetAsync(d.data(), 0xff, d.bytes(), s));
  return d;
}

/// An owned stream for GPU runs; nothing (no CUDA call at all) for CPU runs, which must
/// work where there is no driver.
struct test_stream {
  std::optional<stream> owned;
  stream_view view{};
  explicit test_stream(where w) {
    if (w == where::gpu) view = owned.emplace().view();
  }
};

struct tolerance {
  double ulps;         ///< against the double reference
  bool exact_gpu_cpu;  ///< GPU and CPU must agree bit for bit
};

/// `call(exec, inputs..., out)` runs the op; `ref(x...)` gives the double reference and
/// `scale(x...)`, if given, the magnitude the tolerance is relative to (default |ref|).
template <class T, std::size_t Arity, class Call, class Ref, class Scale = std::nullptr_t>
void check_op(where w, Call call, Ref ref, const double (&range)[Arity][2], tolerance tol, bool include_huge = false,
              Scale scale = nullptr) {
  test_stream owner(w);
  const stream_view s = owner.view;
  const cpu_executor host;
  for (std::size_t n : sizes(w, include_huge)) {
    CAPTURE(n);
    std::vector<std::vector<T>> in(Arity);
    for (std::size_t k = 0; k < Arity; ++k) in[k] = gpukit_test::random_values<T>(n, range[k][0], range[k][1], 977 * n + k);
    std::vector<double> expected(n), magnitude;
    if constexpr (!std::is_same_v<Scale, std::nullptr_t>) magnitude.resize(n);
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) {
      if constexpr (Arity == 1) expected[i] = ref(in[0][i]);
      if constexpr (Arity == 2) expected[i] = ref(in[0][i], in[1][i]);
      if constexpr (Arity == 3) expected[i] = ref(in[0][i], in[1][i], in[2][i]);
      if constexpr (!std::is_same_v<Scale, std::nullptr_t>) {
        if constexpr (Arity == 1) magnitude[i] = scale(in[0][i]);
        if constexpr (Arity == 2) magnitude[i] = scale(in[0][i], in[1][i]);
        if constexpr (Arity == 3) magnitude[i] = scale(in[0][i], in[1][i], in[2][i]);
      }
    }
    std::vector<T> cpu = poisoned<T>(n);
    if constexpr (Arity == 1) call(host, in[0], cpu);
    if constexpr (Arity == 2) call(host, in[0], in[1], cpu);
    if constexpr (Arity == 3) call(host, in[0], in[1], in[2], cpu);
    gpukit_test::require_close(cpu, expected, tol.ulps, magnitude);
    if (w == where::cpu) {
      std::vector<T> inplace = in[0];  // out aliases the first input
      if constexpr (Arity == 1) call(host, inplace, inplace);
      if constexpr (Arity == 2) call(host, inplace, in[1], inplace);
      if constexpr (Arity == 3) call(host, inplace, in[1], in[2], inplace);
      gpukit_test::require_identical(inplace, cpu);
      continue;
    }
    const cuda_executor exec(s);
    std::vector<device_buffer<T>> d;
    for (std::size_t k = 0; k < Arity; ++k) d.push_back(device_buffer<T>::from_host(in[k], s));
    auto out = poisoned_device<T>(n, s);
    if constexpr (Arity == 1) call(exec, d[0], out);
    if constexpr (Arity == 2) call(exec, d[0], d[1], out);
    if constexpr (Arity == 3) call(exec, d[0], d[1], d[2], out);
    const std::vector<T> gpu = out.to_host(s);
    gpukit_test::require_close(gpu, expected, tol.ulps, magnitude);
    if (tol.exact_gpu_cpu) gpukit_test::require_identical(gpu, cpu);
    if constexpr (Arity == 1) call(exec, d[0], d[0]);
    if constexpr (Arity == 2) call(exec, d[0], d[1], d[0]);
    if constexpr (Arity == 3) call(exec, d[0], d[1], d[2], d[0]);
    gpukit_test::require_identical(d[0].to_host(s), gpu);
  }
}

}  // namespace ops_test
