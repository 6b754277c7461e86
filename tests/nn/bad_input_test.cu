// Bad input to the layers, the losses, the optimizer and the model: each case throws
// std::invalid_argument naming the function (or layer), the argument and the shapes or
// the offending value, and leaves every output, parameter and optimizer state untouched —
// on both executors. On the GPU, also the device-side check of train_step_async and of a
// replayed graph: a rejected batch changes nothing and last_loss() reports it.
#include "nn/nn_support.hpp"

#include <cmath>
#include <limits>

using namespace nn_test;
using gpukit_test::require_throws_naming;

namespace {

struct cpu_side {
  gpukit::cpu_executor exec{};
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

  require_throws_naming<std::invalid_argument>([&] { nn::conv2d_forward(exec, conv, x, w_short.span(), b.span(), y); },
                                               {"gpukit::nn::conv2d_block_forward", "'w' has 107 elements, expected 108"});
  require_all(side, y, -5.0f);
  require_throws_naming<std::invalid_argument>([&] { nn::conv2d_forward(exec, conv, x, w.span(), b.span(), y_wrong); },
                                               {"'y' has shape (2, 4, 6, 5), expected (2, 4, 6, 6)"});
  require_all(side, y_wrong, -5.0f);
  require_throws_naming<std::invalid_argument>(
      [&] { nn::conv2d_forward(exec, nn::conv2d(2, 4, 3), x, w.span(), b.span(), y); },
      {"'in_channels' = 2", "3 channels", "(None, 3, 8, 8)"});
  require_throws_naming<std::invalid_argument>(
      [&] { nn::conv2d_forward(exec, nn::conv2d(3, 4, 9), x, w.span(), b.span(), y); },
      {"'kernel' = 9x9", "larger than the padded input 8x8"});
  const nn::conv_block block{conv, nn::activation::relu, nn::maxpool2d(2)};
  require_throws_naming<std::invalid_argument>(
      [&] { nn::conv2d_block_forward(exec, block, x, w.span(), b.span(), pooled, argmax_wrong); },
      {"'argmax' has shape (2, 4, 3, 2), expected (2, 4, 3, 3)"});
  require_all(side, pooled, -5.0f);
  require_throws_naming<std::invalid_argument>(
      [&] { nn::conv2d_backward(exec, conv, x, w.span(), y, dw.span(), db.span(), dx_wrong); },
      {"gpukit::nn::conv2d_block_backward", "'dx' has shape (2, 3, 8, 7), expected (2, 3, 8, 8)"});
  require_all(side, dw, -5.0f);
  require_all(side, db, -5.0f);
  require_all(side, dx_wrong, -5.0f);

  auto pool_out = side.make(std::vector<float>(2 * 3 * 4 * 4, -5.0f), {2, 3, 4, 4});
  auto pool_arg = side.make(std::vector<std::int32_t>(2 * 3 * 4 * 4, 0), {2, 3, 4, 4});
  require_throws_naming<std::invalid_argument>(
      [&] { nn::maxpool2d_forward(exec, nn::maxpool2d(9), x, pool_out, pool_arg); },
      {"gpukit::nn::maxpool2d_forward", "'window' = 9x9", "larger than the input 8x8"});
  require_throws_naming<std::invalid_argument>(
      [&] { nn::maxpool2d_forward(exec, nn::maxpool2d(3), x, pool_out, pool_arg); },
      {"'y' has shape (2, 3, 4, 4), expected (2, 3, 2, 2)"});
  require_all(side, pool_out, -5.0f);

  auto flat_w = side.make(std::vector<float>(10 * 192, 0.1f), {1, 1, 1, 1920});
  auto flat_b = side.make(std::vector<float>(10, 0.0f), {10, 1, 1, 1});
  auto flat_y = side.make(std::vector<float>(20, -5.0f), {2, 10, 1, 1});
  require_throws_naming<std::invalid_argument>(
      [&] { nn::dense_forward(exec, nn::dense(192, 10), x, flat_w.span(), flat_b.span(), flat_y); },
      {"gpukit::nn::dense_forward", "needs a flat input", "(None, 3, 8, 8)"});
  require_all(side, flat_y, -5.0f);
  require_throws_naming<std::invalid_argument>(
      [&] { nn::activation_forward(exec, nn::activation::relu, x, y); },
      {"gpukit::nn::activation_forward", "'y' has shape (2, 4, 6, 6), expected (2, 3, 8, 8)"});

