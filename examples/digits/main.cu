// examples/digits — a ten-class CNN with batch normalisation, end to end: make (or convert)
// a dataset, train on it, predict single images.
//
//   digits make-dataset --out DIR [--train-per-class N] [--test-per-class N] [--seed S] [--size S] [--replace]
//   digits train --data DIR --out model.safetensors [--epochs N] [--batch B] [--lr LR] [--seed S]
//                [--size S] [--cpu] [--history FILE]
//   digits predict --model model.safetensors IMAGE...
//
// The real data is scikit-learn's handwritten digits (1,797 images of 8 × 8): make_digits.py
// beside this file converts them once into DIR/training_set/<0..9>/ and DIR/test_set/<0..9>/.
// make-dataset writes a synthetic stand-in in the same layout (synthetic_digits.hpp: the
// digits as randomly drawn seven-segment glyphs, S × S pixels, default 16), so the example
// also runs where scikit-learn is not installed. Any class-per-folder set works the same way.
// train reads DIR/training_set and DIR/test_set (the validation set) at the images' own size
// (the first training image's; --size S resizes every image to S × S instead), builds
//   Conv2D(32, 3×3, padding 1, no bias), BatchNorm2d, ReLU,
//   Conv2D(64, 3×3, padding 1, no bias), BatchNorm2d, ReLU, MaxPool 2×2, Flatten,
//   Dense 128 (no bias), BatchNorm1d, ReLU, Dropout 0.25, Dense k, Softmax
// for the k class folders (the convolutions and the first dense layer feed a batch norm,
// whose own bias makes theirs redundant), prints its summary and trains it with softmax
// cross-entropy and Adam (learning rate LR, default 2e-3, annealed to zero over the run on a
// cosine: the last epochs take small steps, so the final model is not one noisy step away
// from a better one) for N epochs (default 20) in batches of B (default 32), without
// augmentation (a mirrored or sheared digit is another digit, or none). It then prints the
// test accuracy and the confusion matrix of the final model and saves it with the class
// names; --history FILE also writes the per-epoch history (.csv or .json) for scripts/plot.
// predict prints "IMAGE: class 7 (p = 0.98)" per image: the most probable class and its
// probability.
// The GPU runs everything when one is usable (train --cpu forces the CPU fallback).
// pytorch_predict.py beside this file loads the same model file into torch.nn.Sequential
// and prints the same lines for images of the model's input size.
#include "synthetic_digits.hpp"

#include <gpukit/gpukit.cuh>
#include <gpukit/io/dataset.hpp>
#include <gpukit/io/image_file.hpp>
#include <gpukit/io/resize.hpp>
#include <gpukit/nn.cuh>
#include <gpukit/train/fit.hpp>
#include <gpukit/train/history.hpp>
#include <gpukit/train/model_file.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
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

constexpr const char* classes_key = "digits.classes";

