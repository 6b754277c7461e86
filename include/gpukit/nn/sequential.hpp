// gpukit/nn/sequential.hpp — a stack of layers trained as one model, on either executor.
//
//   nn::sequential<gpukit::cuda_executor> model(exec, 3, 64, 64);     // input: c, h, w
//   model.add(nn::conv2d(3, 32, 3, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{})
//        .add(nn::dense(30752, 128)).add(nn::relu{}).add(nn::dense(128, 1)).add(nn::sigmoid{});
//   std::cout << model.summary();                                     // Keras-style table
//   model.compile(32, nn::binary_crossentropy{}, nn::adam{}, /*seed*/ 42);
//   float loss = model.train_step(x, y);                              // x (n, 3, 64, 64), y (n, 1, 1, 1)
//   nn::graph g = model.capture_train_step(x, y);  g.replay(stream);  // GPU: one CUDA graph
//
// Invariant of every backward pass: parameter gradients ACCUMULATE (+=) into one flat
// gradient buffer; activation gradients are ASSIGNED (=) into per-layer buffers.
//
// - add() infers the output shape and rejects a layer that cannot take the previous
//   one's output, naming the layer, the argument and both shapes (std::invalid_argument).
// - compile(max_batch, loss, optimizer, seed) plans the passes and allocates everything a
//   step needs: one parameter buffer and one gradient buffer for all layers (so the
//   optimizer is one launch), per-layer activations and gradients for max_batch samples,
//   and on the GPU the scratch every kernel will borrow. After compile nothing allocates.
//   Weights are initialised from `seed` identically on both executors; biases are zero.
// - Adjacent layers run fused: conv2d [+ activation] [+ maxpool2d] is one pass (windows up
//   to 16x16), dense [+ activation] is one pass, flatten costs nothing, and a final sigmoid
//   with binary_crossentropy is evaluated from the logits (the stable form; the same value
//   wherever p is not saturated), so the loss gradient skips the sigmoid. Backward, a dense
//   layer's input-gradient product also applies the slope of the activation before it.
//   GPU: the loss and the backward pass of a small last dense layer are one launch, and in
//   a training step with Adam a large dense layer (out <= 128) updates its weights in its
//   own backward pass (the gradients are still written).
// - Every call takes batches of 1..max_batch samples; x (n, c, h, w), y the output shape.
// - train_step(x, y) checks x (finite) and y (in the loss's domain) first and throws
//   std::invalid_argument naming the argument, the index, the value and the layer, with
//   nothing updated; then forward, loss, backward (gradients assigned: the same as
//   zero_grad + backward, without the zeroing pass), optimizer step; returns the loss
//   (GPU: waits for the stream, twice: after the check and for the loss).
// - train_step_async(x, y) queues the same with the check on the device: a rejected batch
//   leaves parameters, optimizer moments and step count untouched and last_loss() throws.
//   capture_train_step(x, y) records exactly that into a graph; x and y are read from the
//   same memory at every replay, and they and the model must outlive the graph.
// - forward(x) returns the output (on the GPU, ready once the stream passes it); x must
//   stay alive and unchanged until a following backward(y).
#pragma once

#include "gpukit/core/executor.hpp"
#include "gpukit/core/workspace.hpp"
#include "gpukit/nn/activation.hpp"
#include "gpukit/nn/conv2d.hpp"
#include "gpukit/nn/dense.hpp"
#include "gpukit/nn/graph.hpp"
#include "gpukit/nn/init.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/loss.hpp"
#include "gpukit/nn/maxpool2d.hpp"
#include "gpukit/nn/optimizer.hpp"
#include "gpukit/nn/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gpukit::nn {

namespace detail {
/// 3937409 -> "3,937,409".
inline std::string with_thousands(std::size_t v) {
  std::string digits = std::to_string(v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}
inline std::string pad_right(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  else s += ' ';
  return s;
}
}  // namespace detail

template <class Exec, class T = float>
class sequential {
  static constexpr bool on_gpu = is_gpu_executor_v<Exec>;
  static constexpr memory_space space = space_of_v<Exec>;
  template <class U>
  using buffer = buffer_for<Exec, U>;

 public:
  using value_type = T;
  using view = tensor_view<T, space>;
  using const_view = tensor_view<const T, space>;

  /// An empty model taking samples of `channels` x `height` x `width`.
  sequential(const Exec& exec, std::size_t channels, std::size_t height, std::size_t width)
      : exec_(exec), run_exec_(exec), input_{1, channels, height, width} {
    detail::require_element_type<Exec, T>();
    detail::require(channels >= 1 && height >= 1 && width >= 1, "gpukit::nn::sequential",
                    "input shape (" + std::to_string(channels) + ", " + std::to_string(height) + ", " +
                        std::to_string(width) + ") has a zero dimension");
  }
  sequential(sequential&&) = default;
  sequential& operator=(sequential&&) = default;

  // ---- building ------------------------------------------------------------------------

  /// Appends `l` after checking it takes the current output shape.
  sequential& add(const layer& l) {
    detail::require(!compiled_, "gpukit::nn::sequential::add", "the model is compiled: add every layer before compile()");
    const std::size_t index = layers_.size();
    std::size_t same_kind = 0;
    for (const auto& other : layers_) same_kind += other.index() == l.index();
    std::string name = layer_base_name(l);
    if (same_kind > 0) name += "_" + std::to_string(same_kind);
    const std::string who = "gpukit::nn::sequential::add: layer " + std::to_string(index + 1) + " '" + name + "' (" +
                            layer_type_name(l) + ")";
    const shape4 out = nn::output_shape(l, current_shape(), who);
    layers_.push_back(l);
    names_.push_back(std::move(name));
    shapes_.push_back(out);
    return *this;
  }

