// Batch normalisation on the CPU: the forward pass and the running estimates against a
// direct computation in double, training- and inference-mode gradients of whole models
// against central differences, the plan and the path, and bad input.
#include "nn/reference.hpp"
#include "support/bad_input.hpp"

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

#include <cmath>

using namespace nn_test;
using gpukit::cpu_executor;

namespace {

const cpu_executor cpu{};
using model = nn::sequential<cpu_executor, double>;

/// The batch's per-channel mean and biased variance of an (n, c, h, w) tensor.
void channel_moments(const std::vector<double>& x, shape4 s, std::vector<double>& mean, std::vector<double>& var) {
  const std::size_t plane = s.h * s.w, m = s.n * plane;
  mean.assign(s.c, 0.0), var.assign(s.c, 0.0);
  for (std::size_t c = 0; c < s.c; ++c) {
    for (std::size_t n = 0; n < s.n; ++n)
      for (std::size_t i = 0; i < plane; ++i) mean[c] += x[(n * s.c + c) * plane + i];
    mean[c] /= static_cast<double>(m);
    for (std::size_t n = 0; n < s.n; ++n)
      for (std::size_t i = 0; i < plane; ++i) {
        const double d = x[(n * s.c + c) * plane + i] - mean[c];
        var[c] += d * d;
      }
    var[c] /= static_cast<double>(m);
  }
}

/// Loss (mean squared error against y) of the model in its current mode; the gradient
/// check of every parameter against central differences of that loss.
void check_gradients(model& m, std::size_t batch, std::uint64_t salt) {
  const shape4 xs = m.input_shape(batch), ys = m.output_shape(batch);
  for (std::uint64_t draw = 0;; ++draw) {
    REQUIRE(draw < 20);  // a draw near a kink is replaced (smooth_numeric_gradient)
    const std::uint64_t at = salt + 1000 * draw;
    const std::vector<double> x = random_vector(xs.size(), -1, 1, at), y = random_vector(ys.size(), -1, 1, at + 1);
    const auto loss = [&] {
      const auto o = m.forward(view(x, xs));
      double l = 0;
      for (std::size_t i = 0; i < o.size(); ++i) l += (o.data[i] - y[i]) * (o.data[i] - y[i]);
      return l / static_cast<double>(o.size());
    };
    m.zero_grad();
    (void)loss();
    m.backward(view(y, ys));
    const std::vector<double> analytic(m.gradients().begin(), m.gradients().end());
    std::vector<double> p(m.parameters().begin(), m.parameters().end());
    const auto objective = [&] {
      std::copy(p.begin(), p.end(), m.parameters().begin());
      return loss();
    };
    std::vector<double> numeric;
    const bool smooth = smooth_numeric_gradient(p, objective, numeric);
    std::copy(p.begin(), p.end(), m.parameters().begin());
    if (!smooth) continue;
    require_gradient(analytic, numeric, m.training() ? "training-mode gradients" : "inference-mode gradients");
    return;
  }
}

}  // namespace

TEST_CASE("batch norm forward: batch statistics, running estimates with momentum, inference on the estimates",
          "[nn][batchnorm]") {
  model m(cpu, 3, 4, 5);
  m.add(nn::batchnorm2d(3, 1e-3f, 0.25f));
  m.compile(6, nn::mean_squared_error{}, nn::sgd{}, 1);
  CHECK(m.plan() == "batch_normalization");
  CHECK(m.parameter_count() == 6);
  // weight one, bias zero, running mean zero, variance one, no batches: PyTorch's start
  for (double w : m.weights(0)) CHECK(w == 1.0);
  for (double b : m.bias(0)) CHECK(b == 0.0);
  for (double r : m.running_mean(0)) CHECK(r == 0.0);
  for (double r : m.running_var(0)) CHECK(r == 1.0);
  CHECK(m.batches_tracked(0)[0] == 0);
  const std::vector<double> w = {0.5, -2.0, 1.5}, b = {0.1, 0.0, -3.0};
  std::copy(w.begin(), w.end(), m.weights(0).begin());
  std::copy(b.begin(), b.end(), m.bias(0).begin());

  const shape4 xs = m.input_shape(5);
  std::vector<double> x = random_vector(xs.size(), -1, 1, 301);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1000.0 + 3.0 * x[i];  // a mean far from zero
  std::vector<double> mean, var;
  channel_moments(x, xs, mean, var);

  m.set_training(true);
  const auto y = m.forward(view(x, xs));
  const std::size_t plane = 20, count = 5 * plane;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t c = (i / plane) % 3;
    const double want = w[c] * (x[i] - mean[c]) / std::sqrt(var[c] + 1e-3f) + b[c];
    REQUIRE(y.data[i] == Approx(want).epsilon(1e-11).margin(1e-11));
  }
  for (std::size_t c = 0; c < 3; ++c) {
    CHECK(m.running_mean(0)[c] == Approx(0.25 * mean[c]).epsilon(1e-12));
    CHECK(m.running_var(0)[c] ==
          Approx(0.75 + 0.25 * var[c] * static_cast<double>(count) / static_cast<double>(count - 1)).epsilon(1e-12));
  }
  CHECK(m.batches_tracked(0)[0] == 1);

  // Inference: the running estimates, nothing updated.
  const std::vector<double> rm(m.running_mean(0).begin(), m.running_mean(0).end());
  const std::vector<double> rv(m.running_var(0).begin(), m.running_var(0).end());
  m.set_training(false);
  const auto z = m.forward(view(x, xs));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t c = (i / plane) % 3;
    REQUIRE(z.data[i] == Approx(w[c] * (x[i] - rm[c]) / std::sqrt(rv[c] + 1e-3f) + b[c]).epsilon(1e-12));
  }
  CHECK(m.batches_tracked(0)[0] == 1);
  CHECK(std::equal(rm.begin(), rm.end(), m.running_mean(0).begin()));

  // train_step trains whatever the mode; evaluate never does.
  const shape4 ys = m.output_shape(5);
  const std::vector<double> t = random_vector(ys.size(), -1, 1, 302);
  (void)m.train_step(view(x, xs), view(t, ys));
  CHECK(m.batches_tracked(0)[0] == 2);
  (void)m.evaluate(view(x, xs), view(t, ys));
  CHECK(m.batches_tracked(0)[0] == 2);
}

