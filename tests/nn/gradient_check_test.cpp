// Every layer and loss on the CPU path in double: the forward pass against the plain
// reference (reference.hpp), the backward pass against central differences of the forward
// pass, and the gradient invariant (parameter gradients accumulate, input gradients are
// assigned). Built by the host compiler alone: the nn CPU path needs no nvcc.
#include "nn/reference.hpp"

#if defined(__CUDACC__)
#error "this test must be compiled by the host compiler"
#endif

using namespace nn_test;

namespace {

const gpukit::cpu_executor cpu{};

// ---- conv2d (alone and fused with activation and pool) ------------------------------------

/// Central differences (step 1e-6) cross a kink when a relu input or the gap between a pool
/// window's two largest values is that small: the numeric gradient is then wrong, not the
/// analytic one. True when every such distance exceeds `margin`.
bool away_from_kinks(const conv_case& c, const std::vector<double>& x, const std::vector<double>& w,
                     const std::vector<double>& b, double margin = 1e-4) {
  conv_case linear = c;
  linear.act = nn::activation::none;
  if (c.act == nn::activation::relu || c.act == nn::activation_kind::leaky_relu)
    for (double z : reference_conv(linear, x, w, b, false))
      if (std::fabs(z) < margin) return false;
  if (!c.pool) return true;
  const std::vector<double> a = reference_conv(c, x, w, b, false);
  const shape4 co = c.conv_out(), po = c.out();
  for (std::size_t p = 0; p < c.n * c.oc; ++p)
    for (std::size_t py = 0; py < po.h; ++py)
      for (std::size_t px = 0; px < po.w; ++px) {
        double first = -INFINITY, second = -INFINITY;
        for (std::size_t wy = 0; wy < c.pool->window.h; ++wy)
          for (std::size_t wx = 0; wx < c.pool->window.w; ++wx) {
            const double v = a[(p * co.h + py * c.pool->stride.h + wy) * co.w + px * c.pool->stride.w + wx];
            second = std::max(second, std::min(first, v));
            first = std::max(first, v);
          }
        const bool dead = c.act == nn::activation::relu && first <= 0;  // zero gradient either way
        if (!dead && first - second < margin) return false;
      }
  return true;
}

TEST_CASE("conv2d block: forward matches the plain loops, backward matches central differences", "[nn][conv2d]") {
  for (const conv_case& c : conv_cases()) {
    CAPTURE(c.name());
    std::vector<double> x, w, b, r = random_vector(c.out().size(), -1, 1, 14);
    for (std::uint64_t draw = 0;; ++draw) {  // a few draws at most: kinks within 1e-4 are rare
      x = random_vector(c.in().size(), -1, 1, 11 + 100 * draw);
      w = random_vector(c.weights(), -0.5, 0.5, 12 + 100 * draw);
      b = random_vector(c.oc, -0.2, 0.2, 13 + 100 * draw);
      if (away_from_kinks(c, x, w, b)) break;
      REQUIRE(draw < 50);
    }
    const nn::conv_block block = c.block();
    std::vector<double> y(c.out().size());
    std::vector<std::int32_t> argmax(c.out().size());
    const auto forward = [&] {
      nn::conv2d_block_forward(cpu, block, view(x, c.in()), w, b, view(y, c.out()), view(argmax, c.out()));
      return dot(r, y);
    };
    forward();
    // Against the size of the sums' terms: a few outputs that nearly cancel (a 4x4 kernel
    // over a 4x4 input has three) make the largest output a poor scale for rounding.
    conv_case linear = c;
    linear.act = nn::activation::none;
    const auto absolute = [](std::vector<double> v) {
      for (double& e : v) e = std::fabs(e);
      return v;
    };
    double terms = 0;
    for (double t : reference_conv(linear, absolute(x), absolute(w), absolute(b), false)) terms = std::max(terms, t);
    require_relative(y, reference_conv(c, x, w, b), 1e-13, "forward", terms);

    std::vector<double> dw(w.size(), 0.0), db(b.size(), 0.0), dx(x.size(), 7.0);
    nn::conv2d_block_backward(cpu, block, view(x, c.in()), w, view(y, c.out()), view(argmax, c.out()), view(r, c.out()),
                              dw, db, view(dx, c.in()));
    require_gradient(dx, numeric_gradient(x, forward), "dx");
    require_gradient(dw, numeric_gradient(w, forward), "dw");
    require_gradient(db, numeric_gradient(b, forward), "db");

    // A second backward adds to dw and db and overwrites dx.
    forward();
    std::vector<double> dw2 = dw, db2 = db, dx2(x.size(), -3.0);
    nn::conv2d_block_backward(cpu, block, view(x, c.in()), w, view(y, c.out()), view(argmax, c.out()), view(r, c.out()),
                              dw2, db2, view(dx2, c.in()));
    for (std::size_t i = 0; i < dw.size(); ++i) REQUIRE(dw2[i] == Approx(2 * dw[i]).margin(1e-12));
    for (std::size_t i = 0; i < db.size(); ++i) REQUIRE(db2[i] == Approx(2 * db[i]).margin(1e-12));
    REQUIRE(dx2 == dx);

    // Without an input gradient the parameter gradients are the same.
    std::vector<double> dw3(w.size(), 0.0), db3(b.size(), 0.0);
    nn::conv2d_block_backward(cpu, block, view(x, c.in()), w, view(y, c.out()), view(argmax, c.out()), view(r, c.out()),
                              dw3, db3, nn::no_grad);
    REQUIRE(dw3 == dw);
    REQUIRE(db3 == db);
  }
}

TEST_CASE("conv2d_forward and conv2d_backward are the block without activation or pool", "[nn][conv2d]") {
  const conv_case c{2, 3, 7, 8, 4, {3, 3}, 2, 1, nn::activation::none, std::nullopt};
  const nn::conv2d layer(3, 4, 3, 2, 1);
  std::vector<double> x = random_vector(c.in().size(), -1, 1, 21), w = random_vector(c.weights(), -1, 1, 22),
                      b = random_vector(4, -1, 1, 23), r = random_vector(c.out().size(), -1, 1, 24);
  std::vector<double> y(c.out().size());
  const auto forward = [&] {
    nn::conv2d_forward(cpu, layer, view(x, c.in()), w, b, view(y, c.out()));
    return dot(r, y);
  };
  forward();
  require_relative(y, reference_conv(c, x, w, b), 1e-13, "forward");
  std::vector<double> dw(w.size(), 0.0), db(4, 0.0), dx(x.size());
  nn::conv2d_backward(cpu, layer, view(x, c.in()), w, view(r, c.out()), dw, db, view(dx, c.in()));
  require_gradient(dx, numeric_gradient(x, forward), "dx");
  require_gradient(dw, numeric_gradient(w, forward), "dw");
  require_gradient(db, numeric_gradient(b, forward), "db");
}

TEST_CASE("the fused pool records where each maximum came from", "[nn][conv2d]") {
  // One channel, identity kernel: the conv output is the input, so argmax is checkable by hand.
  const nn::conv_block block{nn::conv2d(1, 1, 1), nn::activation::none, nn::maxpool2d(2)};
  std::vector<double> x{1, 5, 2, 0,  //
                        3, 4, 9, 8,  //
                        7, 6, 1, 1,  //
                        0, 2, 1, 3};
  std::vector<double> w{1}, b{0}, y(4);
  std::vector<std::int32_t> argmax(4);
  nn::conv2d_block_forward(cpu, block, view(x, {1, 1, 4, 4}), w, b, view(y, {1, 1, 2, 2}), view(argmax, {1, 1, 2, 2}));
  CHECK(y == std::vector<double>{5, 9, 7, 3});
  CHECK(argmax == std::vector<std::int32_t>{(0 << 16) | 1, (1 << 16) | 2, (2 << 16) | 0, (3 << 16) | 3});
}

// ---- maxpool2d ---------------------------------------------------------------------------

TEST_CASE("maxpool2d: forward matches the plain loops, backward matches central differences", "[nn][maxpool2d]") {
  for (const pool_case& c : pool_cases()) {
    CAPTURE(nn::to_string(c.in), nn::to_string(c.pool.window), nn::to_string(c.pool.stride));
    std::vector<double> x = random_vector(c.in.size(), -1, 1, 31), r = random_vector(c.out().size(), -1, 1, 32);
    std::vector<double> y(c.out().size());
    std::vector<std::int32_t> argmax(y.size());
    const auto forward = [&] {
      nn::maxpool2d_forward(cpu, c.pool, view(x, c.in), view(y, c.out()), view(argmax, c.out()));
      return dot(r, y);
    };
    forward();
    REQUIRE(y == reference_pool(c, x));
    std::vector<double> dx(x.size(), 5.0);
    nn::maxpool2d_backward(cpu, c.pool, view(r, c.out()), view(argmax, c.out()), view(dx, c.in));
    require_gradient(dx, numeric_gradient(x, forward), "dx");
  }
}

// ---- avgpool2d, global_avgpool2d ---------------------------------------------------------

TEST_CASE("avgpool2d: forward matches the plain loops, backward matches central differences", "[nn][avgpool2d]") {
  for (const avgpool_case& c : avgpool_cases()) {
    CAPTURE(nn::to_string(c.in), nn::to_string(c.pool.window), nn::to_string(c.pool.stride));
    std::vector<double> x = random_vector(c.in.size(), -1, 1, 33), r = random_vector(c.out().size(), -1, 1, 34);
    std::vector<double> y(c.out().size(), 7.0);
    const auto forward = [&] {
      nn::avgpool2d_forward(cpu, c.pool, view(x, c.in), view(y, c.out()));
      return dot(r, y);
    };
    forward();
    require_relative(y, reference_avgpool(c, x), 1e-15, "y");
    std::vector<double> dx(x.size(), 5.0);  // assigned: the 5s must go, also where no window reaches
    nn::avgpool2d_backward(cpu, c.pool, view(r, c.out()), view(dx, c.in));
    require_gradient(dx, numeric_gradient(x, forward), "dx");
  }
}

TEST_CASE("global_avgpool2d: each plane's mean, and its gradient spread evenly", "[nn][avgpool2d]") {
  const shape4 in{3, 4, 5, 6}, out{3, 4, 1, 1};
  std::vector<double> x = random_vector(in.size(), -1, 1, 35), r = random_vector(out.size(), -1, 1, 36);
  std::vector<double> y(out.size());
  const auto forward = [&] {
    nn::global_avgpool2d_forward(cpu, view(x, in), view(y, out));
    return dot(r, y);
  };
  forward();
  const avgpool_case as_window{in, nn::avgpool2d(nn::kernel_size{5, 6}, nn::kernel_size{5, 6})};
  require_relative(y, reference_avgpool(as_window, x), 1e-15, "y");
  std::vector<double> dx(x.size(), 5.0);
  nn::global_avgpool2d_backward(cpu, view(r, out), view(dx, in));
  require_gradient(dx, numeric_gradient(x, forward), "dx");
  for (std::size_t i = 0; i < dx.size(); ++i) REQUIRE(dx[i] == r[i / 30] / 30.0);
}

// ---- dropout -----------------------------------------------------------------------------

TEST_CASE("dropout: Philox4x32-10 gives the generator's published known answers", "[nn][dropout]") {
  using nn::detail::philox4x32_10;
  const auto a = philox4x32_10(0, 0, 0, 0, 0, 0);
  CHECK((a.w[0] == 0x6627e8d5u && a.w[1] == 0xe169c58du && a.w[2] == 0xbc57ac4cu && a.w[3] == 0x9b00dbd8u));
  const std::uint32_t f = 0xffffffffu;
  const auto b = philox4x32_10(f, f, f, f, f, f);
  CHECK((b.w[0] == 0x408f276du && b.w[1] == 0x41c83b0eu && b.w[2] == 0xa20bc7c6u && b.w[3] == 0x6d5451fdu));
  const auto c = philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  CHECK((c.w[0] == 0xd16cfe09u && c.w[1] == 0x94fdccebu && c.w[2] == 0x5001e420u && c.w[3] == 0x24126ea1u));
}

TEST_CASE("dropout: the mask is a function of its key, kept elements scaled, backward applies the same mask",
          "[nn][dropout]") {
  const shape4 s{3, 5, 7, 11};  // 1155 elements: the last Philox block serves three
  const std::vector<double> x = random_vector(s.size(), -1, 1, 51), r = random_vector(s.size(), -1, 1, 52);
  for (float p : {0.1f, 0.5f, 0.8f}) {
    CAPTURE(p);
    const nn::dropout layer(p);
    const nn::dropout_key key{0x1234567890abcdefull, 2, 7};
    const double scale = static_cast<double>(static_cast<float>(1.0 / (1.0 - p)));
    std::vector<double> y(x.size(), 9.0);
    nn::dropout_forward(cpu, layer, key, view(x, s), view(y, s));
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      REQUIRE((y[i] == 0.0 || y[i] == x[i] * scale));
      dropped += y[i] == 0.0;
    }
    // Binomial(1155, p): within five standard deviations.
    const double n = static_cast<double>(x.size());
    CHECK(std::fabs(static_cast<double>(dropped) - n * p) <= 5 * std::sqrt(n * p * (1 - p)));

    std::vector<double> again(x.size());
    nn::dropout_forward(cpu, layer, key, view(x, s), view(again, s));
    CHECK(again == y);
    for (const nn::dropout_key other : {nn::dropout_key{key.seed, key.stream, key.step + 1},
                                        nn::dropout_key{key.seed, key.stream + 1, key.step},
                                        nn::dropout_key{key.seed + 1, key.stream, key.step}}) {
      nn::dropout_forward(cpu, layer, other, view(x, s), view(again, s));
      CHECK(again != y);
    }
    std::vector<double> in_place = x;  // y may alias x
    nn::dropout_forward(cpu, layer, key, view(in_place, s), view(in_place, s));
    CHECK(in_place == y);

    std::vector<double> dx(x.size(), 5.0);
    nn::dropout_backward(cpu, layer, key, view(r, s), view(dx, s));
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(dx[i] == (y[i] == 0.0 ? 0.0 : r[i] * scale));
    std::vector<double> xs = x;
    const auto objective = [&] {
      nn::dropout_forward(cpu, layer, key, view(xs, s), view(again, s));
      return dot(r, again);
    };
    require_gradient(dx, numeric_gradient(xs, objective), "dx");
  }
  std::vector<double> y(x.size());
  nn::dropout_forward(cpu, nn::dropout(0.0f), nn::dropout_key{}, view(x, s), view(y, s));
  CHECK(y == x);  // p = 0: every element kept, scale 1
}