[[noreturn]] void usage(const std::string& problem = {}) {
  if (!problem.empty()) std::fprintf(stderr, "digits: %s\n", problem.c_str());
  std::fprintf(stderr,
               "usage: digits make-dataset --out DIR [--train-per-class N] [--test-per-class N] [--seed S] [--size S]\n"
               "                           [--replace]\n"
               "       digits train --data DIR --out model.safetensors [--epochs N] [--batch B] [--lr LR] [--seed S]\n"
               "                    [--size S] [--cpu] [--history FILE]\n"
               "       digits predict --model model.safetensors IMAGE...\n");
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
  /// A positive finite number (a learning rate).
  float positive(const std::string& k, float fallback) const {
    const auto it = values.find(k);
    if (it == values.end()) return fallback;
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    if (end == it->second.c_str() || *end != '\0' || !(v > 0) || !std::isfinite(v))
      usage(k + " expects a positive number, got '" + it->second + "'");
    return static_cast<float>(v);
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
  digits_example::synthetic_options o;
  const std::string out = args.text("--out");
  o.train_per_class = args.number("--train-per-class", o.train_per_class);
  o.test_per_class = args.number("--test-per-class", o.test_per_class);
  o.seed = args.number("--seed", o.seed, 0);
  o.size = args.number("--size", o.size, 8);
  o.replace_existing = args.flag("--replace");
  const std::size_t files = digits_example::write_synthetic_digits(out, o);
  std::printf("Wrote %zu images of %zu x %zu: %zu per class in %s, %zu per class in %s\n", files, o.size, o.size,
              o.train_per_class, (std::filesystem::path(out) / "training_set").string().c_str(), o.test_per_class,
              (std::filesystem::path(out) / "test_set").string().c_str());
  return 0;
}

io::image_cache load_split(const std::string& dir, std::size_t width, std::size_t height) {
  const io::image_folder folder = io::list_image_folder(dir);
  std::printf("Found %zu images belonging to %zu classes in %s.\n", folder.files.size(), folder.class_names.size(),
              dir.c_str());
  return io::image_cache::load(folder, width, height);
}

/// The index of the largest of `count` values (the first of equals, as torch.argmax).
std::size_t argmax(const float* p, std::size_t count) {
  return static_cast<std::size_t>(std::max_element(p, p + count) - p);
}

/// The final model's accuracy on `set` from its predictions, and the confusion matrix.
template <class Exec>
double report_test(nn::sequential<Exec>& model, const io::image_cache& set) {
  const std::size_t k = set.class_names().size(), n = set.size();
  const std::vector<float> p = train::predict(model, set.pixels());
  std::vector<std::size_t> confusion(k * k, 0);
  std::size_t correct = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t truth = static_cast<std::size_t>(set.labels()[i]), guess = argmax(&p[i * k], k);
    ++confusion[truth * k + guess];
    correct += truth == guess;
  }
  std::size_t width = 4;
  for (const auto& c : set.class_names()) width = std::max(width, c.size() + 1);
  std::printf("Confusion matrix on the test set (rows: true class, columns: predicted class):\n%*s", int(width), "");
  for (const auto& c : set.class_names()) std::printf("%*s", int(width), c.c_str());
  std::printf("\n");
  for (std::size_t t = 0; t < k; ++t) {
    std::printf("%*s", int(width), set.class_names()[t].c_str());
    for (std::size_t g = 0; g < k; ++g) std::printf("%*zu", int(width), confusion[t * k + g]);
    std::printf("\n");
  }
  const double accuracy = double(correct) / double(n);
  std::printf("Test accuracy %.4f (%zu of %zu images)\n", accuracy, correct, n);
  return accuracy;
}

template <class Exec>
void train_on(const Exec& exec, const io::image_cache& train_set, const io::image_cache& test_set, const arguments& args) {
  const std::size_t batch = args.number("--batch", 32), epochs = args.number("--epochs", 20);
  const std::size_t h = train_set.height(), w = train_set.width(), k = train_set.class_names().size();
  nn::sequential<Exec> model(exec, 3, h, w);
  model.add(nn::conv2d(3, 32, 3, 1, 1).no_bias()).add(nn::batchnorm2d(32)).add(nn::relu{});
  model.add(nn::conv2d(32, 64, 3, 1, 1).no_bias()).add(nn::batchnorm2d(64)).add(nn::relu{});
  model.add(nn::maxpool2d(2)).add(nn::flatten{});
  model.add(nn::dense(64 * (h / 2) * (w / 2), 128).no_bias()).add(nn::batchnorm1d(128)).add(nn::relu{});
  model.add(nn::dropout(0.25f)).add(nn::dense(128, k)).add(nn::softmax{});

  nn::adam adam;
  adam.learning_rate = args.positive("--lr", 2e-3f);
  const std::size_t steps = epochs * ((train_set.size() + batch - 1) / batch);
  adam.schedule = nn::lr_schedule::cosine(static_cast<long long>(steps));
  const std::uint64_t seed = args.number("--seed", 1, 0);
  model.compile(batch, nn::softmax_crossentropy{}, adam, seed);
  std::cout << model.summary();

  train::fit_options o;
  o.epochs = epochs;
  o.batch_size = batch;
  o.seed = seed;
  o.augment.enabled = false;
  o.validation = test_set;
  const train::history hist = train::fit(model, train_set, o);

  (void)report_test(model, test_set);
  const std::string out = args.text("--out");
  train::save_model(out, model, {{classes_key, nlohmann::json(train_set.class_names()).dump()}});
  std::printf("Trained %zu epoch%s; saved the model to %s\n", hist.epochs(), hist.epochs() == 1 ? "" : "s", out.c_str());
  if (args.has("--history")) {
    train::write_history(hist, args.text("--history"));
    std::printf("Wrote the training history to %s\n", args.text("--history").c_str());
  }
}

