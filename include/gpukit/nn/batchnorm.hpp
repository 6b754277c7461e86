// gpukit/nn/batchnorm.hpp — batch normalisation over the channels (torch.nn.BatchNorm2d and
// BatchNorm1d), with an activation after it fused in (batchnorm + relu is one stage).
//
// Per channel c over its M = n·h·w values, in training:
//   mean = Σx / M,  var = Σ(x - mean)² / M (biased),  invstd = 1 / sqrt(var + eps)
//   y = act(weight·(x - mean)·invstd + bias)
//   running_mean ← (1 - momentum)·running_mean + momentum·mean
//   running_var  ← (1 - momentum)·running_var  + momentum·var·M / (M - 1)   (unbiased, as PyTorch)
//   num_batches_tracked += 1
// and in inference the running estimates stand for mean and var, nothing is updated.
// Backward (dz = dy·act'(y), x̂ = (x - mean)·invstd):
//   dbias = Σ dz,  dweight = Σ dz·x̂
//   training:  dx = weight·invstd·(dz - dbias / M - x̂·dweight / M)
//   inference: dx = weight·invstd·dz (the statistics are constants there)
//
// Every pass is a per-channel reduction, a per-channel finalisation (finalize_forward,
// finalize_backward: the same functions on both executors) and an elementwise pass with the
// channel's coefficients: y = act(a·x + b) forward, dx = k1·dz + k2·x + k3 backward. The CPU
// sums each channel in double; the GPU sums slices of each channel in float (shifted by the
// channel's first value, so that a mean far from zero costs no precision), then adds the
// slices in double.
//
// Host-only: compiles with a plain C++17 compiler (the GPU path is batchnorm.cuh).
#pragma once

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/path_target.hpp"
#include "gpukit/nn/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace gpukit::nn {
namespace detail {

/// n images of c channels of `plane` = h·w values; eps and momentum of the layer.
struct batchnorm_geometry {
  int n = 0, c = 0, plane = 1;
  float eps = 1e-5f, momentum = 0.1f;
  activation act = activation::none;
  GPUKIT_HOST_DEVICE long long count() const noexcept { return static_cast<long long>(n) * plane; }  // values per channel
  GPUKIT_HOST_DEVICE long long total() const noexcept { return count() * c; }
};

inline batchnorm_geometry make_batchnorm_geometry(const batchnorm& l, const shape4& in, activation act,
                                                  const std::string& who) {
  require(in.features() * in.n < static_cast<std::size_t>(std::numeric_limits<int>::max()), who.c_str(),
          "the input " + to_string(in) + " has 2^31 or more values, more than the batch-norm kernels index");
  batchnorm_geometry g;
  g.n = static_cast<int>(in.n), g.c = static_cast<int>(in.c), g.plane = static_cast<int>(in.h * in.w);
  g.eps = l.eps, g.momentum = l.momentum, g.act = act;
  return g;
}

/// Per channel, the model keeps: the statistics a step used and the coefficients of its
/// elementwise passes. Indices into a block of saved_slots·c values, channel-minor.
enum saved_slot : int { saved_mean = 0, saved_invstd = 1, coef_a = 2, coef_b = 3, coef_c = 4, saved_slots = 5 };

/// The training forward's statistics of one channel from its sums around `shift`:
/// s1 = Σ(x - shift), s2 = Σ(x - shift)² over m values; updates the running estimates
/// (momentum as PyTorch's, the variance unbiased there) and writes mean, invstd and the
/// elementwise coefficients a = weight·invstd, b = bias - mean·a.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void finalize_forward(double shift, double s1, double s2, long long m, T weight,
                                                            T bias, float eps, float momentum, T* running_mean,
                                                            T* running_var, T* saved, int c, int channels) {
  const double dm = static_cast<double>(m);
  const double d = s1 / dm;
  double var = s2 / dm - d * d;
  var = var > 0.0 ? var : 0.0;
  const double mean = shift + d;
  const double invstd = 1.0 / ::sqrt(var + static_cast<double>(eps));
  const double mom = static_cast<double>(momentum);
  running_mean[c] = static_cast<T>((1.0 - mom) * static_cast<double>(running_mean[c]) + mom * mean);
  const double unbiased = m > 1 ? var * dm / (dm - 1.0) : var;
  running_var[c] = static_cast<T>((1.0 - mom) * static_cast<double>(running_var[c]) + mom * unbiased);
  const double a = static_cast<double>(weight) * invstd;
  saved[saved_mean * channels + c] = static_cast<T>(mean);
  saved[saved_invstd * channels + c] = static_cast<T>(invstd);
  saved[coef_a * channels + c] = static_cast<T>(a);
  saved[coef_b * channels + c] = static_cast<T>(static_cast<double>(bias) - mean * a);
}