// ---- softmax -----------------------------------------------------------------------------

TEST_CASE("softmax: each pixel's channels sum to one, backward matches central differences", "[nn][softmax]") {
  for (const shape4 s : {shape4{3, 5, 1, 1}, shape4{2, 4, 3, 5}, shape4{2, 1, 2, 2}}) {
    CAPTURE(nn::to_string(s));
    std::vector<double> x = random_vector(s.size(), -3, 3, 61);
    x[0] = 700;  // no overflow: the maximum is subtracted first
    const std::vector<double> r = random_vector(s.size(), -1, 1, 62);
    std::vector<double> y(x.size());
    const auto forward = [&] {
      nn::softmax_forward(cpu, view(x, s), view(y, s));
      return dot(r, y);
    };
    forward();
    const std::size_t plane = s.h * s.w;
    for (std::size_t n = 0; n < s.n; ++n)
      for (std::size_t q = 0; q < plane; ++q) {
        double m = -INFINITY, z = 0, sum = 0;
        for (std::size_t k = 0; k < s.c; ++k) m = std::max(m, x[(n * s.c + k) * plane + q]);
        for (std::size_t k = 0; k < s.c; ++k) z += std::exp(x[(n * s.c + k) * plane + q] - m);
        for (std::size_t k = 0; k < s.c; ++k) {
          const std::size_t i = (n * s.c + k) * plane + q;
          REQUIRE(y[i] == Approx(std::exp(x[i] - m) / z).epsilon(1e-14));
          sum += y[i];
        }
        REQUIRE(sum == Approx(1.0).epsilon(1e-14));
      }
    std::vector<double> dx(x.size(), 5.0);
    nn::softmax_backward(cpu, view(y, s), view(r, s), view(dx, s));
    x[0] = 0.5;  // central differences need a point where the softmax is not saturated
    forward();
    nn::softmax_backward(cpu, view(y, s), view(r, s), view(dx, s));
    require_gradient(dx, numeric_gradient(x, forward), "dx");
    forward();  // y of x itself again (the differences left it at a neighbour)
    std::vector<double> in_place = r;  // dx may alias dy
    nn::softmax_backward(cpu, view(y, s), view(in_place, s), view(in_place, s));
    CHECK(in_place == dx);
  }
}

