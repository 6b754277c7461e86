// gpukit/nn/dropout.hpp — dropout with a counter-based generator: the mask is a pure
// function of (seed, stream, step, element), so the CPU and the GPU draw the same mask, the
// backward pass recomputes it instead of storing it, and a captured CUDA graph that reads
// the step from device memory draws a fresh mask at every replay.
//
//   nn::dropout_forward(exec, layer, key, x, y)     y = x · keep / (1 - p)
//   nn::dropout_backward(exec, layer, key, dy, dx)  dx = dy · keep / (1 - p), the same keep
//
// The generator is Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC 2011), bit for bit the generator of cuRAND's curand_init(seed, subsequence, offset)
// / curand4() for Philox4_32_10 (the GPU tests compare the two): element i of a tensor reads
// word i mod 4 of the block with counter (i / 4, step) — cuRAND's subsequence `step`, offset
// 4·(i / 4) — under the key (seed's low word, seed's high word + stream · 0x9E3779B9); one
// block serves four elements. The element is kept when the word's top 24 bits are at least
// round(p · 2^24): a drop probability within 2^-25 of p.
//
// Contracts (checked before anything is written; std::invalid_argument names the argument):
// x, y (and dy, dx) the same shape, any shape; y may alias x, dx may alias dy (elementwise).
// cuda_executor: float, queued on its stream; cpu_executor: float or double, OpenMP.
// Host-compilable: the GPU path is in dropout.cuh (included under nvcc).
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/path_target.hpp"
#include "gpukit/nn/tensor.hpp"

#include <cmath>
#include <cstdint>
#include <string>

namespace gpukit::nn {

/// Which mask a dropout call draws: the model's seed, the layer's stream (its position in
/// the model) and the training step. Calls with equal keys draw equal masks.
struct dropout_key {
  std::uint64_t seed = 0;
  std::uint32_t stream = 0;
  std::uint64_t step = 0;
};

namespace detail {

struct philox_block {
  std::uint32_t w[4];
};

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void mul_hi_lo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                                     std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

/// Philox4x32 with 10 rounds of counter c under key (k0, k1).
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE philox_block philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2,
                                                                 std::uint32_t c3, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u, w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mul_hi_lo(m0, c0, hi0, lo0);
    mul_hi_lo(m1, c2, hi1, lo1);
    const std::uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
    k0 += w0, k1 += w1;
  }
  return {{c0, c1, c2, c3}};
}

/// A layer's settings as its kernels use them.
struct dropout_params {
  std::uint32_t k0 = 0, k1 = 0;  // the Philox key (seed and stream)
  std::uint32_t threshold = 0;   // keep when the word's top 24 bits are >= threshold
  float scale = 1.0f;            // 1 / (1 - p)
};

inline dropout_params make_dropout_params(const dropout& layer, std::uint64_t seed, std::uint32_t stream) {
  dropout_params d;
  d.k0 = static_cast<std::uint32_t>(seed);
  d.k1 = static_cast<std::uint32_t>(seed >> 32) + stream * 0x9E3779B9u;
  d.threshold = static_cast<std::uint32_t>(std::llround(static_cast<double>(layer.p) * 16777216.0));
  d.scale = static_cast<float>(1.0 / (1.0 - static_cast<double>(layer.p)));
  return d;
}

/// Elements 4g .. min(4g + 4, n) of out = in · keep · scale, keep drawn for `step`.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void dropout_group(const dropout_params& d, std::uint64_t step, long long g,
                                                         const T* in, T* out, long long n) {
  const philox_block r = philox4x32_10(static_cast<std::uint32_t>(g), static_cast<std::uint32_t>(g >> 32),
                                       static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(step >> 32), d.k0,
                                       d.k1);
  const T scale = static_cast<T>(d.scale);
  const long long first = 4 * g;
  for (int j = 0; j < 4 && first + j < n; ++j)
    out[first + j] = (r.w[j] >> 8) >= d.threshold ? in[first + j] * scale : T(0);
}

/// The step a dropout pass draws for: the device's copy when `device_step` is set (a step
/// counter the model advances on its stream, so a replayed graph draws afresh), else `step`.
struct dropout_step {
  const std::uint64_t* device_step = nullptr;
  std::uint64_t step = 0;
};

template <class T>
void dropout_impl(const cpu_executor& exec, const dropout_params& d, dropout_step s, const T* in, T* out, long long n) {
  const std::uint64_t step = s.device_step != nullptr ? *s.device_step : s.step;
  const long long groups = (n + 3) / 4;
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(n) * 8)) schedule(static)
  for (long long g = 0; g < groups; ++g) dropout_group(d, step, g, in, out, n);
}

#if defined(__CUDACC__)
// Defined in dropout.cuh.
inline void dropout_impl(const cuda_executor& exec, const dropout_params& d, dropout_step s, const float* in,
                         float* out, long long n);
inline void advance_dropout_step(const cuda_executor& exec, std::uint64_t* step);
#else
GPUKIT_GPU_ONLY_STUB(dropout_impl)
GPUKIT_GPU_ONLY_STUB(advance_dropout_step)
#endif
inline void advance_dropout_step(const cpu_executor&, std::uint64_t* step) { ++*step; }

template <class Exec, class X, class Y>
void dropout_checked(const Exec& exec, const char* where, const char* in_name, const char* out_name, const dropout& layer,
                     const dropout_key& key, const X& x, Y&& y) {
  const auto xv = input_view<Exec>(x);
  using T = std::remove_const_t<std::remove_pointer_t<decltype(xv.data)>>;
  require_element_type<Exec, T>();
  auto yv = output_view<Exec>(y);
  static_assert(std::is_same_v<decltype(yv.data), T*>, "gpukit::nn::dropout: input and output element types differ");
  require_shape(where, out_name, yv.shape, xv.shape);
  (void)in_name;
  dropout_impl(exec, make_dropout_params(layer, key.seed, key.stream), dropout_step{nullptr, key.step}, xv.data,
               yv.data, static_cast<long long>(xv.shape.size()));
}

}  // namespace detail

/// How dropout runs: one elementwise pass, one Philox block per four elements, the mask
/// recomputed in the backward pass (nothing stored); in a model's inference passes a copy
/// (no draws).
struct dropout_path {
  bool on_gpu = false;
  std::string describe() const {
    return on_gpu ? "elementwise, Philox4x32-10 per 4 elements, mask recomputed backward; inference: a copy"
                  : "CPU loop, Philox4x32-10 per 4 elements, mask recomputed backward; inference: a copy";
  }
};

/// The dropout path on `t` (the one selection function of the dropout layer).
inline dropout_path choose_dropout_path(const path_target& t) { return dropout_path{t.gpu}; }

/// y = x · keep / (1 - p), keep drawn from `key`.
template <class Exec, class X, class Y>
void dropout_forward(const Exec& exec, const dropout& layer, const dropout_key& key, const X& x, Y&& y) {
  detail::dropout_checked(exec, "gpukit::nn::dropout_forward", "x", "y", layer, key, x, y);
}

/// dx = dy · keep / (1 - p) with the keep of dropout_forward for the same key.
template <class Exec, class DY, class DX>
void dropout_backward(const Exec& exec, const dropout& layer, const dropout_key& key, const DY& dy, DX&& dx) {
  detail::dropout_checked(exec, "gpukit::nn::dropout_backward", "dy", "dx", layer, key, dy, dx);
}

}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/dropout.cuh"
#endif
