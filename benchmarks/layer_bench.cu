// Each conv and dense layer of the model zoo (benchmarks/zoo/models.json) alone, on the GPU,
// at the zoo's largest batch size and in each precision (nn/precision.hpp):
//   zoo_layer_<model>_<layer>_fwd/<precision>/<batch>   the forward pass of the layer's stage:
//       its products with bias and activation, and the max-pool when the plan fuses one
//   zoo_layer_<model>_<layer>_bwd/<precision>/<batch>   its backward pass: weight and bias
//       gradients and, past the first layer, the input gradient (with the slope of the
//       activation before it folded in, as in the model)
// Conv stages take the path the model's plan gives them (model_plan::for_batch, which asks
// the layer's selection function with the precision in the target); dense stages take the
// path of a standalone call (choose_dense_path without the model's last-layer and Adam
// fusions, which need the loss and the optimizer). FLOPs count 2 per multiply-add of the
// layer's products (backward: the weight gradient and, when computed, the input gradient).
//
// At exit a table gives each case's TFLOP/s next to the dense tensor-core peak of its
// precision: SMs x SM clock x FLOP per clock per SM, 1024 (compute capability 8.0) or 2048
// (9.0) for TF32 and twice that for BF16; an fp32 model's products are 3xTF32, three TF32
// products each, so its peak is a third of TF32's. Where the peak of a GPU is not known the
// column is empty. These are the chips' dense figures; the legacy mma.sync path the engine
// issues reaches a part of them.
#include "gpukit/gpukit.cuh"
#include "support/harness.hpp"
#include "zoo/zoo.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace gpukit_bench {
namespace {

namespace nn = gpukit::nn;
namespace detail = gpukit::nn::detail;
using gpukit::cuda_executor;
using gpukit::device_buffer;

constexpr nn::precision layer_precisions[] = {nn::precision::fp32, nn::precision::tf32, nn::precision::bf16};

struct layer_case {
  std::string description;  // the layer's shape and path, for the exit table
  double flops_per_image = 0;
  nn::precision numbers = nn::precision::fp32;
};
std::map<std::string, layer_case>& layer_cases() {
  static std::map<std::string, layer_case> m;
  return m;
}

/// Dense tensor-core FLOP per clock per SM of a product in precision `p` on compute
/// capability `cc`; 0 where not known.
double tensor_flops_per_clock(nn::precision p, int cc) {
  const double tf32 = cc == 80 ? 1024.0 : cc == 90 ? 2048.0 : 0.0;
  return p == nn::precision::bf16 ? 2.0 * tf32 : p == nn::precision::fp32 ? tf32 / 3.0 : tf32;
}

std::vector<float> uniform(std::size_t n, float lo, float hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& e : v) e = u(rng);
  return v;
}

/// A case's executor with a workspace of its own (the scratch of the layer's kernels is
/// reserved once, not allocated per call); the call keeps it alive.
struct stream_context {
  gpukit::workspace ws;
  cuda_executor exec;
  explicit stream_context(gpukit::stream_view s) : ws(s), exec(s, ws) {}
  stream_context(const stream_context&) = delete;
  stream_context& operator=(const stream_context&) = delete;
};

/// The buffers of one stage at one batch size: inputs random, outputs uninitialised.
struct stage_buffers {
  device_buffer<float> x, w, b, y, dy, dw, db, dx;
  device_buffer<std::int32_t> argmax;
  stage_buffers(std::size_t in, std::size_t out, std::size_t weights, std::size_t bias, bool pooled,
                gpukit::stream_view s)
      : x(device_buffer<float>::from_host(uniform(in, 0.0f, 1.0f, 1), s)),
        w(device_buffer<float>::from_host(uniform(weights, -0.05f, 0.05f, 2), s)),
        b(device_buffer<float>::from_host(uniform(bias, -0.1f, 0.1f, 3), s)),
        y(out, s),
        dy(device_buffer<float>::from_host(uniform(out, -1.0f, 1.0f, 4), s)),
        dw(device_buffer<float>::from_host(std::vector<float>(weights, 0.0f), s)),
        db(device_buffer<float>::from_host(std::vector<float>(bias, 0.0f), s)),
        dx(in, s),
        argmax(pooled ? out : 0, s) {}
};