// ---- dense -------------------------------------------------------------------------------

TEST_CASE("dense: forward matches the plain loops, backward matches central differences", "[nn][dense]") {
  const dense_case cases[] = {{1, 1, 1, nn::activation::none},
                              {3, 7, 5, nn::activation::relu},
                              {2, 5, 3, nn::activation::sigmoid},
                              {4, 6, 2, nn::activation::tanh},
                              {3, 9, 4, nn::activation::leaky_relu(0.1f)},
                              {5, 300, 3, nn::activation::none}};  // longer than a CPU column block
  for (const dense_case& c : cases) {
    CAPTURE(c.n, c.in, c.out, nn::activation_name(c.act));
    const nn::dense layer(c.in, c.out);
    const shape4 xs{c.n, c.in, 1, 1}, ys{c.n, c.out, 1, 1};
    std::vector<double> x = random_vector(xs.size(), -1, 1, 41), w = random_vector(c.in * c.out, -0.5, 0.5, 42),
                        b = random_vector(c.out, -0.3, 0.3, 43), r = random_vector(ys.size(), -1, 1, 44);
    std::vector<double> y(ys.size()), pre(ys.size());
    const auto forward = [&] {
      nn::dense_forward(cpu, layer, view(x, xs), w, b, view(y, ys), c.act);
      return dot(r, y);
    };
    forward();
    require_relative(y, reference_dense(c, x, w, b), 1e-13, "forward");
    nn::dense_forward(cpu, layer, view(x, xs), w, b, view(y, ys), c.act, view(pre, ys));
    require_relative(pre, reference_dense(c, x, w, b, false), 1e-13, "pre-activation");

    std::vector<double> dw(w.size(), 0.0), db(b.size(), 0.0), dx(x.size(), 9.0);
    nn::dense_backward(cpu, layer, view(x, xs), w, view(y, ys), view(r, ys), dw, db, view(dx, xs), c.act);
    require_gradient(dx, numeric_gradient(x, forward), "dx");
    require_gradient(dw, numeric_gradient(w, forward), "dw");
    require_gradient(db, numeric_gradient(b, forward), "db");

    forward();  // y again at the unperturbed inputs
    std::vector<double> dw2 = dw, db2 = db, dx2(x.size(), -1.0);
    nn::dense_backward(cpu, layer, view(x, xs), w, view(y, ys), view(r, ys), dw2, db2, view(dx2, xs), c.act);
    for (std::size_t i = 0; i < dw.size(); ++i) REQUIRE(dw2[i] == Approx(2 * dw[i]).margin(1e-12));
    for (std::size_t i = 0; i < db.size(); ++i) REQUIRE(db2[i] == Approx(2 * db[i]).margin(1e-12));
    REQUIRE(dx2 == dx);
  }
}

