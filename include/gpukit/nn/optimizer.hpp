// gpukit/nn/optimizer.hpp — SGD with momentum and Adam over one flat parameter buffer, so
// one launch updates every parameter of a model; weight decay, a learning-rate schedule and
// clipping by the gradient's global norm are part of the optimizer's settings.
//
//   nn::sgd{learning_rate = 0.01, momentum = 0, weight_decay = 0}   PyTorch's SGD (no
//       dampening):  g += λ p;  v = μ v + g;  p -= lr v          (μ = 0: p -= lr g)
//   nn::adam{lr = 1e-3, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8, weight_decay = 0}
//       PyTorch's Adam (λ > 0: L2, g += λ p):
//       m = β1 m + (1 - β1) g;  v = β2 v + (1 - β2) g²;  t = t + 1
//       p -= (lr / (1 - β1ᵗ)) · m / (√v / √(1 - β2ᵗ) + ε)
//   nn::adamw(lr = 1e-3, weight_decay = 1e-2)   PyTorch's AdamW (decoupled): p *= 1 - lr λ,
//       then Adam's step with the gradient as it is
//
// Every optimizer also takes
//   schedule        the learning rate of step t = 1, 2, ... (nn::lr_schedule: constant, step,
//                   cosine with linear warm-up), evaluated where the step runs, so a captured
//                   CUDA graph follows it replay by replay
//   max_grad_norm   > 0: the whole gradient is scaled by min(1, max / (‖g‖₂ + 1e-6)) before
//                   the update (PyTorch's clip_grad_norm_), ‖g‖ over every parameter
//
//   nn::optimizer_state<Exec, T> state(exec, nn::adam{}, parameter_count);   // moments zeroed
//   state.step(params, grads);   // params and grads: parameter_count elements each
//
// On the GPU the step count, the scheduled rate and the clipping factor live in device
// memory and one-thread kernels compute them before the update, so a captured CUDA graph
// counts its replays correctly; step() only queues work. Invalid settings (non-positive
// rates, betas or momentum outside [0, 1), a negative weight decay, a schedule that cannot
// hold) throw std::invalid_argument at construction.
#pragma once

#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/path_target.hpp"