  std::size_t size() const noexcept { return layers_.size(); }
  const layer& layer_at(std::size_t i) const { return layers_.at(i); }
  const std::string& layer_name(std::size_t i) const { return names_.at(i); }
  /// The shape layer i produces for `batch` samples.
  shape4 layer_output_shape(std::size_t i, std::size_t batch = 1) const { return shapes_.at(i).with_batch(batch); }
  shape4 input_shape(std::size_t batch = 1) const noexcept { return input_.with_batch(batch); }
  shape4 output_shape(std::size_t batch = 1) const noexcept { return current_shape().with_batch(batch); }

  std::size_t parameter_count() const noexcept {
    std::size_t total = 0;
    for (const auto& l : layers_) total += nn::parameter_count(l);
    return total;
  }

  /// The Keras-style table: each layer with its output shape and parameter count.
  std::string summary() const {
    const std::string rule(67, '_'), double_rule(67, '=');
    std::string s = "Model: \"sequential\"\n" + rule + "\n";
    s += " " + detail::pad_right("Layer (type)", 30) + detail::pad_right("Output Shape", 26) + "Param #\n";
    s += double_rule + "\n";
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const std::string label = names_[i] + " (" + layer_type_name(layers_[i]) + ")";
      s += " " + detail::pad_right(label, 30) + detail::pad_right(sample_string(shapes_[i]), 26) +
           detail::with_thousands(nn::parameter_count(layers_[i])) + "\n";
    }
    s += double_rule + "\n";
    s += "Total params: " + detail::with_thousands(parameter_count()) + "\n";
    s += "Trainable params: " + detail::with_thousands(parameter_count()) + "\n";
    s += "Non-trainable params: 0\n" + rule + "\n";
    return s;
  }

  /// Plans the fused passes and allocates every buffer a step needs; see the header comment.
  void compile(std::size_t max_batch, const loss& loss_fn, const optimizer& opt, std::uint64_t seed = 0) {
    constexpr const char* where = "gpukit::nn::sequential::compile";
    detail::require(!compiled_, where, "the model is already compiled");
    detail::require(!layers_.empty(), where, "the model has no layers");
    detail::require(max_batch >= 1, where, "argument 'max_batch' = 0 must be at least 1");
    detail::validate(opt);  // before anything is planned or allocated: a refused compile changes nothing
    max_batch_ = max_batch;
    loss_ = loss_fn;
    plan_stages();
    assign_parameters();
    allocate(seed);
    optimizer_.emplace(exec_, opt, param_total_);
    compiled_ = true;
  }

  bool compiled() const noexcept { return compiled_; }
  std::size_t max_batch() const noexcept { return max_batch_; }
  const Exec& executor() const noexcept { return exec_; }
  const loss& loss_function() const noexcept { return loss_; }

  /// The passes compile() planned, e.g. "conv2d+relu+max_pooling2d | flatten | dense+relu |
  /// dense_1+sigmoid (loss on logits)".
  std::string plan() const {
    std::string s;
    for (const auto& st : stages_) {
      if (!s.empty()) s += " | ";
      for (std::size_t i = st.first_layer; i <= st.last_layer; ++i) s += (i == st.first_layer ? "" : "+") + names_[i];
      if (st.loss_takes_logits) s += " (loss on logits)";
    }
    return s;
  }

  // ---- parameters ----------------------------------------------------------------------

  /// Every parameter, in one buffer (with zero padding between layers, which stays zero).
  span<T, space> parameters() { return params_.span(); }
  span<T, space> gradients() { return grads_.span(); }
  span<T, space> weights(std::size_t layer) { return params_.span().subspan(slot(layer).w_off, slot(layer).w_count); }
  span<T, space> bias(std::size_t layer) { return params_.span().subspan(slot(layer).b_off, slot(layer).b_count); }
  span<T, space> weight_gradients(std::size_t layer) {
    return grads_.span().subspan(slot(layer).w_off, slot(layer).w_count);
  }
  span<T, space> bias_gradients(std::size_t layer) {
    return grads_.span().subspan(slot(layer).b_off, slot(layer).b_count);
  }
  const optimizer_state<Exec, T>& optimizer_state_ref() const { return *optimizer_; }
  /// Optimizer steps taken (GPU: waits for the stream).
  std::int64_t steps() const {
    require_compiled("steps");
    return optimizer_->steps();
  }

  // ---- running -------------------------------------------------------------------------

  /// The model's output for x (n <= max_batch samples).
  const_view forward(const_view x) {
    const std::size_t b = check_input("gpukit::nn::sequential::forward", x);
    queue_forward(x.data, b);
    last_input_ = x.data;
    last_batch_ = b;
    return {stage_output(stages_.size() - 1, x.data), output_shape(b)};
  }

  /// Sets every gradient to zero.
  void zero_grad() {
    require_compiled("zero_grad");
    if constexpr (on_gpu) {
      GPUKIT_CUDA_TRY(cudaMemsetAsync(grads_.data(), 0, grads_.bytes(), exec_.stream()));
    } else {
      std::memset(static_cast<void*>(grads_.data()), 0, grads_.bytes());
    }
  }