// ---- activation layers ---------------------------------------------------------------------

TEST_CASE("activation layers: values and central-difference gradients", "[nn][activation]") {
  const nn::activation acts[] = {nn::activation::relu,      nn::activation::sigmoid,          nn::activation::tanh,
                                 nn::activation::gelu,      nn::activation::gelu_tanh,        nn::activation::leaky_relu(0.2f),
                                 nn::activation::leaky_relu(0.0f), nn::activation::leaky_relu(1.5f)};
  for (const nn::activation act : acts) {
    CAPTURE(nn::activation_name(act), act.negative_slope);
    const shape4 s{3, 2, 5, 1};
    std::vector<double> x = random_vector(s.size(), -4, 4, 51), r = random_vector(s.size(), -1, 1, 52), y(s.size());
    x[0] = -0.7517915;  // near GELU's minimum, where its output stops telling its input
    const auto forward = [&] {
      nn::activation_forward(cpu, act, view(x, s), view(y, s));
      return dot(r, y);
    };
    forward();
    // The margin: GELU's 1 + erf(z/√2) cancels for negative z, so its last bits follow how
    // z/√2 was rounded (the library multiplies by 1/√2, the reference divides by √2).
    for (std::size_t i = 0; i < x.size(); ++i)
      REQUIRE(y[i] == Approx(reference_activation(act, x[i])).epsilon(1e-14).margin(1e-14));
    const std::vector<double> numeric = numeric_gradient(x, forward);
    forward();
    std::vector<double> dx(s.size());
    nn::activation_backward_at_input(cpu, act, view(x, s), view(r, s), view(dx, s));
    require_gradient(dx, numeric, "dx at the input");
    if (nn::slope_from_output(act)) {
      std::vector<double> dx_out(s.size());
      nn::activation_backward(cpu, act, view(y, s), view(r, s), view(dx_out, s));
      require_gradient(dx_out, numeric, "dx from the output");
      for (std::size_t i = 0; i < dx.size(); ++i) REQUIRE(dx_out[i] == Approx(dx[i]).epsilon(1e-12).margin(1e-15));
    }
  }
  // The sigmoid does not overflow either way.
  std::vector<double> big{-800.0, 800.0}, out(2);
  nn::activation_forward(cpu, nn::activation::sigmoid, view(big, {2, 1, 1, 1}), view(out, {2, 1, 1, 1}));
  CHECK(out[0] == 0.0);
  CHECK(out[1] == 1.0);
}