#include <algorithm>
#include <cmath>
#include <math.h>  // ::pow, ::sqrt, ::cos in host-and-device functions (gpukit::pow and gpukit::sqrt are ops)
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace gpukit::nn {

/// The learning rate of optimizer step t = 1, 2, ... as a function of the optimizer's
/// learning_rate (lr₀):
///   constant()                        lr₀
///   step(every, gamma)                lr₀ · γ^⌊(t - 1) / every⌋   (PyTorch's StepLR stepped
///                                     once per optimizer step)
///   cosine(total, warmup, min_lr)     t ≤ warmup: lr₀ · t / warmup (linear warm-up);
///                                     then min + (lr₀ - min)(1 + cos(π p)) / 2 with
///                                     p = (t - warmup) / (total - warmup), p ≤ 1 (min after
///                                     step `total`)
/// Evaluated in double and rounded to float, on the host or the device (the device's cos may
/// differ from the host's in the last bit of a double: the float rates agree all but always).
struct lr_schedule {
  enum class shape : int { constant, step, cosine };
  shape kind = shape::constant;
  long long every = 0;    ///< step: optimizer steps between decays
  float gamma = 0.1f;     ///< step: the factor of each decay
  long long total = 0;    ///< cosine: steps of warm-up plus annealing
  long long warmup = 0;   ///< cosine: steps of linear warm-up
  float min_lr = 0.0f;    ///< cosine: the rate it anneals to

  static lr_schedule constant() noexcept { return {}; }
  static lr_schedule step(long long every, float gamma = 0.1f) noexcept {
    lr_schedule s;
    s.kind = shape::step, s.every = every, s.gamma = gamma;
    return s;
  }
  static lr_schedule cosine(long long total_steps, long long warmup_steps = 0, float min_lr = 0.0f) noexcept {
    lr_schedule s;
    s.kind = shape::cosine, s.total = total_steps, s.warmup = warmup_steps, s.min_lr = min_lr;
    return s;
  }
};

struct sgd {
  float learning_rate = 0.01f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;   ///< λ ≥ 0: L2, g += λ p (PyTorch's SGD weight_decay)
  float max_grad_norm = 0.0f;  ///< > 0: clip the whole gradient to this global norm first
  lr_schedule schedule{};
};

struct adam {
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  float weight_decay = 0.0f;             ///< λ ≥ 0: L2 (g += λ p), or decoupled (AdamW)
  bool decoupled_weight_decay = false;   ///< true: p *= 1 - lr λ before the step (AdamW)
  float max_grad_norm = 0.0f;            ///< > 0: clip the whole gradient to this global norm first
  lr_schedule schedule{};
};

/// PyTorch's AdamW: Adam with decoupled weight decay (defaults as torch.optim.AdamW).
inline adam adamw(float learning_rate = 1e-3f, float weight_decay = 1e-2f) noexcept {
  adam a;
  a.learning_rate = learning_rate, a.weight_decay = weight_decay, a.decoupled_weight_decay = true;
  return a;
}

using optimizer = std::variant<sgd, adam>;

inline const char* optimizer_name(const optimizer& o) noexcept {
  if (const auto* a = std::get_if<adam>(&o)) return a->decoupled_weight_decay ? "adamw" : "adam";
  return "sgd";
}

/// The base rate lr₀, the schedule and the clipping bound of either optimizer.
inline float base_learning_rate(const optimizer& o) noexcept {
  return std::visit([](const auto& c) { return c.learning_rate; }, o);
}
inline const lr_schedule& schedule_of(const optimizer& o) noexcept {
  return std::visit([](const auto& c) -> const lr_schedule& { return c.schedule; }, o);
}
inline float max_grad_norm_of(const optimizer& o) noexcept {
  return std::visit([](const auto& c) { return c.max_grad_norm; }, o);
}

/// The learning rate of step t (t ≥ 1) under `s` from the base rate lr0.
GPUKIT_HOST_DEVICE inline float scheduled_learning_rate(const lr_schedule& s, float lr0, long long t) {
  const double base = static_cast<double>(lr0);
  switch (s.kind) {
    case lr_schedule::shape::step: {
      const long long decays = (t - 1) / s.every;  // one pow, not a loop as long as t / every
      return static_cast<float>(base * ::pow(static_cast<double>(s.gamma), static_cast<double>(decays)));
    }
    case lr_schedule::shape::cosine: {
      if (t <= s.warmup) return static_cast<float>(base * static_cast<double>(t) / static_cast<double>(s.warmup));
      const double span = static_cast<double>(s.total - s.warmup);
      double p = static_cast<double>(t - s.warmup) / span;
      if (p > 1.0) p = 1.0;
      const double low = static_cast<double>(s.min_lr);
      return static_cast<float>(low + (base - low) * 0.5 * (1.0 + ::cos(3.141592653589793 * p)));
    }
    default: return lr0;
  }
}

namespace detail {

/// The step count and what the current step applies: the scheduled rate, Adam's bias
/// corrections, AdamW's decay and the clipping factor.
struct optimizer_clock {
  long long steps = 0;
  float lr = 0.0f;            // the scheduled learning rate of step `steps`
  float step_size = 0.0f;     // Adam: lr / (1 - β1ᵗ)
  float inv_sqrt_bc2 = 0.0f;  // Adam: 1 / √(1 - β2ᵗ)
  float decay = 1.0f;         // AdamW: 1 - lr λ; otherwise 1
  float grad_scale = 1.0f;    // clipping: min(1, max / (‖g‖ + 1e-6)); otherwise 1
};

/// What advance_clock needs of either optimizer, as plain data a kernel can take.
struct optimizer_clock_config {
  bool is_adam = false, decoupled = false;
  float learning_rate = 0.0f, weight_decay = 0.0f, beta1 = 0.0f, beta2 = 0.0f;
  lr_schedule schedule{};
};

inline optimizer_clock_config clock_config_of(const optimizer& o) noexcept {
  optimizer_clock_config c;
  c.learning_rate = base_learning_rate(o);
  c.schedule = schedule_of(o);
  if (const auto* a = std::get_if<adam>(&o)) {
    c.is_adam = true, c.decoupled = a->decoupled_weight_decay, c.weight_decay = a->weight_decay;
    c.beta1 = a->beta1, c.beta2 = a->beta2;
  }
  return c;
}

/// What a kernel that computes the gradient of some parameters needs to apply Adam to them
/// itself (GPU): the parameters and moments at the same offset, the clock already advanced
/// for this step, and the guard that vetoes the step. m == nullptr: no update.
struct fused_adam {
  float* params = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  const optimizer_clock* clock = nullptr;
  adam config{};
  const unsigned long long* guard = nullptr;
};

/// Advances `c` by one step of `o` (the GPU's tick kernel runs the same function). The
/// clipping factor is reset to 1: clip_scale sets it after the gradient exists.
GPUKIT_HOST_DEVICE inline void advance_clock(optimizer_clock& c, const optimizer_clock_config& o) {
  c.steps += 1;
  const double t = static_cast<double>(c.steps);
  c.lr = scheduled_learning_rate(o.schedule, o.learning_rate, c.steps);
  c.grad_scale = 1.0f;
  c.decay = o.decoupled ? static_cast<float>(1.0 - static_cast<double>(c.lr) * static_cast<double>(o.weight_decay)) : 1.0f;
  if (o.is_adam) {
    c.step_size = static_cast<float>(static_cast<double>(c.lr) / (1.0 - ::pow(static_cast<double>(o.beta1), t)));
    c.inv_sqrt_bc2 = static_cast<float>(1.0 / ::sqrt(1.0 - ::pow(static_cast<double>(o.beta2), t)));
  }
}

/// The clipping factor for a gradient of squared norm `sum_sq`.
GPUKIT_HOST_DEVICE inline float clip_factor(double sum_sq, float max_norm) {
  const double coef = static_cast<double>(max_norm) / (::sqrt(sum_sq) + 1e-6);
  return coef < 1.0 ? static_cast<float>(coef) : 1.0f;
}

inline void validate(const optimizer& o) {
  constexpr const char* where = "gpukit::nn::optimizer_state";
  const auto say = [](const char* arg, double v, const char* rule) {
    return std::string("argument '") + arg + "' = " + std::to_string(v) + " " + rule;
  };
  const auto positive = [&](float v, const char* arg) {
    require(std::isfinite(v) && v > 0.0f, where, say(arg, v, "must be positive and finite"));
  };
  const auto unit = [&](float v, const char* arg) { require(v >= 0.0f && v < 1.0f, where, say(arg, v, "must lie in [0, 1)")); };
  const auto non_negative = [&](float v, const char* arg) {
    require(std::isfinite(v) && v >= 0.0f, where, say(arg, v, "must be zero or positive and finite"));
  };
  const float lr = base_learning_rate(o);
  positive(lr, "learning_rate");
  non_negative(max_grad_norm_of(o), "max_grad_norm");
  if (const auto* s = std::get_if<sgd>(&o)) {
    unit(s->momentum, "momentum");
    non_negative(s->weight_decay, "weight_decay");
  } else {
    const auto& a = std::get<adam>(o);
    unit(a.beta1, "beta1");
    unit(a.beta2, "beta2");
    positive(a.epsilon, "epsilon");
    non_negative(a.weight_decay, "weight_decay");
    if (a.decoupled_weight_decay)
      require(static_cast<double>(lr) * a.weight_decay < 1.0, where,
              say("weight_decay", a.weight_decay, "times learning_rate must be below 1 (AdamW multiplies the parameters by 1 - lr weight_decay)"));
  }
  const lr_schedule& s = schedule_of(o);
  switch (s.kind) {
    case lr_schedule::shape::constant: break;
    case lr_schedule::shape::step:
      require(s.every >= 1, where, say("schedule.every", static_cast<double>(s.every), "must be at least 1"));
      positive(s.gamma, "schedule.gamma");
      break;
    case lr_schedule::shape::cosine:
      require(s.total >= 1, where, say("schedule.total", static_cast<double>(s.total), "must be at least 1"));
      require(s.warmup >= 0 && s.warmup < s.total, where,
              say("schedule.warmup", static_cast<double>(s.warmup), ("must lie in [0, total = " + std::to_string(s.total) + ")").c_str()));
      require(std::isfinite(s.min_lr) && s.min_lr >= 0.0f && s.min_lr <= lr, where,
              say("schedule.min_lr", s.min_lr, ("must lie in [0, learning_rate = " + std::to_string(lr) + "]").c_str()));
      break;
    default: require(false, where, say("schedule.kind", static_cast<int>(s.kind), "is not a schedule"));
  }
}

template <class T>
void sgd_cpu(const cpu_executor& exec, const sgd& s, const optimizer_clock& c, long long n, T* p, const T* g, T* v) {
  const T lr = static_cast<T>(c.lr), mu = static_cast<T>(s.momentum), l2 = static_cast<T>(s.weight_decay);
  const T scale = static_cast<T>(c.grad_scale);
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(n))) schedule(static)
  for (long long i = 0; i < n; ++i) {
    T step = g[i] * scale;
    if (l2 != T(0)) step += l2 * p[i];
    if (v != nullptr) step = v[i] = mu * v[i] + step;
    p[i] -= lr * step;
  }
}