  /// The loss against y of the last forward() (same batch), its gradient propagated back:
  /// parameter gradients accumulate. y is checked first (nothing written if rejected); the
  /// x of that forward() is not (train_step and evaluate check both).
  void backward(const_view y) {
    constexpr const char* where = "gpukit::nn::sequential::backward";
    require_compiled("backward");
    detail::require(last_input_ != nullptr, where, "no forward() to take the gradient of: call forward(x) first");
    check_target(where, y, last_batch_);
    const_view x{last_input_, input_shape(last_batch_)};
    check_now(where, x, y, /*check_input=*/false);
    queue_loss_backward(last_input_, y.data, last_batch_, true);
  }

  /// One optimizer step over every parameter.
  void step() {
    require_compiled("step");
    optimizer_->step_raw(params_.data(), grads_.data(), nullptr);
  }

  /// The mean loss of the model on (x, y), without gradients. Checks x and y first.
  T evaluate(const_view x, const_view y) {
    constexpr const char* where = "gpukit::nn::sequential::evaluate";
    const std::size_t b = check_input(where, x);
    check_target(where, y, b);
    check_now(where, x, y, true);
    queue_forward(x.data, b);
    queue_loss(x.data, y.data, b, false);
    return read_loss(where);
  }

  /// forward, loss, backward (gradients of this batch only) and optimizer step; returns the loss.
  T train_step(const_view x, const_view y) {
    constexpr const char* where = "gpukit::nn::sequential::train_step";
    const std::size_t b = check_batch(where, x, y);
    check_now(where, x, y, true);
    queue_train(x.data, y.data, b, nullptr);
    return read_loss(where);
  }

  /// train_step with the check on the device and nothing waited for (CPU: train_step).
  void train_step_async(const_view x, const_view y) {
    constexpr const char* where = "gpukit::nn::sequential::train_step_async";
    const std::size_t b = check_batch(where, x, y);
    if constexpr (on_gpu) {
      queue_checked_train(x, y, b);
    } else {
      check_now(where, x, y, true);
      queue_train(x.data, y.data, b, nullptr);
    }
    remember_shapes(x, y);
  }

  /// The loss of the last step; throws if train_step_async (or a replayed graph) rejected
  /// its batch. GPU: waits for the stream.
  T last_loss() {
    constexpr const char* where = "gpukit::nn::sequential::last_loss";
    require_compiled("last_loss");
    if constexpr (on_gpu) {
      const detail::step_record r = read_record();
      if (r.bad_input != detail::no_bad_index || r.bad_target != detail::no_bad_index)
        reject(where, last_x_shape_, last_y_shape_, {r.bad_input, r.bad_input_value},
               {r.bad_target, r.bad_target_value});
      return static_cast<T>(r.loss);
    } else {
      return loss_host_;
    }
  }

  // ---- results left where the step wrote them, for training loops that read them later ----

  /// The output of the last forward(), evaluate_async() or training step, for the batch it
  /// took (probabilities after a final sigmoid, also when the loss used the logits). GPU:
  /// device memory, valid once the stream passes that call and until the next one.
  const_view last_output() const {
    require_compiled("last_output");
    detail::require(last_input_ != nullptr, "gpukit::nn::sequential::last_output", "the model has not run yet");
    return {stage_output(stages_.size() - 1, last_input_), output_shape(last_batch_)};
  }

  /// Where the last evaluate_async() or training step writes its loss (the batch mean):
  /// GPU: device memory, valid once the stream passes that call; CPU: host memory.
  const T* last_loss_address() const {
    require_compiled("last_loss_address");
    if constexpr (on_gpu) {
      return &record_.data()->loss;
    } else {
      return &loss_host_;
    }
  }

  /// evaluate() without waiting: the checks (GPU: on the device; a rejected batch makes
  /// last_loss() throw), forward and loss queued; read them with last_output() and
  /// last_loss_address(). CPU: checks first, as evaluate().
  void evaluate_async(const_view x, const_view y) {
    constexpr const char* where = "gpukit::nn::sequential::evaluate_async";
    const std::size_t b = check_batch(where, x, y);
    if constexpr (on_gpu) {
#if defined(__CUDACC__)
      detail::validate_gpu(run_exec_, detail::value_check::finite, x.data, static_cast<long long>(x.size()),
                           detail::kind_of(loss_), y.data, static_cast<long long>(y.size()), record_.data());
#endif
    } else {
      check_now(where, x, y, true);
    }
    queue_forward(x.data, b);
    queue_loss(x.data, y.data, b, false);
    last_input_ = x.data;
    last_batch_ = b;
    remember_shapes(x, y);
  }

#if defined(__CUDACC__)
  /// One CUDA graph of train_step_async(x, y). Replay it on the model's stream (or order
  /// that stream after the replay before calling last_loss(), which reads there). GPU only.
  graph capture_train_step(const_view x, const_view y) {
    static_assert(on_gpu, "gpukit::nn::sequential::capture_train_step needs the cuda_executor");
    const std::size_t b = check_batch("gpukit::nn::sequential::capture_train_step", x, y);
    remember_shapes(x, y);
    return graph::capture(exec_.stream(), [&](stream_view) { queue_checked_train(x, y, b); });
  }
  /// One CUDA graph of forward(x); the output is forward's. GPU only.
  graph capture_forward(const_view x) {
    static_assert(on_gpu, "gpukit::nn::sequential::capture_forward needs the cuda_executor");
    const std::size_t b = check_input("gpukit::nn::sequential::capture_forward", x);
    last_input_ = x.data;
    last_batch_ = b;
    return graph::capture(exec_.stream(), [&](stream_view) { queue_forward(x.data, b); });
  }
#endif