// ---- losses ------------------------------------------------------------------------------

double reference_loss(const nn::loss& l, const std::vector<double>& p, const std::vector<double>& t, std::size_t rows) {
  const std::size_t cols = p.size() / rows;
  double total = 0;
  switch (l.index()) {
    case 0:
      for (std::size_t i = 0; i < p.size(); ++i) total -= t[i] * std::log(p[i]) + (1 - t[i]) * std::log(1 - p[i]);
      return total / static_cast<double>(p.size());
    case 1:
      for (std::size_t i = 0; i < p.size(); ++i) {
        const double s = 1 / (1 + std::exp(-p[i]));
        total -= t[i] * std::log(s) + (1 - t[i]) * std::log(1 - s);
      }
      return total / static_cast<double>(p.size());
    case 2:
      for (std::size_t i = 0; i < p.size(); ++i) total += (p[i] - t[i]) * (p[i] - t[i]);
      return total / static_cast<double>(p.size());
    default:
      for (std::size_t r = 0; r < rows; ++r) {
        double sum = 0;
        for (std::size_t k = 0; k < cols; ++k) sum += std::exp(p[r * cols + k]);
        for (std::size_t k = 0; k < cols; ++k) total -= t[r * cols + k] * std::log(std::exp(p[r * cols + k]) / sum);
      }
      return total / static_cast<double>(rows);
  }
}