template <class T>
void adam_cpu(const cpu_executor& exec, const adam& a, const optimizer_clock& c, long long n, T* p, const T* g, T* m,
              T* v) {
  const T b1 = static_cast<T>(a.beta1), b2 = static_cast<T>(a.beta2), eps = static_cast<T>(a.epsilon);
  const T step_size = static_cast<T>(c.step_size), inv_sqrt_bc2 = static_cast<T>(c.inv_sqrt_bc2);
  const T l2 = a.decoupled_weight_decay ? T(0) : static_cast<T>(a.weight_decay);
  const T decay = static_cast<T>(c.decay), scale = static_cast<T>(c.grad_scale);
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(n))) schedule(static)
  for (long long i = 0; i < n; ++i) {
    T gi = g[i] * scale;
    if (l2 != T(0)) gi += l2 * p[i];
    const T mi = b1 * m[i] + (T(1) - b1) * gi;
    const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    T pi = p[i];
    if (decay != T(1)) pi *= decay;
    p[i] = pi - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
}

/// Σ g² over n elements in double, in a fixed order (chunks of 2^16 summed in order), so
/// that the clipping factor does not depend on the thread count.
template <class T>
double sum_of_squares_cpu(const cpu_executor& exec, long long n, const T* g) {
  constexpr long long chunk = 1 << 16;
  const long long chunks = (n + chunk - 1) / chunk;
  std::vector<double> part(static_cast<std::size_t>(chunks), 0.0);
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(n))) schedule(static)
  for (long long c = 0; c < chunks; ++c) {
    double s = 0.0;
    for (long long i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) s += static_cast<double>(g[i]) * static_cast<double>(g[i]);
    part[static_cast<std::size_t>(c)] = s;
  }
  double total = 0.0;
  for (double s : part) total += s;
  return total;
}

