// benchmarks/zoo/zoo.hpp — the model zoo, read from benchmarks/zoo/models.json (embedded
// at build time, so the programs carry their own copy): the same file the PyTorch peer
// (benchmarks/peers/torch_zoo.py) builds its models from.
//
//   for (const zoo::model& m : zoo::models()) {
//     auto net = zoo::build(m, exec, max_batch, seed);   // an nn::sequential, compiled with Adam
//     (a fifth argument picks the optimizer, a sixth the precision: nn::precision::tf32)
//   }
#pragma once

#include "gpukit/nn.hpp"
#include "gpukit/train/model_file.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace zoo {

namespace nn = gpukit::nn;

/// The text of models.json.
inline const char* models_json() {
  return
#include "zoo_models_json.inc"
      ;
}

struct model {
  std::string name, about;
  nn::shape4 input{};  // one sample
  std::vector<nn::layer> layers;
  nn::loss loss{};
  std::size_t classes = 0;  // outputs per sample

  /// Multiply-adds x 2 of one image's forward pass.
  double forward_flops() const { return flops(false); }
  /// ... and of its training step: forward, weight gradients, input gradients of every layer
  /// after the first one with parameters (what any framework computes).
  double train_flops() const { return flops(true); }

 private:
  double flops(bool training) const {
    double total = 0;
    nn::shape4 s = input;
    bool params_before = false;
    for (const auto& l : layers) {
      const nn::shape4 out = nn::output_shape(l, s, name);
      double f = 0;
      if (const auto* c = std::get_if<nn::conv2d>(&l)) f = 2.0 * out.features() * c->fan_in();
      if (const auto* d = std::get_if<nn::dense>(&l)) f = 2.0 * d->in_features * d->out_features;
      if (f > 0) {
        total += training ? f * (params_before ? 3 : 2) : f;
        params_before = true;
      }
      s = out;
    }
    return total;
  }
};

/// Every model of models.json, in its order.
inline const std::vector<model>& models() {
  static const std::vector<model> all = [] {
    const nlohmann::json doc = nlohmann::json::parse(models_json());
    std::vector<model> out;
    for (const auto& j : doc.at("models")) {
      model m;
      m.name = j.at("name").get<std::string>();
      m.about = j.value("about", std::string());
      m.input = {1, j.at("input")[0].get<std::size_t>(), j.at("input")[1].get<std::size_t>(),
                 j.at("input")[2].get<std::size_t>()};
      const std::string source = "benchmarks/zoo/models.json: " + m.name;
      for (std::size_t i = 0; i < j.at("layers").size(); ++i)
        m.layers.push_back(gpukit::train::detail::layer_from_json(j["layers"][i], i, source));
      m.loss = gpukit::train::detail::loss_from_name(j.at("loss").get<std::string>(), source);
      nn::shape4 s = m.input;
      for (const auto& l : m.layers) s = nn::output_shape(l, s, source);
      m.classes = s.features();
      out.push_back(std::move(m));
    }
    return out;
  }();
  return all;
}

/// The batch sizes the zoo is measured at.
inline std::vector<std::size_t> batches() {
  return nlohmann::json::parse(models_json()).at("batches").get<std::vector<std::size_t>>();
}

inline const model& find(const std::string& name) {
  for (const auto& m : models())
    if (m.name == name) return m;
  throw std::invalid_argument("zoo::find: no model '" + name + "' in benchmarks/zoo/models.json");
}

/// `m` as a gpukit model on `exec`, compiled for batches up to max_batch with Adam, its
/// conv and dense products in `numbers`.
template <class Exec, class T = float>
std::shared_ptr<nn::sequential<Exec, T>> build(const model& m, const Exec& exec, std::size_t max_batch,
                                               std::uint64_t seed, const nn::optimizer& opt = nn::adam{},
                                               nn::precision numbers = nn::precision::fp32) {
  auto net = std::make_shared<nn::sequential<Exec, T>>(exec, m.input.c, m.input.h, m.input.w);
  for (const auto& l : m.layers) net->add(l);
  net->set_precision(numbers);
  net->compile(max_batch, m.loss, opt, seed);
  return net;
}

/// Labels for `batch` samples in the model's output shape: class i % classes one-hot
/// (softmax), or i % 2 for a single output.
inline std::vector<float> labels(const model& m, std::size_t batch) {
  std::vector<float> y(batch * m.classes, 0.0f);
  for (std::size_t i = 0; i < batch; ++i) {
    if (m.classes == 1) {
      y[i] = static_cast<float>(i % 2);
    } else {
      y[i * m.classes + (i * 7 + 3) % m.classes] = 1.0f;
    }
  }
  return y;
}

}  // namespace zoo
