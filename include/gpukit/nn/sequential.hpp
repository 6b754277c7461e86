// gpukit/nn/sequential.hpp — a stack of layers trained as one model, on either executor.
//
//   nn::sequential<gpukit::cuda_executor> model(exec, 3, 64, 64);     // input: c, h, w
//   model.add(nn::conv2d(3, 32, 3, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{})
//        .add(nn::dense(30752, 128)).add(nn::relu{}).add(nn::dense(128, 1)).add(nn::sigmoid{});
//   model.compile(32, nn::binary_crossentropy{}, nn::adam{}, /*seed*/ 42);
//   std::cout << model.summary();                                     // Keras' table + kernel paths
//   (model.set_precision(nn::precision::tf32) or bf16 before compile: tensor-core products)
//   float loss = model.train_step(x, y);                              // x (n, 3, 64, 64), y (n, 1, 1, 1)
//   nn::graph g = model.capture_train_step(x, y);  g.replay(stream);  // GPU: one CUDA graph
//
// The parts: the layers (layers.hpp) are checked as they are added; compile() makes a
// model_plan (model_plan.hpp: stages, fusion, parameter layout, every layer's kernel path
// for the executor's device, scratch) and a model_runner (model_runner.hpp: the buffers
// and the passes); batch_check.hpp checks each batch; summary.hpp prints the table.
//
// - add() infers the output shape and rejects a layer that cannot take the previous
//   one's output, naming the layer, the argument and both shapes (std::invalid_argument).
// - compile(max_batch, loss, optimizer, seed) plans and allocates everything a step needs;
//   after it nothing allocates. Weights are initialised from `seed` identically on both
//   executors; biases are zero.
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
#include "gpukit/nn/batch_check.hpp"
#include "gpukit/nn/graph.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/loss.hpp"
#include "gpukit/nn/model_plan.hpp"
#include "gpukit/nn/model_runner.hpp"
#include "gpukit/nn/optimizer.hpp"
#include "gpukit/nn/precision.hpp"
#include "gpukit/nn/summary.hpp"
#include "gpukit/nn/tensor.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gpukit::nn {

template <class Exec, class T = float>
class sequential {
  static constexpr bool on_gpu = is_gpu_executor_v<Exec>;
  static constexpr memory_space space = space_of_v<Exec>;

 public:
  using value_type = T;
  using view = tensor_view<T, space>;
  using const_view = tensor_view<const T, space>;