  const shape4 ls{4, 1, 1, 1};
  auto p = side.make(std::vector<float>{0.2f, 0.7f, 0.9f, 0.4f}, ls);
  auto grad = side.make(std::vector<float>(4, -5.0f), ls);
  auto labels_bad = side.make(std::vector<float>{0.0f, 1.0f, 2.0f, 0.0f}, ls);
  auto labels_soft = side.make(std::vector<float>{0.5f, 1.0f, 0.0f, 0.0f}, ls);
  require_throws_naming<std::invalid_argument>(
      [&] { (void)nn::loss_and_gradient(exec, nn::binary_crossentropy{}, p, labels_bad, grad); },
      {"gpukit::nn::loss_and_gradient", "argument 'target' (shape (4, 1, 1, 1)) holds 2 at index 2",
       "binary cross-entropy labels must be 0 or 1", "nothing was written"});
  require_throws_naming<std::invalid_argument>(
      [&] { (void)nn::loss_and_gradient(exec, nn::binary_crossentropy_with_logits{}, p, labels_soft, grad); },
      {"'target'", "holds 0.5 at index 0", "labels must be 0 or 1"});
  require_all(side, grad, -5.0f);
  auto p_out_of_range = side.make(std::vector<float>{0.2f, 1.5f, 0.9f, 0.4f}, ls);
  auto labels = side.make(std::vector<float>{0.0f, 1.0f, 1.0f, 0.0f}, ls);
  require_throws_naming<std::invalid_argument>(
      [&] { (void)nn::loss_and_gradient(exec, nn::binary_crossentropy{}, p_out_of_range, labels, grad); },
      {"argument 'prediction' (shape (4, 1, 1, 1)) holds 1.5 at index 1", "probabilities in [0, 1]"});
  auto p_nan = side.make(std::vector<float>{0.2f, 0.1f, 0.9f, std::numeric_limits<float>::quiet_NaN()}, ls);
  require_throws_naming<std::invalid_argument>(
      [&] { (void)nn::loss_value(exec, nn::mean_squared_error{}, p_nan, labels); },
      {"gpukit::nn::loss_value", "'prediction'", "holds nan at index 3", "must be finite"});
  auto t_negative = side.make(std::vector<float>{0.0f, -0.25f, 1.0f, 0.0f}, {2, 2, 1, 1});
  auto logits = side.make(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f}, {2, 2, 1, 1});
  require_throws_naming<std::invalid_argument>(
      [&] { (void)nn::loss_value(exec, nn::softmax_crossentropy{}, logits, t_negative); },
      {"holds -0.25 at index 1", "softmax cross-entropy targets must lie in [0, 1]"});
  require_throws_naming<std::invalid_argument>(
      [&] { (void)nn::loss_value(exec, nn::mean_squared_error{}, logits, labels); },
      {"'target' has shape (4, 1, 1, 1), expected (2, 2, 1, 1)"});
  require_all(side, grad, -5.0f);

  using Exec = std::decay_t<decltype(exec)>;
  nn::optimizer_state<Exec> state(exec, nn::adam{}, 10);
  auto params = side.make(std::vector<float>(10, 1.0f), {10, 1, 1, 1});
  auto grads = side.make(std::vector<float>(9, 1.0f), {9, 1, 1, 1});
  require_throws_naming<std::invalid_argument>([&] { state.step(params.span(), grads.span()); },
                                               {"gpukit::nn::optimizer_state::step", "'grads' has 9 elements, expected 10"});
  require_all(side, params, 1.0f);
  CHECK(state.steps() == 0);
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
  require_throws_naming<std::invalid_argument>([&] { (void)uncompiled.forward(x); }, {"not compiled"});

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

  require_throws_naming<std::invalid_argument>(
      [&] { (void)m.train_step(x_nan, y); },
      {"gpukit::nn::sequential::train_step", "argument 'x' (shape (4, 1, 8, 8)) holds nan at index 5",
       "the input of layer 1 'conv2d' (Conv2D) must be finite", "nothing was updated"});
  require_throws_naming<std::invalid_argument>([&] { (void)m.train_step(x_inf, y); }, {"holds inf at index 5"});
  require_throws_naming<std::invalid_argument>(
      [&] { (void)m.train_step(x, y_two); },
      {"argument 'y' (shape (4, 1, 1, 1)) holds 2 at index 2", "binary cross-entropy labels must be 0 or 1",
       "loss binary_crossentropy after layer 8 'sigmoid' (Sigmoid)", "nothing was updated"});
  require_throws_naming<std::invalid_argument>([&] { (void)m.train_step(x, y_half); }, {"holds 0.5 at index 1"});
  require_throws_naming<std::invalid_argument>(
      [&] { (void)m.train_step(x_narrow, y); },
      {"argument 'x' has shape (4, 1, 8, 7)", "layer 1 'conv2d' (Conv2D) takes (N, 1, 8, 8) with 1 <= N <= 4"});
  require_throws_naming<std::invalid_argument>([&] { (void)m.train_step(x_five, y); },
                                               {"argument 'x' has shape (5, 1, 8, 8)", "1 <= N <= 4"});
  require_throws_naming<std::invalid_argument>(
      [&] { (void)m.train_step(x, y_wide); },
      {"argument 'y' has shape (4, 2, 1, 1)", "the output of layer 8 'sigmoid' (Sigmoid) for 4 samples is (4, 1, 1, 1)"});
  require_throws_naming<std::invalid_argument>([&] { m.backward(y); },
                                               {"gpukit::nn::sequential::backward", "call forward(x) first"});
  require_throws_naming<std::invalid_argument>([&] { (void)m.evaluate(x, y_two); },
                                               {"gpukit::nn::sequential::evaluate", "holds 2 at index 2"});
  (void)m.forward(x);
  require_throws_naming<std::invalid_argument>([&] { m.backward(y_two); },
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
  require_throws_naming<std::invalid_argument>([&] { (void)m.last_loss(); },
                                               {"gpukit::nn::sequential::last_loss", "holds nan at index 7"});
  CHECK(side.read(m.parameters()) == before);
  CHECK(m.steps() == 0);

  nn::graph g = m.capture_train_step(x, y);
  CHECK(side.read(m.parameters()) == before);  // capturing runs nothing
  y.buffer().copy_from_host(std::vector<float>{0, 1, 3, 0}, side.stream.view());
  g.replay(side.stream.view());
  require_throws_naming<std::invalid_argument>([&] { (void)m.last_loss(); }, {"'y'", "holds 3 at index 2"});
  CHECK(side.read(m.parameters()) == before);
  CHECK(m.steps() == 0);

  y.buffer().copy_from_host(std::vector<float>{0, 1, 1, 0}, side.stream.view());
  g.replay(side.stream.view());
  CHECK(std::isfinite(m.last_loss()));
  CHECK(m.steps() == 1);
  CHECK(side.read(m.parameters()) != before);
}

}  // namespace