 private:
  enum class stage_kind { conv, pool, dense, act, flatten };

  /// One fused pass: a conv block, a pool, a dense layer (+ activation), an activation or
  /// a flatten (no work: it views its input).
  struct stage {
    stage_kind kind = stage_kind::flatten;
    std::size_t first_layer = 0, last_layer = 0;
    std::optional<conv_block> conv;
    std::optional<maxpool2d> pool;
    std::optional<dense> fc;
    activation act = activation::none;
    shape4 in{}, out{};  // one sample
    detail::conv_geometry cg{};
    detail::pool_geometry pg{};
    detail::dense_geometry dg{};
    std::size_t w_off = 0, w_count = 0, b_off = 0, b_count = 0;
    bool has_params = false, needs_dx = false, loss_takes_logits = false;
    bool act_done_downstream = false;  // the next dense stage folds this activation's slope into its dx
    std::size_t dx_act_from = 0;       // dense: the stage whose activation its dx folds in (dx_act)
    activation dx_act = activation::none;
    buffer<T> out_buf, grad_buf, logits;
    buffer<std::int32_t> argmax;
  };

  struct param_slot {
    std::size_t w_off = 0, w_count = 0, b_off = 0, b_count = 0;
  };

  static constexpr std::size_t param_alignment = 64;  // elements: 256-byte aligned slices
  static std::size_t align_up(std::size_t v) { return (v + param_alignment - 1) / param_alignment * param_alignment; }

  shape4 current_shape() const noexcept { return shapes_.empty() ? input_ : shapes_.back(); }

  std::string layer_label(std::size_t i) const {
    return "layer " + std::to_string(i + 1) + " '" + names_[i] + "' (" + layer_type_name(layers_[i]) + ")";
  }

  void require_compiled(const char* fn) const {
    detail::require(compiled_, (std::string("gpukit::nn::sequential::") + fn).c_str(),
                    "the model is not compiled: call compile() first");
  }

  const param_slot& slot(std::size_t layer) const {
    require_compiled("weights");
    detail::require(layer < layers_.size() && slots_[layer].w_count > 0, "gpukit::nn::sequential::weights",
                    "argument 'layer' = " + std::to_string(layer) + " is not a layer with parameters");
    return slots_[layer];
  }

  // ---- planning ------------------------------------------------------------------------

  void plan_stages() {
    stages_.clear();
    shape4 in = input_;
    for (std::size_t i = 0; i < layers_.size();) {
      stage st;
      st.first_layer = i;
      st.in = in;
      const layer& l = layers_[i];
      std::size_t next = i + 1;
      const auto take_activation = [&] {
        if (next < layers_.size() && activation_of(layers_[next]) != activation::none) st.act = activation_of(layers_[next++]);
      };
      if (const auto* c = std::get_if<conv2d>(&l)) {
        st.kind = stage_kind::conv;
        take_activation();
        conv_block block{*c, st.act, std::nullopt};
        if (next < layers_.size()) {
          if (const auto* p = std::get_if<maxpool2d>(&layers_[next]); p != nullptr && p->window.h <= 16 && p->window.w <= 16) {
            block.pool = *p;
            ++next;
          }
        }
        st.conv = block;
        st.has_params = true;
        st.w_count = c->weight_count(), st.b_count = c->bias_count();
      } else if (const auto* d = std::get_if<dense>(&l)) {
        st.kind = stage_kind::dense;
        take_activation();
        st.fc = *d;
        st.has_params = true;
        st.w_count = d->weight_count(), st.b_count = d->bias_count();
      } else if (const auto* p = std::get_if<maxpool2d>(&l)) {
        st.kind = stage_kind::pool;
        st.pool = *p;
      } else if (std::holds_alternative<flatten>(l)) {
        st.kind = stage_kind::flatten;
      } else {
        st.kind = stage_kind::act;
        st.act = activation_of(l);
      }
      st.last_layer = next - 1;
      st.out = shapes_[next - 1];
      in = st.out;
      stages_.push_back(std::move(st));
      i = next;
    }
    bool params_before = false;
    for (auto& st : stages_) {
      st.needs_dx = params_before && st.kind != stage_kind::flatten;
      params_before = params_before || st.has_params;
    }
    stage& last = stages_.back();
    last.loss_takes_logits = std::holds_alternative<binary_crossentropy>(loss_) && last.act == activation::sigmoid &&
                             (last.kind == stage_kind::dense || last.kind == stage_kind::act);
    // A dense stage's input gradient is a GEMM whose epilogue can multiply by the slope of
    // the activation that produced its input: one elementwise pass fewer per step.
    for (std::size_t i = 1; i < stages_.size(); ++i) {
      if (stages_[i].kind != stage_kind::dense || !stages_[i].needs_dx) continue;
      std::size_t j = i - 1;
      while (j > 0 && stages_[j].kind == stage_kind::flatten) --j;
      stage& producer = stages_[j];
      if ((producer.kind == stage_kind::dense || producer.kind == stage_kind::conv) && producer.act != activation::none) {
        stages_[i].dx_act = producer.act;
        stages_[i].dx_act_from = j;
        producer.act_done_downstream = true;
      }
    }
    for (auto& st : stages_) {
      const std::string who = "gpukit::nn::sequential::compile: " + layer_label(st.first_layer);
      const shape4 in_b = st.in.with_batch(max_batch_);
      if (st.kind == stage_kind::conv) {
        st.cg = detail::make_conv_geometry(*st.conv, in_b, who);
        if constexpr (on_gpu) {
          detail::require(detail::plan_conv_tile(st.cg).icb > 0, who.c_str(),
                          "kernel " + to_string(st.conv->conv.kernel) + " with stride " +
                              std::to_string(st.conv->conv.stride) + " does not fit the GPU path's shared-memory tile");
        }
      } else if (st.kind == stage_kind::pool) {
        st.pg = detail::make_pool_geometry(*st.pool, in_b, who);
      } else if (st.kind == stage_kind::dense) {
        st.dg = detail::make_dense_geometry(*st.fc, in_b, who);
      }
    }
  }

