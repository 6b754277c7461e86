// gpukit/nn/loss.hpp — the losses, each the mean over its terms, with its gradient.
//
//   binary_crossentropy              on probabilities p:  -(t log p + (1 - t) log(1 - p)),
//                                    logs clamped at -100 and the gradient's p(1 - p) at
//                                    1e-12, as PyTorch does; t must be 0 or 1
//   binary_crossentropy_with_logits  on logits z, stable: max(z, 0) - z t + log(1 + e^-|z|);
//                                    t must be 0 or 1
//   mean_squared_error               (p - t)²
//   softmax_crossentropy             per sample (row of c·h·w logits z) and target
//                                    distribution t (one-hot, entries in [0, 1]):
//                                    Σₖ tₖ (logsumexp(z) - zₖ), mean over the batch
// BCE and MSE average over every element, softmax cross-entropy over the samples.
//
//   T l = nn::loss_and_gradient(exec, loss, prediction, target, grad);  // grad = ∂l/∂prediction
//   T l = nn::loss_value(exec, loss, prediction, target);
//
// prediction, target and grad have one shape (std::invalid_argument otherwise). Values are
// checked before anything is written: non-finite predictions (or probabilities outside
// [0, 1] for binary_crossentropy) and targets outside the loss's domain throw
// std::invalid_argument naming the argument, its shape, the index and the value. The GPU
// forms synchronise the executor's stream (the value and the check reach the host).
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/tensor.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <variant>

