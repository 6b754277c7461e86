// gpukit/nn/summary.hpp — the text of sequential::summary(): Keras' table (each layer with
// its output shape and parameter count) and, once the model is compiled, the kernel path
// each fused stage takes and why, as its layer's selection function chose it.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/text.hpp"
#include "gpukit/nn/layers.hpp"
#include "gpukit/nn/loss.hpp"
#include "gpukit/nn/model_plan.hpp"
#include "gpukit/nn/optimizer.hpp"

#include <string>
#include <vector>

namespace gpukit::nn {

/// `names`, `layers` and `shapes` (one sample each) in model order; `plan` null before compile.
inline std::string model_summary(const std::vector<std::string>& names, const std::vector<layer>& layers,
                                 const std::vector<shape4>& shapes, const model_plan* plan) {
  using gpukit::detail::pad_right;
  using gpukit::detail::with_thousands;
  const std::string rule(67, '_'), double_rule(67, '=');
  std::string s = "Model: \"sequential\"\n" + rule + "\n";
  s += " " + pad_right("Layer (type)", 30) + pad_right("Output Shape", 26) + "Param #\n";
  s += double_rule + "\n";
  std::size_t total = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string label = names[i] + " (" + layer_type_name(layers[i]) + ")";
    s += " " + pad_right(label, 30) + pad_right(sample_string(shapes[i]), 26) +
         with_thousands(parameter_count(layers[i])) + "\n";
    total += parameter_count(layers[i]);
  }
  s += double_rule + "\n";
  s += "Total params: " + with_thousands(total) + "\n";
  s += "Trainable params: " + with_thousands(total) + "\n";
  s += "Non-trainable params: 0\n" + rule + "\n";
  if (plan == nullptr) return s;
  s += "Kernel paths on the " + plan->target().to_string();
  if (plan->target().gpu) s += ", batch " + std::to_string(plan->max_batch());
  s += ":\n";
  const auto& stages = plan->stages();
  for (std::size_t i = 0; i < stages.size(); ++i) {
    std::string stage;
    for (std::size_t l = stages[i].first_layer; l <= stages[i].last_layer; ++l)
      stage += (l == stages[i].first_layer ? "" : "+") + names[l];
    s += " " + stage + ": " + plan->path_text(i) + "\n";
  }
  const batch_plan& bp = plan->for_batch(plan->max_batch());
  s += " loss " + std::string(loss_name(plan->loss_function())) + ": " + bp.loss.describe() + "\n";
  s += " optimizer: " + plan->optimizer_route().describe(plan->optimizer_config()) + "\n";
  return s;
}

}  // namespace gpukit::nn
