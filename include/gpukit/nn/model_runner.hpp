// gpukit/nn/model_runner.hpp — runs a model_plan on an executor: owns the parameters, the
// gradients, every stage's activations and gradients for max_batch samples, the optimizer
// state and the scratch, and queues the forward pass, the loss, the backward pass and the
// optimizer step. The same code for both executors: each stage calls its layer's
// implementation overloaded on the executor with the path the plan chose; what only the
// GPU has (a fused last layer and loss, Adam inside a dense backward kernel) is a plan
// decision that is never taken on the CPU.
//
// Invariant of every backward pass: parameter gradients ACCUMULATE (+=) into the one flat
// gradient buffer (or are ASSIGNED in a training step, which then needs no zeroing pass);
// activation gradients are ASSIGNED (=) into per-stage buffers. After construction nothing
// allocates, so a training step can be captured in one CUDA graph.
// Host-only: compiles with a plain C++17 compiler (the GPU path needs nvcc, as every layer).
#pragma once

#include "gpukit/core/executor.hpp"
#include "gpukit/core/transfer.hpp"
#include "gpukit/core/workspace.hpp"
#include "gpukit/nn/activation.hpp"
#include "gpukit/nn/avgpool2d.hpp"
#include "gpukit/nn/batchnorm.hpp"
#include "gpukit/nn/conv2d.hpp"
#include "gpukit/nn/dense.hpp"
#include "gpukit/nn/dropout.hpp"
#include "gpukit/nn/init.hpp"
#include "gpukit/nn/loss.hpp"
#include "gpukit/nn/maxpool2d.hpp"
#include "gpukit/nn/model_plan.hpp"
#include "gpukit/nn/optimizer.hpp"
#include "gpukit/nn/softmax.hpp"
#include "gpukit/nn/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace gpukit::nn {

template <class Exec, class T = float>
class model_runner {
  static constexpr memory_space space = space_of_v<Exec>;
  template <class U>
  using buffer = buffer_for<Exec, U>;

 public:
  /// Allocates everything `plan` needs on `exec` and initialises the weights from `seed`
  /// (the same bits on both executors; biases zero). `layers` are the plan's layers.
  model_runner(const Exec& exec, model_plan plan, std::uint64_t seed)
      : exec_(exec), run_exec_(exec), plan_(std::move(plan)) {
    const auto& stages = plan_.stages();
    std::vector<T> host(plan_.parameter_total(), T(0));
    for (const auto& st : stages) {
      if (!st.has_params) continue;
      if (st.bn) {  // batch norm: weight one, bias zero (PyTorch's reset_parameters)
        std::fill(host.begin() + static_cast<std::ptrdiff_t>(st.w_off),
                  host.begin() + static_cast<std::ptrdiff_t>(st.w_off + st.w_count), T(1));
        continue;
      }
      const init kind = st.conv ? st.conv->conv.weight_init : st.fc->weight_init;
      const std::size_t fan_in = st.conv ? st.conv->conv.fan_in() : st.fc->fan_in();
      const std::size_t fan_out = st.conv ? st.conv->conv.fan_out() : st.fc->fan_out();
      initialise(host.data() + st.w_off, st.w_count, kind, fan_in, fan_out, seed, st.first_layer);
    }
    params_ = make_buffer<T>(exec_, plan_.parameter_total());
    copy_from_host(exec_, params_, host_span<const T>(host.data(), host.size()));
    grads_ = make_buffer<T>(exec_, plan_.parameter_total(), zero_init);
    buffers_.resize(stages.size());
    const std::size_t max_batch = plan_.max_batch();
    for (std::size_t i = 0; i < stages.size(); ++i) {
      const auto& st = stages[i];
      if (st.kind == stage_kind::flatten) continue;
      const std::size_t n = max_batch * st.out.features();
      buffers_[i].out = make_buffer<T>(exec_, n);
      buffers_[i].grad = make_buffer<T>(exec_, n);
      if ((st.kind == stage_kind::conv && st.conv->pool) || st.kind == stage_kind::pool)
        buffers_[i].argmax = make_buffer<std::int32_t>(exec_, n);
      if (st.loss_takes_logits && st.kind == stage_kind::dense) buffers_[i].logits = make_buffer<T>(exec_, n);
    }
    dropout_params_.resize(stages.size());
    for (std::size_t i = 0; i < stages.size(); ++i)  // each layer its own stream of masks
      if (stages[i].drop) dropout_params_[i] = detail::make_dropout_params(*stages[i].drop, seed, static_cast<std::uint32_t>(stages[i].first_layer));
    dropout_step_ = make_buffer<std::uint64_t>(exec_, 1, zero_init);
    const std::size_t biasless = std::max<std::size_t>(plan_.max_biasless_outputs(), 1);
    zero_bias_ = make_buffer<T>(exec_, biasless, zero_init);
    bias_sink_ = make_buffer<T>(exec_, biasless, zero_init);
    folded_ = make_buffer<T>(exec_, std::max<std::size_t>(plan_.max_folded_elements(), 1));
    allocate_batchnorm_state();
    if constexpr (is_gpu_executor_v<Exec>) {  // the kernels borrow scratch from the model's workspace
      scratch_ = std::make_unique<workspace>(exec_.stream(), plan_.scratch_bytes());
      run_exec_ = cuda_executor(exec_.stream(), *scratch_);
    }
    record_ = make_buffer<detail::step_record>(exec_, 1);
    const detail::step_record fresh{};
    copy_from_host(exec_, record_, host_span<const detail::step_record>(&fresh, 1));
    optimizer_.emplace(exec_, plan_.optimizer_config(), plan_.parameter_total());
  }

