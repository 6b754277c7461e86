// LeakyReLU and GELU on the CPU beyond their values and gradients (gradient_check_test.cpp,
// model_test.cpp): which layer each fuses into, the activation value type, a model that
// learns with them, and bad input.
#include "nn/reference.hpp"
#include "support/bad_input.hpp"

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

using namespace nn_test;
using gpukit::cpu_executor;

namespace {

const cpu_executor cpu{};
using model = nn::sequential<cpu_executor, double>;

}  // namespace

TEST_CASE("activation values: the kind reads as before, the slope is part of equality", "[nn][activation]") {
  const nn::activation relu = nn::activation::relu;
  CHECK(relu == nn::activation::relu);
  CHECK(relu != nn::activation::none);
  CHECK(relu.negative_slope == 0.0f);
  const nn::activation a = nn::activation::leaky_relu(0.2f), b = nn::activation::leaky_relu(0.3f);
  CHECK(a == nn::activation_kind::leaky_relu);
  CHECK(a != b);
  CHECK(a == nn::activation::leaky_relu(0.2f));
  CHECK(nn::activation(nn::activation_kind::relu, 0.5f).negative_slope == 0.0f);  // a slope only where it means one
  CHECK(std::string(nn::activation_name(a)) == "leaky_relu");
  CHECK(std::string(nn::activation_name(nn::activation::gelu_tanh)) == "gelu_tanh");
  CHECK(nn::slope_from_output(a));
  CHECK_FALSE(nn::slope_from_output(nn::activation::gelu));
  CHECK_FALSE(nn::slope_from_output(nn::activation::gelu_tanh));
  CHECK(nn::activation_of(nn::leaky_relu(0.25f)) == nn::activation::leaky_relu(0.25f));
  CHECK(nn::activation_of(nn::gelu(true)) == nn::activation::gelu_tanh);
  CHECK(nn::leaky_relu{}.negative_slope == 0.01f);  // PyTorch's default
  // The slope from the output is wrong for a GELU on purpose: NaN, never a plausible number.
  CHECK(std::isnan(nn::detail::activation_slope(nn::activation(nn::activation::gelu), 0.5)));
}

TEST_CASE("the epilogue forms apply every kind but the GELUs bit for bit, edge values included",
          "[nn][activation]") {
  constexpr float inf = std::numeric_limits<float>::infinity();
  const float values[] = {-inf, -3.5f, -1e-30f, -0.0f, 0.0f, 1e-30f, 0.75f, 40.0f, inf,
                          std::numeric_limits<float>::quiet_NaN()};
  const nn::activation kinds[] = {nn::activation::none, nn::activation::relu, nn::activation::leaky_relu(0.1f),
                                  nn::activation::sigmoid, nn::activation::tanh};
  const auto bits = [](float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    return u;
  };
  for (const nn::activation a : kinds) {
    CAPTURE(nn::activation_name(a), a.negative_slope);
    REQUIRE(nn::detail::fits_epilogue(a));
    for (const float z : values) {
      CAPTURE(z);
      CHECK(bits(nn::detail::apply(nn::detail::epilogue_form(a), z)) == bits(nn::detail::activate(a, z)));
    }
  }
  // leaky_relu(0) acts as relu there: 0 at -inf, where activate's 0 * z is NaN.
  CHECK(nn::detail::apply(nn::detail::epilogue_form(nn::activation::leaky_relu(0.0f)), -inf) == 0.0f);
  CHECK_FALSE(nn::detail::fits_epilogue(nn::activation::gelu));
  CHECK_FALSE(nn::detail::fits_epilogue(nn::activation::gelu_tanh));
}

TEST_CASE("leaky relu fuses like relu, GELU never: the plan and Keras' table", "[nn][activation][model]") {
  model m(cpu, 3, 8, 8);
  m.add(nn::conv2d(3, 4, 3, 1, 1)).add(nn::batchnorm2d(4)).add(nn::leaky_relu(0.1f)).add(nn::conv2d(4, 4, 3, 1, 1));
  m.add(nn::batchnorm2d(4)).add(nn::gelu{}).add(nn::maxpool2d(2)).add(nn::flatten{}).add(nn::dense(64, 2));
  m.compile(4, nn::softmax_crossentropy{}, nn::adam{}, 3);
  CHECK(m.plan() == "conv2d | batch_normalization+leaky_re_lu | conv2d_1 | batch_normalization_1 | gelu | "
                    "max_pooling2d | flatten | dense");
  const std::string table = m.summary();
  CHECK(table.find("leaky_re_lu (LeakyReLU)") != std::string::npos);
  CHECK(table.find("gelu (GELU)") != std::string::npos);
}

