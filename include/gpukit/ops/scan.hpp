// gpukit/ops/scan.hpp — prefix scans on either executor.
//
//   gpukit::inclusive_scan(exec, in, out);            // out[i] = in[0] + ... + in[i]
//   gpukit::exclusive_scan(exec, in, out, init);      // out[i] = init + in[0] + ... + in[i-1]
//
// Contracts: in and out have the same length and element type; out may be exactly in (in
// place), any other overlap is refused; `op` (default +) is associative, and is applied in
// an unspecified grouping, so float results differ from a sequential scan by rounding.
// cuda_executor: cub::DeviceScan on the stream, returns at once.
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/ops/detail/arguments.hpp"
#include "gpukit/ops/functors.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace gpukit {
namespace detail {

// Three passes over contiguous chunks: each chunk's total (in parallel), the carry into
// each chunk (a short sequential scan of the totals), then each chunk's scan seeded with
// its carry (in parallel). Chunks are loop iterations, not thread ids, so the result does
// not depend on how many threads OpenMP actually provides.
template <class T, class Op>
void scan_impl(const cpu_executor& exec, host_span<const T> in, host_span<T> out, Op op, bool exclusive, T init) {
  const auto n = static_cast<std::int64_t>(in.size());
  if (n == 0) return;
  const int chunks = n > (std::int64_t{1} << 15) ? exec.threads() : 1;
  const std::int64_t chunk = (n + chunks - 1) / chunks;
  const T* src = in.data();
  T* dst = out.data();
  std::vector<T> carry(static_cast<std::size_t>(chunks));
  std::vector<char> nonempty(static_cast<std::size_t>(chunks), 0);
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
  for (int c = 0; c < chunks; ++c) {
    const std::int64_t begin = std::min(n, c * chunk), end = std::min(n, begin + chunk);
    if (begin >= end) continue;
    T acc = src[begin];
    for (std::int64_t i = begin + 1; i < end; ++i) acc = op(acc, src[i]);
    carry[c] = acc;
    nonempty[c] = 1;
  }
  // carry[c] becomes what flows into chunk c; `have` says whether anything flows yet.
  T running = init;
  bool have = exclusive;
  std::vector<char> seeded(static_cast<std::size_t>(chunks), 0);
  for (int c = 0; c < chunks; ++c) {
    const T chunk_total = carry[c];
    carry[c] = running;
    seeded[c] = have;
    if (nonempty[c]) {
      running = have ? op(running, chunk_total) : chunk_total;
      have = true;
    }
  }
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
  for (int c = 0; c < chunks; ++c) {
    const std::int64_t begin = std::min(n, c * chunk), end = std::min(n, begin + chunk);
    T acc = carry[c];
    bool have_acc = seeded[c];
    for (std::int64_t i = begin; i < end; ++i) {
      const T x = src[i];  // read before the write: in place is allowed
      if (exclusive) {
        dst[i] = acc;
        acc = op(acc, x);
      } else {
        acc = have_acc ? op(acc, x) : x;
        have_acc = true;
        dst[i] = acc;
      }
    }
  }
}

#if defined(__CUDACC__)
// Defined in scan.cuh; declared here so the calls below find it.
template <class T, class Op>
void scan_impl(const cuda_executor& exec, device_span<const T> in, device_span<T> out, Op op, bool exclusive, T init);
#else
GPUKIT_GPU_ONLY_STUB(scan_impl)
#endif

template <class Exec, class In, class Out, class Op>
void checked_scan(const Exec& exec, const char* op_name, const In& in, Out&& out, Op op, bool exclusive,
                  element_of<In> init) {
  const auto i = input_for<Exec>(in);
  auto o = output_for<Exec>(out);
  static_assert(std::is_same_v<typename decltype(i)::value_type, typename decltype(o)::value_type>,
                "gpukit: a scan's input and output must have the same element type");
  require_sizes(op_name, {{"in", i.size()}, {"out", o.size()}});
  require_no_partial_overlap(op_name, "out", o, "in", i);
  scan_impl(exec, i, o, op, exclusive, init);
}

}  // namespace detail

/// out[i] = in[0] op in[1] op ... op in[i]
template <class Exec, class In, class Out, class Op = fn::plus>
void inclusive_scan(const Exec& exec, const In& in, Out&& out, Op op = {}) {
  detail::checked_scan(exec, "gpukit::inclusive_scan", in, out, op, false, detail::element_of<In>{});
}

/// out[0] = init, out[i] = init op in[0] op ... op in[i-1]
template <class Exec, class In, class Out, class Op = fn::plus>
void exclusive_scan(const Exec& exec, const In& in, Out&& out, detail::element_of<In> init, Op op = {}) {
  detail::checked_scan(exec, "gpukit::exclusive_scan", in, out, op, true, init);
}

}  // namespace gpukit

#if defined(__CUDACC__)
#include "gpukit/ops/scan.cuh"
#endif