  const model_plan& plan() const noexcept { return plan_; }
  const Exec& executor() const noexcept { return exec_; }
  /// exec_'s stream with the model's workspace (GPU): what every kernel launch gets.
  const Exec& run_executor() const noexcept { return run_exec_; }
  buffer<T>& parameters() noexcept { return params_; }
  buffer<T>& gradients() noexcept { return grads_; }
  optimizer_state<Exec, T>& optimizer_ref() noexcept { return *optimizer_; }
  const optimizer_state<Exec, T>& optimizer_ref() const noexcept { return *optimizer_; }
  /// The step record (the executor's memory): the batch check's findings and the loss.
  detail::step_record* record() noexcept { return record_.data(); }
  /// Where the last loss lands: the record (GPU) or a host value of the model's type (CPU).
  T* loss_address() noexcept {
    if constexpr (is_gpu_executor_v<Exec>) {
      return &record_.data()->loss;
    } else {
      return &loss_host_;
    }
  }
  const T* loss_address() const noexcept { return const_cast<model_runner*>(this)->loss_address(); }

  /// The output of the last stage that did work (flatten views its input, x for stage 0).
  const T* stage_output(std::size_t i, const T* x) const {
    const auto& stages = plan_.stages();
    for (;;) {
      if (stages[i].kind != stage_kind::flatten) return buffers_[i].out.data();
      if (i == 0) return x;
      --i;
    }
  }
  const T* output(const T* x) const { return stage_output(plan_.stages().size() - 1, x); }

  /// Checks x (finite; nx = 0 skips it) and y (in the loss's domain) into the record.
  void check(const T* x, long long nx, detail::loss_kind kind, const T* y, long long ny) {
    detail::validate_impl(run_exec_, detail::value_check::finite, x, nx, kind, y, ny, record_.data());
  }

  void zero_grad() { zero_fill(exec_, grads_); }

