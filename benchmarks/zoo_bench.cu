// The model zoo (benchmarks/zoo/models.json) whole: for every model at each of the zoo's
// batch sizes, on the GPU
//   zoo_train_<model>/gpu     a training step (check, forward, loss, backward, Adam) queued eagerly
//   zoo_train_<model>/graph   the same step as one replayed CUDA graph
//   zoo_forward_<model>/gpu, /graph   the forward pass alone
//   zoo_train_<model>/graph_tf32, zoo_forward_<model>/graph_tf32   the model in nn::precision::tf32
//   zoo_train_<model>/graph_bf16, zoo_forward_<model>/graph_bf16   the model in nn::precision::bf16
// and on the CPU fallback at the smallest batch (zoo_train_<model>/cpu). Items are images;
// FLOPs count each multiply-add as 2 (forward; + weight and input gradients in training).
// benchmarks/peers/torch_zoo.py times PyTorch on the same models the same way (L2 flushed
// before each call, median), and benchmarks/peers/zoo_table.py puts the two side by side.
#include "gpukit/gpukit.cuh"
#include "support/harness.hpp"
#include "zoo/zoo.hpp"

#include <memory>
#include <string>
#include <vector>

namespace gpukit_bench {
namespace {

namespace nn = gpukit::nn;
using gpukit::cpu_executor;
using gpukit::cuda_executor;

std::vector<float> uniform(std::size_t n, unsigned salt) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 2654435761u + salt) % 1000) / 1000.0f;
  return v;
}

template <class Exec>
std::shared_ptr<nn::tensor_for<Exec>> tensor_of(const Exec& exec, nn::shape4 s, const std::vector<float>& v) {
  if constexpr (gpukit::is_gpu_executor_v<Exec>) {
    auto t = std::make_shared<nn::tensor_for<Exec>>(nn::tensor_for<Exec>::from_host(s, v, exec.stream()));
    exec.synchronize();
    return t;
  } else {
    return std::make_shared<nn::tensor_for<Exec>>(nn::tensor_for<Exec>::from_host(s, v));
  }
}

/// The model, its batch and its labels on `exec`.
template <class Exec>
struct zoo_case {
  std::shared_ptr<nn::sequential<Exec>> net;
  std::shared_ptr<nn::tensor_for<Exec>> x, y;
};

template <class Exec>
zoo_case<Exec> make_case(const zoo::model& m, const Exec& exec, std::size_t batch,
                         nn::precision numbers = nn::precision::fp32) {
  zoo_case<Exec> c;
  c.net = zoo::build(m, exec, batch, 7, nn::adam{}, numbers);
  c.x = tensor_of(exec, m.input.with_batch(batch), uniform(batch * m.input.features(), 31));
  c.y = tensor_of(exec, c.net->output_shape(batch), zoo::labels(m, batch));
  return c;
}

void register_model(const zoo::model& m) {
  const std::string train = "zoo_train_" + m.name, fwd = "zoo_forward_" + m.name;
  set_flops_per_item(train, m.train_flops());
  set_flops_per_item(fwd, m.forward_flops());
  const std::vector<std::size_t> batches = zoo::batches();
  for (std::size_t batch : batches) {
    const double images = static_cast<double>(batch);
    add_gpu_case(train, "gpu", batch, 0, images, [=](gpukit::stream_view s) {
      const auto c = make_case(m, cuda_executor(s), batch);
      return [=](gpukit::stream_view) { c.net->train_step_async(*c.x, *c.y); };
    });
    add_gpu_case(train, "graph", batch, 0, images, [=](gpukit::stream_view s) {
      const auto c = make_case(m, cuda_executor(s), batch);
      auto g = std::make_shared<nn::graph>(c.net->capture_train_step(*c.x, *c.y));
      return [g, c](gpukit::stream_view st) { g->replay(st); };  // c keeps the model and the batch alive with the graph
    });
    for (const nn::precision p : {nn::precision::tf32, nn::precision::bf16}) {
      add_gpu_case(train, std::string("graph_") + nn::precision_name(p), batch, 0, images, [=](gpukit::stream_view s) {
        const auto c = make_case(m, cuda_executor(s), batch, p);
        auto g = std::make_shared<nn::graph>(c.net->capture_train_step(*c.x, *c.y));
        return [g, c](gpukit::stream_view st) { g->replay(st); };
      });
    }
    add_gpu_case(fwd, "gpu", batch, 0, images, [=](gpukit::stream_view s) {
      const auto c = make_case(m, cuda_executor(s), batch);
      return [=](gpukit::stream_view) { (void)c.net->forward(*c.x); };
    });
    add_gpu_case(fwd, "graph", batch, 0, images, [=](gpukit::stream_view s) {
      const auto c = make_case(m, cuda_executor(s), batch);
      auto g = std::make_shared<nn::graph>(c.net->capture_forward(*c.x));
      return [g, c](gpukit::stream_view st) { g->replay(st); };
    });
    for (const nn::precision p : {nn::precision::tf32, nn::precision::bf16}) {
      add_gpu_case(fwd, std::string("graph_") + nn::precision_name(p), batch, 0, images, [=](gpukit::stream_view s) {
        const auto c = make_case(m, cuda_executor(s), batch, p);
        auto g = std::make_shared<nn::graph>(c.net->capture_forward(*c.x));
        return [g, c](gpukit::stream_view st) { g->replay(st); };
      });
    }
  }
  const std::size_t cpu_batch = batches.front();
  add_cpu_case(train, "cpu", cpu_batch, 0, static_cast<double>(cpu_batch), [=] {
    const auto c = make_case(m, cpu_executor{}, cpu_batch);
    return [=] { (void)c.net->train_step(*c.x, *c.y); };
  });
}

}  // namespace

void register_zoo_cases() {
  for (const zoo::model& m : zoo::models()) register_model(m);
}

}  // namespace gpukit_bench