/// The exit table's entries of a stage's two cases, and their FLOPs per image for the
/// harness's table: 2 per multiply-add forward, backward the same for dw and again for dx.
void describe_stage(const std::string& family, nn::precision p, const std::string& text, double macs, bool dx) {
  layer_cases()[family + "_fwd/" + nn::precision_name(p)] = {text, 2 * macs, p};
  layer_cases()[family + "_bwd/" + nn::precision_name(p)] = {text, (dx ? 4 : 2) * macs, p};
  set_flops_per_item(family + "_fwd", 2 * macs);
  set_flops_per_item(family + "_bwd", (dx ? 4 : 2) * macs);
}

void register_stage(const std::string& family, const std::string& shape, nn::precision p, std::size_t batch,
                    const nn::model_plan& plan, std::size_t index) {
  const nn::stage_plan& st = plan.stages()[index];
  const double images = static_cast<double>(batch);
  if (st.kind == nn::stage_kind::conv) {
    const detail::conv2d_path path = plan.for_batch(batch).stages[index].conv;
    const detail::conv_geometry g = st.conv_geometry(batch), gb = st.conv_backward_geometry(batch);
    const double macs = static_cast<double>(g.oc) * g.oh * g.ow * static_cast<double>(g.kdim());
    const std::string text = shape + " | " + path.describe();
    const bool dx = st.needs_dx;
    describe_stage(family, p, text, macs, dx);
    const auto buffers = [=](gpukit::stream_view s) {
      return std::make_shared<stage_buffers>(static_cast<std::size_t>(g.input_size()),
                                             static_cast<std::size_t>(g.output_size()), st.w_count, st.b_count,
                                             g.pooled, s);
    };
    add_gpu_case(family + "_fwd", nn::precision_name(p), batch, 0, images, [=](gpukit::stream_view s) {
      auto d = buffers(s);
      const auto on = std::make_shared<stream_context>(s);
      return [=](gpukit::stream_view) {
        detail::conv_forward_impl(on->exec, g, path, d->x.data(), d->w.data(), d->b.data(), d->y.data(),
                                  g.pooled ? d->argmax.data() : nullptr);
      };
    });
    add_gpu_case(family + "_bwd", nn::precision_name(p), batch, 0, images, [=](gpukit::stream_view s) {
      auto d = buffers(s);
      const auto on = std::make_shared<stream_context>(s);
      detail::conv_forward_impl(on->exec, g, path, d->x.data(), d->w.data(), d->b.data(), d->y.data(),
                                g.pooled ? d->argmax.data() : nullptr);  // y and argmax as the forward leaves them
      detail::conv_backward_extras<float> extra;
      extra.dx_act = st.dx_act;
      extra.dx_act_y = st.dx_act != nn::activation::none ? d->x.data() : nullptr;  // x stands in for the producer's y
      return [=](gpukit::stream_view) {
        detail::conv_backward_impl(on->exec, gb, path, d->x.data(), d->w.data(), d->y.data(),
                                   g.pooled ? d->argmax.data() : nullptr, d->dy.data(), d->dw.data(), d->db.data(),
                                   dx ? d->dx.data() : nullptr, extra);
      };
    });
  } else {
    const detail::dense_geometry g = st.dense_geometry(batch);
    const detail::dense_path path = nn::choose_dense_path(g, plan.target());
    const double macs = static_cast<double>(g.in) * g.out;
    const std::string text = shape + " | " + path.describe();
    const bool dx = st.needs_dx;
    const nn::activation act = st.act;
    describe_stage(family, p, text, macs, dx);
    const auto buffers = [=](gpukit::stream_view s) {
      return std::make_shared<stage_buffers>(batch * g.in, batch * g.out, st.w_count, st.b_count, false, s);
    };
    add_gpu_case(family + "_fwd", nn::precision_name(p), batch, 0, images, [=](gpukit::stream_view s) {
      auto d = buffers(s);
      const auto on = std::make_shared<stream_context>(s);
      return [=](gpukit::stream_view) {
        detail::dense_forward_impl(on->exec, g, path, d->x.data(), d->w.data(), d->b.data(),
                                   d->y.data(), act, static_cast<float*>(nullptr));
      };
    });
    add_gpu_case(family + "_bwd", nn::precision_name(p), batch, 0, images, [=](gpukit::stream_view s) {
      auto d = buffers(s);
      const auto on = std::make_shared<stream_context>(s);
      detail::dense_forward_impl(on->exec, g, path, d->x.data(), d->w.data(), d->b.data(), d->y.data(),
                                 act, static_cast<float*>(nullptr));
      detail::dense_backward_extras<float> extra;
      extra.dx_act = st.dx_act;
      extra.dx_act_y = st.dx_act != nn::activation::none ? d->x.data() : nullptr;
      return [=](gpukit::stream_view) {
        detail::dense_backward_impl(on->exec, g, path, d->x.data(), d->w.data(), d->y.data(),
                                    d->dy.data(), d->dw.data(), d->db.data(), dx ? d->dx.data() : nullptr,
                                    st.backward_act(), extra);
      };
    });
  }
}