  /// The forward pass for `batch` samples; `leave_last`: the last stage is left to the
  /// fused head of a training step. `training`: dropout draws masks (for the next value of
  /// the step counter, advanced on the executor first), else it passes its input on; the
  /// backward pass that follows differentiates what this pass did. `fold` (inference only):
  /// batch norms the plan folds run inside the layer before them, whose own output is then
  /// not written, so no backward pass may follow.
  void forward(const T* x, std::size_t batch, bool leave_last = false, bool training = false, bool fold = false) {
    const auto& stages = plan_.stages();
    const batch_plan& bp = plan_.for_batch(batch, aligned16(x));
    training_ = training;
    if (training && plan_.has_dropout()) detail::advance_dropout_step(run_exec_, dropout_step_.data());
    for (std::size_t i = 0; i < stages.size() - (leave_last ? 1 : 0); ++i) {
      const stage_plan& st = stages[i];
      const T* in = stage_input(i, x);
      if (fold && !training && st.folds_next_batchnorm) {
        queue_folded(i, in, batch, bp);
        ++i;  // the batch norm ran inside this stage
        continue;
      }
      T* out = buffers_[i].out.data();
      switch (st.kind) {
        case stage_kind::conv:
          detail::conv_forward_impl(run_exec_, st.conv_geometry(batch), bp.stages[i].conv, in, weights_of(st),
                                    bias_of(st), out, st.conv->pool ? buffers_[i].argmax.data() : nullptr);
          break;
        case stage_kind::pool:
          detail::pool_forward_impl(run_exec_, st.pool_geometry(batch), in, out, buffers_[i].argmax.data());
          break;
        case stage_kind::avgpool:
          detail::avgpool_forward_impl(run_exec_, st.pool_geometry(batch), bp.stages[i].avg, in, out);
          break;
        case stage_kind::dropout:
          queue_dropout(i, in, out, batch);
          break;
        case stage_kind::softmax:
          detail::softmax_forward_impl(run_exec_, detail::make_softmax_geometry(st.out.with_batch(batch)), in, out);
          break;
        case stage_kind::batchnorm:
          detail::batchnorm_forward_impl(run_exec_, st.batchnorm_geometry(batch), bp.stages[i].bn, training, in,
                                         batchnorm_state(i), out);
          break;
        case stage_kind::dense:
          detail::dense_forward_impl(run_exec_, st.dense_geometry(batch), bp.stages[i].fc, in, weights_of(st),
                                     bias_of(st), out, st.act,
                                     st.loss_takes_logits ? buffers_[i].logits.data() : static_cast<T*>(nullptr));
          break;
        case stage_kind::act:
          activation_forward(run_exec_, st.act, tensor_view<const T, space>{in, st.in.with_batch(batch)},
                             tensor_view<T, space>{out, st.out.with_batch(batch)});
          break;
        case stage_kind::flatten: break;
      }
    }
  }

  /// The loss of the last stage's output against y (into loss_address()), and with
  /// `with_grad` its gradient into the last stage's gradient buffer.
  void loss(const T* x, const T* y, std::size_t batch, bool with_grad) {
    const auto& stages = plan_.stages();
    const std::size_t last = stages.size() - 1;
    const stage_plan& st = stages[last];
    detail::loss_kind k = detail::kind_of(plan_.loss_function());
    const T* pred = stage_output(last, x);
    T* grad = with_grad ? stage_grad(static_cast<std::ptrdiff_t>(last)) : nullptr;
    if (st.loss_takes_logits) {
      if (k == detail::loss_kind::bce) k = detail::loss_kind::bce_logits;  // softmax_ce takes logits as it is
      if (st.kind == stage_kind::dense) {
        pred = buffers_[last].logits.data();
      } else {  // a separate sigmoid or softmax: the loss reads its input, and its gradient skips it
        pred = stage_input(last, x);
        grad = with_grad ? stage_grad(static_cast<std::ptrdiff_t>(last) - 1) : nullptr;
      }
    }
    detail::step_loss_impl(run_exec_, k, static_cast<long long>(batch), static_cast<long long>(st.out.features()), pred,
                           y, grad, loss_address());
  }

