// The seed model (Conv2D 3->32 3x3 + relu + MaxPool 2x2, Flatten, Dense 30752->128 relu,
// Dense 128->1 sigmoid, binary cross-entropy, Adam) layer by layer and whole, at batch 32
// and 256 on the GPU and batch 32 on the CPU fallback ("cpu"):
//   nn_conv_fwd / nn_conv_bwd      the fused conv+relu+pool pass, and its weight gradient
//                                  (the first layer needs no input gradient)
//   nn_dense1_fwd / nn_dense1_bwd  30752 -> 128 + relu; backward = dw, db and dx
//   nn_dense2_fwd / nn_dense2_bwd  128 -> 1 (+ sigmoid)
//   nn_adam                        one Adam step over all 3,937,409 parameters
//   nn_forward                     the model's forward pass: eager ("gpu"), one CUDA graph
//                                  ("graph")
//   nn_train_step                  zero_grad, forward, loss, backward and Adam, with the
//                                  device-side input check: eager ("gpu"), graph ("graph")
// Average pooling on its own (no fusion: memory-bound, so bytes are its floor):
//   nn_avgpool_fwd / nn_avgpool_bwd   2x2 stride 2 over (128, 32, 32) per image
//   nn_gap_fwd / nn_gap_bwd           global average pooling of (256, 8, 8) per image
// Batch normalisation + relu in training on its own (64, 32, 32) per image; bytes are its
// floor (forward reads x and writes y once; backward reads x, y, dy and writes dx once),
// while the kernels read x twice forward (the batch statistics come first, and the tensor
// does not stay in the L2 cache at batch 256) and x, y, dy twice backward:
//   nn_batchnorm_fwd / nn_batchnorm_bwd
// GELU on its own (it never fuses: its backward reads its input) over (64, 32, 32) per
// image; forward reads x and writes y, backward reads x and dy and writes dx:
//   nn_gelu_fwd / nn_gelu_bwd
// Items are images, so the table's items/s is images/s. Bytes count what each call must
// move at least: its inputs, parameters and outputs once; for the training step the input,
// and per parameter one read forward, one gradient write, and Adam's 4 reads and 3 writes.
// FLOPs count the products' multiply-adds (2 each) per image: the conv's weight gradient
// only at the conv outputs the pool passed on (one in four), dense backward dw and dx.
#include "gpukit/gpukit.cuh"
#include "gpukit/nn.hpp"
#include "support/harness.hpp"

#include <memory>
#include <string>
#include <vector>

namespace gpukit_bench {
namespace {

namespace nn = gpukit::nn;
using gpukit::cpu_executor;
using gpukit::cuda_executor;

constexpr std::size_t conv_in = 3 * 64 * 64, pooled = 32 * 31 * 31;
constexpr double f32 = 4.0;
constexpr double conv_fwd_flops = 2.0 * 27 * 32 * 62 * 62, conv_bwd_flops = 2.0 * 27 * pooled;
constexpr double dense1_flops = 2.0 * 30752 * 128, dense2_flops = 2.0 * 128;
constexpr double forward_flops = conv_fwd_flops + dense1_flops + dense2_flops;
constexpr double step_flops = forward_flops + conv_bwd_flops + 2 * dense1_flops + 2 * dense2_flops;

std::vector<float> pattern(std::size_t n, unsigned salt) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 2654435761u + salt) % 1000) / 1000.0f;
  return v;
}
std::vector<float> labels(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 2);
  return v;
}

