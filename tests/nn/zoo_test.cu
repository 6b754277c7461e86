// Every model of the zoo (benchmarks/zoo/models.json) whole, at a small batch:
// - CPU, double: the gradient the model's backward pass computes against central
//   differences of its loss along random directions, one per layer with parameters and one
//   over all of them: |(L(p + h v) - L(p - h v)) / 2h - g·v| <= 1e-6 · Σ|g_i v_i| (h = 1e-8:
//   small enough that no relu or max-pool decision of the batch changes between the two
//   evaluations, which at 1e-6 a few of the larger models' hundred thousand units did;
//   truncation O(h²) and rounding O(ε/h) stay far below the bound);
// - GPU against the CPU in double on the same parameters and batch: the loss within 1e-5,
//   the output and each layer's weight and bias gradients within 1e-4 norm-wise
//   (‖gpu - ref‖₂ / ‖ref‖₂: a max-pool that breaks a near-tie the other way in float moves one
//   element, not the norm), and the plan's path for every stage printed with the case;
// - a training step as one CUDA graph equals the eager step, bit for bit.
// The inputs are fixed (not drawn from the run's seed): the finite differences of a relu
// network are exact only away from its kinks, and a fixed batch keeps the check
// deterministic.
#include "nn/nn_support.hpp"
#include "zoo/zoo.hpp"

#include <cmath>

using namespace nn_test;
using gpukit::cpu_executor;
using gpukit::cuda_executor;

namespace {

const cpu_executor cpu{};
constexpr std::size_t batch = 3;

/// Fixed values in [lo, hi), the same at every run.
std::vector<double> fixed_values(std::size_t n, double lo, double hi, std::uint64_t salt) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = lo + (hi - lo) * static_cast<double>(gpukit_test::mix(salt * 0x9E3779B97F4A7C15ull + i) >> 11) * 0x1p-53;
  return v;
}

template <class T, class U>
std::vector<T> as(const std::vector<U>& v) {
  return std::vector<T>(v.begin(), v.end());
}

std::vector<double> host_values(gpukit::span<double, gpukit::memory_space::host> s) {
  return std::vector<double>(s.begin(), s.end());
}

}  // namespace

TEST_CASE("zoo models: whole-model gradients against central differences (CPU, double)", "[nn][zoo]") {
  for (const zoo::model& m : zoo::models()) {
    CAPTURE(m.name);
    auto net = zoo::build<cpu_executor, double>(m, cpu, batch, 3);
    const std::vector<double> xs = fixed_values(batch * m.input.features(), 0, 1, 11);
    const std::vector<float> ys = zoo::labels(m, batch);
    const auto x = nn::host_tensor<double>::from_host(m.input.with_batch(batch), xs);
    const auto y = nn::host_tensor<double>::from_host(net->output_shape(batch), as<double>(ys));
    net->zero_grad();
    (void)net->forward(x);
    net->backward(y);
    const std::vector<double> grad = host_values(net->gradients());
    auto params = net->parameters();
    const std::vector<double> p0(params.begin(), params.end());
    // Directions: each layer's parameters alone, then all of them.
    std::vector<std::pair<std::size_t, std::size_t>> ranges;
    for (std::size_t i = 0; i < net->size(); ++i)
      if (nn::parameter_count(net->layer_at(i)) > 0)
        ranges.push_back({net->weights(i).data() - params.data(), net->bias(i).data() + net->bias(i).size() - params.data()});
    ranges.push_back({0, params.size()});
    for (std::size_t r = 0; r < ranges.size(); ++r) {
      CAPTURE(r);
      const auto [begin, end] = ranges[r];
      const std::vector<double> signs = fixed_values(params.size(), -1, 1, 100 + r);
      std::vector<double> v(params.size(), 0.0);
      for (std::size_t i = begin; i < end; ++i) v[i] = signs[i] < 0 ? -1.0 : 1.0;
      double analytic = 0, magnitude = 0;
      for (std::size_t i = 0; i < v.size(); ++i) analytic += grad[i] * v[i], magnitude += std::fabs(grad[i] * v[i]);
      const double h = 1e-8;
      const auto loss_at = [&](double t) {
        for (std::size_t i = 0; i < v.size(); ++i) params[i] = p0[i] + t * v[i];
        return static_cast<double>(net->evaluate(x, y));
      };
      const double numeric = (loss_at(h) - loss_at(-h)) / (2 * h);
      for (std::size_t i = 0; i < v.size(); ++i) params[i] = p0[i];
      INFO("analytic " << analytic << ", numeric " << numeric << ", magnitude " << magnitude);
      CHECK(std::fabs(numeric - analytic) <= 1e-6 * std::max(magnitude, 1e-12));
    }
  }
}