/// The inference forward's coefficients of one channel, from the running estimates.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void finalize_inference(T weight, T bias, float eps, const T* running_mean,
                                                              const T* running_var, T* saved, int c, int channels) {
  const double mean = static_cast<double>(running_mean[c]);
  const double invstd = 1.0 / ::sqrt(static_cast<double>(running_var[c]) + static_cast<double>(eps));
  const double a = static_cast<double>(weight) * invstd;
  saved[saved_mean * channels + c] = static_cast<T>(mean);
  saved[saved_invstd * channels + c] = static_cast<T>(invstd);
  saved[coef_a * channels + c] = static_cast<T>(a);
  saved[coef_b * channels + c] = static_cast<T>(static_cast<double>(bias) - mean * a);
}

/// The backward pass's parameter gradients and dx coefficients of one channel from
/// t1 = Σ dz and t2 = Σ dz·(x - mean) over m values: dbias = t1, dweight = t2·invstd
/// (assigned, or added with `accumulate`); dx = a·dz + b·x + c with, in training,
/// a = weight·invstd, b = -a·invstd²·t2 / m, c = -a·t1 / m - b·mean, and in inference b = c = 0.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void finalize_backward(double t1, double t2, long long m, T weight, bool training,
                                                             bool accumulate, T* saved, T* dweight, T* dbias, int c,
                                                             int channels) {
  const double mean = static_cast<double>(saved[saved_mean * channels + c]);
  const double invstd = static_cast<double>(saved[saved_invstd * channels + c]);
  const double dw = t2 * invstd;
  dweight[c] = static_cast<T>(accumulate ? static_cast<double>(dweight[c]) + dw : dw);
  dbias[c] = static_cast<T>(accumulate ? static_cast<double>(dbias[c]) + t1 : t1);
  const double a = static_cast<double>(weight) * invstd;
  const double dm = static_cast<double>(m);
  const double b = training ? -a * invstd * invstd * t2 / dm : 0.0;
  const double k = training ? -a * t1 / dm - b * mean : 0.0;
  saved[coef_a * channels + c] = static_cast<T>(a);
  saved[coef_b * channels + c] = static_cast<T>(b);
  saved[coef_c * channels + c] = static_cast<T>(k);
}

/// One output of the forward pass: act(a·x + b).
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T batchnorm_value(T x, T a, T b, activation act) {
  return activate(act, a * x + b);
}
/// dz: the gradient through the fused activation from the output y.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T batchnorm_dz(T dy, T y, activation act) {
  return act == activation::none ? dy : dy * activation_slope(act, y);
}
/// One input gradient: a·dz + b·x + c.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE T batchnorm_dx(T dz, T x, T a, T b, T c) {
  return a * dz + b * x + c;
}

/// What a batch-norm pass reads and writes beside x and y: the layer's weight and bias, its
/// running estimates (c each), its batch counter, the saved block (saved_slots·c) and the
/// GPU's per-slice sums (2·c·max_splits floats).
template <class T>
struct batchnorm_state {
  const T* weight = nullptr;
  const T* bias = nullptr;
  T* running_mean = nullptr;
  T* running_var = nullptr;
  std::int64_t* batches_tracked = nullptr;
  T* saved = nullptr;
  float* partial = nullptr;
};

}  // namespace detail