  void assign_parameters() {
    slots_.assign(layers_.size(), param_slot{});
    std::size_t total = 0;
    for (auto& st : stages_) {
      if (!st.has_params) continue;
      st.w_off = total;
      total = align_up(total + st.w_count);
      st.b_off = total;
      total = align_up(total + st.b_count);
      slots_[st.first_layer] = {st.w_off, st.w_count, st.b_off, st.b_count};
    }
    param_total_ = std::max<std::size_t>(total, param_alignment);
  }

  template <class U>
  buffer<U> make_buffer(std::size_t n) const {
    if constexpr (on_gpu) {
      return device_buffer<U>(n, exec_.stream());
    } else {
      return host_buffer<U>(n);
    }
  }

  void allocate(std::uint64_t seed) {
    std::vector<T> host(param_total_, T(0));
    for (const auto& st : stages_) {
      if (!st.has_params) continue;
      const init kind = st.conv ? st.conv->conv.weight_init : st.fc->weight_init;
      const std::size_t fan_in = st.conv ? st.conv->conv.fan_in() : st.fc->fan_in();
      const std::size_t fan_out = st.conv ? st.conv->conv.fan_out() : st.fc->fan_out();
      initialise(host.data() + st.w_off, st.w_count, kind, fan_in, fan_out, seed, st.first_layer);
    }
    params_ = make_buffer<T>(param_total_);
    grads_ = make_buffer<T>(param_total_);
    if constexpr (on_gpu) {
      params_.copy_from_host(make_host_span(host), exec_.stream());
      GPUKIT_CUDA_TRY(cudaMemsetAsync(grads_.data(), 0, grads_.bytes(), exec_.stream()));
    } else {
      std::memcpy(static_cast<void*>(params_.data()), host.data(), params_.bytes());
      std::memset(static_cast<void*>(grads_.data()), 0, grads_.bytes());
    }
    for (auto& st : stages_) {
      if (st.kind == stage_kind::flatten) continue;
      const std::size_t n = max_batch_ * st.out.features();
      st.out_buf = make_buffer<T>(n);
      st.grad_buf = make_buffer<T>(n);
      if ((st.kind == stage_kind::conv && st.conv->pool) || st.kind == stage_kind::pool)
        st.argmax = make_buffer<std::int32_t>(n);
      if (st.loss_takes_logits && st.kind == stage_kind::dense) st.logits = make_buffer<T>(n);
    }
    if constexpr (on_gpu) {
      scratch_ = std::make_unique<workspace>(exec_.stream(), scratch_bytes());
      run_exec_ = cuda_executor(exec_.stream(), *scratch_);
      record_ = device_buffer<detail::step_record>(1, exec_.stream());
      const detail::step_record fresh{};
      record_.copy_from_host(host_span<const detail::step_record>(&fresh, 1), exec_.stream());
      record_host_ = host_buffer<detail::step_record>(1, host_memory::pinned);
    }
  }

  /// The largest scratch any kernel of a step borrows, over every batch size up to max_batch.
  std::size_t scratch_bytes() const {
    const int sms = current_sm_count();
    std::size_t bytes = 256;
    for (std::size_t b = 1; b <= max_batch_; ++b) {
      for (const auto& st : stages_) {
        if (st.kind == stage_kind::conv) {
          detail::conv_geometry g = st.cg;
          g.n = static_cast<int>(b);
          bytes = std::max(bytes, detail::plan_conv_backward_scratch(g, st.needs_dx, sms).plan.bytes);
        } else if (st.kind == stage_kind::dense) {
          detail::dense_geometry g = st.dg;
          g.n = static_cast<int>(b);
          bytes = std::max(bytes, detail::dense_forward_scratch_bytes(g, sms));
          bytes = std::max(bytes, detail::dense_backward_scratch_bytes(g, st.loss_takes_logits ? activation::none : st.act));
        }
      }
    }
    return bytes;
  }

  // ---- checks --------------------------------------------------------------------------

