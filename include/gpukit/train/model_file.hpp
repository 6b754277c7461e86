// gpukit/train/model_file.hpp — a sequential model's weights as a safetensors file that
// PyTorch can load, with the architecture alongside so the model can be rebuilt from it.
//
//   train::save_model("cnn.safetensors", model);                       // any executor
//   auto m = train::load_model("cnn.safetensors", gpukit::cuda_executor{stream});
//   train::load_weights("cnn.safetensors", other);                    // same layers
//
// Tensor names and shapes are those of torch.nn.Sequential holding the same layers:
// "<k>.weight" and "<k>.bias", where k is the layer's position in the model counting
// every layer (activations, pooling and flatten included), as torch.nn.Sequential numbers
// its modules. Conv2D weights are (out, in, kh, kw) (PyTorch's OIHW), Dense weights
// (out, in) (torch.nn.Linear), biases (out; none for a layer made with no_bias(), whose
// architecture entry says "bias": false, torch's bias=False). A batch norm holds PyTorch's five: weight and
// bias (c), running_mean and running_var (c, F32) and num_batches_tracked (a scalar, I64).
// The seed CNN's file holds 0.weight
// (32, 3, 3, 3), 0.bias, 4.weight (128, 30752), 4.bias, 6.weight (1, 128), 6.bias; with
// the matching nn.Sequential, model.load_state_dict(safetensors.torch.load_file(path))
// takes it as it is (Flatten of NCHW is the same order in both).
//
// "__metadata__" holds "format": "pt" and "gpukit.architecture": JSON with the input
// shape, every layer and its arguments, and the loss (a Conv2D's "padding" is a size for
// every side, "same", or [top, bottom, left, right]; its "dilation" is written when not 1;
// the torch builders map both). The optimizer's state is not saved:
// a loaded model trains on with fresh moments.
//
// Errors: a damaged file is an io::safetensors_error (see io/safetensors.hpp); a file that
// does not fit the model — a missing or extra tensor, another shape or dtype, missing or
// unreadable architecture — is a model_file_error naming the file and the tensor or key.
// Loading checks every tensor before it writes any: a rejected file leaves the model's
// weights as they were. GPU models are copied through host memory on the model's stream
// (save and load wait for it).
// Host-only: compiles with a plain C++17 compiler (GPU models need nvcc, as the model does).
#pragma once

#include "gpukit/core/transfer.hpp"
#include "gpukit/io/safetensors.hpp"
#include "gpukit/nn/sequential.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace gpukit::train {