  /// The loss gradient propagated back; parameter gradients accumulate, or are assigned
  /// when `accumulate` is false. `fused_adam` (a training step whose optimizer clock has
  /// ticked): dense stages the plan fuses apply Adam in their backward kernel.
  /// `head_forward`: forward() left out the last stage for the fused head to do.
  void loss_backward(const T* x, const T* y, std::size_t batch, bool accumulate, bool head_forward = false,
                     const unsigned long long* guard = nullptr, bool fused_adam = false) {
    const auto& stages = plan_.stages();
    const batch_plan& bp = plan_.for_batch(batch, aligned16(x));
    std::size_t end = stages.size();  // the stages before `end` still need their backward pass
    if (bp.fused_head) {
      queue_fused_head(x, y, batch, accumulate, head_forward);
      --end;
    } else {
      loss(x, y, batch, true);
    }
    for (std::size_t i = end; i-- > 0;) {
      const stage_plan& st = stages[i];
      if (st.kind == stage_kind::flatten || (st.loss_takes_logits && st.kind != stage_kind::dense)) continue;
      const T* in = stage_input(i, x);
      const T* dy = stage_grad(static_cast<std::ptrdiff_t>(i));
      T* dx = st.needs_dx ? stage_grad(static_cast<std::ptrdiff_t>(i) - 1) : nullptr;
      T* dw = grads_.data() + st.w_off;
      T* db = bias_grad_of(st);
      switch (st.kind) {
        case stage_kind::conv: {
          detail::conv_backward_extras<T> extra;
          extra.accumulate = accumulate;
          if (dx != nullptr && st.dx_act != activation::none)
            extra.dx_act = st.dx_act, extra.dx_act_y = buffers_[st.dx_act_from].out.data();
          detail::conv_backward_impl(run_exec_, st.conv_backward_geometry(batch), bp.stages[i].conv, in, weights_of(st),
                                     buffers_[i].out.data(), st.conv->pool ? buffers_[i].argmax.data() : nullptr, dy,
                                     dw, db, dx, extra);
          break;
        }
        case stage_kind::pool:
          if (dx != nullptr) detail::pool_backward_impl(run_exec_, st.pool_geometry(batch), bp.stages[i].pool, dy,
                                                        buffers_[i].argmax.data(), dx);
          break;
        case stage_kind::avgpool:
          if (dx != nullptr) detail::avgpool_backward_impl(run_exec_, st.pool_geometry(batch), bp.stages[i].avg, dy, dx);
          break;
        case stage_kind::dropout:
          if (dx != nullptr) queue_dropout(i, dy, dx, batch);
          break;
        case stage_kind::batchnorm:
          detail::batchnorm_backward_impl(run_exec_, st.batchnorm_geometry(batch), bp.stages[i].bn, training_, accumulate,
                                          in, buffers_[i].out.data(), dy, batchnorm_state(i), dw, db, dx);
          break;
        case stage_kind::softmax:
          if (dx != nullptr)
            detail::softmax_backward_impl(run_exec_, detail::make_softmax_geometry(st.out.with_batch(batch)),
                                          buffers_[i].out.data(), dy, dx);
          break;
        case stage_kind::dense: {
          detail::dense_backward_extras<T> extra = dense_extras(st, dx, accumulate);
          if (fused_adam && bp.stages[i].adam_fused) extra.adam = fused_at(st, guard);
          detail::dense_backward_impl(run_exec_, st.dense_geometry(batch), bp.stages[i].fc, in, weights_of(st),
                                      buffers_[i].out.data(), dy, dw, db, dx, st.backward_act(), extra);
          break;
        }
        case stage_kind::act:
          if (dx != nullptr && slope_from_output(st.act))
            activation_backward(run_exec_, st.act, tensor_view<const T, space>{buffers_[i].out.data(), st.out.with_batch(batch)},
                                tensor_view<const T, space>{dy, st.out.with_batch(batch)},
                                tensor_view<T, space>{dx, st.in.with_batch(batch)});
          else if (dx != nullptr)  // a GELU: its slope from its input, the stage before's output
            activation_backward_at_input(run_exec_, st.act, tensor_view<const T, space>{in, st.in.with_batch(batch)},
                                         tensor_view<const T, space>{dy, st.out.with_batch(batch)},
                                         tensor_view<T, space>{dx, st.in.with_batch(batch)});
          break;
        case stage_kind::flatten: break;
      }
    }
  }

