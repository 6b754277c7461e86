// Bad input to the layers, the losses, the optimizer and the model: each check (one row of
// docs/BAD_INPUT_MATRIX.md, see tests/support/bad_input.hpp) throws std::invalid_argument
// naming the function (or layer), the argument and the shapes or the offending value, and
// leaves every output, parameter and optimizer state untouched — on both executors. On the
// GPU, also the device-side check of train_step_async and of a replayed graph: a rejected
// batch changes nothing and last_loss() reports it.
#include "nn/nn_support.hpp"
#include "support/bad_input.hpp"

#include <cmath>
#include <limits>

using namespace nn_test;
using gpukit_test::bad_input;
using invalid = std::invalid_argument;

namespace {

struct cpu_side {
  gpukit::cpu_executor exec{};
  gpukit::stream_view stream_view() const { return {}; }
  template <class T = float>
  nn::host_tensor<T> make(const std::vector<T>& v, shape4 s) const {
    return nn::host_tensor<T>::from_host(s, v);
  }
  template <class T, gpukit::memory_space S>
  std::vector<T> read(gpukit::span<T, S> s) const {
    return std::vector<T>(s.begin(), s.end());
  }
};

struct gpu_side {
  gpukit::stream stream;
  gpukit::cuda_executor exec{stream.view()};
  gpukit::stream_view stream_view() const { return stream.view(); }
  template <class T = float>
  nn::tensor<T, gpukit::memory_space::device> make(const std::vector<T>& v, shape4 s) const {
    auto t = nn::tensor<T, gpukit::memory_space::device>::from_host(s, v, stream.view());
    stream.synchronize();
    return t;
  }
  template <class T, gpukit::memory_space S>
  std::vector<std::remove_const_t<T>> read(gpukit::span<T, S> s) const {
    std::vector<std::remove_const_t<T>> out(s.size());
    gpukit::transfer(gpukit::make_host_span(out), gpukit::span<const std::remove_const_t<T>, S>(s), stream.view());
    return out;
  }
};

template <class Side, class Tensor>
void require_all(const Side& side, Tensor& t, float value) {
  for (float v : side.read(t.span())) REQUIRE(v == value);
}

template <class Side>
void check_layer_refusals(Side& side) {
  const auto& exec = side.exec;
  auto x = side.make(std::vector<float>(2 * 3 * 8 * 8, 1.0f), {2, 3, 8, 8});
  auto w = side.make(std::vector<float>(108, 0.5f), {4, 3, 3, 3});
  auto w_short = side.make(std::vector<float>(107, 0.5f), {1, 1, 1, 107});
  auto b = side.make(std::vector<float>(4, 0.0f), {4, 1, 1, 1});
  auto y = side.make(std::vector<float>(2 * 4 * 6 * 6, -5.0f), {2, 4, 6, 6});
  auto y_wrong = side.make(std::vector<float>(2 * 4 * 6 * 5, -5.0f), {2, 4, 6, 5});
  auto pooled = side.make(std::vector<float>(2 * 4 * 3 * 3, -5.0f), {2, 4, 3, 3});
  auto argmax_wrong = side.make(std::vector<std::int32_t>(2 * 4 * 3 * 2, 0), {2, 4, 3, 2});
  auto dw = side.make(std::vector<float>(108, -5.0f), {4, 3, 3, 3});
  auto db = side.make(std::vector<float>(4, -5.0f), {4, 1, 1, 1});
  auto dx_wrong = side.make(std::vector<float>(2 * 3 * 8 * 7, -5.0f), {2, 3, 8, 7});
  const nn::conv2d conv(3, 4, 3);

  bad_input<invalid>("gpukit::nn::conv2d_forward", "'w'", "one element short",
      [&] { nn::conv2d_forward(exec, conv, x, w_short.span(), b.span(), y); },
      {"gpukit::nn::conv2d_block_forward", "'w' has 107 elements, expected 108"});
  require_all(side, y, -5.0f);
  bad_input<invalid>("gpukit::nn::conv2d_forward", "'y'", "wrong shape",
      [&] { nn::conv2d_forward(exec, conv, x, w.span(), b.span(), y_wrong); },
      {"'y' has shape (2, 4, 6, 5), expected (2, 4, 6, 6)"});
  require_all(side, y_wrong, -5.0f);
  bad_input<invalid>("gpukit::nn::conv2d_forward", "'in_channels'", "differs from the input's channels",
      [&] { nn::conv2d_forward(exec, nn::conv2d(2, 4, 3), x, w.span(), b.span(), y); },
      {"'in_channels' = 2", "3 channels", "(None, 3, 8, 8)"});
  bad_input<invalid>("gpukit::nn::conv2d_forward", "'kernel'", "larger than the padded input",
      [&] { nn::conv2d_forward(exec, nn::conv2d(3, 4, 9), x, w.span(), b.span(), y); },
      {"'kernel' = 9x9", "larger than the padded input 8x8"});
  const nn::conv_block block{conv, nn::activation::relu, nn::maxpool2d(2)};
  bad_input<invalid>("gpukit::nn::conv2d_block_forward", "'argmax'", "wrong shape",
      [&] { nn::conv2d_block_forward(exec, block, x, w.span(), b.span(), pooled, argmax_wrong); },
      {"'argmax' has shape (2, 4, 3, 2), expected (2, 4, 3, 3)"});
  require_all(side, pooled, -5.0f);
  bad_input<invalid>("gpukit::nn::conv2d_backward", "'dx'", "wrong shape",
      [&] { nn::conv2d_backward(exec, conv, x, w.span(), y, dw.span(), db.span(), dx_wrong); },
      {"gpukit::nn::conv2d_block_backward", "'dx' has shape (2, 3, 8, 7), expected (2, 3, 8, 8)"});
  require_all(side, dw, -5.0f);
  require_all(side, db, -5.0f);
  require_all(side, dx_wrong, -5.0f);

  auto pool_out = side.make(std::vector<float>(2 * 3 * 4 * 4, -5.0f), {2, 3, 4, 4});
  auto pool_arg = side.make(std::vector<std::int32_t>(2 * 3 * 4 * 4, 0), {2, 3, 4, 4});
  bad_input<invalid>("gpukit::nn::maxpool2d_forward", "'window'", "larger than the input",
      [&] { nn::maxpool2d_forward(exec, nn::maxpool2d(9), x, pool_out, pool_arg); },
      {"gpukit::nn::maxpool2d_forward", "'window' = 9x9", "larger than the input 8x8"});
  bad_input<invalid>("gpukit::nn::maxpool2d_forward", "'y'", "wrong shape",
      [&] { nn::maxpool2d_forward(exec, nn::maxpool2d(3), x, pool_out, pool_arg); },
      {"'y' has shape (2, 3, 4, 4), expected (2, 3, 2, 2)"});
  require_all(side, pool_out, -5.0f);
  bad_input<invalid>("gpukit::nn::avgpool2d_forward", "'window'", "larger than the input",
      [&] { nn::avgpool2d_forward(exec, nn::avgpool2d(9), x, pool_out); },
      {"gpukit::nn::avgpool2d_forward", "'window' = 9x9", "larger than the input 8x8"});
  bad_input<invalid>("gpukit::nn::avgpool2d_forward", "'y'", "wrong shape",
      [&] { nn::avgpool2d_forward(exec, nn::avgpool2d(3), x, pool_out); },
      {"gpukit::nn::avgpool2d_forward", "'y' has shape (2, 3, 4, 4), expected (2, 3, 2, 2)"});
  bad_input<invalid>("gpukit::nn::global_avgpool2d_forward", "'y'", "not (n, c, 1, 1)",
      [&] { nn::global_avgpool2d_forward(exec, x, pool_out); },
      {"gpukit::nn::global_avgpool2d_forward", "'y' has shape (2, 3, 4, 4), expected (2, 3, 1, 1)"});
  require_all(side, pool_out, -5.0f);
  bad_input<invalid>("gpukit::nn::softmax_forward", "'y'", "wrong shape",
      [&] { nn::softmax_forward(exec, x, pool_out); },
      {"gpukit::nn::softmax_forward", "'y' has shape (2, 3, 4, 4), expected (2, 3, 8, 8)"});
  bad_input<invalid>("gpukit::nn::dropout_forward", "'y'", "wrong shape",
      [&] { nn::dropout_forward(exec, nn::dropout(0.5f), nn::dropout_key{}, x, pool_out); },
      {"gpukit::nn::dropout_forward", "'y' has shape (2, 3, 4, 4), expected (2, 3, 8, 8)"});
  require_all(side, pool_out, -5.0f);

  auto flat_w = side.make(std::vector<float>(10 * 192, 0.1f), {1, 1, 1, 1920});
  auto flat_b = side.make(std::vector<float>(10, 0.0f), {10, 1, 1, 1});
  auto flat_y = side.make(std::vector<float>(20, -5.0f), {2, 10, 1, 1});
  bad_input<invalid>("gpukit::nn::dense_forward", "flat input", "not flat (no flatten before dense)",
      [&] { nn::dense_forward(exec, nn::dense(192, 10), x, flat_w.span(), flat_b.span(), flat_y); },
      {"gpukit::nn::dense_forward", "needs a flat input", "(None, 3, 8, 8)"});
  require_all(side, flat_y, -5.0f);
  bad_input<invalid>("gpukit::nn::activation_forward", "'y'", "shape differs from 'x'",
      [&] { nn::activation_forward(exec, nn::activation::relu, x, y); },
      {"gpukit::nn::activation_forward", "'y' has shape (2, 4, 6, 6), expected (2, 3, 8, 8)"});

  const shape4 ls{4, 1, 1, 1};
  auto p = side.make(std::vector<float>{0.2f, 0.7f, 0.9f, 0.4f}, ls);
  auto grad = side.make(std::vector<float>(4, -5.0f), ls);
  auto labels_bad = side.make(std::vector<float>{0.0f, 1.0f, 2.0f, 0.0f}, ls);
  auto labels_soft = side.make(std::vector<float>{0.5f, 1.0f, 0.0f, 0.0f}, ls);
  bad_input<invalid>("gpukit::nn::loss_and_gradient", "'target'", "a binary label of 2",
      [&] { (void)nn::loss_and_gradient(exec, nn::binary_crossentropy{}, p, labels_bad, grad); },
      {"gpukit::nn::loss_and_gradient", "argument 'target' (shape (4, 1, 1, 1)) holds 2 at index 2",
       "binary cross-entropy labels must be 0 or 1", "nothing was written"});
  bad_input<invalid>("gpukit::nn::loss_and_gradient", "'target'", "a soft label (0.5) for logits",
      [&] { (void)nn::loss_and_gradient(exec, nn::binary_crossentropy_with_logits{}, p, labels_soft, grad); },
      {"'target'", "holds 0.5 at index 0", "labels must be 0 or 1"});
  require_all(side, grad, -5.0f);
  auto p_out_of_range = side.make(std::vector<float>{0.2f, 1.5f, 0.9f, 0.4f}, ls);
  auto labels = side.make(std::vector<float>{0.0f, 1.0f, 1.0f, 0.0f}, ls);
  bad_input<invalid>("gpukit::nn::loss_and_gradient", "'prediction'", "a probability above 1",
      [&] { (void)nn::loss_and_gradient(exec, nn::binary_crossentropy{}, p_out_of_range, labels, grad); },
      {"argument 'prediction' (shape (4, 1, 1, 1)) holds 1.5 at index 1", "probabilities in [0, 1]"});
  auto p_nan = side.make(std::vector<float>{0.2f, 0.1f, 0.9f, std::numeric_limits<float>::quiet_NaN()}, ls);
  bad_input<invalid>("gpukit::nn::loss_value", "'prediction'", "NaN",
      [&] { (void)nn::loss_value(exec, nn::mean_squared_error{}, p_nan, labels); },
      {"gpukit::nn::loss_value", "'prediction'", "holds nan at index 3", "must be finite"});
  auto t_negative = side.make(std::vector<float>{0.0f, -0.25f, 1.0f, 0.0f}, {2, 2, 1, 1});
  auto logits = side.make(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f}, {2, 2, 1, 1});
  bad_input<invalid>("gpukit::nn::loss_value", "'target'", "a negative softmax target",
      [&] { (void)nn::loss_value(exec, nn::softmax_crossentropy{}, logits, t_negative); },
      {"holds -0.25 at index 1", "softmax cross-entropy targets must lie in [0, 1]"});
  bad_input<invalid>("gpukit::nn::loss_value", "'target'", "shape differs from 'prediction'",
      [&] { (void)nn::loss_value(exec, nn::mean_squared_error{}, logits, labels); },
      {"'target' has shape (4, 1, 1, 1), expected (2, 2, 1, 1)"});
  auto grad_wrong = side.make(std::vector<float>(4, -5.0f), {2, 2, 1, 1});
  bad_input<invalid>("gpukit::nn::loss_and_gradient", "'grad'", "shape differs from 'prediction'",
      [&] { (void)nn::loss_and_gradient(exec, nn::mean_squared_error{}, p, labels, grad_wrong); },
      {"'grad' has shape (2, 2, 1, 1), expected (4, 1, 1, 1)"});
  require_all(side, grad, -5.0f);
  require_all(side, grad_wrong, -5.0f);
  auto dy_block_wrong = side.make(std::vector<float>(2 * 4 * 3 * 2, 1.0f), {2, 4, 3, 2});
  auto block_dx = side.make(std::vector<float>(2 * 3 * 8 * 8, -5.0f), {2, 3, 8, 8});
  auto block_y = side.make(std::vector<float>(2 * 4 * 3 * 3, 0.5f), {2, 4, 3, 3});
  auto block_arg = side.make(std::vector<std::int32_t>(2 * 4 * 3 * 3, 0), {2, 4, 3, 3});
  bad_input<invalid>("gpukit::nn::conv2d_block_backward", "'dy'", "wrong shape",
      [&] { nn::conv2d_block_backward(exec, block, x, w.span(), block_y, block_arg, dy_block_wrong, dw.span(), db.span(), block_dx); },
      {"'dy' has shape (2, 4, 3, 2), expected (2, 4, 3, 3)"});
  require_all(side, dw, -5.0f);
  require_all(side, db, -5.0f);
  require_all(side, block_dx, -5.0f);