/// A model file that is a valid safetensors file but does not fit the model (or holds no
/// architecture to rebuild one); what() is "<file>: <reason>".
class model_file_error : public std::runtime_error {
 public:
  model_file_error(const std::string& file, const std::string& reason)
      : std::runtime_error(file + ": " + reason), file_(file), reason_(reason) {}
  const std::string& file() const noexcept { return file_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string file_, reason_;
};

/// The metadata key holding the architecture.
inline constexpr const char* architecture_key = "gpukit.architecture";

/// What load_model compiles the rebuilt model with.
struct load_options {
  std::size_t max_batch = 32;               ///< the largest batch the model will take
  nn::optimizer optimizer = nn::adam{};     ///< for further training (fresh state)
};

namespace detail {

/// Which of a layer's tensors an entry is.
enum class tensor_part { weight, bias, running_mean, running_var, batches_tracked };

/// One tensor the model has: its name, its PyTorch shape and which layer/part it is.
struct expected_tensor {
  std::string name;
  std::vector<std::size_t> shape;
  std::size_t layer = 0;
  tensor_part part = tensor_part::weight;
  const char* dtype() const noexcept { return part == tensor_part::batches_tracked ? "I64" : "F32"; }
};

inline std::vector<expected_tensor> expected_tensors(const std::vector<nn::layer>& layers) {
  std::vector<expected_tensor> out;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string k = std::to_string(i);
    if (const auto* c = std::get_if<nn::conv2d>(&layers[i])) {
      out.push_back({k + ".weight", {c->out_channels, c->in_channels, c->kernel.h, c->kernel.w}, i, tensor_part::weight});
      if (c->use_bias) out.push_back({k + ".bias", {c->out_channels}, i, tensor_part::bias});
    } else if (const auto* d = std::get_if<nn::dense>(&layers[i])) {
      out.push_back({k + ".weight", {d->out_features, d->in_features}, i, tensor_part::weight});
      if (d->use_bias) out.push_back({k + ".bias", {d->out_features}, i, tensor_part::bias});
    } else if (const auto* b = std::get_if<nn::batchnorm>(&layers[i])) {
      out.push_back({k + ".weight", {b->features}, i, tensor_part::weight});
      out.push_back({k + ".bias", {b->features}, i, tensor_part::bias});
      out.push_back({k + ".running_mean", {b->features}, i, tensor_part::running_mean});
      out.push_back({k + ".running_var", {b->features}, i, tensor_part::running_var});
      out.push_back({k + ".num_batches_tracked", {}, i, tensor_part::batches_tracked});
    }
  }
  return out;
}

template <class Model>
std::vector<nn::layer> layers_of(const Model& m) {
  std::vector<nn::layer> layers;
  for (std::size_t i = 0; i < m.size(); ++i) layers.push_back(m.layer_at(i));
  return layers;
}

inline std::string shape_string(const std::vector<std::size_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

inline nlohmann::json layer_json(const nn::layer& l) {
  nlohmann::json j;
  j["type"] = nn::layer_type_name(l);
  if (const auto* c = std::get_if<nn::conv2d>(&l)) {
    j["in_channels"] = c->in_channels;
    j["out_channels"] = c->out_channels;
    j["kernel_size"] = {c->kernel.h, c->kernel.w};
    j["stride"] = c->stride;
    if (c->padding.is_same()) {
      j["padding"] = "same";
    } else if (c->padding.symmetric()) {
      j["padding"] = c->padding.top;
    } else {
      j["padding"] = {c->padding.top, c->padding.bottom, c->padding.left, c->padding.right};
    }
    if (c->dilation != 1) j["dilation"] = c->dilation;
    j["weight_init"] = nn::init_name(c->weight_init);
    if (!c->use_bias) j["bias"] = false;
  } else if (const auto* p = std::get_if<nn::maxpool2d>(&l)) {
    j["window"] = {p->window.h, p->window.w};
    j["stride"] = {p->stride.h, p->stride.w};
  } else if (const auto* a = std::get_if<nn::avgpool2d>(&l)) {
    j["window"] = {a->window.h, a->window.w};
    j["stride"] = {a->stride.h, a->stride.w};
  } else if (const auto* dr = std::get_if<nn::dropout>(&l)) {
    j["p"] = dr->p;
  } else if (const auto* b = std::get_if<nn::batchnorm>(&l)) {
    j["features"] = b->features;
    j["eps"] = b->eps;
    j["momentum"] = b->momentum;
    j["dims"] = b->dims;
  } else if (const auto* lr = std::get_if<nn::leaky_relu>(&l)) {
    j["negative_slope"] = lr->negative_slope;
  } else if (const auto* g = std::get_if<nn::gelu>(&l)) {
    j["approximate"] = g->tanh_approximation ? "tanh" : "none";
  } else if (const auto* d = std::get_if<nn::dense>(&l)) {
    j["in_features"] = d->in_features;
    j["out_features"] = d->out_features;
    j["weight_init"] = nn::init_name(d->weight_init);
    if (!d->use_bias) j["bias"] = false;
  }
  return j;
}

/// Reads field `key` of layer `index` as a size, or throws model_file_error naming them.
inline std::size_t size_field(const nlohmann::json& j, const char* key, std::size_t index, const std::string& file) {
  if (!j.contains(key) || !j[key].is_number_unsigned())
    throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) + " has no size '" +
                                     key + "'");
  return j[key].get<std::size_t>();
}
inline nn::kernel_size pair_field(const nlohmann::json& j, const char* key, std::size_t index, const std::string& file) {
  if (!j.contains(key) || !j[key].is_array() || j[key].size() != 2 || !j[key][0].is_number_unsigned() ||
      !j[key][1].is_number_unsigned())
    throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) + " has no pair '" +
                                     key + "'");
  return {j[key][0].get<std::size_t>(), j[key][1].get<std::size_t>()};
}
inline nn::init init_field(const nlohmann::json& j, std::size_t index, const std::string& file) {
  const std::string name = j.value("weight_init", std::string("glorot_uniform"));
  for (nn::init i : {nn::init::glorot_uniform, nn::init::he_uniform, nn::init::he_normal, nn::init::zeros})
    if (name == nn::init_name(i)) return i;
  throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) +
                                   " has an unknown weight_init '" + name + "'");
}