  /// Forward, loss, backward (gradients assigned) and the optimizer step; `guard` (GPU,
  /// nullable) vetoes the update when the record holds a bad index.
  void train(const T* x, const T* y, std::size_t batch, const unsigned long long* guard) {
    const batch_plan& bp = plan_.for_batch(batch, aligned16(x));
    forward(x, batch, bp.fused_head, true);
    if (plan_.optimizer_route().fuses_into_layers) {  // the clock ticks first: fused kernels read it
      optimizer_->tick(guard);
      loss_backward(x, y, batch, false, bp.fused_head, guard, true);
      optimizer_->update_ranges(bp.optimizer_ranges, params_.data(), grads_.data(), guard);
      return;
    }
    loss_backward(x, y, batch, false, bp.fused_head);  // assigns every gradient: no zeroing pass needed
    optimizer_->step_raw(params_.data(), grads_.data(), guard);
  }

  /// One optimizer step over every parameter.
  void step() { optimizer_->step_raw(params_.data(), grads_.data(), nullptr); }

  /// The dropout step counter: training forwards advance it first (on the executor) and
  /// draw their masks for its new value. GPU: both calls wait for the stream.
  std::uint64_t dropout_step() const {
    std::uint64_t s = 0;
    if constexpr (is_gpu_executor_v<Exec>) {
      dropout_step_.copy_to_host(host_span<std::uint64_t>(&s, 1), exec_.stream());
    } else {
      s = *dropout_step_.data();
    }
    return s;
  }
  void set_dropout_step(std::uint64_t s) {
    copy_from_host(exec_, dropout_step_, host_span<const std::uint64_t>(&s, 1));
  }

  /// A batch-norm layer's running mean and variance (c each, the executor's memory) and its
  /// count of training batches; null for other layers.
  T* running_mean(std::size_t layer) noexcept {
    const auto st = bn_stage(layer);
    return st ? bn_running_.data() + bn_offset_[*st] : nullptr;
  }
  T* running_var(std::size_t layer) noexcept {
    const auto st = bn_stage(layer);
    return st ? bn_running_.data() + bn_offset_[*st] + plan_.stages()[*st].bn->features : nullptr;
  }
  std::int64_t* batches_tracked(std::size_t layer) noexcept {
    const auto st = bn_stage(layer);
    return st ? bn_tracked_.data() + *st : nullptr;
  }

 private:
  struct stage_buffers {
    buffer<T> out, grad, logits;
    buffer<T> saved;  // batch norm: the statistics and coefficients of the last pass
    buffer<std::int32_t> argmax;
  };

