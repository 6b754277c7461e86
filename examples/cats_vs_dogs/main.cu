// examples/cats_vs_dogs — the seed article's cat-vs-dog CNN, end to end: make a dataset,
// train on it, predict single images.
//
//   cats_vs_dogs make-dataset --out DIR [--train-per-class N] [--test-per-class N] [--seed S] [--replace]
//   cats_vs_dogs train --data DIR --out model.safetensors [--epochs N] [--batch B] [--size S]
//                      [--seed S] [--cpu] [--no-augment] [--history FILE] [--precision P]
//   cats_vs_dogs predict --model model.safetensors IMAGE...
//
// make-dataset writes the synthetic two-class set (io/synthetic.hpp) as JPEG and PNG files
// in DIR/training_set/{cats,dogs} and DIR/test_set/{cats,dogs}; real photos in the same
// layout work the same way.
// train reads DIR/training_set (decoded and resized to S × S, default the article's 64)
// and DIR/test_set as validation, builds the article's model — Conv2D(32, 3×3) relu,
// MaxPool 2×2, Flatten, Dense 128 relu, Dense 1 sigmoid; binary cross-entropy, Adam —
// prints its summary, trains it with the article's augmentation (shear 0.2, zoom 0.2,
// horizontal flip; --no-augment: rescale only) for N epochs (default the article's 25) in
// batches of B (default 32), and saves it with the class names; --history FILE also writes
// the per-epoch history (train/history.hpp: .csv or .json), which scripts/plot draws;
// --precision fp32|tf32|bf16 picks the number format of the conv and dense products
// (nn/precision.hpp; default fp32).
// predict prints "IMAGE: Probability = 0.93 Prediction = dog" per image: the probability
// of the class with label 1 (the second folder name in sorted order), >= 0.5 meaning that
// class. For folders named cats/dogs the classes print as the article's cat/dog.
// The GPU runs everything when one is usable (train --cpu forces the CPU fallback).
// pytorch_predict.py beside this file loads the same model file into torch.nn.Sequential
// and prints the same lines for images of the model's input size.
#include <gpukit/gpukit.cuh>
#include <gpukit/io/dataset.hpp>
#include <gpukit/io/image_file.hpp>
#include <gpukit/io/resize.hpp>
#include <gpukit/io/synthetic.hpp>
#include <gpukit/nn.cuh>
#include <gpukit/train/fit.hpp>
#include <gpukit/train/history.hpp>
#include <gpukit/train/model_file.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {

namespace io = gpukit::io;
namespace nn = gpukit::nn;
namespace train = gpukit::train;

constexpr const char* classes_key = "cats_vs_dogs.classes";

[[noreturn]] void usage(const std::string& problem = {}) {
  if (!problem.empty()) std::fprintf(stderr, "cats_vs_dogs: %s\n", problem.c_str());
  std::fprintf(stderr,
               "usage: cats_vs_dogs make-dataset --out DIR [--train-per-class N] [--test-per-class N] [--seed S] [--replace]\n"
               "       cats_vs_dogs train --data DIR --out model.safetensors [--epochs N] [--batch B] [--size S]\n"
               "                          [--seed S] [--cpu] [--no-augment] [--history FILE] [--precision P]\n"
               "       cats_vs_dogs predict --model model.safetensors IMAGE...\n");
  std::exit(2);
}

/// "--name value" and "--flag" options, and the arguments that are neither.
struct arguments {
  std::map<std::string, std::string> values;
  std::vector<std::string> flags, rest;