template <class Exec>
std::shared_ptr<nn::sequential<Exec>> seed_model(const Exec& exec, std::size_t batch) {
  auto m = std::make_shared<nn::sequential<Exec>>(exec, 3, 64, 64);
  m->add(nn::conv2d(3, 32, 3, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  m->add(nn::dense(30752, 128)).add(nn::relu{}).add(nn::dense(128, 1)).add(nn::sigmoid{});
  m->compile(batch, nn::binary_crossentropy{}, nn::adam{}, 1);
  return m;
}

/// Every buffer one layer call touches, in the executor's memory.
template <class Exec>
struct layer_data {
  nn::tensor_for<Exec> x, w, b, y, dy, dw, db, dx;
  nn::tensor_for<Exec, std::int32_t> argmax;
};

gpukit::stream_view stream_of(const cuda_executor& exec) { return exec.stream(); }
gpukit::stream_view stream_of(const cpu_executor&) { return {}; }

template <class Exec>
nn::tensor_for<Exec> filled(const Exec& exec, nn::shape4 s, unsigned salt) {
  if constexpr (gpukit::is_gpu_executor_v<Exec>) {
    auto t = nn::tensor_for<Exec>::from_host(s, pattern(s.size(), salt), exec.stream());
    exec.synchronize();
    return t;
  } else {
    return nn::tensor_for<Exec>::from_host(s, pattern(s.size(), salt));
  }
}

const nn::conv_block seed_conv{nn::conv2d(3, 32, 3, 1), nn::activation::relu, nn::maxpool2d(2)};

template <class Exec>
std::shared_ptr<layer_data<Exec>> conv_data(const Exec& exec, std::size_t batch) {
  auto d = std::make_shared<layer_data<Exec>>();
  d->x = filled(exec, {batch, 3, 64, 64}, 1);
  d->w = filled(exec, {32, 3, 3, 3}, 2);
  d->b = filled(exec, {32, 1, 1, 1}, 3);
  d->y = filled(exec, {batch, 32, 31, 31}, 4);
  d->dy = filled(exec, {batch, 32, 31, 31}, 5);
  d->dw = filled(exec, {32, 3, 3, 3}, 6);
  d->db = filled(exec, {32, 1, 1, 1}, 7);
  d->argmax = nn::tensor_for<Exec, std::int32_t>({batch, 32, 31, 31}, stream_of(exec));
  // One forward pass, so that y and argmax hold what a backward pass expects.
  nn::conv2d_block_forward(exec, seed_conv, d->x, d->w.span(), d->b.span(), d->y, d->argmax);
  exec.synchronize();
  return d;
}

template <class Exec>
std::shared_ptr<layer_data<Exec>> dense_data(const Exec& exec, std::size_t batch, std::size_t in, std::size_t out) {
  auto d = std::make_shared<layer_data<Exec>>();
  d->x = filled(exec, {batch, in, 1, 1}, 11);
  d->w = filled(exec, {out, in, 1, 1}, 12);
  d->b = filled(exec, {out, 1, 1, 1}, 13);
  d->y = filled(exec, {batch, out, 1, 1}, 14);
  d->dy = filled(exec, {batch, out, 1, 1}, 15);
  d->dw = filled(exec, {out, in, 1, 1}, 16);
  d->db = filled(exec, {out, 1, 1, 1}, 17);
  d->dx = filled(exec, {batch, in, 1, 1}, 18);
  return d;
}

/// Registers one layer family on the GPU (batch 32 and 256) and the CPU (batch 32); `run`
/// is called as run(exec, data).
template <class Make, class Run>
void add_layer_family(const std::string& family, double bytes_per_image, double fixed_bytes, Make make, Run run) {
  for (std::size_t batch : {std::size_t{32}, std::size_t{256}}) {
    const double bytes = fixed_bytes + bytes_per_image * static_cast<double>(batch);
    add_gpu_case(family, "gpu", batch, bytes, static_cast<double>(batch), [=](gpukit::stream_view s) {
      const cuda_executor exec(s);
      auto d = make(exec, batch);
      return [=](gpukit::stream_view st) { run(cuda_executor(st), *d); };
    });
  }
  add_cpu_case(family, "cpu", 32, fixed_bytes + bytes_per_image * 32, 32, [=] {
    auto d = make(cpu_executor{}, std::size_t{32});
    return [=] { run(cpu_executor{}, *d); };
  });
}

void register_layers() {
  const auto conv_make = [](const auto& exec, std::size_t batch) { return conv_data(exec, batch); };
  add_layer_family("nn_conv_fwd", f32 * (conv_in + 2 * pooled), f32 * (864 + 32), conv_make,
                   [](const auto& exec, auto& d) { nn::conv2d_block_forward(exec, seed_conv, d.x, d.w.span(), d.b.span(), d.y, d.argmax); });
  add_layer_family("nn_conv_bwd", f32 * (conv_in + 3 * pooled), f32 * 2 * (864 + 32), conv_make, [](const auto& exec, auto& d) {
    nn::conv2d_block_backward(exec, seed_conv, d.x, d.w.span(), d.y, d.argmax, d.dy, d.dw.span(), d.db.span(), nn::no_grad);
  });

  const double w1 = 30752.0 * 128 + 128;
  const auto dense1 = [](const auto& exec, std::size_t batch) { return dense_data(exec, batch, 30752, 128); };
  add_layer_family("nn_dense1_fwd", f32 * (30752 + 128), f32 * w1, dense1, [](const auto& exec, auto& d) {
    nn::dense_forward(exec, nn::dense(30752, 128), d.x, d.w.span(), d.b.span(), d.y, nn::activation::relu);
  });
  add_layer_family("nn_dense1_bwd", f32 * (2 * 30752 + 2 * 128), f32 * 3 * w1, dense1, [](const auto& exec, auto& d) {
    nn::dense_backward(exec, nn::dense(30752, 128), d.x, d.w.span(), d.y, d.dy, d.dw.span(), d.db.span(), d.dx,
                       nn::activation::relu);
  });
  const auto dense2 = [](const auto& exec, std::size_t batch) { return dense_data(exec, batch, 128, 1); };
  add_layer_family("nn_dense2_fwd", f32 * 129, f32 * 129, dense2, [](const auto& exec, auto& d) {
    nn::dense_forward(exec, nn::dense(128, 1), d.x, d.w.span(), d.b.span(), d.y, nn::activation::sigmoid);
  });
  add_layer_family("nn_dense2_bwd", f32 * (2 * 128 + 2), f32 * 3 * 129, dense2, [](const auto& exec, auto& d) {
    nn::dense_backward(exec, nn::dense(128, 1), d.x, d.w.span(), d.y, d.dy, d.dw.span(), d.db.span(), d.dx);
  });
}

template <class Exec>
std::shared_ptr<layer_data<Exec>> pool_data(const Exec& exec, std::size_t batch, nn::shape4 in, const nn::avgpool2d& pool) {
  auto d = std::make_shared<layer_data<Exec>>();
  const nn::shape4 x = in.with_batch(batch), y = pool.output_shape(x);
  d->x = filled(exec, x, 21);
  d->y = filled(exec, y, 22);
  d->dy = filled(exec, y, 23);
  d->dx = filled(exec, x, 24);
  return d;
}

/// Average pooling: forward reads x and writes y once, backward reads dy and writes dx once.
void register_pooling() {
  const nn::shape4 block{1, 128, 32, 32}, last{1, 256, 8, 8};
  const nn::avgpool2d two(2), global = nn::global_avgpool2d{}.as_avgpool(last);
  const double block_bytes = f32 * (block.size() + block.size() / 4), last_bytes = f32 * (last.size() + 256);
  const auto block_make = [=](const auto& exec, std::size_t batch) { return pool_data(exec, batch, block, two); };
  const auto last_make = [=](const auto& exec, std::size_t batch) { return pool_data(exec, batch, last, global); };
  add_layer_family("nn_avgpool_fwd", block_bytes, 0, block_make,
                   [=](const auto& exec, auto& d) { nn::avgpool2d_forward(exec, two, d.x, d.y); });
  add_layer_family("nn_avgpool_bwd", block_bytes, 0, block_make,
                   [=](const auto& exec, auto& d) { nn::avgpool2d_backward(exec, two, d.dy, d.dx); });
  add_layer_family("nn_gap_fwd", last_bytes, 0, last_make,
                   [](const auto& exec, auto& d) { nn::global_avgpool2d_forward(exec, d.x, d.y); });
  add_layer_family("nn_gap_bwd", last_bytes, 0, last_make,
                   [](const auto& exec, auto& d) { nn::global_avgpool2d_backward(exec, d.dy, d.dx); });
}

template <class Exec>
std::shared_ptr<layer_data<Exec>> pointwise_data(const Exec& exec, std::size_t batch, nn::shape4 in) {
  auto d = std::make_shared<layer_data<Exec>>();
  const nn::shape4 x = in.with_batch(batch);
  d->x = filled(exec, x, 31);
  d->y = filled(exec, x, 32);
  d->dy = filled(exec, x, 33);
  d->dx = filled(exec, x, 34);
  return d;
}

/// GELU (erf form): forward reads x and writes y once, backward reads x and dy and writes dx.
void register_gelu() {
  const nn::shape4 maps{1, 64, 32, 32};
  const double elements = static_cast<double>(maps.size());
  const auto make = [=](const auto& exec, std::size_t batch) { return pointwise_data(exec, batch, maps); };
  add_layer_family("nn_gelu_fwd", 2 * f32 * elements, 0, make,
                   [](const auto& exec, auto& d) { nn::activation_forward(exec, nn::activation::gelu, d.x, d.y); });
  add_layer_family("nn_gelu_bwd", 3 * f32 * elements, 0, make, [](const auto& exec, auto& d) {
    nn::activation_backward_at_input(exec, nn::activation::gelu, d.x, d.dy, d.dx);
  });
}

/// A batch norm's tensors and state for the layer's passes (training mode, relu fused).
template <class Exec>
struct batchnorm_data {
  nn::detail::batchnorm_geometry g;
  nn::batchnorm_path path;
  nn::tensor_for<Exec> x, y, dy, dx, w, b, dw, db, running, saved;
  nn::tensor_for<Exec, std::int64_t> tracked;
  nn::tensor_for<Exec, float> partial;
  nn::detail::batchnorm_state<float> state() {
    nn::detail::batchnorm_state<float> s;
    s.weight = w.data(), s.bias = b.data(), s.running_mean = running.data(), s.running_var = running.data() + g.c;
    s.batches_tracked = tracked.data(), s.saved = saved.data(), s.partial = partial.data();
    return s;
  }
};

template <class Exec>
std::shared_ptr<batchnorm_data<Exec>> batchnorm_make(const Exec& exec, std::size_t batch, nn::shape4 in) {
  auto d = std::make_shared<batchnorm_data<Exec>>();
  const nn::shape4 x = in.with_batch(batch);
  const nn::batchnorm layer = nn::batchnorm2d(in.c);
  d->g = nn::detail::make_batchnorm_geometry(layer, x, nn::activation::relu, "nn_batchnorm");
  if constexpr (gpukit::is_gpu_executor_v<Exec>) {
    d->path = nn::choose_batchnorm_path(d->g, nn::path_target::current_gpu());
  }
  const nn::shape4 c{in.c, 1, 1, 1};
  d->x = filled(exec, x, 31), d->y = filled(exec, x, 32), d->dy = filled(exec, x, 33), d->dx = filled(exec, x, 34);
  d->w = filled(exec, c, 35), d->b = filled(exec, c, 36), d->dw = filled(exec, c, 37), d->db = filled(exec, c, 38);
  d->running = filled(exec, {2 * in.c, 1, 1, 1}, 39);
  d->saved = filled(exec, {nn::detail::saved_slots * in.c, 1, 1, 1}, 40);
  d->partial = filled(exec, {2 * in.c * nn::batchnorm_path::max_splits, 1, 1, 1}, 41);
  d->tracked = nn::tensor_for<Exec, std::int64_t>({1, 1, 1, 1}, stream_of(exec));
  return d;
}

void register_batchnorm() {
  const nn::shape4 in{1, 64, 32, 32};
  const double elements = static_cast<double>(in.size());
  const auto make = [=](const auto& exec, std::size_t batch) { return batchnorm_make(exec, batch, in); };
  add_layer_family("nn_batchnorm_fwd", 2 * f32 * elements, 0, make, [](const auto& exec, auto& d) {
    nn::detail::batchnorm_forward_impl(exec, d.g, d.path, true, d.x.data(), d.state(), d.y.data());
  });
  add_layer_family("nn_batchnorm_bwd", 4 * f32 * elements, 0, make, [](const auto& exec, auto& d) {
    nn::detail::batchnorm_backward_impl(exec, d.g, d.path, true, false, d.x.data(), d.y.data(), d.dy.data(), d.state(),
                                        d.dw.data(), d.db.data(), d.dx.data());
  });
}

void register_adam() {
  const std::size_t params = 3937409;
  const double bytes = 7.0 * f32 * params;
  add_gpu_case("nn_adam", "gpu", params, bytes, 0, [=](gpukit::stream_view s) {
    const cuda_executor exec(s);
    auto p = std::make_shared<nn::device_tensor>(filled(exec, {params, 1, 1, 1}, 21));
    auto g = std::make_shared<nn::device_tensor>(filled(exec, {params, 1, 1, 1}, 22));
    auto state = std::make_shared<nn::optimizer_state<cuda_executor>>(exec, nn::adam{}, params);
    return [=](gpukit::stream_view) { state->step(p->span(), g->span()); };
  });
  add_cpu_case("nn_adam", "cpu", params, bytes, 0, [=] {
    const cpu_executor exec;
    auto p = std::make_shared<nn::host_tensor<float>>(filled(exec, {params, 1, 1, 1}, 21));
    auto g = std::make_shared<nn::host_tensor<float>>(filled(exec, {params, 1, 1, 1}, 22));
    auto state = std::make_shared<nn::optimizer_state<cpu_executor>>(exec, nn::adam{}, params);
    return [=] { state->step(p->span(), g->span()); };
  });
}

void register_model() {
  const double params = 3937409;
  for (std::size_t batch : {std::size_t{32}, std::size_t{256}}) {
    const double images = static_cast<double>(batch);
    const double fwd_bytes = f32 * (params + images * (conv_in + 1));
    const double step_bytes = f32 * (9 * params + images * (conv_in + 1));
    const auto images_on = [batch](const cuda_executor& exec) {
      return std::make_shared<nn::device_tensor>(filled(exec, {batch, 3, 64, 64}, 31));
    };
    const auto labels_on = [batch](const cuda_executor& exec) {
      auto y = std::make_shared<nn::device_tensor>(nn::device_tensor::from_host({batch, 1, 1, 1}, labels(batch), exec.stream()));
      exec.synchronize();
      return y;
    };
    add_gpu_case("nn_forward", "gpu", batch, fwd_bytes, images, [=](gpukit::stream_view s) {
      const cuda_executor exec(s);
      auto model = seed_model(exec, batch);
      auto x = images_on(exec);
      return [=](gpukit::stream_view) { (void)model->forward(*x); };
    });
    add_gpu_case("nn_forward", "graph", batch, fwd_bytes, images, [=](gpukit::stream_view s) {
      const cuda_executor exec(s);
      auto model = seed_model(exec, batch);
      auto x = images_on(exec);
      auto g = std::make_shared<nn::graph>(model->capture_forward(*x));
      // The graph reads and writes the model's and x's memory: keep them alive with it.
      return [g, model, x](gpukit::stream_view st) { g->replay(st); };
    });
    add_gpu_case("nn_train_step", "gpu", batch, step_bytes, images, [=](gpukit::stream_view s) {
      const cuda_executor exec(s);
      auto model = seed_model(exec, batch);
      auto x = images_on(exec);
      auto y = labels_on(exec);
      return [=](gpukit::stream_view) { model->train_step_async(*x, *y); };
    });
    add_gpu_case("nn_train_step", "graph", batch, step_bytes, images, [=](gpukit::stream_view s) {
      const cuda_executor exec(s);
      auto model = seed_model(exec, batch);
      auto x = images_on(exec);
      auto y = labels_on(exec);
      auto g = std::make_shared<nn::graph>(model->capture_train_step(*x, *y));
      return [g, model, x, y](gpukit::stream_view st) { g->replay(st); };
    });
  }
  // The CPU fallback at batch 32 only: a step costs about a GFLOP.
  const double images = 32;
  add_cpu_case("nn_forward", "cpu", 32, f32 * (params + images * (conv_in + 1)), images, [] {
    auto model = seed_model(cpu_executor{}, 32);
    auto x = std::make_shared<nn::host_tensor<float>>(filled(cpu_executor{}, {32, 3, 64, 64}, 31));
    return [=] { (void)model->forward(*x); };
  });
  add_cpu_case("nn_train_step", "cpu", 32, f32 * (9 * params + images * (conv_in + 1)), images, [] {
    auto model = seed_model(cpu_executor{}, 32);
    auto x = std::make_shared<nn::host_tensor<float>>(filled(cpu_executor{}, {32, 3, 64, 64}, 31));
    auto y = std::make_shared<nn::host_tensor<float>>(nn::host_tensor<float>::from_host({32, 1, 1, 1}, labels(32)));
    return [=] { (void)model->train_step(*x, *y); };
  });
}

}  // namespace

void register_nn_cases() {
  set_flops_per_item("nn_conv_fwd", conv_fwd_flops);
  set_flops_per_item("nn_conv_bwd", conv_bwd_flops);
  set_flops_per_item("nn_dense1_fwd", dense1_flops);
  set_flops_per_item("nn_dense1_bwd", 2 * dense1_flops);
  set_flops_per_item("nn_dense2_fwd", dense2_flops);
  set_flops_per_item("nn_dense2_bwd", 2 * dense2_flops);
  set_flops_per_item("nn_forward", forward_flops);
  set_flops_per_item("nn_train_step", step_flops);
  register_layers();
  register_pooling();
  register_batchnorm();
  register_gelu();
  register_adam();
  register_model();
}

}  // namespace gpukit_bench