  using Exec = std::decay_t<decltype(exec)>;
  nn::optimizer_state<Exec> state(exec, nn::adam{}, 10);
  auto params = side.make(std::vector<float>(10, 1.0f), {10, 1, 1, 1});
  auto grads = side.make(std::vector<float>(9, 1.0f), {9, 1, 1, 1});
  bad_input<invalid>("gpukit::nn::optimizer_state::step", "'grads'", "fewer elements than the parameters",
      [&] { state.step(params.span(), grads.span()); },
      {"gpukit::nn::optimizer_state::step", "'grads' has 9 elements, expected 10"});
  require_all(side, params, 1.0f);
  CHECK(state.steps() == 0);
}

// The backward passes' own arguments, and the configuration objects: tensors, optimizers,
// the model's construction and compilation.
template <class Side>
void check_backward_and_configuration_refusals(Side& side) {
  using Exec = std::decay_t<decltype(side.exec)>;
  const auto& exec = side.exec;
  auto pool_dx = side.make(std::vector<float>(2 * 3 * 8 * 8, -5.0f), {2, 3, 8, 8});
  auto pool_dy_wrong = side.make(std::vector<float>(2 * 3 * 4 * 3, 1.0f), {2, 3, 4, 3});
  auto pool_arg = side.make(std::vector<std::int32_t>(2 * 3 * 4 * 4, 0), {2, 3, 4, 4});
  bad_input<invalid>("gpukit::nn::maxpool2d_backward", "'dy'", "wrong shape",
      [&] { nn::maxpool2d_backward(exec, nn::maxpool2d(2), pool_dy_wrong, pool_arg, pool_dx); },
      {"'dy' has shape (2, 3, 4, 3), expected (2, 3, 4, 4)"});
  require_all(side, pool_dx, -5.0f);
  bad_input<invalid>("gpukit::nn::avgpool2d_backward", "'dy'", "wrong shape",
      [&] { nn::avgpool2d_backward(exec, nn::avgpool2d(2), pool_dy_wrong, pool_dx); },
      {"gpukit::nn::avgpool2d_backward", "'dy' has shape (2, 3, 4, 3), expected (2, 3, 4, 4)"});
  bad_input<invalid>("gpukit::nn::global_avgpool2d_backward", "'dy'", "wrong shape",
      [&] { nn::global_avgpool2d_backward(exec, pool_dy_wrong, pool_dx); },
      {"gpukit::nn::global_avgpool2d_backward", "'dy' has shape (2, 3, 4, 3), expected (2, 3, 1, 1)"});
  require_all(side, pool_dx, -5.0f);
  {  // dx over dy: the gather would read gradients it has already overwritten
    const auto whole = pool_dx.view();
    const nn::tensor_view<const float, nn::space_of_v<Exec>> dy_in_dx{whole.data + 8, {2, 3, 4, 4}};
    bad_input<invalid>("gpukit::nn::avgpool2d_backward", "'dx'", "overlaps 'dy'",
        [&] { nn::avgpool2d_backward(exec, nn::avgpool2d(2), dy_in_dx, whole); },
        {"gpukit::nn::avgpool2d_backward", "'dx' and 'dy' overlap"});
    bad_input<invalid>("gpukit::nn::maxpool2d_backward", "'dx'", "overlaps 'dy'",
        [&] { nn::maxpool2d_backward(exec, nn::maxpool2d(2), dy_in_dx, pool_arg, whole); },
        {"gpukit::nn::maxpool2d_backward", "'dx' and 'dy' overlap"});
    require_all(side, pool_dx, -5.0f);
  }

  auto x = side.make(std::vector<float>(2 * 192, 0.5f), {2, 192, 1, 1});
  auto w = side.make(std::vector<float>(1920, 0.1f), {1, 1, 1, 1920});
  auto y = side.make(std::vector<float>(20, 0.5f), {2, 10, 1, 1});
  auto dy = side.make(std::vector<float>(20, 1.0f), {2, 10, 1, 1});
  auto dw_short = side.make(std::vector<float>(1919, -5.0f), {1, 1, 1, 1919});
  auto db = side.make(std::vector<float>(10, -5.0f), {10, 1, 1, 1});
  auto dx = side.make(std::vector<float>(2 * 192, -5.0f), {2, 192, 1, 1});
  bad_input<invalid>("gpukit::nn::dense_backward", "'dw'", "one element short",
      [&] { nn::dense_backward(exec, nn::dense(192, 10), x, w.span(), y, dy, dw_short.span(), db.span(), dx); },
      {"'dw' has 1919 elements, expected 1920"});
  require_all(side, dw_short, -5.0f);
  require_all(side, db, -5.0f);
  require_all(side, dx, -5.0f);
  auto dy_wrong = side.make(std::vector<float>(2 * 11, 1.0f), {2, 11, 1, 1});
  bad_input<invalid>("gpukit::nn::activation_backward", "'dy'", "shape differs from 'y'",
      [&] { nn::activation_backward(exec, nn::activation::relu, y, dy_wrong, dx); }, {"(2, 11, 1, 1)"});
  bad_input<invalid>("gpukit::nn::activation_backward", "'dx'", "shape differs from 'y'",
      [&] { nn::activation_backward(exec, nn::activation::relu, y, dy, dx); }, {"(2, 192, 1, 1)"});
  require_all(side, dx, -5.0f);

  using tensor_t = std::decay_t<decltype(side.make(std::vector<float>(1), {1, 1, 1, 1}))>;
  bad_input<invalid>("gpukit::nn::tensor::from_host", "'values'", "fewer than the shape holds",
      [&] { (void)tensor_t::from_host({2, 3, 1, 1}, std::vector<float>(5, 1.0f), side.stream_view()); }, {"5", "6"});
  auto t = side.make(std::vector<float>(6, 2.0f), {2, 3, 1, 1});
  bad_input<invalid>("gpukit::nn::tensor::reshape", "'shape'", "another element count", [&] { t.reshape({1, 7, 1, 1}); },
      {"(1, 7, 1, 1)", "6"});
  CHECK(t.shape() == shape4{2, 3, 1, 1});
  require_all(side, t, 2.0f);
  bad_input<invalid>("gpukit::nn::make_tensor_view", "'s'", "size differs from the shape",
      [&] { (void)nn::make_tensor_view(t.span(), shape4{1, 5, 1, 1}); }, {"6", "5"});

  nn::sgd zero_rate;
  zero_rate.learning_rate = 0.0f;
  nn::sgd infinite_rate;
  infinite_rate.learning_rate = std::numeric_limits<float>::infinity();
  nn::sgd full_momentum;
  full_momentum.momentum = 1.0f;
  nn::adam negative_beta1;
  negative_beta1.beta1 = -0.1f;
  nn::adam unit_beta2;
  unit_beta2.beta2 = 1.0f;
  nn::adam nan_epsilon;
  nan_epsilon.epsilon = std::numeric_limits<float>::quiet_NaN();
  using state_t = nn::optimizer_state<Exec>;
  bad_input<invalid>("gpukit::nn::optimizer_state", "'learning_rate'", "0", [&] { state_t st(exec, zero_rate, 10); }, {"0.0"});
  bad_input<invalid>("gpukit::nn::optimizer_state", "'learning_rate'", "infinite", [&] { state_t st(exec, infinite_rate, 10); },
      {"inf"});
  bad_input<invalid>("gpukit::nn::optimizer_state", "'momentum'", "1 (must be below 1)", [&] { state_t st(exec, full_momentum, 10); },
      {"[0, 1)"});
  bad_input<invalid>("gpukit::nn::optimizer_state", "'beta1'", "negative", [&] { state_t st(exec, negative_beta1, 10); }, {"-0.1"});
  bad_input<invalid>("gpukit::nn::optimizer_state", "'beta2'", "1 (must be below 1)", [&] { state_t st(exec, unit_beta2, 10); },
      {"[0, 1)"});
  bad_input<invalid>("gpukit::nn::optimizer_state", "'epsilon'", "NaN", [&] { state_t st(exec, nan_epsilon, 10); }, {"nan"});

  bad_input<invalid>("gpukit::nn::sequential", "input shape", "a zero dimension",
      [&] { nn::sequential<Exec> m(exec, 0, 8, 8); }, {"(0, 8, 8)"});
  nn::sequential<Exec> no_layers(exec, 1, 8, 8);
  bad_input<invalid>("gpukit::nn::sequential::compile", "the model", "with no layers",
      [&] { no_layers.compile(4, nn::binary_crossentropy{}, nn::adam{}); }, {"no layers"});
  nn::sequential<Exec> m(exec, 1, 8, 8);
  m.add(nn::flatten{}).add(nn::dense(64, 1)).add(nn::sigmoid{});
  bad_input<invalid>("gpukit::nn::sequential::add", "'in_features'", "differs from the previous layer's output",
      [&] { m.add(nn::dense(10, 1)); }, {"layer 4 'dense_1' (Dense)", "'in_features' = 10"});
  bad_input<invalid>("gpukit::nn::sequential::add", "'kernel'", "larger than the previous layer's 1x1 output",
      [&] { m.add(nn::conv2d(1, 2, 3)); }, {"layer 4 'conv2d' (Conv2D)", "3x3"});
  CHECK(m.size() == 3);
  bad_input<invalid>("gpukit::nn::sequential::compile", "'max_batch'", "0",
      [&] { m.compile(0, nn::binary_crossentropy{}, nn::adam{}); });
  bad_input<invalid>("gpukit::nn::sequential::compile", "'learning_rate'", "0, refused before anything is allocated",
      [&] { m.compile(4, nn::binary_crossentropy{}, zero_rate); }, {"gpukit::nn::optimizer_state"});
  m.compile(4, nn::binary_crossentropy{}, nn::adam{}, 3);  // the refused attempts left nothing behind
  bad_input<invalid>("gpukit::nn::sequential::compile", "the model", "compiled twice",
      [&] { m.compile(4, nn::binary_crossentropy{}, nn::adam{}); }, {"already compiled"});
  bad_input<invalid>("gpukit::nn::sequential::add", "the model", "a layer added after compile",
      [&] { m.add(nn::relu{}); }, {"compile()"});
  bad_input<invalid>("gpukit::nn::sequential::weights", "'layer'", "a layer without parameters",
      [&] { (void)m.weights(0); }, {"'layer' = 0"});
  bad_input<invalid>("gpukit::nn::sequential::weights", "'layer'", "past the last layer", [&] { (void)m.weights(9); }, {"9"});
  CHECK(m.size() == 3);
  auto wrong_x = side.make(std::vector<float>(2 * 63, 0.5f), {2, 1, 9, 7});
  bad_input<invalid>("gpukit::nn::sequential::forward", "'x'", "wrong sample shape", [&] { (void)m.forward(wrong_x); },
      {"(2, 1, 9, 7)"});
  auto batch = side.make(random_vector<float>(4 * 64, 0, 1, 151), {4, 1, 8, 8});
  auto labels = side.make(std::vector<float>{0, 1, 1, 0}, {4, 1, 1, 1});
  CHECK(std::isfinite(m.train_step(batch, labels)));
  CHECK(m.steps() == 1);
}