namespace gpukit::nn {

struct binary_crossentropy {};
struct binary_crossentropy_with_logits {};
struct mean_squared_error {};
struct softmax_crossentropy {};

using loss = std::variant<binary_crossentropy, binary_crossentropy_with_logits, mean_squared_error, softmax_crossentropy>;

inline const char* loss_name(const loss& l) noexcept {
  static constexpr const char* names[] = {"binary_crossentropy", "binary_crossentropy_with_logits",
                                          "mean_squared_error", "softmax_crossentropy"};
  return names[l.index()];
}

namespace detail {

enum class loss_kind { bce, bce_logits, mse, softmax_ce };
inline loss_kind kind_of(const loss& l) noexcept { return static_cast<loss_kind>(l.index()); }

/// What a checked input must satisfy: finite, or a probability in [0, 1].
enum class value_check { finite, probability };

template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool value_ok(value_check c, T v) {
  if (c == value_check::probability) return v >= T(0) && v <= T(1);
  return cuda::std::isfinite(v);
}

template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE bool target_ok(loss_kind k, T t) {
  switch (k) {
    case loss_kind::bce:
    case loss_kind::bce_logits: return t == T(0) || t == T(1);
    case loss_kind::softmax_ce: return t >= T(0) && t <= T(1);
    default: return cuda::std::isfinite(t);
  }
}

inline const char* target_rule(loss_kind k) noexcept {
  switch (k) {
    case loss_kind::bce:
    case loss_kind::bce_logits: return "binary cross-entropy labels must be 0 or 1";
    case loss_kind::softmax_ce: return "softmax cross-entropy targets must lie in [0, 1]";
    default: return "targets must be finite";
  }
}

/// Where a check failed: the first bad index of the checked input and of the target
/// (all ones: none) and the values found there, so that an error message never reads the
/// caller's batch again (it may be freed by the time the message is made). The GPU keeps
/// one in device memory, with the loss beside it; the check resets the fields before
/// `loss` to all ones (checked_blocks counts the check kernel's finished blocks from there).
struct step_record {
  unsigned long long bad_input = ~0ull;
  unsigned long long bad_target = ~0ull;
  unsigned int checked_blocks = ~0u;
  float loss = 0.0f;
  float bad_input_value = 0.0f;
  float bad_target_value = 0.0f;
};

inline constexpr unsigned long long no_bad_index = ~0ull;

inline std::string value_string(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

/// One element's loss and gradient (before dividing by the count) for the elementwise kinds.
template <class T>
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE void elementwise_loss(loss_kind k, T p, T t, T& value, T& slope) {
  switch (k) {
    case loss_kind::bce: {
      const T lp = cuda::std::fmax(cuda::std::log(p), T(-100));
      const T lq = cuda::std::fmax(cuda::std::log(T(1) - p), T(-100));
      value = -(t * lp + (T(1) - t) * lq);
      slope = (p - t) / cuda::std::fmax(p * (T(1) - p), T(1e-12));
      return;
    }
    case loss_kind::bce_logits: {
      value = cuda::std::fmax(p, T(0)) - p * t + cuda::std::log1p(cuda::std::exp(-cuda::std::fabs(p)));
      slope = stable_sigmoid(p) - t;
      return;
    }
    default: {
      const T d = p - t;
      value = d * d;
      slope = T(2) * d;
      return;
    }
  }
}

/// One sample's softmax cross-entropy over `cols` logits; writes the gradient row (times
/// `scale`) when `grad` is not null. Returns the sample's loss.
template <class T>
GPUKIT_HOST_DEVICE T softmax_row(int cols, const T* z, const T* t, T* grad, T scale) {
  T zmax = z[0];
  for (int k = 1; k < cols; ++k) zmax = cuda::std::fmax(zmax, z[k]);
  T sum = T(0), tsum = T(0), tz = T(0);
  for (int k = 0; k < cols; ++k) {
    sum += cuda::std::exp(z[k] - zmax);
    tsum += t[k];
    tz += t[k] * (z[k] - zmax);
  }
  const T log_sum = cuda::std::log(sum);
  if (grad != nullptr)
    for (int k = 0; k < cols; ++k) grad[k] = scale * (cuda::std::exp(z[k] - zmax - log_sum) * tsum - t[k]);
  return tsum * log_sum - tz;
}

// ---- CPU path ------------------------------------------------------------------------

template <class T>
T loss_cpu(loss_kind k, long long rows, long long cols, const T* pred, const T* target, T* grad) {
  double total = 0.0;
  if (k == loss_kind::softmax_ce) {
    const T scale = T(1) / static_cast<T>(rows);
    for (long long r = 0; r < rows; ++r)
      total += static_cast<double>(softmax_row(static_cast<int>(cols), pred + r * cols, target + r * cols,
                                               grad != nullptr ? grad + r * cols : nullptr, scale));
    return static_cast<T>(total / static_cast<double>(rows));
  }
  const long long count = rows * cols;
  const T scale = T(1) / static_cast<T>(count);
  for (long long i = 0; i < count; ++i) {
    T value, slope;
    elementwise_loss(k, pred[i], target[i], value, slope);
    total += static_cast<double>(value);
    if (grad != nullptr) grad[i] = slope * scale;
  }
  return static_cast<T>(total / static_cast<double>(count));
}

/// The first index where the check fails (no_bad_index if none).
template <class T>
unsigned long long first_bad_input(value_check c, const T* x, long long n) {
  for (long long i = 0; i < n; ++i)
    if (!value_ok(c, x[i])) return static_cast<unsigned long long>(i);
  return no_bad_index;
}
template <class T>
unsigned long long first_bad_target(loss_kind k, const T* t, long long n) {
  for (long long i = 0; i < n; ++i)
    if (!target_ok(k, t[i])) return static_cast<unsigned long long>(i);
  return no_bad_index;
}

#if defined(__CUDACC__)
// Defined in loss.cuh. validate_gpu resets the record's indices and records the first bad
// ones (input may be null); loss_gpu writes the mean loss into *loss_out and the gradient
// into grad (if not null).
inline void validate_gpu(const cuda_executor& exec, value_check check, const float* input, long long n_input,
                         loss_kind kind, const float* target, long long n_target, step_record* record);
inline void loss_gpu(const cuda_executor& exec, loss_kind kind, long long rows, long long cols, const float* pred,
                     const float* target, float* grad, float* loss_out);
#endif

template <class Exec>
constexpr void require_nvcc() {
#if !defined(__CUDACC__)
  static_assert(!is_gpu_executor_v<Exec>,
                "gpukit::nn: a GPU layer called from a file compiled by the host compiler; compile it with nvcc (.cu)");
#endif
}


/// "argument 'y' (shape (4, 1, 1, 1)) holds 2 at index 3: <rule>".
inline std::string bad_value_message(const char* arg, const shape4& shape, unsigned long long index, double value,
                                     const std::string& rule) {
  return std::string("argument '") + arg + "' (shape " + to_string(shape) + ") holds " + value_string(value) +
         " at index " + std::to_string(index) + ": " + rule;
}

template <class Exec, class P, class Y, class G>
auto loss_impl(const Exec& exec, const loss& l, const P& prediction, const Y& target, G&& grad, const char* where) {
  const auto pv = input_view<Exec>(prediction);
  const auto tv = input_view<Exec>(target);
  using T = std::remove_const_t<std::remove_pointer_t<decltype(pv.data)>>;
  require_element_type<Exec, T>();
  const auto gv = optional_output_view<Exec, T>(grad);
  const bool want_grad = !std::is_same_v<std::decay_t<G>, no_grad_t>;
  require_shape(where, "target", tv.shape, pv.shape);
  if (want_grad) require_shape(where, "grad", gv.shape, pv.shape);
  require(pv.size() > 0, where, "argument 'prediction' is empty: the mean of no terms is undefined");
  const loss_kind k = kind_of(l);
  const value_check check = k == loss_kind::bce ? value_check::probability : value_check::finite;
  const long long rows = static_cast<long long>(pv.shape.n), cols = static_cast<long long>(pv.shape.features());
  const long long count = static_cast<long long>(pv.size());
  const std::string pred_rule = check == value_check::probability
                                    ? std::string(loss_name(l)) + " takes probabilities in [0, 1]"
                                    : std::string("predictions must be finite");
  unsigned long long bad_p = no_bad_index, bad_t = no_bad_index;
  double bad_p_value = 0.0, bad_t_value = 0.0;
  T value = T(0);
  if constexpr (is_gpu_executor_v<Exec>) {
    require_nvcc<Exec>();
#if defined(__CUDACC__)
    device_buffer<step_record> record(1, exec.stream(), zero_init);
    validate_gpu(exec, check, pv.data, count, k, tv.data, count, record.data());
    step_record host;
    GPUKIT_CUDA_TRY(cudaMemcpyAsync(&host, record.data(), sizeof host, cudaMemcpyDeviceToHost, exec.stream()));
    exec.synchronize();
    bad_p = host.bad_input, bad_t = host.bad_target;
    bad_p_value = host.bad_input_value, bad_t_value = host.bad_target_value;
    if (bad_p == no_bad_index && bad_t == no_bad_index) {
      loss_gpu(exec, k, rows, cols, pv.data, tv.data, want_grad ? gv.data : nullptr, &record.data()->loss);
      GPUKIT_CUDA_TRY(cudaMemcpyAsync(&host, record.data(), sizeof host, cudaMemcpyDeviceToHost, exec.stream()));
      exec.synchronize();
      value = host.loss;
    }
#endif
  } else {
    (void)exec;
    bad_p = first_bad_input(check, pv.data, count);
    bad_t = first_bad_target(k, tv.data, count);
    if (bad_p != no_bad_index) bad_p_value = pv.data[bad_p];
    if (bad_t != no_bad_index) bad_t_value = tv.data[bad_t];
    if (bad_p == no_bad_index && bad_t == no_bad_index)
      value = loss_cpu(k, rows, cols, pv.data, tv.data, want_grad ? gv.data : nullptr);
  }
  if (bad_p != no_bad_index)
    require(false, where,
            bad_value_message("prediction", pv.shape, bad_p, bad_p_value, pred_rule) +
                "; nothing was written");
  if (bad_t != no_bad_index)
    require(false, where,
            bad_value_message("target", tv.shape, bad_t, bad_t_value, target_rule(k)) +
                "; nothing was written");
  return value;
}

}  // namespace detail

/// The loss of `prediction` against `target` (their mean over terms), with grad = ∂l/∂prediction.
template <class Exec, class P, class Y, class G>
auto loss_and_gradient(const Exec& exec, const loss& l, const P& prediction, const Y& target, G&& grad) {
  return detail::loss_impl(exec, l, prediction, target, grad, "gpukit::nn::loss_and_gradient");
}

/// The loss of `prediction` against `target`.
template <class Exec, class P, class Y>
auto loss_value(const Exec& exec, const loss& l, const P& prediction, const Y& target) {
  return detail::loss_impl(exec, l, prediction, target, no_grad, "gpukit::nn::loss_value");
}

}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/loss.cuh"
#endif