  /// An empty model taking samples of `channels` x `height` x `width`.
  sequential(const Exec& exec, std::size_t channels, std::size_t height, std::size_t width)
      : exec_(exec), input_{1, channels, height, width} {
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
    detail::require(!compiled(), "gpukit::nn::sequential::add", "the model is compiled: add every layer before compile()");
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

  /// Keras' table (each layer with its output shape and parameter count) and, once
  /// compiled, each stage's kernel path on the executor's device and why.
  std::string summary() const {
    return model_summary(names_, layers_, shapes_, compiled() ? &runner_->plan() : nullptr);
  }

  /// The number format of the conv and dense products (precision.hpp: fp32, the default,
  /// tf32 or bf16); set before compile(), which plans every layer's kernels for it.
  sequential& set_precision(precision p) {
    detail::require(!compiled(), "gpukit::nn::sequential::set_precision",
                    "the model is compiled: set the precision before compile()");
    detail::require(is_precision(p), "gpukit::nn::sequential::set_precision",
                    "argument 'p' = " + std::to_string(static_cast<int>(p)) + " is not a precision");
    precision_ = p;
    return *this;
  }
  precision current_precision() const noexcept { return precision_; }

  /// Plans the stages and their kernels and allocates every buffer a step needs; see the
  /// header comment.
  void compile(std::size_t max_batch, const loss& loss_fn, const optimizer& opt, std::uint64_t seed = 0) {
    constexpr const char* where = "gpukit::nn::sequential::compile";
    detail::require(!compiled(), where, "the model is already compiled");
    detail::require(!layers_.empty(), where, "the model has no layers");
    detail::require(max_batch >= 1, where, "argument 'max_batch' = 0 must be at least 1");
    detail::validate(opt);  // before anything is planned or allocated: a refused compile changes nothing
    const path_target target = target_of(exec_).with_precision(precision_);
    runner_.emplace(exec_, model_plan(input_, layers_, names_, max_batch, loss_fn, opt, target), seed);
    rules_ = {input_, current_shape(), max_batch, layer_label(0), layer_label(layers_.size() - 1), loss_fn};
    record_host_ = make_staging();
  }

  bool compiled() const noexcept { return runner_.has_value(); }
  std::size_t max_batch() const noexcept { return rules_.max_batch; }
  const Exec& executor() const noexcept { return exec_; }
  const loss& loss_function() const noexcept { return rules_.loss_fn; }

  /// The passes compile() planned, e.g. "conv2d+relu+max_pooling2d | flatten | dense+relu |
  /// dense_1+sigmoid (loss on logits)".
  std::string plan() const {
    require_compiled("plan");
    return runner_->plan().describe(names_);
  }
  /// The whole plan: stages, parameter layout, each stage's kernel path per batch size.
  const model_plan& compiled_plan() const {
    require_compiled("compiled_plan");
    return runner_->plan();
  }

  // ---- parameters ----------------------------------------------------------------------

  /// Every parameter, in one buffer (with zero padding between layers, which stays zero).
  span<T, space> parameters() { return runner().parameters().span(); }
  span<T, space> gradients() { return runner().gradients().span(); }
  span<T, space> weights(std::size_t layer) { return parameters().subspan(slot(layer).w_off, slot(layer).w_count); }
  span<T, space> bias(std::size_t layer) { return parameters().subspan(slot(layer).b_off, slot(layer).b_count); }
  span<T, space> weight_gradients(std::size_t layer) { return gradients().subspan(slot(layer).w_off, slot(layer).w_count); }
  span<T, space> bias_gradients(std::size_t layer) { return gradients().subspan(slot(layer).b_off, slot(layer).b_count); }
  /// A batch-norm layer's running mean and variance (its channels each) and its count of
  /// training batches (PyTorch's num_batches_tracked). GPU: device memory, stream-ordered.
  span<T, space> running_mean(std::size_t layer) { return batchnorm_span(layer, runner().running_mean(layer)); }
  span<T, space> running_var(std::size_t layer) { return batchnorm_span(layer, runner().running_var(layer)); }
  span<std::int64_t, space> batches_tracked(std::size_t layer) {
    batchnorm_span(layer, nullptr);
    return span<std::int64_t, space>(runner().batches_tracked(layer), 1);
  }
  const optimizer_state<Exec, T>& optimizer_state_ref() const {
    require_compiled("optimizer_state_ref");
    return runner_->optimizer_ref();
  }
  /// Optimizer steps taken (GPU: waits for the stream).
  std::int64_t steps() const {
    require_compiled("steps");
    return runner_->optimizer_ref().steps();
  }

  // ---- running -------------------------------------------------------------------------

  /// The mode of forward() and backward() (and of a captured forward): in training dropout
  /// draws a mask per forward pass, in inference (the default, as Keras' model(x)) it passes
  /// its input on. train_step, its variants and fit always train; evaluate never does.
  sequential& set_training(bool on) noexcept {
    training_ = on;
    return *this;
  }
  bool training() const noexcept { return training_; }

  /// The dropout step counter: every training forward pass advances it by one and draws
  /// its masks for the new value. Set it to replay a step's masks. GPU: stream-ordered,
  /// and both wait for the stream.
  std::uint64_t dropout_step() { return runner().dropout_step(); }
  void set_dropout_step(std::uint64_t s) { runner().set_dropout_step(s); }

  /// The model's output for x (n <= max_batch samples), in the mode set_training() chose.
  const_view forward(const_view x) {
    const std::size_t b = check_input("gpukit::nn::sequential::forward", x);
    if (training_) check_training_batch("gpukit::nn::sequential::forward", b);
    runner().forward(x.data, b, false, training_);
    remember_batch(x.data, b);
    return {runner().output(x.data), output_shape(b)};
  }

  /// The model's output for x in inference, whatever set_training() chose, with every batch
  /// norm the plan folds run inside the conv or dense layer before it (no backward() may
  /// follow: call forward() for that). train::predict runs this.
  const_view predict(const_view x) {
    const std::size_t b = check_input("gpukit::nn::sequential::predict", x);
    runner().forward(x.data, b, false, false, true);
    remember_batch(x.data, b, true);
    return {runner().output(x.data), output_shape(b)};
  }

  /// Sets every gradient to zero.
  void zero_grad() { runner().zero_grad(); }

  /// The loss against y of the last forward() (same batch), its gradient propagated back:
  /// parameter gradients accumulate. y is checked first (nothing written if rejected); the
  /// x of that forward() is not (train_step and evaluate check both).
  void backward(const_view y) {
    constexpr const char* where = "gpukit::nn::sequential::backward";
    require_compiled("backward");
    detail::require(last_input_ != nullptr, where, "no forward() to take the gradient of: call forward(x) first");
    detail::require(!folded_forward_, where,
                    "the last pass (predict, evaluate or a captured inference forward) ran with batch norms folded into "
                    "the layers before them, which keeps no gradient state: call forward(x) first");
    rules_.check_target(where, y.shape, last_batch_);
    const_view x{last_input_, input_shape(last_batch_)};
    check_now(where, x, y, /*check_input=*/false);
    runner().loss_backward(last_input_, y.data, last_batch_, true);
  }

  /// One optimizer step over every parameter.
  void step() { runner().step(); }

  /// The mean loss of the model on (x, y), without gradients. Checks x and y first.
  T evaluate(const_view x, const_view y) {
    constexpr const char* where = "gpukit::nn::sequential::evaluate";
    const std::size_t b = check_batch(where, x, y);
    check_now(where, x, y, true);
    runner().forward(x.data, b, false, false, true);
    runner().loss(x.data, y.data, b, false);
    return read_loss();
  }

  /// forward, loss, backward (gradients of this batch only) and optimizer step; returns the loss.
  T train_step(const_view x, const_view y) {
    constexpr const char* where = "gpukit::nn::sequential::train_step";
    const std::size_t b = check_batch(where, x, y);
    check_training_batch(where, b);
    check_now(where, x, y, true);
    runner().train(x.data, y.data, b, nullptr);
    remember_batch(x.data, b);
    return read_loss();
  }

  /// train_step with the check on the device and nothing waited for (CPU: train_step).
  void train_step_async(const_view x, const_view y) {
    constexpr const char* where = "gpukit::nn::sequential::train_step_async";
    const std::size_t b = check_batch(where, x, y);
    check_training_batch(where, b);
    if constexpr (on_gpu) {  // the device-side check vetoes the update: nothing waits
      queue_checked_train(x, y, b);
    } else {  // the CPU checks first, as train_step
      check_now(where, x, y, true);
      runner().train(x.data, y.data, b, nullptr);
      remember_batch(x.data, b);
    }
    remember_shapes(x, y);
  }

  /// The loss of the last step; throws if train_step_async (or a replayed graph) rejected
  /// its batch. GPU: waits for the stream.
  T last_loss() {
    require_compiled("last_loss");
    if constexpr (on_gpu) {
      const detail::step_record r = read_record();
      if (r.bad_input != detail::no_bad_index || r.bad_target != detail::no_bad_index)
        rules_.reject("gpukit::nn::sequential::last_loss", last_x_shape_, last_y_shape_, detail::bad_input_of(r),
                      detail::bad_target_of(r));
    }
    return read_loss();
  }

  // ---- results left where the step wrote them, for training loops that read them later ----

  /// The output of the last forward(), evaluate_async() or training step, for the batch it
  /// took (probabilities after a final sigmoid, also when the loss used the logits). GPU:
  /// device memory, valid once the stream passes that call and until the next one.
  const_view last_output() const {
    require_compiled("last_output");
    detail::require(last_input_ != nullptr, "gpukit::nn::sequential::last_output", "the model has not run yet");
    return {runner_->output(last_input_), output_shape(last_batch_)};
  }

  /// Where the last evaluate_async() or training step writes its loss (the batch mean):
  /// GPU: device memory, valid once the stream passes that call; CPU: host memory.
  const T* last_loss_address() const {
    require_compiled("last_loss_address");
    return runner_->loss_address();
  }

  /// evaluate() without waiting: the checks (GPU: on the device; a rejected batch makes
  /// last_loss() throw), forward and loss queued; read them with last_output() and
  /// last_loss_address(). CPU: checks first, as evaluate().
  void evaluate_async(const_view x, const_view y) {
    constexpr const char* where = "gpukit::nn::sequential::evaluate_async";
    const std::size_t b = check_batch(where, x, y);
    if constexpr (on_gpu) {
      queue_check(x, y);
    } else {
      check_now(where, x, y, true);
    }
    runner().forward(x.data, b, false, false, true);
    runner().loss(x.data, y.data, b, false);
    remember_batch(x.data, b, true);
    remember_shapes(x, y);
  }

  /// One CUDA graph of train_step_async(x, y). Replay it on the model's stream (or order
  /// that stream after the replay before calling last_loss(), which reads there). GPU only.
  graph capture_train_step(const_view x, const_view y) {
    static_assert(on_gpu, "gpukit::nn::sequential::capture_train_step needs the cuda_executor");
    const std::size_t b = check_batch("gpukit::nn::sequential::capture_train_step", x, y);
    check_training_batch("gpukit::nn::sequential::capture_train_step", b);
    remember_shapes(x, y);
    return graph::capture(stream_of(exec_), [&](stream_view) { queue_checked_train(x, y, b); });
  }
  /// One CUDA graph of forward(x) in the mode set_training() chose; the output is forward's. In
  /// inference the graph folds batch norms as predict() does (no backward() may follow it). GPU only.
  graph capture_forward(const_view x) {
    static_assert(on_gpu, "gpukit::nn::sequential::capture_forward needs the cuda_executor");
    const std::size_t b = check_input("gpukit::nn::sequential::capture_forward", x);
    if (training_) check_training_batch("gpukit::nn::sequential::capture_forward", b);
    remember_batch(x.data, b, !training_);
    return graph::capture(stream_of(exec_), [&](stream_view) { runner().forward(x.data, b, false, training_, !training_); });
  }

 private:
  static path_target target_of(const cpu_executor&) { return path_target::cpu(); }
  static path_target target_of(const cuda_executor&) { return path_target::current_gpu(); }
  static stream_view stream_of(const cpu_executor&) { return {}; }
  static stream_view stream_of(const cuda_executor& e) { return e.stream(); }
  static host_buffer<detail::step_record> make_staging() {
    return host_buffer<detail::step_record>(1, on_gpu ? host_memory::pinned : host_memory::pageable);
  }

  shape4 current_shape() const noexcept { return shapes_.empty() ? input_ : shapes_.back(); }

  std::string layer_label(std::size_t i) const {
    return "layer " + std::to_string(i + 1) + " '" + names_[i] + "' (" + layer_type_name(layers_[i]) + ")";
  }

  void require_compiled(const char* fn) const {
    detail::require(compiled(), (std::string("gpukit::nn::sequential::") + fn).c_str(),
                    "the model is not compiled: call compile() first");
  }
  model_runner<Exec, T>& runner() {
    require_compiled("the call");
    return *runner_;
  }

  span<T, space> batchnorm_span(std::size_t layer, T* p) {
    detail::require(layer < layers_.size() && std::holds_alternative<batchnorm>(layers_[layer]),
                    "gpukit::nn::sequential::running_mean",
                    "argument 'layer' = " + std::to_string(layer) + " is not a batch-norm layer");
    return span<T, space>(p, std::get<batchnorm>(layers_[layer]).features);
  }

  const param_slot& slot(std::size_t layer) const {
    require_compiled("weights");
    const auto& slots = runner_->plan().slots();
    detail::require(layer < layers_.size() && slots[layer].w_count > 0, "gpukit::nn::sequential::weights",
                    "argument 'layer' = " + std::to_string(layer) + " is not a layer with parameters");
    return slots[layer];
  }

  /// A training pass through a batch norm over a flat input needs two samples (the batch
  /// variance of one value is no statistic): rejected before anything is queued.
  void check_training_batch(const char* where, std::size_t batch) const {
    const model_plan& p = runner_->plan();
    if (batch >= p.min_training_batch()) return;
    for (const auto& st : p.stages())
      if (st.kind == stage_kind::batchnorm && st.in.h * st.in.w == 1)
        detail::require(false, where,
                        "argument 'x' has " + std::to_string(batch) + " sample: " + layer_label(st.first_layer) +
                            " normalises each feature by its variance over the batch in training, which needs at "
                            "least 2 samples (as torch.nn.BatchNorm1d); nothing was updated");
  }

  std::size_t check_input(const char* where, const const_view& x) const {
    require_compiled("forward");
    return rules_.check_input(where, x.shape);
  }
  std::size_t check_batch(const char* where, const const_view& x, const const_view& y) const {
    require_compiled("forward");
    return rules_.check_batch(where, x.shape, y.shape);
  }

  /// Checks x (if asked) and y before anything is queued; GPU: waits for the answer.
  void check_now(const char* where, const const_view& x, const const_view& y, bool check_input_values) {
    runner().check(x.data, check_input_values ? static_cast<long long>(x.size()) : 0, detail::kind_of(rules_.loss_fn),
                   y.data, static_cast<long long>(y.size()));
    const detail::step_record r = read_record();
    const detail::bad_element bad_x = detail::bad_input_of(r), bad_y = detail::bad_target_of(r);
    if (bad_x.found() || bad_y.found()) {
      remember_shapes(x, y);  // last_loss() reports the same rejection
      rules_.reject(where, x.shape, y.shape, bad_x, bad_y);
    }
  }
  /// The same checks queued (GPU), their findings left in the record for the step to obey.
  void queue_check(const const_view& x, const const_view& y) {
    runner().check(x.data, static_cast<long long>(x.size()), detail::kind_of(rules_.loss_fn), y.data,
                   static_cast<long long>(y.size()));
  }
  void queue_checked_train(const const_view& x, const const_view& y, std::size_t batch) {
    queue_check(x, y);
    runner().train(x.data, y.data, batch, &runner().record()->bad_input);
    remember_batch(x.data, batch);
  }

  void remember_shapes(const const_view& x, const const_view& y) { last_x_shape_ = x.shape, last_y_shape_ = y.shape; }
  /// `folded`: that pass ran with batch norms folded (no backward() may follow it).
  void remember_batch(const T* x, std::size_t batch, bool folded = false) {
    last_input_ = x, last_batch_ = batch;
    folded_forward_ = folded && runner_->plan().folds_batchnorms();
  }

  detail::step_record read_record() {
    return detail::read_record_impl(runner().run_executor(), runner().record(), record_host_.data());
  }
  T read_loss() {
    if constexpr (on_gpu) {
      return static_cast<T>(read_record().loss);
    } else {
      return *runner().loss_address();
    }
  }

  Exec exec_;
  shape4 input_{};
  std::vector<layer> layers_;
  std::vector<std::string> names_;
  std::vector<shape4> shapes_;
  precision precision_ = precision::fp32;
  bool training_ = false;
  bool folded_forward_ = false;  // the last pass folded batch norms: no backward() may follow it

  std::optional<model_runner<Exec, T>> runner_;
  detail::batch_rules rules_;
  host_buffer<detail::step_record> record_host_;
  const T* last_input_ = nullptr;
  std::size_t last_batch_ = 0;
  shape4 last_x_shape_{}, last_y_shape_{};  // of the last checked batch, for last_loss()'s message
};

}  // namespace gpukit::nn
