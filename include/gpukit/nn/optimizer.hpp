// gpukit/nn/optimizer.hpp — SGD with momentum and Adam over one flat parameter buffer, so
// one launch updates every parameter of a model.
//
//   nn::sgd{learning_rate = 0.01, momentum = 0}       PyTorch's SGD (no dampening):
//       v = μ v + g;  p -= lr v          (μ = 0: p -= lr g)
//   nn::adam{lr = 1e-3, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8}   PyTorch's defaults:
//       m = β1 m + (1 - β1) g;  v = β2 v + (1 - β2) g²;  t = t + 1
//       p -= (lr / (1 - β1ᵗ)) · m / (√v / √(1 - β2ᵗ) + ε)
//
//   nn::optimizer_state<Exec, T> state(exec, nn::adam{}, parameter_count);   // moments zeroed
//   state.step(params, grads);   // params and grads: parameter_count elements each
//
// On the GPU the step count lives in device memory and a one-thread kernel advances it
// before the update, so a captured CUDA graph counts its replays correctly; step() only
// queues work. Invalid settings (non-positive rates, betas or momentum outside [0, 1))
// throw std::invalid_argument at construction.
#pragma once

#include "gpukit/core/device_buffer.hpp"
#include "gpukit/core/dispatch.hpp"
#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/nn/detail/arguments.hpp"
#include "gpukit/nn/path_target.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <variant>

namespace gpukit::nn {

struct sgd {
  float learning_rate = 0.01f;
  float momentum = 0.0f;
};

struct adam {
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
};

using optimizer = std::variant<sgd, adam>;

inline const char* optimizer_name(const optimizer& o) noexcept { return o.index() == 0 ? "sgd" : "adam"; }

namespace detail {

/// The step count and Adam's bias corrections for the current step.
struct optimizer_clock {
  long long steps = 0;
  float step_size = 0.0f;     // lr / (1 - β1ᵗ)
  float inv_sqrt_bc2 = 0.0f;  // 1 / √(1 - β2ᵗ)
};

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

inline void advance_clock(optimizer_clock& c, const adam& a) {
  c.steps += 1;
  const double t = static_cast<double>(c.steps);
  c.step_size = static_cast<float>(a.learning_rate / (1.0 - std::pow(static_cast<double>(a.beta1), t)));
  c.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(static_cast<double>(a.beta2), t)));
}

inline void validate(const optimizer& o) {
  constexpr const char* where = "gpukit::nn::optimizer_state";
  const auto positive = [&](float v, const char* arg) {
    require(std::isfinite(v) && v > 0.0f, where, std::string("argument '") + arg + "' = " + std::to_string(v) +
                                                     " must be positive and finite");
  };
  const auto unit = [&](float v, const char* arg) {
    require(v >= 0.0f && v < 1.0f, where,
            std::string("argument '") + arg + "' = " + std::to_string(v) + " must lie in [0, 1)");
  };
  if (const auto* s = std::get_if<sgd>(&o)) {
    positive(s->learning_rate, "learning_rate");
    unit(s->momentum, "momentum");
  } else {
    const auto& a = std::get<adam>(o);
    positive(a.learning_rate, "learning_rate");
    unit(a.beta1, "beta1");
    unit(a.beta2, "beta2");
    positive(a.epsilon, "epsilon");
  }
}

template <class T>
void sgd_cpu(const cpu_executor& exec, const sgd& s, long long n, T* p, const T* g, T* v) {
  const T lr = static_cast<T>(s.learning_rate), mu = static_cast<T>(s.momentum);
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(n))) schedule(static)
  for (long long i = 0; i < n; ++i) {
    T step = g[i];
    if (v != nullptr) step = v[i] = mu * v[i] + g[i];
    p[i] -= lr * step;
  }
}

template <class T>
void adam_cpu(const cpu_executor& exec, const adam& a, const optimizer_clock& c, long long n, T* p, const T* g, T* m,
              T* v) {
  const T b1 = static_cast<T>(a.beta1), b2 = static_cast<T>(a.beta2), eps = static_cast<T>(a.epsilon);
  const T step_size = static_cast<T>(c.step_size), inv_sqrt_bc2 = static_cast<T>(c.inv_sqrt_bc2);
#pragma omp parallel for num_threads(cpu_threads_for(exec, static_cast<double>(n))) schedule(static)
  for (long long i = 0; i < n; ++i) {
    const T gi = g[i];
    const T mi = b1 * m[i] + (T(1) - b1) * gi;
    const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
}

/// Up to four ranges [begin, begin + count) of a parameter buffer: the part an optimizer
/// launch updates when kernels have updated the rest themselves.
struct param_ranges {
  long long begin[4] = {}, count[4] = {};
  int size = 0;
};

/// Advances the step count and Adam's bias corrections in `clock` (the executor's memory).
inline void optimizer_tick_impl(const cpu_executor&, const optimizer& o, optimizer_clock* clock,
                                const unsigned long long*) {
  if (const auto* a = std::get_if<adam>(&o)) {
    advance_clock(*clock, *a);
  } else {
    clock->steps += 1;
  }
}
/// Updates the parameters in `ranges` of p from g (and the moments m, v) for the step the
/// clock holds.
template <class T>
void optimizer_update_impl(const cpu_executor& exec, const optimizer& o, const optimizer_clock* clock,
                           const param_ranges& ranges, T* p, const T* g, T* m, T* v, const unsigned long long*) {
  for (int r = 0; r < ranges.size; ++r) {
    const long long at = ranges.begin[r], n = ranges.count[r];
    if (const auto* s = std::get_if<sgd>(&o)) {
      sgd_cpu(exec, *s, n, p + at, g + at, m != nullptr ? m + at : nullptr);
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
inline void optimizer_update_impl(const cuda_executor& exec, const optimizer& o, const optimizer_clock* clock,
                                  const param_ranges& ranges, float* p, const float* g, float* m, float* v,
                                  const unsigned long long* guard);
inline optimizer_clock read_clock_impl(const cuda_executor& exec, const optimizer_clock* clock);
#else
GPUKIT_GPU_ONLY_STUB(optimizer_tick_impl)
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
  std::string describe(const optimizer& o) const {
    std::string s = std::string(optimizer_name(o)) + (on_gpu ? ": one launch over every parameter" : ": CPU loop");
    if (fuses_into_layers) s += " not updated in a layer's backward kernel";
    return s;
  }
};

/// The optimizer path (the one selection function of the optimizers).
inline optimizer_path choose_optimizer_path(const optimizer& o, const path_target& t) {
  optimizer_path p;
  p.on_gpu = t.gpu;
  p.fuses_into_layers = t.gpu && std::holds_alternative<adam>(o);
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
    detail::param_ranges all;
    all.begin[0] = 0, all.count[0] = static_cast<long long>(count_), all.size = 1;
    update_ranges(all, params, grads, guard);
  }

  // A step in parts, for kernels that apply the update to the gradients they compute (GPU,
  // Adam): tick(guard), then those kernels with fused_at(...), then update_ranges(...) over
  // the parameters they left out. The same arithmetic as step_raw.

  void tick(const unsigned long long* guard) { detail::optimizer_tick_impl(exec_, config_, clock_.data(), guard); }
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
};

}  // namespace gpukit::nn

#if defined(__CUDACC__)
#include "gpukit/nn/optimizer.cuh"
#endif