int train_command(const arguments& args) {
  const std::string data = args.text("--data");
  (void)args.text("--out");
  (void)args.positive("--lr", 1);  // a bad value fails now, not after the images are read
  if (args.has("--history")) {    // a wrong extension fails now, not after the training
    const std::string h = args.text("--history");
    const std::string ext = std::filesystem::path(h).extension().string();
    if (ext != ".csv" && ext != ".json" && ext != ".CSV" && ext != ".JSON")
      usage("--history expects a file name ending in .csv or .json, got '" + h + "'");
  }
  const bool gpu = use_gpu(args.flag("--cpu"));
  const std::string train_dir = (std::filesystem::path(data) / "training_set").string();
  const std::string test_dir = (std::filesystem::path(data) / "test_set").string();
  // The images' own size unless --size says otherwise: the first training image decides.
  std::size_t width = 0, height = 0;
  if (args.has("--size")) {
    width = height = args.number("--size", 0, 2);
  } else {
    const io::image first = io::read_image(io::list_image_folder(train_dir).files.at(0));
    width = first.width, height = first.height;
    if (width < 2 || height < 2) {
      std::fprintf(stderr, "digits: the images are %zu x %zu; the model's 2 x 2 pooling needs at least 2 x 2\n", width,
                   height);
      return 1;
    }
  }
  const io::image_cache train_set = load_split(train_dir, width, height);
  const io::image_cache test_set = load_split(test_dir, width, height);
  if (train_set.class_names().size() < 2 || test_set.class_names() != train_set.class_names()) {
    std::fprintf(stderr, "digits: training_set and test_set must hold the same class folders, at least two\n");
    return 1;
  }
  std::printf("Images of %zu x %zu, %zu classes.\n", width, height, train_set.class_names().size());
  if (gpu) {
    gpukit::stream stream;
    train_on(gpukit::cuda_executor(stream.view()), train_set, test_set, args);
  } else {
    train_on(gpukit::cpu_executor{}, train_set, test_set, args);
  }
  return 0;
}

template <class Exec>
void predict_on(const Exec& exec, const std::string& path, const std::vector<std::string>& images,
                std::vector<std::string> classes) {
  auto model = train::load_model(path, exec, {16, nn::adam{}});
  const nn::shape4 in = model.input_shape();
  const std::size_t k = model.output_shape().features();
  if (k < 2) throw std::runtime_error(path + " has one output; predict takes a model with one output per class");
  if (classes.size() != k) {  // no names in the file (or not one per output): the indices
    classes.clear();
    for (std::size_t c = 0; c < k; ++c) classes.push_back(std::to_string(c));
  }
  for (const std::string& file : images) {
    const io::image img = io::resize_bilinear(io::read_image(file), in.w, in.h);
    const std::vector<float> p = train::predict(model, gpukit::make_host_span(img.pixels));
    const std::size_t best = argmax(p.data(), k);
    std::printf("%s: class %s (p = %.2f)\n", file.c_str(), classes[best].c_str(), p[best]);
  }
}

int predict_command(const arguments& args) {
  const std::string path = args.text("--model");
  if (args.rest.empty()) usage("predict needs at least one IMAGE");
  std::vector<std::string> classes;
  const auto meta = io::read_safetensors(path).metadata();
  if (const auto it = meta.find(classes_key); it != meta.end()) {
    const auto names = nlohmann::json::parse(it->second, nullptr, false);
    if (names.is_array() && std::all_of(names.begin(), names.end(), [](const auto& n) { return n.is_string(); }))
      for (const auto& n : names) classes.push_back(n.template get<std::string>());
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
    return make_dataset(
        arguments(argc, argv, {"--out", "--train-per-class", "--test-per-class", "--seed", "--size"}, {"--replace"}));
  if (command == "train")
    return train_command(arguments(argc, argv, {"--data", "--out", "--epochs", "--batch", "--lr", "--seed", "--size",
                                                "--history"},
                                   {"--cpu"}));
  if (command == "predict") return predict_command(arguments(argc, argv, {"--model"}, {}));
  usage("unknown command '" + command + "'");
} catch (const std::exception& e) {
  std::fprintf(stderr, "digits: %s\n", e.what());
  return 1;
}