  arguments(int argc, char** argv, const std::vector<std::string>& with_value, const std::vector<std::string>& known_flags) {
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      if (a.rfind("--", 0) != 0) {
        rest.push_back(a);
      } else if (std::find(with_value.begin(), with_value.end(), a) != with_value.end()) {
        if (i + 1 >= argc) usage(a + " needs a value");
        values[a] = argv[++i];
      } else if (std::find(known_flags.begin(), known_flags.end(), a) != known_flags.end()) {
        flags.push_back(a);
      } else {
        usage("unknown option " + a);
      }
    }
  }
  bool flag(const std::string& f) const { return std::find(flags.begin(), flags.end(), f) != flags.end(); }
  bool has(const std::string& k) const { return values.count(k) != 0; }
  std::string text(const std::string& k) const {
    const auto it = values.find(k);
    if (it == values.end()) usage(k + " is required");
    return it->second;
  }
  std::size_t number(const std::string& k, std::size_t fallback, std::size_t least = 1) const {
    const auto it = values.find(k);
    if (it == values.end()) return fallback;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
    if (end == it->second.c_str() || *end != '\0' || v < least)
      usage(k + " expects a whole number of at least " + std::to_string(least) + ", got '" + it->second + "'");
    return static_cast<std::size_t>(v);
  }
};

bool use_gpu(bool forced_cpu) {
  if (forced_cpu) {
    std::printf("Running the CPU fallback (--cpu).\n");
    return false;
  }
  if (!gpukit::is_cuda_available()) {
    std::printf("No usable CUDA device: running the CPU fallback.\n");
    return false;
  }
  const auto info = gpukit::device_properties(gpukit::current_device());
  std::printf("GPU: %s\n", info.name.c_str());
  return true;
}

int make_dataset(const arguments& args) {
  io::synthetic_options o;
  const std::string out = args.text("--out");
  o.train_per_class = args.number("--train-per-class", o.train_per_class);
  o.test_per_class = args.number("--test-per-class", o.test_per_class);
  o.seed = args.number("--seed", o.seed, 0);
  o.replace_existing = args.flag("--replace");
  const io::synthetic_dataset d = io::write_synthetic_dataset(out, o);
  std::printf("Wrote %zu images: %zu per class in %s, %zu per class in %s\n", d.files, o.train_per_class,
              d.training_dir.c_str(), o.test_per_class, d.test_dir.c_str());
  return 0;
}

io::image_cache load_split(const std::string& dir, std::size_t size) {
  const io::image_folder folder = io::list_image_folder(dir);
  std::printf("Found %zu images belonging to %zu classes in %s.\n", folder.files.size(), folder.class_names.size(),
              dir.c_str());
  return io::image_cache::load(folder, size, size);
}

/// --precision: fp32 (the default), tf32 or bf16.
nn::precision precision_of(const arguments& args) {
  if (!args.has("--precision")) return nn::precision::fp32;
  const std::string p = args.text("--precision");
  for (const nn::precision q : {nn::precision::fp32, nn::precision::tf32, nn::precision::bf16})
    if (p == nn::precision_name(q)) return q;
  usage("--precision expects fp32, tf32 or bf16, got '" + p + "'");
}