/// Blocks of the GPU's sum-of-squares pass (each writes one partial sum; one block then
/// adds them in order, so the clipping factor is the same on every run).
inline constexpr int clip_partial_count = 264;

/// Up to four ranges [begin, begin + count) of a parameter buffer: the part an optimizer
/// launch updates when kernels have updated the rest themselves.
struct param_ranges {
  long long begin[4] = {}, count[4] = {};
  int size = 0;
};

/// Advances the step count and Adam's bias corrections in `clock` (the executor's memory).
inline void optimizer_tick_impl(const cpu_executor&, const optimizer& o, optimizer_clock* clock,
                                const unsigned long long*) {
  advance_clock(*clock, clock_config_of(o));
}
/// Sets the clock's clipping factor from the squared norm of the n gradients g (the
/// optimizer's max_grad_norm > 0); `partials` is GPU scratch of clip_partial_count doubles.
template <class T>
void optimizer_clip_impl(const cpu_executor& exec, const optimizer& o, optimizer_clock* clock, long long n, const T* g,
                         double*, const unsigned long long*) {
  clock->grad_scale = clip_factor(sum_of_squares_cpu(exec, n, g), max_grad_norm_of(o));
}
/// Updates the parameters in `ranges` of p from g (and the moments m, v) for the step the
/// clock holds.
template <class T>
void optimizer_update_impl(const cpu_executor& exec, const optimizer& o, const optimizer_clock* clock,
                           const param_ranges& ranges, T* p, const T* g, T* m, T* v, const unsigned long long*) {
  for (int r = 0; r < ranges.size; ++r) {
    const long long at = ranges.begin[r], n = ranges.count[r];
    if (const auto* s = std::get_if<sgd>(&o)) {
      sgd_cpu(exec, *s, *clock, n, p + at, g + at, m != nullptr ? m + at : nullptr);
    } else {
      adam_cpu(exec, std::get<adam>(o), *clock, n, p + at, g + at, m + at, v + at);
    }
  }
}
inline optimizer_clock read_clock_impl(const cpu_executor&, const optimizer_clock* clock) { return *clock; }