void register_model(const zoo::model& m, const nn::path_target& target) {
  // Only the layer names (Keras') are taken from a model; it is never compiled.
  nn::sequential<gpukit::cpu_executor> net(gpukit::cpu_executor{}, m.input.c, m.input.h, m.input.w);
  for (const auto& l : m.layers) net.add(l);
  std::vector<nn::layer> layers;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < net.size(); ++i) layers.push_back(net.layer_at(i)), names.push_back(net.layer_name(i));
  const std::size_t batch = zoo::batches().back();
  for (const nn::precision p : layer_precisions) {
    const nn::model_plan plan(m.input, layers, names, batch, m.loss, nn::adam{}, target.with_precision(p));
    for (std::size_t i = 0; i < plan.stages().size(); ++i) {
      const nn::stage_plan& st = plan.stages()[i];
      if (st.kind != nn::stage_kind::conv && st.kind != nn::stage_kind::dense) continue;
      const nn::shape4 in = st.in, out = st.out;
      const std::string shape = std::to_string(in.c) + "x" + std::to_string(in.h) + "x" + std::to_string(in.w) +
                                " -> " + std::to_string(out.c) + "x" + std::to_string(out.h) + "x" +
                                std::to_string(out.w);
      register_stage("zoo_layer_" + m.name + "_" + names[st.first_layer], shape, p, batch, plan, i);
    }
  }
}

void print_layer_summary() {
  bool any = false;
  for (const auto& r : results()) any = any || layer_cases().count(r.family + "/" + r.variant) != 0;
  if (!any) return;
  const auto info = gpukit::device_properties(gpukit::current_device());
  const double clock = static_cast<double>(info.clock_rate_khz) * 1e3;
  std::printf("\nZoo layers alone (TFLOP/s of the layer's products; peak = %d SMs x %.2f GHz x dense tensor FLOP/clk/SM "
              "of the precision, fp32 = 3xTF32 = a third of TF32's)\n",
              info.sm_count, clock / 1e9);
  std::printf("| layer | pass | precision | batch | time (us) | TFLOP/s | of peak | shape and path |\n");
  std::printf("|---|---|---|---:|---:|---:|---:|---|\n");
  for (const auto& r : results()) {
    const auto it = layer_cases().find(r.family + "/" + r.variant);
    if (it == layer_cases().end()) continue;
    const layer_case& c = it->second;
    const double tflops = c.flops_per_image * r.items / r.seconds / 1e12;
    const double peak = static_cast<double>(info.sm_count) * clock *
                        tensor_flops_per_clock(c.numbers, info.compute_capability()) / 1e12;
    char share[32] = "";
    if (peak > 0) std::snprintf(share, sizeof share, "%.1f%%", 100.0 * tflops / peak);
    const bool backward = r.family.size() > 4 && r.family.compare(r.family.size() - 4, 4, "_bwd") == 0;
    std::printf("| %s | %s | %s | %s | %.1f | %.1f | %s | %s |\n", r.family.substr(10, r.family.size() - 14).c_str(),
                backward ? "bwd" : "fwd", r.variant.c_str(), r.size.c_str(), r.seconds * 1e6, tflops, share,
                c.description.c_str());
  }
}

}  // namespace

void register_layer_cases() {
  (void)results();  // constructed before the exit handler is registered, so destroyed after it
  (void)layer_cases();
  // Without a GPU the cases are registered for an H100's plan and counted as skipped.
  const bool gpu = gpukit::is_cuda_available();
  if (gpu) std::atexit(print_layer_summary);
  const nn::path_target target = gpu ? nn::path_target::current_gpu() : nn::path_target::gpu_with(132, 90);
  for (const zoo::model& m : zoo::models()) register_model(m, target);
}

}  // namespace gpukit_bench