/// A conv layer's field "padding": a size (every side), "same", "valid", or
/// [top, bottom, left, right].
inline nn::conv_padding padding_field(const nlohmann::json& j, std::size_t index, const std::string& file) {
  const auto bad = [&] {
    return model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) +
                                      " has no 'padding' (a size, \"same\", \"valid\" or [top, bottom, left, right])");
  };
  if (!j.contains("padding")) throw bad();
  const nlohmann::json& p = j["padding"];
  if (p.is_number_unsigned()) return nn::conv_padding(p.get<std::size_t>());
  if (p.is_string()) {
    if (p.get<std::string>() == "same") return nn::conv_padding::same;
    if (p.get<std::string>() == "valid") return nn::conv_padding::valid;
    throw bad();
  }
  if (p.is_array() && p.size() == 4 && std::all_of(p.begin(), p.end(), [](const nlohmann::json& v) {
        return v.is_number_unsigned();
      }))
    return nn::conv_padding::sides(p[0].get<std::size_t>(), p[1].get<std::size_t>(), p[2].get<std::size_t>(),
                                   p[3].get<std::size_t>());
  throw bad();
}

/// Whether a conv or dense layer has a bias: field "bias" (a boolean), true when absent.
inline bool bias_field(const nlohmann::json& j, std::size_t index, const std::string& file) {
  if (!j.contains("bias")) return true;
  if (!j["bias"].is_boolean())
    throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) +
                                     " has a 'bias' that is not true or false");
  return j["bias"].get<bool>();
}

inline nn::layer layer_from_json(const nlohmann::json& j, std::size_t index, const std::string& file) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) + " has no type");
  const std::string type = j["type"].get<std::string>();
  try {
    if (type == "Conv2D") {
      nn::conv2d c(size_field(j, "in_channels", index, file), size_field(j, "out_channels", index, file),
                   pair_field(j, "kernel_size", index, file), size_field(j, "stride", index, file),
                   padding_field(j, index, file), init_field(j, index, file));
      if (j.contains("dilation")) c = c.dilated(size_field(j, "dilation", index, file));
      return bias_field(j, index, file) ? c : c.no_bias();
    }
    if (type == "MaxPooling2D") return nn::maxpool2d(pair_field(j, "window", index, file), pair_field(j, "stride", index, file));
    if (type == "Dropout") {
      if (!j.contains("p") || !j["p"].is_number())
        throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) +
                                         " has no number 'p'");
      return nn::dropout(j["p"].get<float>());
    }
    if (type == "BatchNormalization") {
      for (const char* key : {"eps", "momentum"})
        if (!j.contains(key) || !j[key].is_number())
          throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) +
                                           " has no number '" + key + "'");
      const std::size_t dims = size_field(j, "dims", index, file);
      return nn::batchnorm(size_field(j, "features", index, file), j["eps"].get<float>(), j["momentum"].get<float>(),
                           dims == 1 ? 1 : dims == 2 ? 2 : 0);
    }
    if (type == "LeakyReLU") {
      if (!j.contains("negative_slope") || !j["negative_slope"].is_number())
        throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) +
                                         " has no number 'negative_slope'");
      return nn::leaky_relu(j["negative_slope"].get<float>());
    }
    if (type == "GELU") {
      const std::string approximate = j.contains("approximate") && j["approximate"].is_string()
                                          ? j["approximate"].get<std::string>()
                                          : std::string("?");
      if (approximate != "none" && approximate != "tanh")
        throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) +
                                         " has no 'approximate' of \"none\" or \"tanh\"");
      return nn::gelu(approximate == "tanh");
    }
    if (type == "AveragePooling2D")
      return nn::avgpool2d(pair_field(j, "window", index, file), pair_field(j, "stride", index, file));
    if (type == "Dense") {
      nn::dense d(size_field(j, "in_features", index, file), size_field(j, "out_features", index, file),
                  init_field(j, index, file));
      return bias_field(j, index, file) ? d : d.no_bias();
    }
  } catch (const std::invalid_argument& e) {
    throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) + ": " + e.what());
  }
  if (type == "Flatten") return nn::flatten{};
  if (type == "GlobalAveragePooling2D") return nn::global_avgpool2d{};
  if (type == "ReLU") return nn::relu{};
  if (type == "Sigmoid") return nn::sigmoid{};
  if (type == "Tanh") return nn::tanh{};
  if (type == "Softmax") return nn::softmax{};
  throw model_file_error(file, std::string(architecture_key) + ": layer " + std::to_string(index) +
                                   " has an unknown type '" + type + "'");
}