  /// Running estimates (mean 0, variance 1: PyTorch's start) of every batch norm in one
  /// buffer, counters beside them, a saved block per stage and one slice-sum buffer the
  /// stages share (they run one after another on one stream).
  void allocate_batchnorm_state() {
    const auto& stages = plan_.stages();
    std::vector<T> running;
    std::size_t partial = 1;
    bn_offset_.assign(stages.size(), static_cast<std::size_t>(-1));
    for (std::size_t i = 0; i < stages.size(); ++i) {
      if (!stages[i].bn) continue;
      const std::size_t c = stages[i].bn->features;
      bn_offset_[i] = running.size();
      running.insert(running.end(), c, T(0));
      running.insert(running.end(), c, T(1));
      buffers_[i].saved = make_buffer<T>(exec_, detail::saved_slots * c, zero_init);
      partial = std::max(partial, 2 * c * static_cast<std::size_t>(batchnorm_path::max_splits));
    }
    bn_running_ = make_buffer<T>(exec_, std::max<std::size_t>(running.size(), 1));
    if (!running.empty()) copy_from_host(exec_, bn_running_, host_span<const T>(running.data(), running.size()));
    bn_tracked_ = make_buffer<std::int64_t>(exec_, stages.size(), zero_init);
    bn_partial_ = make_buffer<float>(exec_, partial);
  }
  detail::batchnorm_state<T> batchnorm_state(std::size_t i) {
    const stage_plan& st = plan_.stages()[i];
    detail::batchnorm_state<T> s;
    s.weight = weights_of(st), s.bias = bias_of(st);
    s.running_mean = bn_running_.data() + bn_offset_[i];
    s.running_var = s.running_mean + st.bn->features;
    s.batches_tracked = bn_tracked_.data() + i;
    s.saved = buffers_[i].saved.data();
    s.partial = bn_partial_.data();
    return s;
  }
  /// The stage of batch-norm layer `layer`, if it is one.
  std::optional<std::size_t> bn_stage(std::size_t layer) const noexcept {
    const auto& stages = plan_.stages();
    for (std::size_t i = 0; i < stages.size(); ++i)
      if (stages[i].bn && stages[i].first_layer == layer) return i;
    return std::nullopt;
  }

  /// Dropout stage i over batch x features elements: the mask of the current step in a
  /// training pass; otherwise the identity, as a stream-ordered copy (no draws).
  void queue_dropout(std::size_t i, const T* in, T* out, std::size_t batch) {
    const stage_plan& st = plan_.stages()[i];
    const std::size_t n = batch * st.out.features();
    if (!training_) {
      stream_view s{};
      if constexpr (is_gpu_executor_v<Exec>) s = exec_.stream();
      transfer_async(span<T, space>(out, n), span<const T, space>(in, n), s);
      return;
    }
    detail::dropout_impl(run_exec_, dropout_params_[i], detail::dropout_step{dropout_step_.data(), 0}, in, out,
                         static_cast<long long>(n));
  }

  /// Stage i (conv or dense) with the batch norm of stage i + 1 folded in, writing that
  /// stage's output: the batch norm's inference coefficients, the folded weights and bias,
  /// then the layer's forward pass with the batch norm's activation.
  void queue_folded(std::size_t i, const T* in, std::size_t batch, const batch_plan& bp) {
    const stage_plan& st = plan_.stages()[i];
    const stage_plan& bn = plan_.stages()[i + 1];
    const detail::batchnorm_state<T> s = batchnorm_state(i + 1);
    detail::batchnorm_inference_coefficients_impl(run_exec_, bn.batchnorm_geometry(batch), s);
    const int outs = static_cast<int>(bn.bn->features);
    T* w = folded_.data();
    T* b = w + (st.w_count + model_plan::param_alignment - 1) / model_plan::param_alignment * model_plan::param_alignment;
    detail::fold_batchnorm_impl(run_exec_, weights_of(st), bias_of(st), static_cast<long long>(st.w_count / outs), outs,
                                s.saved, w, b);
    T* out = buffers_[i + 1].out.data();
    if (st.kind == stage_kind::conv) {
      detail::conv_geometry g = st.conv_geometry(batch);
      g.act = bn.act;
      detail::conv_forward_impl(run_exec_, g, bp.stages[i].conv, in, w, b, out, static_cast<std::int32_t*>(nullptr));
    } else {
      detail::dense_forward_impl(run_exec_, st.dense_geometry(batch), bp.stages[i].fc, in, w, b, out, bn.act,
                                 static_cast<T*>(nullptr));
    }
  }