TEST_CASE("a model with leaky relus and GELUs learns a toy problem", "[nn][activation][model][train]") {
  model m(cpu, 1, 4, 4);
  m.add(nn::flatten{}).add(nn::dense(16, 12)).add(nn::leaky_relu(0.1f)).add(nn::dense(12, 8)).add(nn::gelu{});
  m.add(nn::dense(8, 1)).add(nn::sigmoid{});
  m.compile(16, nn::binary_crossentropy{}, nn::adam{0.01f}, 11);
  const shape4 xs = m.input_shape(16), ys = m.output_shape(16);
  const std::vector<double> x = random_vector(xs.size(), -1, 1, 12);
  std::vector<double> y(16);
  for (std::size_t i = 0; i < 16; ++i) {  // the label: whether the image's first half outweighs its second
    double s = 0;
    for (std::size_t j = 0; j < 16; ++j) s += (j < 8 ? 1 : -1) * x[i * 16 + j];
    y[i] = s > 0 ? 1 : 0;
  }
  const double first = m.train_step(view(x, xs), view(y, ys));
  double last = first;
  for (int i = 0; i < 300; ++i) last = m.train_step(view(x, xs), view(y, ys));
  CHECK(last < 0.1 * first);  // 16 samples, 333 parameters: the data is learned by heart
}

TEST_CASE("leaky relu and GELU: bad arguments are typed errors naming them, nothing written",
          "[nn][activation][bad_input]") {
  using invalid = std::invalid_argument;
  using gpukit_test::bad_input;
  bad_input<invalid>("gpukit::nn::leaky_relu", "'negative_slope'", "negative", [] { (void)nn::leaky_relu(-0.1f); },
                     {"'negative_slope' = -0.1", "non-negative"});
  bad_input<invalid>("gpukit::nn::leaky_relu", "'negative_slope'", "NaN",
                     [] { (void)nn::leaky_relu(std::numeric_limits<float>::quiet_NaN()); }, {"'negative_slope' = nan"});
  bad_input<invalid>("gpukit::nn::leaky_relu", "'negative_slope'", "infinite",
                     [] { (void)nn::leaky_relu(std::numeric_limits<float>::infinity()); }, {"'negative_slope' = inf"});

  const shape4 s{2, 3, 2, 2};
  const std::vector<double> x = random_vector(s.size(), -1, 1, 5), dy = random_vector(s.size(), -1, 1, 6);
  std::vector<double> y(s.size(), 0.0), dx(s.size(), 4.0);
  nn::activation_forward(cpu, nn::activation::gelu, view(x, s), view(y, s));  // the forward pass is fine
  bad_input<invalid>("gpukit::nn::activation_backward", "'act'", "a GELU (slope not a function of the output)",
                     [&] { nn::activation_backward(cpu, nn::activation::gelu, view(y, s), view(dy, s), view(dx, s)); },
                     {"'act' = gelu", "activation_backward_at_input"});
  CHECK(std::all_of(dx.begin(), dx.end(), [](double v) { return v == 4.0; }));

  const nn::conv_block block{nn::conv2d(3, 2, 1), nn::activation::gelu_tanh, std::nullopt};
  const shape4 ys{2, 2, 2, 2};
  const std::vector<double> w(6, 0.5), b(2, 0.0), r(ys.size(), 1.0), conv_y(ys.size(), 0.0);
  std::vector<double> dw(6, 2.0), db(2, 2.0);
  std::vector<std::int32_t> argmax(ys.size(), 0);
  bad_input<invalid>("gpukit::nn::conv2d_block_backward", "'block.act'", "a GELU",
                     [&] {
                       nn::conv2d_block_backward(cpu, block, view(x, s), w, view(conv_y, ys), view(argmax, ys), view(r, ys),
                                                 dw, db, view(dx, s));
                     },
                     {"'block.act' = gelu_tanh"});
  CHECK(std::all_of(dw.begin(), dw.end(), [](double v) { return v == 2.0; }));

  const nn::dense fc(12, 3);
  const shape4 fs{2, 12, 1, 1}, fo{2, 3, 1, 1};
  const std::vector<double> fw(36, 0.1), fy(fo.size(), 0.0), fdy(fo.size(), 1.0);
  std::vector<double> fdw(36, 2.0), fdb(3, 2.0);
  bad_input<invalid>("gpukit::nn::dense_backward", "'act'", "a GELU",
                     [&] {
                       nn::dense_backward(cpu, fc, view(x, fs), fw, view(fy, fo), view(fdy, fo), fdw, fdb, view(dx, fs),
                                          nn::activation::gelu);
                     },
                     {"'act' = gelu"});
  CHECK(std::all_of(fdw.begin(), fdw.end(), [](double v) { return v == 2.0; }));
}
