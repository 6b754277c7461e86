// Conv padding ('same', per side) and dilation on the CPU beyond the layer's values and
// gradients (gradient_check_test.cpp and cpu_gemm_test.cpp run conv_cases(), which hold
// them): 'same' against the rules Keras and PyTorch document, shapes, names, a model that
// learns with them, and bad input.
#include "nn/reference.hpp"
#include "support/bad_input.hpp"

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

#include <stdexcept>

using namespace nn_test;
using gpukit::cpu_executor;

TEST_CASE("conv padding 'same': ceil(in / stride) outputs, the odd zero after, torch's rule at stride 1",
          "[nn][conv2d][padding]") {
  for (std::size_t in = 1; in <= 13; ++in)
    for (std::size_t k = 1; k <= 5; ++k)
      for (std::size_t s = 1; s <= 3; ++s)
        for (std::size_t d = 1; d <= 3; ++d) {
          const nn::conv2d c = nn::conv2d(2, 3, nn::kernel_size{k, k + 1}, s, nn::conv_padding::same).dilated(d);
          const shape4 x{1, 2, in, in + 2};
          CAPTURE(in, k, s, d);
          const std::size_t eh = (k - 1) * d + 1, ew = k * d + 1;
          // Keras (TensorFlow's 'SAME'): total = max((ceil(in / s) - 1)·s + extent - in, 0).
          const auto total = [&](std::size_t n, std::size_t e) {
            const long long v = static_cast<long long>(((n + s - 1) / s - 1) * s + e) - static_cast<long long>(n);
            return static_cast<std::size_t>(std::max(0LL, v));
          };
          const nn::conv_padding p = c.padding_for(x);
          CHECK(p.top == total(in, eh) / 2);
          CHECK(p.bottom == total(in, eh) - total(in, eh) / 2);
          CHECK(p.left == total(in + 2, ew) / 2);
          CHECK(p.right == total(in + 2, ew) - total(in + 2, ew) / 2);
          if (s == 1) {  // torch.nn.Conv2d(padding='same'): d·(k - 1), half before, the rest after
            CHECK(p.top + p.bottom == d * (k - 1));
            CHECK(p.left + p.right == d * k);
          }
          const bool fits = eh <= in + p.top + p.bottom && ew <= in + 2 + p.left + p.right;
          REQUIRE(fits);  // 'same' always pads enough for one output
          const shape4 y = c.output_shape(x);
          CHECK(y.h == (in + s - 1) / s);
          CHECK(y.w == (in + 2 + s - 1) / s);
        }
}

TEST_CASE("conv padding per side and dilation: shapes, names, equality", "[nn][conv2d][padding]") {
  const nn::conv2d c(3, 4, nn::kernel_size{3, 2}, 2, nn::conv_padding::sides(1, 0, 2, 3));
  CHECK(c.output_shape({5, 3, 9, 8}) == shape4{5, 4, (9 + 1 - 3) / 2 + 1, (8 + 5 - 2) / 2 + 1});
  const nn::conv2d dil = c.dilated(3);
  CHECK(dil.extent().h == 7);
  CHECK(dil.extent().w == 4);
  CHECK(dil.output_shape({5, 3, 9, 8}) == shape4{5, 4, (9 + 1 - 7) / 2 + 1, (8 + 5 - 4) / 2 + 1});
  CHECK(nn::conv2d(3, 4, 3, 1, 2).padding == nn::conv_padding::hw(2, 2));  // a number: every side
  CHECK(nn::conv_padding::valid == nn::conv_padding(0));
  CHECK(nn::conv_padding::same != nn::conv_padding::valid);
  CHECK(nn::to_string(nn::conv_padding::same) == "same");
  CHECK(nn::to_string(nn::conv_padding(1)) == "1");
  CHECK(nn::to_string(nn::conv_padding::hw(1, 2)) == "1x2");
  CHECK(nn::to_string(nn::conv_padding::sides(1, 0, 2, 3)) == "top 1, bottom 0, left 2, right 3");
  // 'same' keeps its rule: the sides follow each input.
  const nn::conv2d same(1, 1, 4, 1, nn::conv_padding::same);
  CHECK(same.padding_for({1, 1, 7, 7}) == nn::conv_padding::sides(1, 2, 1, 2));
  CHECK(same.output_shape({1, 1, 7, 9}).w == 9);
}

TEST_CASE("a model of 'same', per-side and dilated convs learns a toy problem", "[nn][conv2d][padding]") {
  // Whether a 5x5 image's bright pixel lies in its left or right half.
  const std::size_t n = 32;
  std::vector<double> xs(n * 25, 0.0), ys(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t col = i % 4 < 2 ? i % 4 : i % 4 + 1, row = (i / 4) % 5;  // never the middle column
    xs[i * 25 + row * 5 + col] = 1.0;
    ys[i] = col > 2 ? 1.0 : 0.0;
  }
  nn::sequential<cpu_executor, double> m(cpu_executor{}, 1, 5, 5);
  m.add(nn::conv2d(1, 4, 3, 1, nn::conv_padding::same)).add(nn::relu{});
  m.add(nn::conv2d(4, 4, 3, 1, nn::conv_padding::sides(0, 1, 1, 0)).dilated(2)).add(nn::tanh{});  // 2x2
  m.add(nn::flatten{}).add(nn::dense(4 * 2 * 2, 1)).add(nn::sigmoid{});
  m.compile(n, nn::binary_crossentropy{}, nn::adam{0.01}, 5);
  const auto x = nn::host_tensor<double>::from_host({n, 1, 5, 5}, xs);
  const auto y = nn::host_tensor<double>::from_host({n, 1, 1, 1}, ys);
  const double first = m.train_step(x, y);
  double last = first;
  for (int step = 0; step < 300; ++step) last = m.train_step(x, y);
  CHECK(last < 0.1 * first);
}

TEST_CASE("conv padding and dilation: bad input", "[nn][conv2d][padding][bad_input]") {
  using gpukit_test::bad_input;
  using invalid = std::invalid_argument;
  bad_input<invalid>("gpukit::nn::conv2d", "'dilation'", "zero", [] { (void)nn::conv2d(3, 4, 3).dilated(0); },
                     {"'dilation' = 0"});
  const nn::conv2d wide = nn::conv2d(3, 4, 3, 1, nn::conv_padding::sides(0, 1, 0, 0)).dilated(3);
  bad_input<invalid>("gpukit::nn::conv2d", "'kernel'", "wider than the padded input (dilation included)",
                     [&] { (void)wide.output_shape({1, 3, 5, 9}); },
                     {"'kernel' = 3x3", "dilation 3", "spans 7x7", "padded input 6x9",
                      "padding top 0, bottom 1, left 0, right 0"});
}
