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

#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/activation_functions.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/path_target.hpp"
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

/// Resets `record` and writes the first bad index of `input` (may be null: n_input 0) and of
/// `target` into it, with the values found there (no_bad_index: none). GPU: queued; the
/// record lives in device memory.
template <class T>
void validate_impl(const cpu_executor&, value_check check, const T* input, long long n_input, loss_kind kind,
                   const T* target, long long n_target, step_record* record) {
  const float loss = record->loss;
  *record = step_record{};
  record->loss = loss;
  record->bad_input = first_bad_input(check, input, n_input);
  record->bad_target = first_bad_target(kind, target, n_target);
  if (record->bad_input != no_bad_index) record->bad_input_value = static_cast<float>(input[record->bad_input]);
  if (record->bad_target != no_bad_index) record->bad_target_value = static_cast<float>(target[record->bad_target]);
}

/// The mean loss of pred against target into *loss_out and, when grad is not null, its
/// gradient (rows samples of cols values). GPU: queued, one block.
template <class T>
void step_loss_impl(const cpu_executor&, loss_kind kind, long long rows, long long cols, const T* pred, const T* target,
                    T* grad, T* loss_out) {
  *loss_out = loss_cpu(kind, rows, cols, pred, target, grad);
}

/// The record as the host sees it (GPU: copied through `staging`, pinned host memory, after
/// waiting for the stream).
inline step_record read_record_impl(const cpu_executor&, const step_record* record, step_record*) { return *record; }

#if defined(__CUDACC__)
// Defined in loss.cuh.
inline step_record read_record_impl(const cuda_executor& exec, const step_record* record, step_record* staging);
inline void validate_impl(const cuda_executor& exec, value_check check, const float* input, long long n_input,
                          loss_kind kind, const float* target, long long n_target, step_record* record);
inline void step_loss_impl(const cuda_executor& exec, loss_kind kind, long long rows, long long cols, const float* pred,
                           const float* target, float* grad, float* loss_out);
#else
GPUKIT_GPU_ONLY_STUB(read_record_impl)
GPUKIT_GPU_ONLY_STUB(validate_impl)
GPUKIT_GPU_ONLY_STUB(step_loss_impl)
#endif


/// What checked_loss_impl found: the first bad index of the prediction and of the target
/// (no_bad_index: none) with the values there, and the loss when both are clean.
template <class T>
struct checked_loss {
  unsigned long long bad_input = no_bad_index, bad_target = no_bad_index;
  double bad_input_value = 0.0, bad_target_value = 0.0;
  T loss = T(0);
};

/// The checks, then (when they pass) the loss and its gradient. GPU: waits for the stream.
template <class T>
checked_loss<T> checked_loss_impl(const cpu_executor&, value_check check, loss_kind k, long long rows, long long cols,
                                  const T* pred, const T* target, T* grad) {
  checked_loss<T> r;
  const long long count = rows * cols;
  r.bad_input = first_bad_input(check, pred, count);
  r.bad_target = first_bad_target(k, target, count);
  if (r.bad_input != no_bad_index) r.bad_input_value = static_cast<double>(pred[r.bad_input]);
  if (r.bad_target != no_bad_index) r.bad_target_value = static_cast<double>(target[r.bad_target]);
  if (r.bad_input == no_bad_index && r.bad_target == no_bad_index) r.loss = loss_cpu(k, rows, cols, pred, target, grad);
  return r;
}
#if defined(__CUDACC__)
// Defined in loss.cuh.
inline checked_loss<float> checked_loss_impl(const cuda_executor& exec, value_check check, loss_kind k, long long rows,
                                             long long cols, const float* pred, const float* target, float* grad);
#else
GPUKIT_GPU_ONLY_STUB(checked_loss_impl)
#endif

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
  const std::string pred_rule = check == value_check::probability
                                    ? std::string(loss_name(l)) + " takes probabilities in [0, 1]"
                                    : std::string("predictions must be finite");
  const auto r = checked_loss_impl(exec, check, k, rows, cols, pv.data, tv.data, want_grad ? gv.data : nullptr);
  if (r.bad_input != no_bad_index)
    require(false, where,
            bad_value_message("prediction", pv.shape, r.bad_input, r.bad_input_value, pred_rule) +
                "; nothing was written");
  if (r.bad_target != no_bad_index)
    require(false, where,
            bad_value_message("target", tv.shape, r.bad_target, r.bad_target_value, target_rule(k)) +
                "; nothing was written");
  const T value = r.loss;
  return value;
}

}  // namespace detail

/// How a model's loss runs: one block over the batch (a batch's loss is a few thousand
/// terms at most, and one block sums them in a fixed order), or on the GPU inside the
/// last dense layer's launch (forward, loss, gradient and that layer's backward pass in
/// one block) when that layer is small and the loss elementwise. CPU: a loop.
enum class loss_kernel { one_block, fused_with_last_dense };

struct loss_path {
  bool on_gpu = false;
  loss_kernel kernel = loss_kernel::one_block;
  bool on_logits = false;  // binary cross-entropy after a sigmoid, evaluated from the logits
  std::string describe() const {
    std::string s = !on_gpu ? "CPU loop" : kernel == loss_kernel::fused_with_last_dense
                                               ? "fused with the last dense layer (one block)"
                                               : "one block";
    return on_logits ? s + ", on the logits" : s;
  }
};

/// The loss path (the one selection function of the losses). `last_dense_fuses`: the model
/// ends in a dense layer whose own path can take the loss (dense_path::head_fused).
inline loss_path choose_loss_path(const loss& l, const path_target& t, bool on_logits, bool last_dense_fuses) {
  loss_path p;
  p.on_gpu = t.gpu;
  p.on_logits = on_logits;
  if (t.gpu && last_dense_fuses && detail::kind_of(l) != detail::loss_kind::softmax_ce)
    p.kernel = loss_kernel::fused_with_last_dense;
  return p;
}

/// Whether the loss is a sum of one term per element (the fused head takes those).
inline bool loss_is_elementwise(const loss& l) noexcept { return detail::kind_of(l) != detail::loss_kind::softmax_ce; }

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