inline nn::loss loss_from_name(const std::string& name, const std::string& file) {
  const nn::loss all[] = {nn::binary_crossentropy{}, nn::binary_crossentropy_with_logits{}, nn::mean_squared_error{},
                          nn::softmax_crossentropy{}};
  for (const auto& l : all)
    if (name == nn::loss_name(l)) return l;
  throw model_file_error(file, std::string(architecture_key) + ": unknown loss '" + name + "'");
}

/// Checks every tensor the model has against `f` (present, F32, same shape) and that `f`
/// has no others; throws model_file_error before anything is written.
inline void check_tensors(const io::safetensors_file& f, const std::vector<expected_tensor>& want) {
  for (const auto& e : want) {
    const io::safetensors_entry* t = f.find(e.name);
    if (t == nullptr) throw model_file_error(f.source(), "the model's tensor '" + e.name + "' " + shape_string(e.shape) + " is missing");
    if (t->dtype != e.dtype())
      throw model_file_error(f.source(), "tensor '" + e.name + "' has dtype " + t->dtype + ", the model needs " + e.dtype());
    if (t->shape != e.shape)
      throw model_file_error(f.source(), "tensor '" + e.name + "' has shape " + shape_string(t->shape) +
                                             ", the model's is " + shape_string(e.shape));
  }
  for (const auto& t : f.tensors()) {
    bool known = false;
    for (const auto& e : want) known = known || e.name == t.name;
    if (!known) throw model_file_error(f.source(), "tensor '" + t.name + "' is not a tensor of the model");
  }
}

/// The model's memory of float tensor `e`.
template <class Model>
auto float_tensor(Model& m, const expected_tensor& e) {
  switch (e.part) {
    case tensor_part::bias: return m.bias(e.layer);
    case tensor_part::running_mean: return m.running_mean(e.layer);
    case tensor_part::running_var: return m.running_var(e.layer);
    default: return m.weights(e.layer);
  }
}

inline stream_view stream_of(const cuda_executor& exec) { return exec.stream(); }
inline stream_view stream_of(const cpu_executor&) { return {}; }

/// Throws model_file_error naming `file` for what `build` refuses (std::invalid_argument).
template <class Build>
auto rebuild(const std::string& file, Build&& build) {
  try {
    return build();
  } catch (const std::invalid_argument& e) {
    throw model_file_error(file, std::string(architecture_key) + ": " + e.what());
  }
}

}  // namespace detail

/// The architecture JSON stored under "gpukit.architecture".
template <class Exec>
std::string architecture_json(const nn::sequential<Exec>& model) {
  nlohmann::json j;
  j["format"] = "gpukit.sequential";
  j["version"] = 1;
  const nn::shape4 in = model.input_shape();
  j["input"] = {in.c, in.h, in.w};
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t i = 0; i < model.size(); ++i) layers.push_back(detail::layer_json(model.layer_at(i)));
  j["layers"] = layers;
  if (model.compiled()) j["loss"] = nn::loss_name(model.loss_function());
  return j.dump();
}

/// Writes the weights of `model` (compiled) and its architecture to `path`, with `metadata`
/// (strings an application keeps alongside, e.g. class names) added to "__metadata__";
/// see the header comment. GPU: waits for the model's stream.
template <class Exec>
void save_model(const std::string& path, nn::sequential<Exec>& model,
                const std::map<std::string, std::string>& metadata = {}) {
  static_assert(std::is_same_v<typename nn::sequential<Exec>::value_type, float>, "model files hold float32 weights");
  gpukit::detail::require(model.compiled(), "gpukit::train::save_model", "argument 'model' is not compiled: it has no weights yet");
  for (const char* reserved : {"format", architecture_key})
    gpukit::detail::require(metadata.count(reserved) == 0, "gpukit::train::save_model",
                            std::string("argument 'metadata' holds the key '") + reserved + "', which save_model writes");
  const auto want = detail::expected_tensors(detail::layers_of(model));
  std::vector<std::vector<float>> values;
  std::vector<std::vector<std::int64_t>> counters;
  values.reserve(want.size());
  counters.reserve(want.size());
  for (const auto& e : want) {
    if (e.part == detail::tensor_part::batches_tracked) {
      std::vector<std::int64_t> host(1);
      transfer(make_host_span(host), model.batches_tracked(e.layer), detail::stream_of(model.executor()));
      counters.push_back(std::move(host));
      continue;
    }
    auto src = detail::float_tensor(model, e);
    std::vector<float> host(src.size());
    transfer(make_host_span(host), src, detail::stream_of(model.executor()));  // GPU: waits
    values.push_back(std::move(host));
  }
  std::vector<io::safetensors_tensor> tensors;
  std::vector<io::safetensors_i64_tensor> i64_tensors;
  std::size_t f = 0, c = 0;
  for (const auto& e : want) {
    if (e.part == detail::tensor_part::batches_tracked) {
      i64_tensors.push_back({e.name, e.shape, make_host_span(static_cast<const std::vector<std::int64_t>&>(counters[c++]))});
    } else {
      tensors.push_back({e.name, e.shape, make_host_span(static_cast<const std::vector<float>&>(values[f++]))});
    }
  }
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "pt";
  meta[architecture_key] = architecture_json(model);
  io::write_safetensors(path, tensors, meta, i64_tensors);
}