#if defined(__CUDACC__)
// Defined in optimizer.cuh. `guard` (nullable) points at a step_record's two bad-index
// words: when either holds an index the step changes nothing, the count included.
inline void optimizer_tick_impl(const cuda_executor& exec, const optimizer& o, optimizer_clock* clock,
                                const unsigned long long* guard);
inline void optimizer_clip_impl(const cuda_executor& exec, const optimizer& o, optimizer_clock* clock, long long n,
                                const float* g, double* partials, const unsigned long long* guard);
inline void optimizer_update_impl(const cuda_executor& exec, const optimizer& o, const optimizer_clock* clock,
                                  const param_ranges& ranges, float* p, const float* g, float* m, float* v,
                                  const unsigned long long* guard);
inline optimizer_clock read_clock_impl(const cuda_executor& exec, const optimizer_clock* clock);
#else
GPUKIT_GPU_ONLY_STUB(optimizer_tick_impl)
GPUKIT_GPU_ONLY_STUB(optimizer_clip_impl)
GPUKIT_GPU_ONLY_STUB(optimizer_update_impl)
GPUKIT_GPU_ONLY_STUB(read_clock_impl)
#endif

}  // namespace detail

/// How a model's optimizer step runs: one launch over the parameter buffer (float4 when it
/// is 16-byte aligned; the CPU: an OpenMP loop), and on the GPU with Adam the large dense
/// layers may apply it in their own backward kernels (dense_path::adam_fused), the launch
/// then covering only the other ranges.
struct optimizer_path {
  bool on_gpu = false;
  bool fuses_into_layers = false;
  bool clips = false;  // a pass over the gradient for its norm before the update
  std::string describe(const optimizer& o) const {
    std::string s = std::string(optimizer_name(o)) + (on_gpu ? ": one launch over every parameter" : ": CPU loop");
    if (fuses_into_layers) s += " not updated in a layer's backward kernel";
    if (clips) s += ", after a pass for the gradient's global norm (clipping)";
    return s;
  }
};

/// The optimizer path (the one selection function of the optimizers).
inline optimizer_path choose_optimizer_path(const optimizer& o, const path_target& t) {
  optimizer_path p;
  p.on_gpu = t.gpu;
  p.clips = max_grad_norm_of(o) > 0.0f;
  // The layers' fused updates run before the whole gradient exists: not when it is clipped.
  p.fuses_into_layers = t.gpu && std::holds_alternative<adam>(o) && !p.clips;
  return p;
}

template <class Exec, class T = float>
class optimizer_state {
  static constexpr memory_space space = is_gpu_executor_v<Exec> ? memory_space::device : memory_space::host;

 public:
  /// State for `count` parameters, moments zeroed (on the executor's stream for CUDA).
  optimizer_state(const Exec& exec, const optimizer& config, std::size_t count) : exec_(exec), config_(config), count_(count) {
    detail::require_element_type<Exec, T>();
    detail::validate(config);
    const bool is_adam = std::holds_alternative<adam>(config);
    const bool has_velocity = !is_adam && std::get<sgd>(config).momentum != 0.0f;
    if (is_adam || has_velocity) first_ = zeroed<T>(count);
    if (is_adam) second_ = zeroed<T>(count);
    clock_ = zeroed<detail::optimizer_clock>(1);
    if constexpr (is_gpu_executor_v<Exec>)
      if (max_grad_norm_of(config) > 0.0f) partials_ = make_buffer<double>(exec_, detail::clip_partial_count);
  }