  std::size_t check_input(const char* where, const const_view& x) const {
    require_compiled("forward");
    const shape4 want = input_.with_batch(x.shape.n);
    detail::require(x.shape == want && x.shape.n >= 1 && x.shape.n <= max_batch_, where,
                    "argument 'x' has shape " + to_string(x.shape) + ", " + layer_label(0) + " takes (N, " +
                        std::to_string(input_.c) + ", " + std::to_string(input_.h) + ", " + std::to_string(input_.w) +
                        ") with 1 <= N <= " + std::to_string(max_batch_));
    return x.shape.n;
  }
  void check_target(const char* where, const const_view& y, std::size_t batch) const {
    detail::require(y.shape == output_shape(batch), where,
                    "argument 'y' has shape " + to_string(y.shape) + ", the output of " +
                        layer_label(layers_.size() - 1) + " for " + std::to_string(batch) + " samples is " +
                        to_string(output_shape(batch)));
  }
  std::size_t check_batch(const char* where, const const_view& x, const const_view& y) const {
    const std::size_t b = check_input(where, x);
    check_target(where, y, b);
    return b;
  }

  /// An index that failed a check and the value found there.
  struct bad_element {
    unsigned long long index = detail::no_bad_index;
    double value = 0.0;
    bool found() const { return index != detail::no_bad_index; }
  };

  [[noreturn]] void reject(const char* where, const shape4& x_shape, const shape4& y_shape, bad_element bad_x,
                           bad_element bad_y) const {
    if (bad_x.found()) {
      detail::require(false, where,
                      detail::bad_value_message("x", x_shape, bad_x.index, bad_x.value,
                                                "the input of " + layer_label(0) + " must be finite") +
                          "; nothing was updated");
    }
    detail::require(false, where,
                    detail::bad_value_message("y", y_shape, bad_y.index, bad_y.value,
                                              std::string(detail::target_rule(detail::kind_of(loss_))) + " (loss " +
                                                  loss_name(loss_) + " after " + layer_label(layers_.size() - 1) + ")") +
                        "; nothing was updated");
    throw std::logic_error("unreachable");
  }

  /// Checks x (if asked) and y before anything is queued; GPU: waits for the answer.
  void check_now(const char* where, const const_view& x, const const_view& y, bool check_input_values) {
    const detail::loss_kind k = detail::kind_of(loss_);
    const long long nx = check_input_values ? static_cast<long long>(x.size()) : 0;
    bad_element bad_x, bad_y;
    if constexpr (on_gpu) {
#if defined(__CUDACC__)
      detail::validate_gpu(run_exec_, detail::value_check::finite, x.data, nx, k, y.data,
                           static_cast<long long>(y.size()), record_.data());
      const detail::step_record r = read_record();
      bad_x = {r.bad_input, r.bad_input_value}, bad_y = {r.bad_target, r.bad_target_value};
#endif
    } else {
      bad_x.index = detail::first_bad_input(detail::value_check::finite, x.data, nx);
      bad_y.index = detail::first_bad_target(k, y.data, static_cast<long long>(y.size()));
      if (bad_x.found()) bad_x.value = x.data[bad_x.index];
      if (bad_y.found()) bad_y.value = y.data[bad_y.index];
    }
    if (bad_x.found() || bad_y.found()) {
      remember_shapes(x, y);  // last_loss() reports the same rejection
      reject(where, x.shape, y.shape, bad_x, bad_y);
    }
  }

  void remember_shapes(const const_view& x, const const_view& y) { last_x_shape_ = x.shape, last_y_shape_ = y.shape; }

  detail::step_record read_record() {
    GPUKIT_CUDA_TRY(cudaMemcpyAsync(record_host_.data(), record_.data(), sizeof(detail::step_record),
                                    cudaMemcpyDeviceToHost, exec_.stream()));
    exec_.synchronize();
    return record_host_[0];
  }

  T read_loss(const char*) {
    if constexpr (on_gpu) {
      return static_cast<T>(read_record().loss);
    } else {
      return loss_host_;
    }
  }

  // ---- the passes ----------------------------------------------------------------------

  const T* stage_output(std::size_t i, const T* x) const {
    for (;;) {
      if (stages_[i].kind != stage_kind::flatten) return stages_[i].out_buf.data();
      if (i == 0) return x;
      --i;
    }
  }
  const T* stage_input(std::size_t i, const T* x) const { return i == 0 ? x : stage_output(i - 1, x); }
  T* stage_grad(std::ptrdiff_t i) {
    while (i >= 0 && stages_[static_cast<std::size_t>(i)].kind == stage_kind::flatten) --i;
    return i < 0 ? nullptr : stages_[static_cast<std::size_t>(i)].grad_buf.data();
  }
  const T* weights_of(const stage& st) const { return params_.data() + st.w_off; }
  const T* bias_of(const stage& st) const { return params_.data() + st.b_off; }

  /// `leave_last`: the last stage is left to the fused head of a training step.
  void queue_forward(const T* x, std::size_t batch, bool leave_last = false) {
    const int b = static_cast<int>(batch);
    for (std::size_t i = 0; i < stages_.size() - (leave_last ? 1 : 0); ++i) {
      stage& st = stages_[i];
      const T* in = stage_input(i, x);
      switch (st.kind) {
        case stage_kind::conv: {
          detail::conv_geometry g = st.cg;
          g.n = b;
          detail::conv_forward_dispatch(run_exec_, g, in, weights_of(st), bias_of(st), st.out_buf.data(),
                                        st.conv->pool ? st.argmax.data() : nullptr);
          break;
        }
        case stage_kind::pool: {
          detail::pool_geometry g = st.pg;
          g.n = b;
          detail::pool_forward_dispatch(run_exec_, g, in, st.out_buf.data(), st.argmax.data());
          break;
        }
        case stage_kind::dense: {
          detail::dense_geometry g = st.dg;
          g.n = b;
          detail::dense_forward_dispatch(run_exec_, g, in, weights_of(st), bias_of(st), st.out_buf.data(), st.act,
                                         st.loss_takes_logits ? st.logits.data() : static_cast<T*>(nullptr));
          break;
        }
        case stage_kind::act:
          activation_forward(run_exec_, st.act, const_view{in, st.in.with_batch(batch)},
                             view{st.out_buf.data(), st.out.with_batch(batch)});
          break;
        case stage_kind::flatten: break;
      }
    }
  }