/// How a batch norm runs. GPU: per channel, `splits` blocks sum slices of its values (a
/// block per channel slice when planes are large, `plane` layout; 32 channels per block,
/// coalesced across channels, when planes are small, `column` layout: a flat BatchNorm1d
/// input has planes of one value), one thread per channel finishes the statistics, and one
/// elementwise pass writes the output (16-byte accesses where the planes allow them).
/// Training forward reads x twice and writes y once; backward reads x, y and dy twice and
/// writes dx once.
struct batchnorm_path {
  static constexpr int max_splits = 64;
  bool on_gpu = false;
  bool column = false;
  int splits = 1;
  int vector = 1;  // plane layout: values per load (4 where planes are a multiple of four and tensors aligned)
  std::string describe() const {
    if (!on_gpu) return "CPU: channel sums in double, then one elementwise pass";
    return std::string(column ? "32 channels per block" : "one block per channel slice") +
           (vector == 4 ? " (float4)" : "") + ", " + std::to_string(splits) + (splits == 1 ? " slice" : " slices") +
           " per channel, then one elementwise pass";
  }
};

/// The batch-norm path for `g` on `t` (the one selection function of the layer). Planes of
/// fewer than 32 values take the column layout; the slices per channel are as many as give
/// about four blocks per multiprocessor, each slice at least 1024 values (64 rows of a
/// column block).
inline batchnorm_path choose_batchnorm_path(const detail::batchnorm_geometry& g, const path_target& t) {
  batchnorm_path p;
  if (!t.gpu) return p;
  p.on_gpu = true;
  p.column = g.plane < 32;
  const long long target_blocks = 4LL * std::max(1, t.sm_count);
  const long long groups = p.column ? (g.c + 31) / 32 : g.c;
  const long long per_channel = std::max<long long>(1, (target_blocks + groups - 1) / std::max<long long>(1, groups));
  const long long by_size = std::max<long long>(1, g.count() / (p.column ? 64 : 1024));
  p.splits = static_cast<int>(std::min<long long>({per_channel, by_size, batchnorm_path::max_splits}));
  if (!p.column && g.plane % 4 == 0) p.vector = 4;
  return p;
}

namespace detail {

template <class T>
void batchnorm_forward_impl(const cpu_executor& exec, const batchnorm_geometry& g, const batchnorm_path&, bool training,
                            const T* x, const batchnorm_state<T>& s, T* y) {
  const long long plane = g.plane;
  if (training) {
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.total()) * 4)) schedule(static)
    for (int c = 0; c < g.c; ++c) {
      const double shift = static_cast<double>(x[static_cast<long long>(c) * plane]);
      double s1 = 0.0, s2 = 0.0;
      for (int n = 0; n < g.n; ++n) {
        const T* p = x + (static_cast<long long>(n) * g.c + c) * plane;
        for (long long i = 0; i < plane; ++i) {
          const double d = static_cast<double>(p[i]) - shift;
          s1 += d, s2 += d * d;
        }
      }
      finalize_forward(shift, s1, s2, g.count(), s.weight[c], s.bias[c], g.eps, g.momentum, s.running_mean,
                       s.running_var, s.saved, c, g.c);
    }
    ++*s.batches_tracked;
  } else {
    for (int c = 0; c < g.c; ++c)
      finalize_inference(s.weight[c], s.bias[c], g.eps, s.running_mean, s.running_var, s.saved, c, g.c);
  }
  const long long rows = static_cast<long long>(g.n) * g.c;
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.total()) * 2)) schedule(static)
  for (long long r = 0; r < rows; ++r) {
    const int c = static_cast<int>(r % g.c);
    const T a = s.saved[coef_a * g.c + c], b = s.saved[coef_b * g.c + c];
    for (long long i = 0; i < plane; ++i) y[r * plane + i] = batchnorm_value(x[r * plane + i], a, b, g.act);
  }
}