template <class Side>
auto small_model(Side& side) {
  using Exec = std::decay_t<decltype(side.exec)>;
  nn::sequential<Exec> m(side.exec, 1, 8, 8);
  m.add(nn::conv2d(1, 2, 3)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  m.add(nn::dense(18, 4)).add(nn::relu{}).add(nn::dense(4, 1)).add(nn::sigmoid{});
  m.compile(4, nn::binary_crossentropy{}, nn::adam{}, 9);
  return m;
}

template <class Side>
void check_model_refusals(Side& side) {
  using Exec = std::decay_t<decltype(side.exec)>;
  nn::sequential<Exec> uncompiled(side.exec, 1, 8, 8);
  uncompiled.add(nn::flatten{});
  auto x = side.make(random_vector<float>(4 * 64, 0, 1, 121), {4, 1, 8, 8});
  auto y = side.make(std::vector<float>{0, 1, 1, 0}, {4, 1, 1, 1});
  bad_input<invalid>("gpukit::nn::sequential::forward", "not compiled", "a model not compiled yet",
      [&] { (void)uncompiled.forward(x); }, {"not compiled"});

  auto m = small_model(side);
  const std::vector<float> before = side.read(m.parameters());
  std::vector<float> xs = random_vector<float>(4 * 64, 0, 1, 121);
  xs[5] = std::numeric_limits<float>::quiet_NaN();
  auto x_nan = side.make(xs, {4, 1, 8, 8});
  xs[5] = std::numeric_limits<float>::infinity();
  auto x_inf = side.make(xs, {4, 1, 8, 8});
  auto y_two = side.make(std::vector<float>{0, 1, 2, 0}, {4, 1, 1, 1});
  auto y_half = side.make(std::vector<float>{0, 0.5f, 1, 0}, {4, 1, 1, 1});
  auto x_narrow = side.make(std::vector<float>(4 * 56, 0.5f), {4, 1, 8, 7});
  auto x_five = side.make(std::vector<float>(5 * 64, 0.5f), {5, 1, 8, 8});
  auto y_wide = side.make(std::vector<float>(8, 0.0f), {4, 2, 1, 1});

  bad_input<invalid>("gpukit::nn::sequential::train_step", "'x'", "NaN",
      [&] { (void)m.train_step(x_nan, y); },
      {"gpukit::nn::sequential::train_step", "argument 'x' (shape (4, 1, 8, 8)) holds nan at index 5",
       "the input of layer 1 'conv2d' (Conv2D) must be finite", "nothing was updated"});
  bad_input<invalid>("gpukit::nn::sequential::train_step", "'x'", "infinite",
      [&] { (void)m.train_step(x_inf, y); }, {"holds inf at index 5"});
  bad_input<invalid>("gpukit::nn::sequential::train_step", "'y'", "a binary label of 2",
      [&] { (void)m.train_step(x, y_two); },
      {"argument 'y' (shape (4, 1, 1, 1)) holds 2 at index 2", "binary cross-entropy labels must be 0 or 1",
       "loss binary_crossentropy after layer 8 'sigmoid' (Sigmoid)", "nothing was updated"});
  bad_input<invalid>("gpukit::nn::sequential::train_step", "'y'", "a soft label (0.5) for binary cross-entropy",
      [&] { (void)m.train_step(x, y_half); }, {"holds 0.5 at index 1"});
  bad_input<invalid>("gpukit::nn::sequential::train_step", "'x'", "wrong sample shape",
      [&] { (void)m.train_step(x_narrow, y); },
      {"argument 'x' has shape (4, 1, 8, 7)", "layer 1 'conv2d' (Conv2D) takes (N, 1, 8, 8) with 1 <= N <= 4"});
  bad_input<invalid>("gpukit::nn::sequential::train_step", "'x'", "batch above max_batch",
      [&] { (void)m.train_step(x_five, y); },
      {"argument 'x' has shape (5, 1, 8, 8)", "1 <= N <= 4"});
  bad_input<invalid>("gpukit::nn::sequential::train_step", "'y'", "shape differs from the output",
      [&] { (void)m.train_step(x, y_wide); },
      {"argument 'y' has shape (4, 2, 1, 1)", "the output of layer 8 'sigmoid' (Sigmoid) for 4 samples is (4, 1, 1, 1)"});
  bad_input<invalid>("gpukit::nn::sequential::backward", "forward(x)", "before any forward",
      [&] { m.backward(y); },
      {"gpukit::nn::sequential::backward", "call forward(x) first"});
  bad_input<invalid>("gpukit::nn::sequential::evaluate", "'y'", "a binary label of 2",
      [&] { (void)m.evaluate(x, y_two); },
      {"gpukit::nn::sequential::evaluate", "holds 2 at index 2"});
  (void)m.forward(x);
  bad_input<invalid>("gpukit::nn::sequential::backward", "'y'", "a binary label of 2",
      [&] { m.backward(y_two); },
      {"gpukit::nn::sequential::backward", "holds 2 at index 2"});
  CHECK(side.read(m.parameters()) == before);
  for (float g : side.read(m.gradients())) REQUIRE(g == 0.0f);
  CHECK(m.steps() == 0);

  const float loss = m.train_step(x, y);  // and a good batch still trains
  CHECK(std::isfinite(loss));
  CHECK(m.steps() == 1);
  CHECK(side.read(m.parameters()) != before);
}

TEST_CASE("bad input to the layers, losses and optimizer is refused on the CPU", "[nn][bad_input]") {
  cpu_side side;
  check_layer_refusals(side);
}

TEST_CASE("bad input to the model is refused on the CPU, nothing updated", "[nn][bad_input]") {
  cpu_side side;
  check_model_refusals(side);
}

TEST_CASE("bad input to the layers, losses and optimizer is refused on the GPU", "[gpu][nn][bad_input]") {
  gpu_side side;
  check_layer_refusals(side);
}

TEST_CASE("layer construction refuses empty sizes", "[nn][bad_input]") {
  bad_input<invalid>("gpukit::nn::conv2d", "'in_channels'", "0", [] { nn::conv2d c(0, 4, 3); }, {"= 0"});
  bad_input<invalid>("gpukit::nn::conv2d", "'out_channels'", "0", [] { nn::conv2d c(3, 0, 3); }, {"= 0"});
  bad_input<invalid>("gpukit::nn::conv2d", "'kernel'", "0x0", [] { nn::conv2d c(3, 4, 0); }, {"0x0"});
  bad_input<invalid>("gpukit::nn::conv2d", "'stride'", "0", [] { nn::conv2d c(3, 4, 3, 0); }, {"= 0"});
  bad_input<invalid>("gpukit::nn::maxpool2d", "'window'", "0x0", [] { nn::maxpool2d p(0); }, {"0x0"});
  bad_input<invalid>("gpukit::nn::maxpool2d", "'stride'", "0x0", [] { nn::maxpool2d p(2, 0); }, {"0x0"});
  bad_input<invalid>("gpukit::nn::avgpool2d", "'window'", "0x0", [] { nn::avgpool2d p(0); }, {"0x0"});
  bad_input<invalid>("gpukit::nn::dropout", "'p'", "1", [] { nn::dropout d(1.0f); }, {"'p' = 1.0", "[0, 1)"});
  bad_input<invalid>("gpukit::nn::dropout", "'p'", "negative", [] { nn::dropout d(-0.1f); }, {"'p' = -0.1"});
  bad_input<invalid>("gpukit::nn::dropout", "'p'", "NaN", [] { nn::dropout d(std::nanf("")); }, {"'p' = nan"});
  bad_input<invalid>("gpukit::nn::avgpool2d", "'stride'", "0x0", [] { nn::avgpool2d p(2, 0); }, {"0x0"});
  bad_input<invalid>("gpukit::nn::dense", "'in_features'", "0", [] { nn::dense d(0, 4); }, {"= 0"});
  bad_input<invalid>("gpukit::nn::dense", "'out_features'", "0", [] { nn::dense d(4, 0); }, {"= 0"});
}

TEST_CASE("backward passes and configuration refuse bad input on the CPU", "[nn][bad_input]") {
  cpu_side side;
  check_backward_and_configuration_refusals(side);
}

TEST_CASE("backward passes and configuration refuse bad input on the GPU", "[gpu][nn][bad_input]") {
  gpu_side side;
  check_backward_and_configuration_refusals(side);
  bad_input<invalid>("gpukit::nn::graph::capture", "'s'", "the legacy default stream",
      [] { (void)nn::graph::capture(gpukit::stream_view(static_cast<cudaStream_t>(nullptr)), [](gpukit::stream_view) {}); },
      {"cannot be captured"});
}

TEST_CASE("bad input to the model is refused on the GPU, nothing updated", "[gpu][nn][bad_input]") {
  gpu_side side;
  check_model_refusals(side);
}

TEST_CASE("on the GPU a batch the device rejects changes nothing, eager-async or replayed", "[gpu][nn][bad_input]") {
  gpu_side side;
  auto m = small_model(side);
  const std::vector<float> before = side.read(m.parameters());
  std::vector<float> xs = random_vector<float>(4 * 64, 0, 1, 131);
  auto x = side.make(xs, {4, 1, 8, 8});
  xs[7] = std::numeric_limits<float>::quiet_NaN();
  auto x_nan = side.make(xs, {4, 1, 8, 8});
  auto y = side.make(std::vector<float>{0, 1, 1, 0}, {4, 1, 1, 1});

  m.train_step_async(x_nan, y);
  // The message reports what the step saw, not what the batch's memory holds by the time
  // last_loss() is called (a loader reuses it for the next batch).
  x_nan.buffer().copy_from_host(random_vector<float>(4 * 64, 0, 1, 131), side.stream.view());
  bad_input<invalid>("gpukit::nn::sequential::last_loss", "'x'", "NaN, rejected on the device",
      [&] { (void)m.last_loss(); }, {"gpukit::nn::sequential::last_loss", "holds nan at index 7"});
  CHECK(side.read(m.parameters()) == before);
  CHECK(m.steps() == 0);

  nn::graph g = m.capture_train_step(x, y);
  CHECK(side.read(m.parameters()) == before);  // capturing runs nothing
  y.buffer().copy_from_host(std::vector<float>{0, 1, 3, 0}, side.stream.view());
  g.replay(side.stream.view());
  y.buffer().copy_from_host(std::vector<float>{0, 1, 1, 0}, side.stream.view());
  bad_input<invalid>("gpukit::nn::graph::replay", "'y'", "a binary label of 3 in a replayed step",
      [&] { (void)m.last_loss(); }, {"holds 3 at index 2"});
  CHECK(side.read(m.parameters()) == before);
  CHECK(m.steps() == 0);

  g.replay(side.stream.view());
  CHECK(std::isfinite(m.last_loss()));
  CHECK(m.steps() == 1);
  CHECK(side.read(m.parameters()) != before);
}

}  // namespace