  /// The loss of the last stage's output against y into the record (GPU) or loss_host_
  /// (CPU), and with `with_grad` its gradient into the last stage's gradient buffer.
  void queue_loss(const T* x, const T* y, std::size_t batch, bool with_grad) {
    const std::size_t last = stages_.size() - 1;
    stage& st = stages_[last];
    detail::loss_kind k = detail::kind_of(loss_);
    const T* pred = stage_output(last, x);
    T* grad = with_grad ? stage_grad(static_cast<std::ptrdiff_t>(last)) : nullptr;
    if (st.loss_takes_logits) {
      k = detail::loss_kind::bce_logits;
      if (st.kind == stage_kind::dense) {
        pred = st.logits.data();
      } else {
        pred = stage_input(last, x);
        grad = with_grad ? stage_grad(static_cast<std::ptrdiff_t>(last) - 1) : nullptr;
      }
    }
    const auto rows = static_cast<long long>(batch), cols = static_cast<long long>(st.out.features());
    if constexpr (on_gpu) {
#if defined(__CUDACC__)
      detail::loss_gpu(run_exec_, k, rows, cols, pred, y, grad, &record_.data()->loss);
#endif
    } else {
      loss_host_ = detail::loss_cpu(k, rows, cols, pred, y, grad);
    }
  }

  /// GPU: whether the last stage's forward pass (when a training step leaves it out of
  /// queue_forward), the loss and its backward pass are one launch: a small dense layer
  /// and an elementwise loss.
  bool fused_head(std::size_t batch) const {
    if (!on_gpu || stages_.back().kind != stage_kind::dense || detail::kind_of(loss_) == detail::loss_kind::softmax_ce)
      return false;
    detail::dense_geometry g = stages_.back().dg;
    g.n = static_cast<int>(batch);
    return detail::dense_is_small(g);
  }

  void queue_fused_head(const T* x, const T* y, std::size_t batch, bool accumulate, bool with_forward) {
#if defined(__CUDACC__)
    if constexpr (on_gpu) {
      const std::size_t last = stages_.size() - 1;
      stage& st = stages_[last];
      detail::dense_head_args a{};
      a.g = st.dg;
      a.g.n = static_cast<int>(batch);
      a.x = stage_input(last, x), a.w = weights_of(st), a.b = bias_of(st);
      a.forward = with_forward, a.act = st.act, a.y = st.out_buf.data();
      a.logits = st.loss_takes_logits ? st.logits.data() : nullptr;
      a.kind = st.loss_takes_logits ? detail::loss_kind::bce_logits : detail::kind_of(loss_);
      a.target = y, a.loss_out = &record_.data()->loss;
      a.dw = grads_.data() + st.w_off, a.db = grads_.data() + st.b_off;
      a.dx = st.needs_dx ? stage_grad(static_cast<std::ptrdiff_t>(last) - 1) : nullptr;
      a.e = dense_extras(st, a.dx, accumulate);
      detail::dense_head_gpu(run_exec_, a);
    }
#endif
    (void)x, (void)y, (void)batch, (void)accumulate, (void)with_forward;
  }

  detail::dense_backward_extras<T> dense_extras(const stage& st, const T* dx, bool accumulate) const {
    detail::dense_backward_extras<T> extra;
    extra.accumulate = accumulate;
    if (dx != nullptr && st.dx_act != activation::none) {
      extra.dx_act = st.dx_act;
      extra.dx_act_y = stages_[st.dx_act_from].out_buf.data();
    }
    return extra;
  }

