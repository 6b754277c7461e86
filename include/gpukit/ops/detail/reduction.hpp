// gpukit/ops/detail/reduction.hpp — the one shape every reduction takes on both
// executors: n values given by an index function g(i), folded with an associative op
// from init. The CPU path splits [0, n) into one contiguous chunk per thread and combines
// the partial results in chunk order, so for a given thread count it is deterministic.
#pragma once

#include "gpukit/core/executor.hpp"
#include "gpukit/ops/detail/numeric.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace gpukit::detail {

/// g(i) = p[i], converted to R: recognised by the GPU path, which then hands CUB the raw
/// pointer (vectorised loads).
template <class T, class R>
struct load {
  const T* p;
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE R operator()(std::int64_t i) const { return static_cast<R>(widen(p[i])); }
};

/// g(i) = f(p[i]).
template <class T, class F>
struct load_transformed {
  const T* p;
  F f;
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE auto operator()(std::int64_t i) const { return f(p[i]); }
};

/// g(i) = a[i] · b[i] in R.
template <class T, class R>
struct product_term {
  const T* a;
  const T* b;
  GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE R operator()(std::int64_t i) const {
    return static_cast<R>(widen(a[i])) * static_cast<R>(widen(b[i]));
  }
};

/// Folds g(begin..end) (non-empty) on one thread: blocks of `block` values, each folded in
/// `lanes` independent accumulators and then pairwise, and the block results folded in
/// order. Independent lanes let the compiler vectorise and keep the add latency off the
/// critical path; the blocking keeps rounding error near (block/lanes + blocks)·ε instead
/// of n·ε.
template <class A, class Op, class G>
A fold_range(std::int64_t begin, std::int64_t end, Op op, G g) {
  constexpr std::int64_t lanes = 8, block = 2048;
  A total{};
  bool have_total = false;
  for (std::int64_t b = begin; b < end; b += block) {
    const std::int64_t e = std::min(end, b + block);
    A acc;
    if (e - b >= 2 * lanes) {
      A lane[lanes];
      for (std::int64_t j = 0; j < lanes; ++j) lane[j] = static_cast<A>(g(b + j));
      std::int64_t i = b + lanes;
      for (; i + lanes <= e; i += lanes)
        for (std::int64_t j = 0; j < lanes; ++j) lane[j] = op(lane[j], static_cast<A>(g(i + j)));
      for (; i < e; ++i) lane[0] = op(lane[0], static_cast<A>(g(i)));
      for (std::int64_t width = lanes / 2; width > 0; width /= 2)
        for (std::int64_t j = 0; j < width; ++j) lane[j] = op(lane[j], lane[j + width]);
      acc = lane[0];
    } else {
      acc = static_cast<A>(g(b));
      for (std::int64_t i = b + 1; i < e; ++i) acc = op(acc, static_cast<A>(g(i)));
    }
    total = have_total ? op(total, acc) : acc;
    have_total = true;
  }
  return total;
}

/// Accumulate, on the CPU, in A and return R. The op must be associative and commutative
/// (values are regrouped across lanes, blocks and threads).
template <class A, class R, class Op, class G>
R reduce_impl_cpu(const cpu_executor& exec, std::int64_t n, R init, Op op, G g) {
  const int threads = n > (std::int64_t{1} << 15) ? exec.threads() : 1;
  const std::int64_t chunk = (n + threads - 1) / std::max(threads, 1);
  std::vector<A> partial(static_cast<std::size_t>(threads));
  std::vector<char> used(static_cast<std::size_t>(threads), 0);
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    const std::int64_t begin = t * chunk, end = std::min(n, begin + chunk);
    if (begin >= end) continue;
    partial[t] = fold_range<A>(begin, end, op, g);
    used[t] = 1;
  }
  A total = static_cast<A>(init);
  for (int t = 0; t < threads; ++t)
    if (used[t]) total = op(total, partial[t]);
  return static_cast<R>(total);
}

/// The wider type the CPU path accumulates sums in.
template <class R>
using cpu_accumulator_t = std::conditional_t<std::is_same_v<R, float>, double, R>;

/// Result of argmin / argmax: the extreme value and the index of its first occurrence.
template <class T>
struct value_index_pair {
  T value;
  std::int64_t index;
};

}  // namespace gpukit::detail
