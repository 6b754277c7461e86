// The sequential model on the CPU: building and shape inference (and its refusals), the
// Keras-style summary of the seed model, seeded initialisation, whole-model gradients
// against central differences in double (fused and unfused paths), the optimizers against
// their formulas, and a toy problem the model must learn.
#include "nn/reference.hpp"
#include "nn/toy_problem.hpp"

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

#include <cmath>

using namespace nn_test;
using gpukit::cpu_executor;
using gpukit_test::require_throws_naming;

namespace {

const cpu_executor cpu{};

template <class T = float>
nn::sequential<cpu_executor, T> seed_model() {
  nn::sequential<cpu_executor, T> m(cpu, 3, 64, 64);
  m.add(nn::conv2d(3, 32, 3, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  m.add(nn::dense(30752, 128)).add(nn::relu{}).add(nn::dense(128, 1)).add(nn::sigmoid{});
  return m;
}

TEST_CASE("the seed model: Keras' summary, 3,937,409 parameters, four fused passes", "[nn][model]") {
  auto m = seed_model();
  CHECK(m.parameter_count() == 3937409);
  CHECK(m.output_shape(32) == shape4{32, 1, 1, 1});
  CHECK(m.layer_output_shape(2) == shape4{1, 32, 31, 31});
  const std::string s = m.summary();
  INFO(s);
  for (const char* line : {"conv2d (Conv2D)", "(None, 32, 62, 62)", "896", "max_pooling2d (MaxPooling2D)",
                           "(None, 32, 31, 31)", "flatten (Flatten)", "(None, 30752, 1, 1)", "dense (Dense)",
                           "3,936,384", "dense_1 (Dense)", "(None, 1, 1, 1)", "129", "relu_1 (ReLU)",
                           "Total params: 3,937,409", "Trainable params: 3,937,409", "Non-trainable params: 0"})
    CHECK(s.find(line) != std::string::npos);
  m.compile(2, nn::binary_crossentropy{}, nn::adam{}, 42);
  CHECK(m.plan() == "conv2d+relu+max_pooling2d | flatten | dense+relu_1 | dense_1+sigmoid (loss on logits)");
  // One step at batch 2 of the real shapes.
  const std::vector<float> xs = random_vector<float>(2 * 3 * 64 * 64, 0, 1, 81);
  const auto x = nn::host_tensor<float>::from_host({2, 3, 64, 64}, xs);
  const auto y = nn::host_tensor<float>::from_host({2, 1, 1, 1}, {0.0f, 1.0f});
  const float loss = m.train_step(x, y);
  CHECK(std::isfinite(loss));
  CHECK(loss > 0.1f);
  CHECK(m.steps() == 1);
}

TEST_CASE("add() refuses a layer that cannot take the previous output, naming it", "[nn][model][bad_input]") {
  auto m = seed_model();
  nn::sequential<cpu_executor> head(cpu, 3, 64, 64);
  head.add(nn::conv2d(3, 32, 3, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  require_throws_naming<std::invalid_argument>([&] { head.add(nn::dense(1000, 128)); },
                                               {"gpukit::nn::sequential::add", "layer 5 'dense' (Dense)",
                                                "'in_features' = 1000", "30752 features", "(None, 30752, 1, 1)"});
  CHECK(head.size() == 4);
  nn::sequential<cpu_executor> m2(cpu, 3, 64, 64);
  require_throws_naming<std::invalid_argument>([&] { m2.add(nn::conv2d(4, 8, 3)); },
                                               {"layer 1 'conv2d' (Conv2D)", "'in_channels' = 4", "3 channels",
                                                "(None, 3, 64, 64)"});
  m2.add(nn::conv2d(3, 8, 3));
  require_throws_naming<std::invalid_argument>([&] { m2.add(nn::dense(8 * 62 * 62, 4)); },
                                               {"layer 2 'dense' (Dense)", "needs a flat input", "(None, 8, 62, 62)",
                                                "add a flatten layer"});
  nn::sequential<cpu_executor> tiny(cpu, 2, 3, 3);
  require_throws_naming<std::invalid_argument>([&] { tiny.add(nn::conv2d(2, 4, 5)); },
                                               {"layer 1 'conv2d'", "'kernel' = 5x5", "larger than the padded input 3x3",
                                                "(None, 2, 3, 3)", "padding 0"});
  tiny.add(nn::conv2d(2, 4, 5, 1, 1));  // padding 1 makes it fit exactly: a 1x1 output
  CHECK(tiny.output_shape() == shape4{1, 4, 1, 1});
  require_throws_naming<std::invalid_argument>([&] { tiny.add(nn::maxpool2d(2)); },
                                               {"layer 2 'max_pooling2d' (MaxPooling2D)", "'window' = 2x2",
                                                "larger than the input 1x1"});
  require_throws_naming<std::invalid_argument>([] { (void)nn::conv2d(3, 8, 3, 0); },
                                               {"gpukit::nn::conv2d", "'stride' = 0"});
  require_throws_naming<std::invalid_argument>([] { (void)nn::conv2d(3, 0, 3); }, {"'out_channels' = 0"});
  require_throws_naming<std::invalid_argument>([] { (void)nn::conv2d(3, 8, nn::kernel_size{3, 0}); },
                                               {"'kernel' = 3x0"});
  require_throws_naming<std::invalid_argument>([] { (void)nn::maxpool2d(2, 0); },
                                               {"gpukit::nn::maxpool2d", "'stride' = 0x0"});
  require_throws_naming<std::invalid_argument>([] { (void)nn::dense(0, 4); }, {"gpukit::nn::dense", "'in_features' = 0"});
}

TEST_CASE("compile() refuses what it cannot plan, and a compiled model takes no more layers", "[nn][model][bad_input]") {
  nn::sequential<cpu_executor> empty(cpu, 1, 4, 4);
  require_throws_naming<std::invalid_argument>([&] { empty.compile(4, nn::mean_squared_error{}, nn::sgd{}); },
                                               {"gpukit::nn::sequential::compile", "no layers"});
  nn::sequential<cpu_executor> m(cpu, 1, 4, 4);
  m.add(nn::flatten{}).add(nn::dense(16, 2));
  require_throws_naming<std::invalid_argument>([&] { m.compile(0, nn::mean_squared_error{}, nn::sgd{}); },
                                               {"'max_batch' = 0"});
  require_throws_naming<std::invalid_argument>([&] { m.compile(4, nn::mean_squared_error{}, nn::adam{-1.0f}); },
                                               {"gpukit::nn::optimizer_state", "'learning_rate'"});
  require_throws_naming<std::invalid_argument>([&] { m.compile(4, nn::mean_squared_error{}, nn::sgd{0.1f, 1.0f}); },
                                               {"'momentum'", "[0, 1)"});
}

TEST_CASE("compile() happens once, and a compiled model takes no more layers", "[nn][model][bad_input]") {
  nn::sequential<cpu_executor> m(cpu, 1, 4, 4);
  m.add(nn::flatten{}).add(nn::dense(16, 2));
  m.compile(4, nn::mean_squared_error{}, nn::sgd{});
  require_throws_naming<std::invalid_argument>([&] { m.compile(4, nn::mean_squared_error{}, nn::sgd{}); },
                                               {"already compiled"});
  require_throws_naming<std::invalid_argument>([&] { m.add(nn::relu{}); }, {"gpukit::nn::sequential::add", "compiled"});
}

TEST_CASE("initialisers: seeded, reproducible, within their bounds, the same in float and double", "[nn][init]") {
  const auto build = [](std::uint64_t seed) {
    nn::sequential<cpu_executor> m(cpu, 3, 10, 10);
    m.add(nn::conv2d(3, 6, 3)).add(nn::flatten{}).add(nn::dense(384, 20)).add(nn::dense(20, 5, nn::init::he_uniform));
    m.compile(1, nn::mean_squared_error{}, nn::sgd{}, seed);
    return m;
  };
  auto a = build(7), b = build(7), c = build(8);
  const std::vector<float> pa(a.parameters().begin(), a.parameters().end());
  CHECK(pa == std::vector<float>(b.parameters().begin(), b.parameters().end()));
  CHECK(pa != std::vector<float>(c.parameters().begin(), c.parameters().end()));

  const double conv_limit = std::sqrt(6.0 / (27 + 54)), dense_limit = std::sqrt(6.0 / (384 + 20));
  const double he_limit = std::sqrt(6.0 / 20);
  double conv_max = 0, dense_max = 0, he_max = 0;
  for (float w : a.weights(0)) conv_max = std::max(conv_max, std::fabs(double(w)));
  for (float w : a.weights(2)) dense_max = std::max(dense_max, std::fabs(double(w)));
  for (float w : a.weights(3)) he_max = std::max(he_max, std::fabs(double(w)));
  CHECK(conv_max <= conv_limit);
  CHECK(conv_max > 0.8 * conv_limit);
  CHECK(dense_max <= dense_limit);
  CHECK(dense_max > 0.9 * dense_limit);
  CHECK(he_max <= he_limit);
  CHECK(he_max > 0.8 * he_limit);
  for (float v : a.bias(0)) CHECK(v == 0.0f);

  nn::sequential<cpu_executor, double> d(cpu, 3, 10, 10);
  d.add(nn::conv2d(3, 6, 3)).add(nn::flatten{}).add(nn::dense(384, 20)).add(nn::dense(20, 5, nn::init::he_uniform));
  d.compile(1, nn::mean_squared_error{}, nn::sgd{}, 7);
  for (std::size_t i = 0; i < pa.size(); ++i) REQUIRE(static_cast<float>(d.parameters()[i]) == pa[i]);

  // He normal: mean 0, variance 2 / fan_in.
  std::vector<double> w(200000);
  nn::initialise(w.data(), w.size(), nn::init::he_normal, 1000, 10, 3, 0);
  double mean = 0, var = 0;
  for (double v : w) mean += v;
  mean /= static_cast<double>(w.size());
  for (double v : w) var += (v - mean) * (v - mean);
  var /= static_cast<double>(w.size());
  CHECK(std::fabs(mean) < 0.01 * std::sqrt(2.0 / 1000));
  CHECK(var == Approx(2.0 / 1000).epsilon(0.02));
}

/// Model gradients (one backward) against central differences of evaluate() in double.
void check_model_gradients(nn::sequential<cpu_executor, double>& m, std::size_t batch, const std::vector<double>& y) {
  const shape4 xs = m.input_shape(batch);
  const auto yv = view(y, m.output_shape(batch));
  std::vector<double> x, analytic;
  for (std::uint64_t draw = 0;; ++draw) {
    REQUIRE(draw < 20);  // a draw near a kink is replaced (smooth_numeric_gradient)
    x = random_vector(xs.size(), -1, 1, 91 + 1000 * draw);
    const auto xv = view(x, xs);
    m.zero_grad();
    (void)m.forward(xv);
    m.backward(yv);
    analytic.assign(m.gradients().begin(), m.gradients().end());
    std::vector<double> p(m.parameters().begin(), m.parameters().end());
    const auto objective = [&] {
      std::copy(p.begin(), p.end(), m.parameters().begin());
      return m.evaluate(xv, yv);
    };
    std::vector<double> numeric;
    const bool smooth = smooth_numeric_gradient(p, objective, numeric);
    std::copy(p.begin(), p.end(), m.parameters().begin());
    if (!smooth) continue;
    require_gradient(analytic, numeric, "model gradients");
    break;
  }
  const auto xv = view(x, xs);

  // A second backward accumulates; train-style zero_grad clears.
  (void)m.forward(xv);
  m.backward(yv);
  for (std::size_t i = 0; i < analytic.size(); ++i) REQUIRE(m.gradients()[i] == Approx(2 * analytic[i]).margin(1e-12));
  m.zero_grad();
  for (double g : m.gradients()) REQUIRE(g == 0.0);

  // train_step assigns the gradients of its batch (at the parameters before its update),
  // whatever the gradient buffer held.
  (void)m.forward(xv);
  m.backward(yv);
  (void)m.train_step(xv, yv);
  for (std::size_t i = 0; i < analytic.size(); ++i) REQUIRE(m.gradients()[i] == Approx(analytic[i]).margin(1e-12));
}

TEST_CASE("whole-model gradients match central differences, through every fused and unfused pass", "[nn][model]") {
  using model = nn::sequential<cpu_executor, double>;
  SECTION("conv+tanh+pool, dense+relu, dense+sigmoid with binary cross-entropy on the logits") {
    model m(cpu, 2, 6, 6);
    m.add(nn::conv2d(2, 3, 3, 1, 1)).add(nn::tanh{}).add(nn::maxpool2d(2)).add(nn::flatten{});
    m.add(nn::dense(27, 4)).add(nn::relu{}).add(nn::dense(4, 1)).add(nn::sigmoid{});
    m.compile(3, nn::binary_crossentropy{}, nn::sgd{}, 1);
    CHECK(m.plan() == "conv2d+tanh+max_pooling2d | flatten | dense+relu | dense_1+sigmoid (loss on logits)");
    check_model_gradients(m, 3, {1, 0, 1});
  }
  SECTION("conv+pool without activation, a standalone sigmoid, dense, mean squared error") {
    model m(cpu, 1, 5, 6);
    m.add(nn::conv2d(1, 2, nn::kernel_size{2, 3}, 1, 0)).add(nn::maxpool2d(2, 1)).add(nn::sigmoid{}).add(nn::flatten{});
    m.add(nn::dense(2 * 3 * 3, 3));
    m.compile(2, nn::mean_squared_error{}, nn::sgd{}, 2);
    CHECK(m.plan() == "conv2d+max_pooling2d | sigmoid | flatten | dense");
    check_model_gradients(m, 2, random_vector(6, -1, 1, 92));
  }
  SECTION("a standalone pool first, then conv, two convs, softmax cross-entropy") {
    model m(cpu, 2, 9, 9);
    m.add(nn::maxpool2d(2, 1)).add(nn::conv2d(2, 3, 3, 2, 1)).add(nn::relu{}).add(nn::conv2d(3, 2, 2, 1, 0));
    m.add(nn::tanh{}).add(nn::flatten{}).add(nn::dense(2 * 3 * 3, 4));
    m.compile(2, nn::softmax_crossentropy{}, nn::sgd{}, 3);
    CHECK(m.plan() == "max_pooling2d | conv2d+relu | conv2d_1+tanh | flatten | dense");
    check_model_gradients(m, 2, {0, 1, 0, 0, 0.25, 0.25, 0.5, 0});
  }
  SECTION("flatten first, then dense+sigmoid with the loss on its logits") {
    model m(cpu, 2, 2, 2);
    m.add(nn::flatten{}).add(nn::dense(8, 2)).add(nn::sigmoid{});
    m.compile(3, nn::binary_crossentropy{}, nn::sgd{}, 4);
    CHECK(m.plan() == "flatten | dense+sigmoid (loss on logits)");
    check_model_gradients(m, 3, {1, 0, 0, 0, 1, 1});
  }
  SECTION("a standalone sigmoid the loss folds in") {
    model m(cpu, 2, 4, 4);
    m.add(nn::conv2d(2, 1, 2)).add(nn::maxpool2d(2, 1)).add(nn::sigmoid{});
    m.compile(3, nn::binary_crossentropy{}, nn::sgd{}, 4);
    CHECK(m.plan() == "conv2d+max_pooling2d | sigmoid (loss on logits)");
    check_model_gradients(m, 3, {1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1});
  }
  SECTION("average pools: a windowed one between convs, a global one before dense") {
    model m(cpu, 2, 9, 8);
    m.add(nn::conv2d(2, 3, 3, 1, 1)).add(nn::relu{}).add(nn::avgpool2d(3, 2)).add(nn::conv2d(3, 4, 2, 1, 0));
    m.add(nn::tanh{}).add(nn::global_avgpool2d{}).add(nn::dense(4, 3));
    m.compile(2, nn::softmax_crossentropy{}, nn::sgd{}, 6);
    CHECK(m.plan() ==
          "conv2d+relu | average_pooling2d | conv2d_1+tanh | global_average_pooling2d | dense");
    check_model_gradients(m, 2, {0, 1, 0, 0.5, 0, 0.5});
  }
  SECTION("leaky relus fused into conv and dense, GELUs as passes of their own") {
    model m(cpu, 2, 6, 6);
    m.add(nn::conv2d(2, 3, 3, 1, 1)).add(nn::leaky_relu(0.2f)).add(nn::maxpool2d(2)).add(nn::conv2d(3, 4, 2, 1, 0));
    m.add(nn::gelu{}).add(nn::flatten{}).add(nn::dense(16, 5)).add(nn::gelu(true)).add(nn::dense(5, 3));
    m.add(nn::leaky_relu(1.5f));
    m.compile(3, nn::mean_squared_error{}, nn::sgd{}, 7);
    CHECK(m.plan() == "conv2d+leaky_re_lu+max_pooling2d | conv2d_1 | gelu | flatten | dense | gelu_1 | dense_1+leaky_re_lu_1");
    check_model_gradients(m, 3, random_vector(9, -1, 1, 93));
  }
  SECTION("binary cross-entropy after a relu stays on probabilities") {
    model m(cpu, 1, 3, 3);
    m.add(nn::flatten{}).add(nn::dense(9, 2)).add(nn::sigmoid{}).add(nn::dense(2, 1)).add(nn::sigmoid{}).add(nn::relu{});
    m.compile(2, nn::binary_crossentropy{}, nn::sgd{}, 5);
    CHECK(m.plan() == "flatten | dense+sigmoid | dense_1+sigmoid_1 | relu");
    check_model_gradients(m, 2, {1, 0});
  }
}

TEST_CASE("SGD with momentum and Adam follow their formulas", "[nn][optimizer]") {
  const std::size_t n = 37;
  const std::vector<double> p0 = random_vector(n, -1, 1, 101);
  std::vector<std::vector<double>> g;
  for (int s = 0; s < 3; ++s) g.push_back(random_vector(n, -2, 2, 102 + s));

  SECTION("adam") {
    const nn::adam a{0.01f, 0.8f, 0.99f, 1e-6f};
    nn::optimizer_state<cpu_executor, double> state(cpu, a, n);
    std::vector<double> p = p0;
    std::vector<long double> m(n, 0), v(n, 0), want(p0.begin(), p0.end());
    for (int t = 1; t <= 3; ++t) {
      state.step(p, g[t - 1]);
      for (std::size_t i = 0; i < n; ++i) {
        const long double gi = g[t - 1][i];
        m[i] = (long double)a.beta1 * m[i] + (1 - (long double)a.beta1) * gi;
        v[i] = (long double)a.beta2 * v[i] + (1 - (long double)a.beta2) * gi * gi;
        const long double mhat = m[i] / (1 - std::pow((long double)a.beta1, t));
        const long double vhat = v[i] / (1 - std::pow((long double)a.beta2, t));
        want[i] -= (long double)a.learning_rate * mhat / (std::sqrt(vhat) + (long double)a.epsilon);
      }
      // The bias-corrected step factors are float on both executors (about 1e-7 of the
      // step, ~1e-9 here), so a parameter that lands near zero needs an absolute bound too.
      for (std::size_t i = 0; i < n; ++i)
        REQUIRE(p[i] == Approx(static_cast<double>(want[i])).epsilon(1e-6).margin(1e-8));
    }
    CHECK(state.steps() == 3);
  }
  SECTION("sgd with momentum") {
    nn::optimizer_state<cpu_executor, double> state(cpu, nn::sgd{0.1f, 0.9f}, n);
    std::vector<double> p = p0, vel(n, 0), want = p0;
    for (int t = 0; t < 3; ++t) {
      state.step(p, g[t]);
      for (std::size_t i = 0; i < n; ++i) {
        vel[i] = static_cast<double>(0.9f) * vel[i] + g[t][i];
        want[i] -= static_cast<double>(0.1f) * vel[i];
      }
      for (std::size_t i = 0; i < n; ++i) REQUIRE(p[i] == Approx(want[i]).epsilon(1e-12));
    }
    CHECK(state.steps() == 3);
  }
  SECTION("plain sgd") {
    nn::optimizer_state<cpu_executor, double> state(cpu, nn::sgd{0.5f}, n);
    std::vector<double> p = p0;
    state.step(p, g[0]);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(p[i] == Approx(p0[i] - 0.5 * g[0][i]).epsilon(1e-12));
    CHECK(state.first_moment().empty());
  }
}

namespace {

/// lr(t) of a schedule, written out from its definition in long double (not the library's code).
long double want_lr(const nn::lr_schedule& s, long double lr0, long long t) {
  using shape = nn::lr_schedule::shape;
  if (s.kind == shape::step) return lr0 * std::pow((long double)s.gamma, (long double)((t - 1) / s.every));
  if (s.kind == shape::cosine) {
    if (t <= s.warmup) return lr0 * t / s.warmup;
    const long double p = std::min<long double>(1, (long double)(t - s.warmup) / (s.total - s.warmup));
    const long double pi = 3.14159265358979323846264338327950288L;
    return (long double)s.min_lr + (lr0 - (long double)s.min_lr) * (1 + std::cos(pi * p)) / 2;
  }
  return lr0;
}

}  // namespace

TEST_CASE("learning-rate schedules give PyTorch's rates step by step", "[nn][optimizer]") {
  const float lr0 = 0.1f;
  SECTION("step") {
    const auto s = nn::lr_schedule::step(2, 0.5f);
    const float want[] = {0.1f, 0.1f, 0.05f, 0.05f, 0.025f};
    for (long long t = 1; t <= 5; ++t) CHECK(nn::scheduled_learning_rate(s, lr0, t) == want[t - 1]);
  }
  SECTION("cosine with warm-up") {
    const auto s = nn::lr_schedule::cosine(10, 2, 0.01f);
    CHECK(nn::scheduled_learning_rate(s, lr0, 1) == 0.05f);  // half-way up the warm-up
    CHECK(nn::scheduled_learning_rate(s, lr0, 2) == lr0);    // its top
    CHECK(nn::scheduled_learning_rate(s, lr0, 6) == Approx(0.055).epsilon(1e-6));  // half-way down
    CHECK(nn::scheduled_learning_rate(s, lr0, 10) == 0.01f);  // the floor, and after it
    CHECK(nn::scheduled_learning_rate(s, lr0, 25) == 0.01f);
    for (long long t = 1; t <= 12; ++t)
      CHECK(nn::scheduled_learning_rate(s, lr0, t) == Approx(static_cast<double>(want_lr(s, lr0, t))).epsilon(1e-7));
    const auto plain = nn::lr_schedule::cosine(4);
    CHECK(nn::scheduled_learning_rate(plain, lr0, 1) == Approx(0.1 * (1 + std::cos(M_PI / 4)) / 2).epsilon(1e-7));
  }
  SECTION("constant") {
    CHECK(nn::scheduled_learning_rate(nn::lr_schedule::constant(), lr0, 1000) == lr0);
  }
}

TEST_CASE("weight decay, AdamW, schedules and clipping follow PyTorch's formulas", "[nn][optimizer]") {
  const std::size_t n = 41;
  const std::vector<double> p0 = random_vector(n, -1, 1, 131);
  std::vector<std::vector<double>> g;
  for (int s = 0; s < 4; ++s) g.push_back(random_vector(n, -2, 2, 132 + s));
  const auto norm_of = [](const std::vector<double>& v) {
    long double s = 0;
    for (double x : v) s += (long double)x * x;
    return std::sqrt(s);
  };

  SECTION("sgd: momentum, L2, a step schedule, clipping") {
    nn::sgd o{0.1f, 0.9f, 0.01f};
    o.schedule = nn::lr_schedule::step(2, 0.5f);
    o.max_grad_norm = 3.0f;  // below every gradient's norm (about 6.6): every step clips
    nn::optimizer_state<cpu_executor, double> state(cpu, o, n);
    std::vector<double> p = p0;
    std::vector<long double> vel(n, 0), want(p0.begin(), p0.end());
    for (int t = 1; t <= 4; ++t) {
      state.step(p, g[t - 1]);
      const long double scale = std::min<long double>(1, 3.0L / (norm_of(g[t - 1]) + 1e-6L));
      REQUIRE(scale < 1);
      CHECK(state.last_clip_factor() == Approx(static_cast<double>(scale)).epsilon(1e-6));
      const long double lr = want_lr(o.schedule, (long double)o.learning_rate, t);
      CHECK(state.learning_rate() == Approx(static_cast<double>(lr)).epsilon(1e-7));
      for (std::size_t i = 0; i < n; ++i) {
        const long double gi = g[t - 1][i] * scale + (long double)o.weight_decay * want[i];
        vel[i] = (long double)o.momentum * vel[i] + gi;
        want[i] -= lr * vel[i];
      }
      // The clip factor and the learning rate are floats (1e-7 relative): against parameters
      // of order 1 a value that passes near zero needs an absolute margin of that order.
      for (std::size_t i = 0; i < n; ++i) REQUIRE(p[i] == Approx(static_cast<double>(want[i])).epsilon(1e-6).margin(1e-6));
    }
  }
  SECTION("adam with L2, AdamW, each under a cosine schedule") {
    for (const bool decoupled : {false, true}) {
      CAPTURE(decoupled);
      nn::adam a = decoupled ? nn::adamw(0.01f, 0.05f) : nn::adam{0.01f, 0.8f, 0.99f, 1e-6f, 0.05f};
      a.schedule = nn::lr_schedule::cosine(5, 1, 0.001f);
      nn::optimizer_state<cpu_executor, double> state(cpu, a, n);
      std::vector<double> p = p0;
      std::vector<long double> m(n, 0), v(n, 0), want(p0.begin(), p0.end());
      for (int t = 1; t <= 4; ++t) {
        state.step(p, g[t - 1]);
        const long double lr = want_lr(a.schedule, (long double)a.learning_rate, t);
        for (std::size_t i = 0; i < n; ++i) {
          long double gi = g[t - 1][i];
          if (decoupled) want[i] *= 1 - lr * (long double)a.weight_decay;  // torch.optim.AdamW
          else gi += (long double)a.weight_decay * want[i];                 // torch.optim.Adam
          m[i] = (long double)a.beta1 * m[i] + (1 - (long double)a.beta1) * gi;
          v[i] = (long double)a.beta2 * v[i] + (1 - (long double)a.beta2) * gi * gi;
          const long double mhat = m[i] / (1 - std::pow((long double)a.beta1, t));
          const long double vhat = v[i] / (1 - std::pow((long double)a.beta2, t));
          want[i] -= lr * mhat / (std::sqrt(vhat) + (long double)a.epsilon);
        }
        for (std::size_t i = 0; i < n; ++i)
          REQUIRE(p[i] == Approx(static_cast<double>(want[i])).epsilon(1e-6).margin(1e-8));
      }
      CHECK(std::string(nn::optimizer_name(a)) == (decoupled ? "adamw" : "adam"));
    }
  }
  SECTION("a bound above the gradient's norm leaves it as it is") {
    nn::sgd o{0.5f};
    o.max_grad_norm = 1000.0f;
    nn::optimizer_state<cpu_executor, double> state(cpu, o, n);
    std::vector<double> p = p0;
    state.step(p, g[0]);
    CHECK(state.last_clip_factor() == 1.0f);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(p[i] == Approx(p0[i] - 0.5 * g[0][i]).epsilon(1e-12));
  }
}

TEST_CASE("bad optimizer settings are typed errors naming the setting", "[nn][optimizer]") {
  const auto rejects = [](const nn::optimizer& o, const char* what) {
    require_throws_naming<std::invalid_argument>([&] { nn::optimizer_state<cpu_executor, float> s(cpu, o, 4); },
                                                 {"gpukit::nn::optimizer_state", what});
  };
  nn::sgd s;
  s.weight_decay = -0.1f;
  rejects(s, "'weight_decay'");
  s = nn::sgd{};
  s.max_grad_norm = std::nanf("");
  rejects(s, "'max_grad_norm'");
  s = nn::sgd{};
  s.schedule = nn::lr_schedule::step(0);
  rejects(s, "'schedule.every'");
  s.schedule = nn::lr_schedule::step(3, -1.0f);
  rejects(s, "'schedule.gamma'");
  s.schedule = nn::lr_schedule::cosine(10, 10);
  rejects(s, "'schedule.warmup'");
  s.schedule = nn::lr_schedule::cosine(0);
  rejects(s, "'schedule.total'");
  s.schedule = nn::lr_schedule::cosine(10, 0, 0.5f);  // above the base rate 0.01
  rejects(s, "'schedule.min_lr'");
  rejects(nn::adamw(0.5f, 2.0f), "'weight_decay'");  // lr·λ = 1: AdamW would zero the weights
}

TEST_CASE("a final softmax gives probabilities; with softmax cross-entropy the loss reads its logits",
          "[nn][model][softmax]") {
  using model = nn::sequential<cpu_executor, double>;
  const auto build = [](bool with_softmax) {
    model m(cpu, 2, 3, 3);
    m.add(nn::conv2d(2, 3, 2)).add(nn::relu{}).add(nn::flatten{}).add(nn::dense(12, 4));
    if (with_softmax) m.add(nn::softmax{});
    m.compile(3, nn::softmax_crossentropy{}, nn::sgd{}, 8);
    return m;
  };
  model soft = build(true), logits = build(false);
  CHECK(soft.plan() == "conv2d+relu | flatten | dense | softmax (loss on logits)");
  CHECK(soft.summary().find("one thread per pixel") == std::string::npos);  // the CPU's path
  CHECK(soft.summary().find("CPU loop over pixels") != std::string::npos);
  const shape4 xs = soft.input_shape(3), ys = soft.output_shape(3);
  const std::vector<double> x = random_vector(xs.size(), -1, 1, 95);
  const std::vector<double> y = {0, 1, 0, 0, 0.25, 0.25, 0.5, 0, 0, 0, 0, 1};
  const auto p = soft.forward(view(x, xs));
  const auto z = logits.forward(view(x, xs));
  for (std::size_t n = 0; n < 3; ++n) {
    double m = -INFINITY, sum = 0;
    for (std::size_t k = 0; k < 4; ++k) m = std::max(m, z.data[n * 4 + k]);
    for (std::size_t k = 0; k < 4; ++k) sum += std::exp(z.data[n * 4 + k] - m);
    for (std::size_t k = 0; k < 4; ++k)
      REQUIRE(p.data[n * 4 + k] == Approx(std::exp(z.data[n * 4 + k] - m) / sum).epsilon(1e-14));
  }
  // The same loss and gradients as the model that ends at the logits.
  CHECK(soft.evaluate(view(x, xs), view(y, ys)) == logits.evaluate(view(x, xs), view(y, ys)));
  logits.zero_grad();
  (void)logits.forward(view(x, xs));
  logits.backward(view(y, ys));
  soft.zero_grad();
  (void)soft.forward(view(x, xs));
  soft.backward(view(y, ys));
  CHECK(std::vector<double>(soft.gradients().begin(), soft.gradients().end()) ==
        std::vector<double>(logits.gradients().begin(), logits.gradients().end()));
  check_model_gradients(soft, 3, y);  // (ends with a training step)

  // A softmax in the middle is differentiated through.
  model mid(cpu, 6, 1, 1);
  mid.add(nn::dense(6, 5)).add(nn::softmax{}).add(nn::dense(5, 2));
  mid.compile(2, nn::mean_squared_error{}, nn::sgd{}, 3);
  CHECK(mid.plan() == "dense | softmax | dense_1");
  check_model_gradients(mid, 2, {0.5, -1, 2, 0});
}

TEST_CASE("dropout in a model: inference passes through, training draws a mask per step, the step replays",
          "[nn][model][dropout]") {
  nn::sequential<cpu_executor, double> m(cpu, 12, 1, 1);
  m.add(nn::dense(12, 40)).add(nn::relu{}).add(nn::dropout(0.5f)).add(nn::dense(40, 3));
  m.compile(4, nn::mean_squared_error{}, nn::sgd{}, 9);
  CHECK(m.plan() == "dense+relu | dropout | dense_1");
  CHECK(!m.training());
  const shape4 xs = m.input_shape(4), ys = m.output_shape(4);
  const std::vector<double> x = random_vector(xs.size(), -1, 1, 93), y = random_vector(ys.size(), -1, 1, 94);
  const auto out = [&] {
    const auto o = m.forward(view(x, xs));
    return std::vector<double>(o.data, o.data + o.size());
  };
  // Inference: the identity, the step counter untouched, the loss evaluate() reports.
  const std::vector<double> plain = out();
  CHECK(out() == plain);
  CHECK(m.dropout_step() == 0);
  double mse = 0;
  for (std::size_t i = 0; i < plain.size(); ++i) mse += (plain[i] - y[i]) * (plain[i] - y[i]);
  CHECK(m.evaluate(view(x, xs), view(y, ys)) == Approx(mse / static_cast<double>(plain.size())).epsilon(1e-12));

  // Training: every forward a new step and mask; setting the step replays a mask.
  m.set_training(true);
  const std::vector<double> first = out();
  CHECK(m.dropout_step() == 1);
  const std::vector<double> second = out();
  CHECK(m.dropout_step() == 2);
  CHECK(first != plain);
  CHECK(second != first);
  m.set_dropout_step(0);
  CHECK(out() == first);

  // The training-mode gradient against central differences of the same step's loss.
  const auto loss_at_step = [&] {
    m.set_dropout_step(5);
    const std::vector<double> o = out();
    double l = 0;
    for (std::size_t i = 0; i < o.size(); ++i) l += (o[i] - y[i]) * (o[i] - y[i]);
    return l / static_cast<double>(o.size());
  };
  m.zero_grad();
  (void)loss_at_step();
  m.backward(view(y, ys));
  const std::vector<double> analytic(m.gradients().begin(), m.gradients().end());
  std::vector<double> p(m.parameters().begin(), m.parameters().end());
  const std::vector<double> numeric = numeric_gradient(p, [&] {
    std::copy(p.begin(), p.end(), m.parameters().begin());
    return loss_at_step();
  });
  std::copy(p.begin(), p.end(), m.parameters().begin());
  require_gradient(analytic, numeric, "model gradients through dropout");

  // train_step trains whatever the mode, and evaluate never does.
  m.set_training(false);
  (void)m.train_step(view(x, xs), view(y, ys));
  CHECK(m.dropout_step() == 7);
  (void)m.evaluate(view(x, xs), view(y, ys));
  CHECK(m.dropout_step() == 7);
}

TEST_CASE("a small model learns a toy problem on the CPU", "[nn][model][train]") {
  require_toy_problem_learned(
      cpu, [](const std::vector<float>& v, shape4 s) { return nn::host_tensor<float>::from_host(s, v); },
      [](nn::host_tensor_view<const float> out) { return std::vector<float>(out.data, out.data + out.size()); });
}

TEST_CASE("batches smaller than max_batch, and train_step's zeroing of old gradients", "[nn][model]") {
  nn::sequential<cpu_executor, double> m(cpu, 1, 4, 4);
  m.add(nn::flatten{}).add(nn::dense(16, 3)).add(nn::tanh{});
  m.compile(8, nn::mean_squared_error{}, nn::sgd{0.1f}, 6);
  const std::vector<double> x = random_vector(16, -1, 1, 111), y = random_vector(3, -0.5, 0.5, 112);
  const auto out = m.forward(view(x, {1, 1, 4, 4}));
  CHECK(out.shape == shape4{1, 3, 1, 1});
  m.backward(view(y, {1, 3, 1, 1}));
  m.backward(view(y, {1, 3, 1, 1}));  // the gradients of two backwards...
  const std::vector<double> twice(m.gradients().begin(), m.gradients().end());
  const std::vector<double> before(m.parameters().begin(), m.parameters().end());
  const double expected = m.evaluate(view(x, {1, 1, 4, 4}), view(y, {1, 3, 1, 1}));
  const double loss = m.train_step(view(x, {1, 1, 4, 4}), view(y, {1, 3, 1, 1}));  // ...are cleared first here
  CHECK(loss == expected);
  for (std::size_t i = 0; i < twice.size(); ++i) CHECK(m.gradients()[i] == Approx(twice[i] / 2).margin(1e-15));
  for (std::size_t i = 0; i < before.size(); ++i)
    CHECK(m.parameters()[i] == Approx(before[i] - static_cast<double>(0.1f) * m.gradients()[i]).margin(1e-15));
}

}  // namespace