  /// The loss gradient propagated back; parameter gradients accumulate, or are assigned
  /// when `accumulate` is false (a training step, which then needs no zeroing pass). With
  /// `fused` (GPU, Adam, the step's clock already advanced), dense layers whose backward
  /// pass can apply Adam to their weights do so, and their ranges are added to `fused`.
  /// `head_forward`: queue_forward left out the last stage for fused_head to do.
  void queue_loss_backward(const T* x, const T* y, std::size_t batch, bool accumulate, bool head_forward = false,
                           [[maybe_unused]] const unsigned long long* guard = nullptr,
                           [[maybe_unused]] detail::param_ranges* fused = nullptr) {
    std::size_t end = stages_.size();  // the stages before `end` still need their backward pass
    if (fused_head(batch)) {
      queue_fused_head(x, y, batch, accumulate, head_forward);
      --end;
    } else {
      queue_loss(x, y, batch, true);
    }
    const int b = static_cast<int>(batch);
    for (std::size_t i = end; i-- > 0;) {
      stage& st = stages_[i];
      if (st.kind == stage_kind::flatten || (st.loss_takes_logits && st.kind == stage_kind::act)) continue;
      const T* in = stage_input(i, x);
      const T* dy = stage_grad(static_cast<std::ptrdiff_t>(i));
      T* dx = st.needs_dx ? stage_grad(static_cast<std::ptrdiff_t>(i) - 1) : nullptr;
      T* dw = grads_.data() + st.w_off;
      T* db = grads_.data() + st.b_off;
      switch (st.kind) {
        case stage_kind::conv: {
          detail::conv_geometry g = st.cg;
          g.n = b;
          if (st.act_done_downstream) g.act = activation::none;
          detail::conv_backward_dispatch(run_exec_, g, in, weights_of(st), st.out_buf.data(),
                                         st.conv->pool ? st.argmax.data() : nullptr, dy, dw, db, dx, accumulate);
          break;
        }
        case stage_kind::pool: {
          detail::pool_geometry g = st.pg;
          g.n = b;
          if (dx != nullptr) detail::pool_backward_dispatch(run_exec_, g, dy, st.argmax.data(), dx);
          break;
        }
        case stage_kind::dense: {
          detail::dense_geometry g = st.dg;
          g.n = b;
          detail::dense_backward_extras<T> extra = dense_extras(st, dx, accumulate);
#if defined(__CUDACC__)
          if constexpr (on_gpu) {
            if (fused != nullptr && fused->size < 3 &&
                detail::dense_backward_fuses(g, in, weights_of(st), dw, dx, extra.dx_act_y)) {
              extra.adam = optimizer_->fused_at(params_.data(), st.w_off, guard);
              fused->begin[fused->size] = static_cast<long long>(st.w_off);
              fused->count[fused->size++] = static_cast<long long>(st.b_off - st.w_off);  // padding included: zeros
            }
          }
#endif
          const bool act_done = st.loss_takes_logits || st.act_done_downstream;
          detail::dense_backward_dispatch(run_exec_, g, in, weights_of(st), st.out_buf.data(), dy, dw, db, dx,
                                          act_done ? activation::none : st.act, extra);
          break;
        }
        case stage_kind::act:
          if (dx != nullptr)
            activation_backward(run_exec_, st.act, const_view{st.out_buf.data(), st.out.with_batch(batch)},
                                const_view{dy, st.out.with_batch(batch)}, view{dx, st.in.with_batch(batch)});
          break;
        case stage_kind::flatten: break;
      }
    }
  }

  void queue_train(const T* x, const T* y, std::size_t batch, const unsigned long long* guard) {
    const bool head = fused_head(batch);
    queue_forward(x, batch, head);
    last_input_ = x;
    last_batch_ = batch;
#if defined(__CUDACC__)
    if constexpr (on_gpu) {
      if (optimizer_->fusable()) {  // Adam: large dense layers update their weights in their backward pass
        optimizer_->tick(guard);
        detail::param_ranges fused;
        queue_loss_backward(x, y, batch, false, head, guard, &fused);
        optimizer_->update_ranges(complement(fused), params_.data(), grads_.data(), guard);
        return;
      }
    }
#endif
    queue_loss_backward(x, y, batch, false, head);  // assigns every gradient: no zeroing pass needed
    optimizer_->step_raw(params_.data(), grads_.data(), guard);
  }

  /// The parameter ranges outside `taken`, which holds up to 3 stages' [w_off, b_off).
  detail::param_ranges complement(const detail::param_ranges& taken) const {
    detail::param_ranges rest;
    long long at = 0;
    for (const auto& st : stages_) {  // in parameter order
      const long long w = static_cast<long long>(st.w_off);
      if (!st.has_params || std::find(taken.begin, taken.begin + taken.size, w) == taken.begin + taken.size) continue;
      if (w > at) rest.begin[rest.size] = at, rest.count[rest.size++] = w - at;
      at = static_cast<long long>(st.b_off);
    }
    if (static_cast<long long>(param_total_) > at)
      rest.begin[rest.size] = at, rest.count[rest.size++] = static_cast<long long>(param_total_) - at;
    return rest;
  }

  /// GPU: the check queued on the device, the optimizer told to obey it.
  void queue_checked_train(const const_view& x, const const_view& y, std::size_t batch) {
#if defined(__CUDACC__)
    if constexpr (on_gpu) {
      detail::validate_gpu(run_exec_, detail::value_check::finite, x.data, static_cast<long long>(x.size()),
                           detail::kind_of(loss_), y.data, static_cast<long long>(y.size()), record_.data());
      queue_train(x.data, y.data, batch, &record_.data()->bad_input);
    }
#else
    (void)x, (void)y, (void)batch;
#endif
  }

  Exec exec_;
  Exec run_exec_;  // GPU: exec_'s stream with the model's workspace
  shape4 input_{};
  std::vector<layer> layers_;
  std::vector<std::string> names_;
  std::vector<shape4> shapes_;

  bool compiled_ = false;
  std::size_t max_batch_ = 0;
  loss loss_{};
  std::vector<stage> stages_;
  std::vector<param_slot> slots_;
  std::size_t param_total_ = 0;
  buffer<T> params_, grads_;
  std::optional<optimizer_state<Exec, T>> optimizer_;
  std::unique_ptr<workspace> scratch_;  // heap: run_exec_ points at it across moves
  device_buffer<detail::step_record> record_;
  host_buffer<detail::step_record> record_host_;
  T loss_host_ = T(0);
  const T* last_input_ = nullptr;
  std::size_t last_batch_ = 0;
  shape4 last_x_shape_{}, last_y_shape_{};  // of the last checked batch, for last_loss()'s message
};

}  // namespace gpukit::nn