TEST_CASE("losses: values match their formulas, gradients match central differences", "[nn][loss]") {
  const shape4 s{5, 3, 1, 1};
  std::vector<double> hard(s.size()), soft = random_vector(s.size(), 0, 1, 61);
  for (std::size_t i = 0; i < hard.size(); ++i) hard[i] = (i * 7 + 3) % 5 < 2 ? 1.0 : 0.0;
  std::vector<double> one_hot(s.size(), 0.0);
  for (std::size_t r = 0; r < s.n; ++r) one_hot[r * 3 + r % 3] = 1.0;
  for (std::size_t r = 0; r < s.n; ++r) {  // rows of `soft` become distributions
    double sum = 0;
    for (std::size_t k = 0; k < 3; ++k) sum += soft[r * 3 + k];
    for (std::size_t k = 0; k < 3; ++k) soft[r * 3 + k] /= sum;
  }
  struct loss_case {
    nn::loss l;
    double lo, hi;
    const std::vector<double>* target;
  };
  const loss_case cases[] = {{nn::binary_crossentropy{}, 0.05, 0.95, &hard},
                             {nn::binary_crossentropy_with_logits{}, -6, 6, &hard},
                             {nn::mean_squared_error{}, -2, 2, &soft},
                             {nn::softmax_crossentropy{}, -5, 5, &one_hot},
                             {nn::softmax_crossentropy{}, -5, 5, &soft}};
  for (const loss_case& c : cases) {
    CAPTURE(nn::loss_name(c.l));
    std::vector<double> p = random_vector(s.size(), c.lo, c.hi, 62), grad(s.size());
    const std::vector<double>& t = *c.target;
    const double value = nn::loss_and_gradient(cpu, c.l, view(p, s), view(t, s), view(grad, s));
    CHECK(value == Approx(reference_loss(c.l, p, t, s.n)).epsilon(1e-12));
    CHECK(nn::loss_value(cpu, c.l, view(p, s), view(t, s)) == value);
    require_gradient(grad, numeric_gradient(p, [&] { return nn::loss_value(cpu, c.l, view(p, s), view(t, s)); }),
                     "d loss / d prediction");
  }
}

TEST_CASE("binary cross-entropy saturates like PyTorch's instead of overflowing", "[nn][loss]") {
  std::vector<double> p{0.0, 1.0}, t{1.0, 0.0}, grad(2);
  const double l = nn::loss_and_gradient(cpu, nn::binary_crossentropy{}, view(p, {2, 1, 1, 1}), view(t, {2, 1, 1, 1}),
                                         view(grad, {2, 1, 1, 1}));
  CHECK(l == Approx(100.0));
  CHECK(std::isfinite(grad[0]));
  CHECK(grad[0] < 0);
  CHECK(grad[1] > 0);
  std::vector<double> z{-500.0, 500.0};
  CHECK(nn::loss_value(cpu, nn::binary_crossentropy_with_logits{}, view(z, {2, 1, 1, 1}), view(t, {2, 1, 1, 1})) ==
        Approx(500.0));
}

}  // namespace