TEST_CASE("batch norm gradients match central differences in training and inference", "[nn][batchnorm][model]") {
  SECTION("conv, batchnorm2d+relu, max pool, flatten, dense, batchnorm1d+tanh, dense") {
    model m(cpu, 2, 6, 6);
    m.add(nn::conv2d(2, 3, 3, 1, 1)).add(nn::batchnorm2d(3)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
    m.add(nn::dense(27, 5)).add(nn::batchnorm1d(5, 1e-4f)).add(nn::tanh{}).add(nn::dense(5, 2));
    m.compile(4, nn::mean_squared_error{}, nn::sgd{}, 7);
    CHECK(m.plan() ==
          "conv2d | batch_normalization+relu | max_pooling2d | flatten | dense | batch_normalization_1+tanh | dense_1");
    // Weights and biases away from their start, so every term of the gradient matters.
    std::vector<double> p(m.parameters().begin(), m.parameters().end());
    const std::vector<double> noise = random_vector(p.size(), -0.5, 0.5, 303);
    for (std::size_t i = 0; i < p.size(); ++i) p[i] += noise[i];
    std::copy(p.begin(), p.end(), m.parameters().begin());
    m.set_training(true);
    check_gradients(m, 4, 304);
    m.set_training(false);
    check_gradients(m, 3, 306);
  }
  SECTION("conv and dense without bias around batch norms") {
    model m(cpu, 2, 5, 5);
    m.add(nn::conv2d(2, 4, 3, 1, 1).no_bias()).add(nn::batchnorm2d(4)).add(nn::relu{}).add(nn::flatten{});
    m.add(nn::dense(100, 3).no_bias()).add(nn::batchnorm1d(3)).add(nn::dense(3, 2).no_bias());
    m.compile(4, nn::mean_squared_error{}, nn::adam{}, 9);
    CHECK(m.parameter_count() == 2 * 4 * 9 + 8 + 300 + 6 + 6);
    CHECK(m.bias(0).size() == 0);
    CHECK(m.bias(4).size() == 0);
    m.set_training(true);
    check_gradients(m, 4, 320);
    m.set_training(false);
    check_gradients(m, 3, 322);
    // Training steps change only the layers' parameters: the padding (where a bias would be)
    // stays zero.
    const shape4 xs = m.input_shape(4), ys = m.output_shape(4);
    const std::vector<double> x = random_vector(xs.size(), -1, 1, 324), y = random_vector(ys.size(), -1, 1, 325);
    for (int k = 0; k < 3; ++k) (void)m.train_step(view(x, xs), view(y, ys));
    std::vector<bool> owned(m.parameters().size(), false);
    for (std::size_t layer : {0, 1, 4, 5, 6})
      for (const auto part : {m.weights(layer), m.bias(layer)})
        for (std::size_t i = 0; i < part.size(); ++i) owned[static_cast<std::size_t>(part.data() - m.parameters().data()) + i] = true;
    for (std::size_t i = 0; i < owned.size(); ++i)
      if (!owned[i]) REQUIRE(m.parameters()[i] == 0.0);
  }
  SECTION("a batch norm first (no input gradient), a sigmoid, a global pool") {
    model m(cpu, 3, 5, 3);
    m.add(nn::batchnorm2d(3)).add(nn::sigmoid{}).add(nn::conv2d(3, 2, 2)).add(nn::global_avgpool2d{});
    m.compile(3, nn::mean_squared_error{}, nn::adam{}, 8);
    CHECK(m.plan() == "batch_normalization+sigmoid | conv2d | global_average_pooling2d");
    m.set_training(true);
    check_gradients(m, 3, 308);
    m.set_training(false);
    check_gradients(m, 2, 310);
  }
}

TEST_CASE("batch norm folded into the layer before it in inference: predict and evaluate equal forward",
          "[nn][batchnorm][model]") {
  model m(cpu, 3, 6, 6);
  m.add(nn::conv2d(3, 5, 3, 1, 1)).add(nn::batchnorm2d(5)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  m.add(nn::dense(45, 7).no_bias()).add(nn::batchnorm1d(7)).add(nn::tanh{}).add(nn::dense(7, 3));
  m.add(nn::batchnorm1d(3));  // the last stage, folded too
  m.compile(8, nn::mean_squared_error{}, nn::adam{0.01f}, 17);
  CHECK(m.compiled_plan().stages()[0].folds_next_batchnorm);
  CHECK(!m.compiled_plan().stages()[1].folds_next_batchnorm);
  CHECK(m.compiled_plan().stages()[4].folds_next_batchnorm);
  CHECK(m.compiled_plan().stages()[6].folds_next_batchnorm);
  CHECK(m.compiled_plan().path_text(0).find("inference: the next batch norm folded in") != std::string::npos);
  // Train a little, so that the running estimates and the parameters are far from their start.
  const shape4 xs = m.input_shape(8), ys = m.output_shape(8);
  const std::vector<double> x = random_vector(xs.size(), -1, 2, 330), y = random_vector(ys.size(), -1, 1, 331);
  for (int k = 0; k < 5; ++k) (void)m.train_step(view(x, xs), view(y, ys));
  const auto forward = m.forward(view(x, xs));
  const std::vector<double> plain(forward.data, forward.data + forward.size());
  const auto folded = m.predict(view(x, xs));
  require_relative(std::vector<double>(folded.data, folded.data + folded.size()), plain, 1e-12, "predict against forward");
  double mse = 0;
  for (std::size_t i = 0; i < plain.size(); ++i) mse += (plain[i] - y[i]) * (plain[i] - y[i]);
  CHECK(m.evaluate(view(x, xs), view(y, ys)) == Approx(mse / static_cast<double>(plain.size())).epsilon(1e-12));
  // The folded pass keeps no gradient state: backward() after it is refused.
  (void)m.predict(view(x, xs));
  gpukit_test::bad_input<std::invalid_argument>("gpukit::nn::sequential::backward", "forward(x)", "after a folded pass",
                                                [&] { m.backward(view(y, ys)); }, {"folded"});
  (void)m.forward(view(x, xs));
  m.backward(view(y, ys));  // after an unfolded forward it runs
}

TEST_CASE("batch norm: the plan's path, Keras' table, and a model that learns", "[nn][batchnorm][model]") {
  model m(cpu, 3, 8, 8);
  m.add(nn::conv2d(3, 8, 3, 1, 1)).add(nn::batchnorm2d(8)).add(nn::relu{}).add(nn::flatten{}).add(nn::dense(512, 2));
  m.compile(16, nn::softmax_crossentropy{}, nn::adam{}, 11);
  CHECK(m.compiled_plan().path_text(1) == "CPU: channel sums in double, then one elementwise pass");
  CHECK(m.summary().find("batch_normalization (BatchNormalization)") != std::string::npos);
  const nn::batchnorm_path wide = nn::choose_batchnorm_path(
      nn::detail::make_batchnorm_geometry(nn::batchnorm2d(64), shape4{256, 64, 32, 32}, nn::activation::relu, "t"),
      nn::path_target::gpu_with(132, 90));
  CHECK(!wide.column);
  CHECK(wide.splits == 9);  // 4 blocks per SM over 64 channels
  CHECK(wide.vector == 4);  // 1024-value planes: float4 loads
  CHECK(wide.describe() == "one block per channel slice (float4), 9 slices per channel, then one elementwise pass");
  const nn::batchnorm_path flat = nn::choose_batchnorm_path(
      nn::detail::make_batchnorm_geometry(nn::batchnorm1d(128), shape4{32, 128, 1, 1}, nn::activation::none, "t"),
      nn::path_target::gpu_with(132, 90));
  CHECK(flat.column);
  CHECK(flat.vector == 1);
  CHECK(flat.splits == 1);  // 32 values per feature: one slice
  const nn::batchnorm_path big_flat = nn::choose_batchnorm_path(
      nn::detail::make_batchnorm_geometry(nn::batchnorm1d(512), shape4{8192, 512, 1, 1}, nn::activation::none, "t"),
      nn::path_target::gpu_with(132, 90));
  CHECK(big_flat.splits == 33);  // 528 blocks over 16 channel groups

  // Two classes told apart by the mean of the input: a batch-norm model learns it.
  const shape4 xs = m.input_shape(16), ys = m.output_shape(16);
  std::vector<double> x(xs.size()), y(ys.size(), 0.0);
  const std::vector<double> noise = random_vector(xs.size(), -1, 1, 312);
  for (std::size_t n = 0; n < 16; ++n) {
    const double shift = n % 2 == 0 ? 0.5 : -0.5;
    for (std::size_t i = 0; i < 192; ++i) x[n * 192 + i] = shift + noise[n * 192 + i];
    y[n * 2 + n % 2] = 1.0;
  }
  const double first = m.train_step(view(x, xs), view(y, ys));
  double last = first;
  for (int i = 0; i < 60; ++i) last = m.train_step(view(x, xs), view(y, ys));
  CHECK(last < 0.1 * first);
}

TEST_CASE("batch norm: bad arguments and batches are typed errors naming them, nothing updated",
          "[nn][batchnorm][bad_input]") {
  using invalid = std::invalid_argument;
  using gpukit_test::bad_input;
  bad_input<invalid>("gpukit::nn::batchnorm2d", "'channels'", "0", [] { (void)nn::batchnorm2d(0); }, {"'channels' = 0"});
  bad_input<invalid>("gpukit::nn::batchnorm1d", "'eps'", "0", [] { (void)nn::batchnorm1d(4, 0.0f); }, {"'eps' = 0"});
  bad_input<invalid>("gpukit::nn::batchnorm2d", "'momentum'", "above 1", [] { (void)nn::batchnorm2d(4, 1e-5f, 1.5f); },
                     {"'momentum' = 1.5", "[0, 1]"});
  bad_input<invalid>("gpukit::nn::batchnorm2d", "'momentum'", "NaN", [] { (void)nn::batchnorm2d(4, 1e-5f, std::nanf("")); },
                     {"'momentum' = nan"});
  {
    model m(cpu, 3, 4, 4);
    bad_input<invalid>("gpukit::nn::sequential::add", "'channels'", "not the input's channels", [&] { m.add(nn::batchnorm2d(4)); },
                       {"'channels' = 4", "3 channels", "(None, 3, 4, 4)"});
    bad_input<invalid>("gpukit::nn::sequential::add", "batchnorm1d", "input not flat", [&] { m.add(nn::batchnorm1d(3)); },
                       {"flat input", "(None, 3, 4, 4)", "batchnorm2d"});
    CHECK(m.size() == 0);
  }
  model m(cpu, 6, 1, 1);
  m.add(nn::dense(6, 4)).add(nn::batchnorm1d(4)).add(nn::relu{}).add(nn::dense(4, 1));
  m.compile(8, nn::mean_squared_error{}, nn::sgd{}, 13);
  const shape4 xs = m.input_shape(1), ys = m.output_shape(1);
  const std::vector<double> x = random_vector(xs.size(), -1, 1, 314), y = {0.5};
  const std::vector<double> before(m.parameters().begin(), m.parameters().end());
  bad_input<invalid>("gpukit::nn::sequential::train_step", "'x'", "1 sample through a batchnorm1d",
                     [&] { (void)m.train_step(view(x, xs), view(y, ys)); },
                     {"1 sample", "batch_normalization", "at least 2", "nothing was updated"});
  CHECK(std::equal(before.begin(), before.end(), m.parameters().begin()));
  CHECK(m.batches_tracked(1)[0] == 0);
  for (double r : m.running_var(1)) CHECK(r == 1.0);
  m.set_training(true);
  bad_input<invalid>("gpukit::nn::sequential::forward", "'x'", "1 sample through a batchnorm1d in training",
                     [&] { (void)m.forward(view(x, xs)); }, {"1 sample"});
  CHECK(m.batches_tracked(1)[0] == 0);
  m.set_training(false);
  (void)m.forward(view(x, xs));  // inference takes one sample
  bad_input<invalid>("gpukit::nn::sequential::running_mean", "'layer'", "not a batch norm", [&] { (void)m.running_mean(0); },
                     {"'layer' = 0", "not a batch-norm"});
}