namespace {

double norm_error(const std::vector<double>& got, const std::vector<double>& ref) {
  double d = 0, r = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) d += (got[i] - ref[i]) * (got[i] - ref[i]), r += ref[i] * ref[i];
  return r == 0 ? std::sqrt(d) : std::sqrt(d / r);
}

template <class T, gpukit::memory_space S>
std::vector<double> to_host_double(gpukit::span<T, S> s, gpukit::stream_view st) {
  std::vector<std::remove_const_t<T>> host(s.size());
  gpukit::transfer(gpukit::make_host_span(host), gpukit::span<const std::remove_const_t<T>, S>(s), st);
  return std::vector<double>(host.begin(), host.end());
}

}  // namespace

TEST_CASE("zoo models on the GPU agree with the CPU in double, layer by layer", "[gpu][nn][zoo]") {
  gpukit::stream stream;
  const cuda_executor exec(stream.view());
  for (const zoo::model& m : zoo::models()) {
    CAPTURE(m.name);
    auto gpu_net = zoo::build(m, exec, batch, 3);
    auto cpu_net = zoo::build<cpu_executor, double>(m, cpu, batch, 3);
    INFO(gpu_net->summary());
    // The same (float) parameters on both.
    const std::vector<double> p = to_host_double(gpu_net->parameters(), stream.view());
    std::copy(p.begin(), p.end(), cpu_net->parameters().begin());
    const std::vector<double> xs = fixed_values(batch * m.input.features(), 0, 1, 11);
    const std::vector<float> ys = zoo::labels(m, batch);
    const nn::shape4 xshape = m.input.with_batch(batch), yshape = gpu_net->output_shape(batch);
    const auto gx = nn::device_tensor::from_host(xshape, as<float>(xs), stream.view());
    const auto gy = nn::device_tensor::from_host(yshape, ys, stream.view());
    const auto cx = nn::host_tensor<double>::from_host(xshape, as<double>(as<float>(xs)));
    const auto cy = nn::host_tensor<double>::from_host(yshape, as<double>(ys));

    const double loss_ref = cpu_net->evaluate(cx, cy);
    const double loss = gpu_net->evaluate(gx, gy);
    CHECK(loss == Approx(loss_ref).epsilon(1e-5));
    const std::vector<double> out_ref = host_values(gpukit::span<double, gpukit::memory_space::host>(
        const_cast<double*>(cpu_net->forward(cx).data), yshape.size()));
    const auto out = gpu_net->forward(gx);
    CHECK(norm_error(to_host_double(out.span(), stream.view()), out_ref) <= 1e-4);

    cpu_net->zero_grad();
    (void)cpu_net->forward(cx);
    cpu_net->backward(cy);
    gpu_net->zero_grad();
    (void)gpu_net->forward(gx);
    gpu_net->backward(gy);
    for (std::size_t i = 0; i < gpu_net->size(); ++i) {
      if (nn::parameter_count(gpu_net->layer_at(i)) == 0) continue;
      CAPTURE(gpu_net->layer_name(i));
      const std::vector<double> dw_ref = host_values(cpu_net->weight_gradients(i));
      const std::vector<double> db_ref = host_values(cpu_net->bias_gradients(i));
      CHECK(norm_error(to_host_double(gpu_net->weight_gradients(i), stream.view()), dw_ref) <= 1e-4);
      CHECK(norm_error(to_host_double(gpu_net->bias_gradients(i), stream.view()), db_ref) <= 1e-4);
    }
  }
}

TEST_CASE("zoo models: a training step as one CUDA graph equals the eager step bit for bit", "[gpu][nn][zoo]") {
  gpukit::stream stream;
  const cuda_executor exec(stream.view());
  for (const zoo::model& m : zoo::models()) {
    CAPTURE(m.name);
    auto eager = zoo::build(m, exec, batch, 5);
    auto graphed = zoo::build(m, exec, batch, 5);
    const auto gx = nn::device_tensor::from_host(m.input.with_batch(batch),
                                                 as<float>(fixed_values(batch * m.input.features(), 0, 1, 12)), stream.view());
    const auto gy = nn::device_tensor::from_host(eager->output_shape(batch), zoo::labels(m, batch), stream.view());
    nn::graph g = graphed->capture_train_step(gx, gy);
    for (int step = 0; step < 3; ++step) {
      eager->train_step_async(gx, gy);
      g.replay(stream.view());
    }
    CHECK(eager->last_loss() == graphed->last_loss());
    CHECK(std::isfinite(eager->last_loss()));
    CHECK(eager->steps() == 3);
    CHECK(graphed->steps() == 3);
    CHECK(to_host_double(eager->parameters(), stream.view()) == to_host_double(graphed->parameters(), stream.view()));
  }
}