template <class Exec>
void train_on(const Exec& exec, const io::image_cache& train_set, const io::image_cache& test_set, const arguments& args,
              std::size_t size) {
  const std::size_t batch = args.number("--batch", 32), pooled = (size - 2) / 2;
  nn::sequential<Exec> model(exec, 3, size, size);
  model.add(nn::conv2d(3, 32, 3, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  model.add(nn::dense(32 * pooled * pooled, 128)).add(nn::relu{}).add(nn::dense(128, 1)).add(nn::sigmoid{});
  model.set_precision(precision_of(args));
  std::cout << model.summary();
  model.compile(batch, nn::binary_crossentropy{}, nn::adam{}, args.number("--seed", 1, 0));

  train::fit_options o;
  o.epochs = args.number("--epochs", 25);
  o.batch_size = batch;
  o.seed = args.number("--seed", 1, 0);
  o.augment.enabled = !args.flag("--no-augment");
  o.validation = test_set;
  const train::history h = train::fit(model, train_set, o);

  const std::string out = args.text("--out");
  train::save_model(out, model, {{classes_key, nlohmann::json(train_set.class_names()).dump()}});
  std::printf("Validation accuracy %.4f after %zu epoch%s; saved the model to %s\n", h.val_accuracy.back(), h.epochs(),
              h.epochs() == 1 ? "" : "s", out.c_str());
  if (args.has("--history")) {
    train::write_history(h, args.text("--history"));
    std::printf("Wrote the training history to %s\n", args.text("--history").c_str());
  }
}

int train_command(const arguments& args) {
  const std::string data = args.text("--data");
  (void)args.text("--out");
  const std::size_t size = args.number("--size", 64, 4);
  (void)precision_of(args);  // a bad value fails now, not after the images are read
  if (args.has("--history")) {  // a wrong extension fails now, not after the training
    const std::string h = args.text("--history");
    const std::string ext = std::filesystem::path(h).extension().string();
    if (ext != ".csv" && ext != ".json" && ext != ".CSV" && ext != ".JSON")
      usage("--history expects a file name ending in .csv or .json, got '" + h + "'");
  }
  const bool gpu = use_gpu(args.flag("--cpu"));
  const io::image_cache train_set = load_split((std::filesystem::path(data) / "training_set").string(), size);
  const io::image_cache test_set = load_split((std::filesystem::path(data) / "test_set").string(), size);
  if (train_set.class_names().size() != 2 || test_set.class_names() != train_set.class_names()) {
    std::fprintf(stderr, "cats_vs_dogs: training_set and test_set must hold the same two class folders\n");
    return 1;
  }
  if (gpu) {
    gpukit::stream stream;
    train_on(gpukit::cuda_executor(stream.view()), train_set, test_set, args, size);
  } else {
    train_on(gpukit::cpu_executor{}, train_set, test_set, args, size);
  }
  return 0;
}

/// The article's words for the synthetic set's folders, the folder name otherwise.
std::string display_name(const std::vector<std::string>& classes, std::size_t label) {
  if (classes == std::vector<std::string>{"cats", "dogs"}) return label == 0 ? "cat" : "dog";
  return classes.at(label);
}

template <class Exec>
void predict_on(const Exec& exec, const std::string& path, const std::vector<std::string>& images,
                const std::vector<std::string>& classes) {
  auto model = train::load_model(path, exec, {16, nn::adam{}});
  const nn::shape4 in = model.input_shape();
  for (const std::string& file : images) {
    const io::image img = io::resize_bilinear(io::read_image(file), in.w, in.h);
    const std::vector<float> p = train::predict(model, gpukit::make_host_span(img.pixels));
    std::printf("%s: Probability = %.2f Prediction = %s\n", file.c_str(), p[0], display_name(classes, p[0] >= 0.5f).c_str());
  }
}

int predict_command(const arguments& args) {
  const std::string path = args.text("--model");
  if (args.rest.empty()) usage("predict needs at least one IMAGE");
  std::vector<std::string> classes{"0", "1"};
  const auto meta = io::read_safetensors(path).metadata();
  if (const auto it = meta.find(classes_key); it != meta.end()) {
    const auto names = nlohmann::json::parse(it->second, nullptr, false);
    if (names.is_array() && names.size() == 2 && names[0].is_string() && names[1].is_string())
      classes = {names[0].get<std::string>(), names[1].get<std::string>()};
  }
  if (use_gpu(false)) {
    gpukit::stream stream;
    predict_on(gpukit::cuda_executor(stream.view()), path, args.rest, classes);
  } else {
    predict_on(gpukit::cpu_executor{}, path, args.rest, classes);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) usage();
  const std::string command = argv[1];
  if (command == "make-dataset")
    return make_dataset(arguments(argc, argv, {"--out", "--train-per-class", "--test-per-class", "--seed"}, {"--replace"}));
  if (command == "train")
    return train_command(arguments(argc, argv, {"--data", "--out", "--epochs", "--batch", "--size", "--seed", "--history",
                                                     "--precision"},
                                   {"--cpu", "--no-augment"}));
  if (command == "predict") return predict_command(arguments(argc, argv, {"--model"}, {}));
  usage("unknown command '" + command + "'");
} catch (const std::exception& e) {
  std::fprintf(stderr, "cats_vs_dogs: %s\n", e.what());
  return 1;
}