  const T* stage_input(std::size_t i, const T* x) const { return i == 0 ? x : stage_output(i - 1, x); }
  T* stage_grad(std::ptrdiff_t i) {
    const auto& stages = plan_.stages();
    while (i >= 0 && stages[static_cast<std::size_t>(i)].kind == stage_kind::flatten) --i;
    return i < 0 ? nullptr : buffers_[static_cast<std::size_t>(i)].grad.data();
  }
  const T* weights_of(const stage_plan& st) const { return params_.data() + st.w_off; }
  /// A layer without a bias reads zeros and writes its bias gradient where nothing reads it.
  const T* bias_of(const stage_plan& st) const { return st.b_count > 0 ? params_.data() + st.b_off : zero_bias_.data(); }
  T* bias_grad_of(const stage_plan& st) { return st.b_count > 0 ? grads_.data() + st.b_off : bias_sink_.data(); }

  detail::dense_backward_extras<T> dense_extras(const stage_plan& st, const T* dx, bool accumulate) const {
    detail::dense_backward_extras<T> extra;
    extra.accumulate = accumulate;
    if (dx != nullptr && st.dx_act != activation::none) {
      extra.dx_act = st.dx_act;
      extra.dx_act_y = buffers_[st.dx_act_from].out.data();
    }
    return extra;
  }

  detail::fused_adam fused_at(const stage_plan& st, const unsigned long long* guard) {
    if constexpr (std::is_same_v<T, float>) {
      return optimizer_->fused_at(params_.data(), st.w_off, guard);
    } else {
      (void)st, (void)guard;
      return {};
    }
  }

  void queue_fused_head(const T* x, const T* y, std::size_t batch, bool accumulate, bool with_forward) {
    const auto& stages = plan_.stages();
    const std::size_t last = stages.size() - 1;
    const stage_plan& st = stages[last];
    detail::dense_head_args<T> a{};
    a.g = st.dense_geometry(batch);
    a.x = stage_input(last, x), a.w = weights_of(st), a.b = bias_of(st);
    a.forward = with_forward, a.act = st.act, a.y = buffers_[last].out.data();
    a.logits = st.loss_takes_logits ? buffers_[last].logits.data() : nullptr;
    a.kind = st.loss_takes_logits ? detail::loss_kind::bce_logits : detail::kind_of(plan_.loss_function());
    a.target = y, a.loss_out = loss_address();
    a.dw = grads_.data() + st.w_off, a.db = bias_grad_of(st);
    a.dx = st.needs_dx ? stage_grad(static_cast<std::ptrdiff_t>(last) - 1) : nullptr;
    a.e = dense_extras(st, a.dx, accumulate);
    detail::dense_head_impl(run_exec_, a);
  }

  static bool aligned16(const T* p) noexcept { return detail::aligned16(p); }

  Exec exec_;
  Exec run_exec_;
  model_plan plan_;
  buffer<T> params_, grads_;
  std::vector<stage_buffers> buffers_;
  std::optional<optimizer_state<Exec, T>> optimizer_;
  std::unique_ptr<workspace> scratch_;  // heap: run_exec_ points at it across moves
  buffer<detail::step_record> record_;
  T loss_host_ = T(0);
  std::vector<detail::dropout_params> dropout_params_;  // per stage (dropout stages only)
  buffer<std::uint64_t> dropout_step_;
  buffer<T> zero_bias_, bias_sink_;       // layers without a bias: what their kernels read and write
  buffer<T> folded_;                      // inference: a layer's weights and bias with a batch norm folded in
  buffer<T> bn_running_;                  // batch norms: running mean then variance, per layer
  buffer<std::int64_t> bn_tracked_;       // batch norms: training batches seen, per stage
  buffer<float> bn_partial_;              // batch norms: the GPU's slice sums
  std::vector<std::size_t> bn_offset_;    // per stage: its running estimates in bn_running_
  bool training_ = false;  // the mode of the last forward pass
};

}  // namespace gpukit::nn