/// Loads the weights of an already-read file into `model`, which must have the same
/// layers; see the header comment.
template <class Exec>
void load_weights(const io::safetensors_file& file, nn::sequential<Exec>& model) {
  static_assert(std::is_same_v<typename nn::sequential<Exec>::value_type, float>, "model files hold float32 weights");
  gpukit::detail::require(model.compiled(), "gpukit::train::load_weights", "argument 'model' is not compiled: compile it first");
  const auto want = detail::expected_tensors(detail::layers_of(model));
  detail::check_tensors(file, want);
  std::vector<std::vector<float>> values;
  std::vector<std::vector<std::int64_t>> counters;
  for (const auto& e : want) {
    if (e.part == detail::tensor_part::batches_tracked) {
      counters.push_back(file.i64(e.name));
    } else {
      values.push_back(file.f32(e.name));
    }
  }
  std::size_t f = 0, c = 0;
  for (const auto& e : want) {
    if (e.part == detail::tensor_part::batches_tracked) {
      transfer(model.batches_tracked(e.layer), make_host_span(static_cast<const std::vector<std::int64_t>&>(counters[c++])),
               detail::stream_of(model.executor()));
    } else {
      transfer(detail::float_tensor(model, e), make_host_span(static_cast<const std::vector<float>&>(values[f++])),
               detail::stream_of(model.executor()));
    }
  }
}

/// Reads `path` and loads its weights into `model`.
template <class Exec>
void load_weights(const std::string& path, nn::sequential<Exec>& model) {
  load_weights(io::read_safetensors(path), model);
}

/// Rebuilds the model saved at `path` on `exec`, compiled with its loss and `options`,
/// holding the saved weights.
template <class Exec>
nn::sequential<Exec> load_model(const std::string& path, const Exec& exec, const load_options& options = {}) {
  gpukit::detail::require(options.max_batch >= 1, "gpukit::train::load_model", "argument 'options.max_batch' = 0 must be at least 1");
  const io::safetensors_file file = io::read_safetensors(path);
  const auto it = file.metadata().find(architecture_key);
  if (it == file.metadata().end())
    throw model_file_error(path, std::string("no '") + architecture_key + "' in the metadata: the file holds weights only");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw model_file_error(path, std::string(architecture_key) + " is not valid JSON: " + e.what());
  }
  if (!j.is_object() || j.value("format", std::string()) != "gpukit.sequential" || !j.contains("input") ||
      !j["input"].is_array() || j["input"].size() != 3 || !j.contains("layers") || !j["layers"].is_array())
    throw model_file_error(path, std::string(architecture_key) + " does not describe a gpukit.sequential (input, layers)");
  for (const auto& d : j["input"])
    if (!d.is_number_unsigned()) throw model_file_error(path, std::string(architecture_key) + ": input holds " + d.dump());
  const nn::loss loss = detail::loss_from_name(j.value("loss", std::string("binary_crossentropy")), path);
  nn::sequential<Exec> model = detail::rebuild(path, [&] {
    nn::sequential<Exec> m(exec, j["input"][0].get<std::size_t>(), j["input"][1].get<std::size_t>(),
                           j["input"][2].get<std::size_t>());
    for (std::size_t i = 0; i < j["layers"].size(); ++i) m.add(detail::layer_from_json(j["layers"][i], i, path));
    m.compile(options.max_batch, loss, options.optimizer);
    return m;
  });
  load_weights(file, model);
  return model;
}

}  // namespace gpukit::train