  /// params -= update(grads), both `count` elements; GPU: queued, nothing waits.
  template <class P, class G>
  void step(P&& params, const G& grads) {
    auto ps = detail::output_params<Exec>(params);
    const auto gs = detail::input_params<Exec>(grads);
    detail::require_count("gpukit::nn::optimizer_state::step", "params", ps.size(), count_);
    detail::require_count("gpukit::nn::optimizer_state::step", "grads", gs.size(), count_);
    step_raw(ps.data(), gs.data(), nullptr);
  }

  /// The update on raw pointers; on the GPU `guard` (nullable, device) can veto it.
  void step_raw(T* params, const T* grads, const unsigned long long* guard) {
    tick(guard);
    clip(grads, guard);
    detail::param_ranges all;
    all.begin[0] = 0, all.count[0] = static_cast<long long>(count_), all.size = 1;
    update_ranges(all, params, grads, guard);
  }

  // A step in parts, for kernels that apply the update to the gradients they compute (GPU,
  // Adam): tick(guard), then those kernels with fused_at(...), then update_ranges(...) over
  // the parameters they left out. The same arithmetic as step_raw.

  void tick(const unsigned long long* guard) { detail::optimizer_tick_impl(exec_, config_, clock_.data(), guard); }
  /// After tick and before the update: the clipping factor from all `size()` gradients (no
  /// work without max_grad_norm).
  void clip(const T* grads, const unsigned long long* guard) {
    if (max_grad_norm_of(config_) > 0.0f)
      detail::optimizer_clip_impl(exec_, config_, clock_.data(), static_cast<long long>(count_), grads,
                                  partials_.data(), guard);
  }
  /// The state for params[offset, ...), `params` being the whole buffer step_raw takes (Adam).
  detail::fused_adam fused_at(T* params, std::size_t offset, const unsigned long long* guard) {
    return {params + offset, first_.data() + offset, second_.data() + offset, clock_.data(), std::get<adam>(config_),
            guard};
  }
  void update_ranges(const detail::param_ranges& ranges, T* params, const T* grads, const unsigned long long* guard) {
    detail::optimizer_update_impl(exec_, config_, clock_.data(), ranges, params, grads, first_.data(), second_.data(),
                                  guard);
  }

  /// Steps taken so far (GPU: waits for the stream to read it).
  std::int64_t steps() const { return detail::read_clock_impl(exec_, clock_.data()).steps; }
  /// The learning rate of the last step taken (before any: of the first step), as the
  /// schedule gives it (GPU: waits for the stream to read it).
  float learning_rate() const {
    const detail::optimizer_clock c = detail::read_clock_impl(exec_, clock_.data());
    return c.steps >= 1 ? c.lr : scheduled_learning_rate(schedule_of(config_), base_learning_rate(config_), 1);
  }
  /// The clipping factor of the last step (1 when nothing was clipped; GPU: waits).
  float last_clip_factor() const { return detail::read_clock_impl(exec_, clock_.data()).grad_scale; }

  const optimizer& config() const noexcept { return config_; }
  std::size_t size() const noexcept { return count_; }
  /// Adam's m, or SGD's velocity (empty for plain SGD).
  span<const T, space> first_moment() const noexcept { return first_.span(); }
  /// Adam's v (empty for SGD).
  span<const T, space> second_moment() const noexcept { return second_.span(); }

 private:
  template <class U>
  buffer_for<Exec, U> zeroed(std::size_t n) {
    return make_buffer<U>(exec_, n, zero_init);
  }

  Exec exec_;
  optimizer config_;
  std::size_t count_ = 0;
  buffer_for<Exec, T> first_, second_;
  buffer_for<Exec, detail::optimizer_clock> clock_;  // in the executor's memory: a captured graph counts its replays
  buffer_for<Exec, double> partials_;                 // GPU clipping: per-block sums of squares
};

}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/optimizer.cuh"
#endif