/// dx may be null (no layer with parameters before this one): the parameter gradients only.
template <class T>
void batchnorm_backward_impl(const cpu_executor& exec, const batchnorm_geometry& g, const batchnorm_path&,
                             bool training, bool accumulate, const T* x, const T* y, const T* dy,
                             const batchnorm_state<T>& s, T* dweight, T* dbias, T* dx) {
  const long long plane = g.plane;
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.total()) * 6)) schedule(static)
  for (int c = 0; c < g.c; ++c) {
    const double mean = static_cast<double>(s.saved[saved_mean * g.c + c]);
    double t1 = 0.0, t2 = 0.0;
    for (int n = 0; n < g.n; ++n) {
      const long long off = (static_cast<long long>(n) * g.c + c) * plane;
      for (long long i = 0; i < plane; ++i) {
        const double dz = static_cast<double>(batchnorm_dz(dy[off + i], y[off + i], g.act));
        t1 += dz, t2 += dz * (static_cast<double>(x[off + i]) - mean);
      }
    }
    finalize_backward(t1, t2, g.count(), s.weight[c], training, accumulate, s.saved, dweight, dbias, c, g.c);
  }
  if (dx == nullptr) return;
  const long long rows = static_cast<long long>(g.n) * g.c;
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(g.total()) * 3)) schedule(static)
  for (long long r = 0; r < rows; ++r) {
    const int c = static_cast<int>(r % g.c);
    const T a = s.saved[coef_a * g.c + c], b = s.saved[coef_b * g.c + c], k = s.saved[coef_c * g.c + c];
    for (long long i = r * plane; i < (r + 1) * plane; ++i) dx[i] = batchnorm_dx(batchnorm_dz(dy[i], y[i], g.act), x[i], a, b, k);
  }
}

/// The inference coefficients (saved coef_a, coef_b) from the running estimates alone: what
/// folding the batch norm into the layer before it needs.
template <class T>
void batchnorm_inference_coefficients_impl(const cpu_executor&, const batchnorm_geometry& g, const batchnorm_state<T>& s) {
  for (int c = 0; c < g.c; ++c)
    finalize_inference(s.weight[c], s.bias[c], g.eps, s.running_mean, s.running_var, s.saved, c, g.c);
}

/// Inference folding: a conv or dense layer (weights w, `per_out` of them per output, bias b)
/// followed by a batch norm (coefficients a, b' per output in `saved`, `outs` outputs) is the
/// layer with weights a·w and bias a·b + b'. w_out and b_out must not alias w and b.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void fold_batchnorm_element(long long i, const T* w, const T* b, long long per_out,
                                                                  int outs, const T* saved, T* w_out, T* b_out) {
  const int o = static_cast<int>(i / per_out);
  const T a = saved[coef_a * outs + o];
  w_out[i] = a * w[i];
  if (i % per_out == 0) b_out[o] = a * b[o] + saved[coef_b * outs + o];
}
template <class T>
void fold_batchnorm_impl(const cpu_executor&, const T* w, const T* b, long long per_out, int outs, const T* saved,
                         T* w_out, T* b_out) {
  for (long long i = 0; i < per_out * outs; ++i) fold_batchnorm_element(i, w, b, per_out, outs, saved, w_out, b_out);
}

#if defined(__CUDACC__)
// Defined in batchnorm.cuh.
inline void batchnorm_forward_impl(const cuda_executor& exec, const batchnorm_geometry& g, const batchnorm_path& p,
                                   bool training, const float* x, const batchnorm_state<float>& s, float* y);
inline void batchnorm_backward_impl(const cuda_executor& exec, const batchnorm_geometry& g, const batchnorm_path& p,
                                    bool training, bool accumulate, const float* x, const float* y, const float* dy,
                                    const batchnorm_state<float>& s, float* dweight, float* dbias, float* dx);
inline void batchnorm_inference_coefficients_impl(const cuda_executor& exec, const batchnorm_geometry& g,
                                                  const batchnorm_state<float>& s);
inline void fold_batchnorm_impl(const cuda_executor& exec, const float* w, const float* b, long long per_out, int outs,
                                const float* saved, float* w_out, float* b_out);
#else
GPUKIT_GPU_ONLY_STUB(batchnorm_forward_impl)
GPUKIT_GPU_ONLY_STUB(batchnorm_backward_impl)
GPUKIT_GPU_ONLY_STUB(batchnorm_inference_coefficients_impl)
GPUKIT_GPU_ONLY_STUB(fold_batchnorm_impl)
#endif

}  // namespace detail
}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/batchnorm.cuh"
#endif
