// fit, evaluate and predict: a short training run on a small synthetic dataset written to a
// temporary folder (JPEG and PNG files, read back through the dataset cache) must lift the
// validation accuracy well above chance on each executor; the history, the progress lines,
// evaluate against predict, and the argument checks.
#include "gpukit/gpukit.cuh"
#include "gpukit/io/dataset.hpp"
#include "gpukit/io/synthetic.hpp"
#include "gpukit/nn.cuh"
#include "gpukit/train/fit.hpp"
#include "train/train_support.hpp"

#include <cmath>
#include <sstream>

using namespace gpukit;
using gpukit_test::require_throws_naming;
using train_test::small_cnn;

namespace {

const cpu_executor cpu{};
constexpr std::size_t image_size = 32;

/// The synthetic dataset written once per test program: 160 training and 60 test images
/// per class, decoded to 32 x 32.
struct synthetic_files {
  train_test::temp_dir dir{"fit"};
  io::image_cache train, test;
  synthetic_files() {
    io::synthetic_options o;
    o.train_per_class = 160;
    o.test_per_class = 60;
    o.seed = 5;
    o.min_size = 40;
    o.max_size = 72;
    const auto written = io::write_synthetic_dataset(dir.path(), o);
    train = io::image_cache::load(io::list_image_folder(written.training_dir), image_size, image_size);
    test = io::image_cache::load(io::list_image_folder(written.test_dir), image_size, image_size);
  }
};

const synthetic_files& data() {
  static const synthetic_files files;
  return files;
}

/// The fraction of `probs` on the right side of 0.5 for `set`'s labels.
double accuracy_of(const std::vector<float>& probs, const train::image_set& set) {
  double correct = 0;
  for (std::size_t i = 0; i < set.count; ++i) correct += (probs[i] >= 0.5f) == (set.labels[i] >= 0.5f);
  return correct / double(set.count);
}

template <class Exec>
void learns_the_synthetic_set(const Exec& exec) {
  const auto& d = data();
  REQUIRE(d.train.size() == 320);
  REQUIRE(d.test.class_names() == std::vector<std::string>{"cats", "dogs"});
  auto model = small_cnn(exec, image_size, 32, 11);
  const train::evaluation before = train::evaluate(model, d.test);
  train::fit_options o;
  o.epochs = 4;
  o.batch_size = 24;  // 320 = 13 · 24 + 8: every epoch ends with a partial batch
  o.seed = 1;
  o.validation = d.test;
  std::ostringstream log;
  o.out = &log;
  o.verbose = 1;  // not a terminal: one line per epoch
  const train::history h = train::fit(model, d.train, o);
  INFO(log.str());
  REQUIRE(h.epochs() == 4);
  for (std::size_t e = 0; e < 4; ++e) {
    CHECK(std::isfinite(h.loss[e]));
    CHECK(h.images_per_second[e] > 0);
    CHECK(log.str().find("Epoch " + std::to_string(e + 1) + "/4: 14/14 batches") != std::string::npos);
  }
  CHECK(log.str().find("val_accuracy: ") != std::string::npos);
  CHECK(h.loss.back() < h.loss.front());
  CHECK(before.accuracy < 0.75);
  CHECK(h.val_accuracy.back() >= 0.8);  // chance is 0.5
  // evaluate() agrees with the history and with predict().
  const train::evaluation after = train::evaluate(model, d.test, 24);
  CHECK(after.accuracy == Approx(h.val_accuracy.back()).margin(1e-12));
  CHECK(after.loss == Approx(h.val_loss.back()).epsilon(1e-6));
  const train::evaluation other_batches = train::evaluate(model, d.test, 17);
  CHECK(other_batches.loss == Approx(after.loss).epsilon(1e-5));
  const std::vector<float> probs = train::predict(model, d.test);
  REQUIRE(probs.size() == d.test.size());
  // Other batch sizes may round differently: at most one prediction sitting on 0.5 may flip.
  CHECK(accuracy_of(probs, d.test) == Approx(after.accuracy).margin(1.01 / double(d.test.size())));
}

/// What fit reads from the model without waiting: after a training step, last_output()
/// holds the outputs of the weights before the update and last_loss_address() the step's
/// loss; after evaluate_async(), the current weights' outputs and loss.
template <class Exec>
void step_results_stay_readable(const Exec& exec) {
  auto m = small_cnn(exec, 12, 4);
  const std::vector<float> xs = gpukit_test::random_values<float>(4 * 3 * 12 * 12, 0, 1, 31), ys{0, 1, 1, 0};
  stream_view s{};
  if constexpr (is_gpu_executor_v<Exec>) s = exec.stream();
  const auto to_host = [&](const float* p, std::size_t n) {  // GPU: waits
    std::vector<float> v(n);
    transfer(make_host_span(v), span<const float, nn::space_of_v<Exec>>(p, n), s);
    return v;
  };
  auto x = nn::make_tensor(exec, {4, 3, 12, 12});
  auto y = nn::make_tensor(exec, {4, 1, 1, 1});
  transfer(x.span(), make_host_span(xs), s);
  transfer(y.span(), make_host_span(ys), s);
  const auto out = m.forward(x);
  const std::vector<float> before = to_host(out.data, 4);
  m.train_step_async(x, y);
  const float loss = m.last_loss();
  CHECK(to_host(m.last_loss_address(), 1)[0] == loss);
  const std::vector<float> seen = to_host(m.last_output().data, 4);
  REQUIRE(m.last_output().shape == nn::shape4{4, 1, 1, 1});
  for (std::size_t i = 0; i < 4; ++i) CHECK(seen[i] == Approx(before[i]).epsilon(1e-5));
  const std::vector<float> after = to_host(m.forward(x).data, 4);
  CHECK(after != before);  // the step changed the weights
  m.evaluate_async(x, y);
  const std::vector<float> evaluated = to_host(m.last_output().data, 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(evaluated[i] == Approx(after[i]).epsilon(1e-6));
  CHECK(to_host(m.last_loss_address(), 1)[0] == Approx(m.evaluate(x, y)).epsilon(1e-6));
}

}  // namespace

TEST_CASE("sequential: a step's output and loss stay readable where it wrote them (CPU)", "[train][fit]") {
  step_results_stay_readable(cpu);
}

TEST_CASE("sequential: a step's output and loss stay readable where it wrote them (GPU)", "[train][fit][gpu]") {
  gpukit::stream stream;
  step_results_stay_readable(cuda_executor(stream.view()));
}

TEST_CASE("fit: a short run on the synthetic set learns well above chance (CPU)", "[train][fit]") {
  learns_the_synthetic_set(cpu);
}

TEST_CASE("fit: a short run on the synthetic set learns well above chance (GPU)", "[train][fit][gpu]") {
  gpukit::stream stream;
  learns_the_synthetic_set(cuda_executor(stream.view()));
}

TEST_CASE("fit: the GPU's resident and staged images train the same way", "[train][fit][gpu]") {
  gpukit::stream stream;
  const cuda_executor gpu(stream.view());
  const auto& d = data();
  std::vector<train::history> runs;
  for (auto where : {train::residency::staged, train::residency::device}) {
    auto model = small_cnn(gpu, image_size, 64, 11);
    train::fit_options o;
    o.epochs = 2;
    o.batch_size = 64;
    o.verbose = 0;
    o.data = where;
    runs.push_back(train::fit(model, d.train, o));
  }
  // The same inputs in the same order: the losses agree to float rounding of the steps.
  for (std::size_t e = 0; e < 2; ++e) CHECK(runs[0].loss[e] == Approx(runs[1].loss[e]).epsilon(1e-3));
}

TEST_CASE("fit: arguments are checked before anything trains", "[train][fit][bad_input]") {
  const train_test::random_images r(10, 8, 8, 1);
  const train::image_set set(make_host_span(r.pixels), make_host_span(r.labels), 8, 8);
  auto model = small_cnn(cpu, 8, 4);
  const auto before = train_test::parameters_of(model);
  train::fit_options o;
  o.batch_size = 5;
  require_throws_naming<std::invalid_argument>([&] { (void)train::fit(model, set, o); },
                                               {"gpukit::train::fit", "'batch_size' = 5", "[1, 4]"});
  const train_test::random_images wrong(10, 9, 8, 1);
  const train::image_set wrong_set(make_host_span(wrong.pixels), make_host_span(wrong.labels), 9, 8);
  o.batch_size = 4;
  require_throws_naming<std::invalid_argument>([&] { (void)train::fit(model, wrong_set, o); },
                                               {"'train' holds 9 x 8 x 3 images", "(None, 3, 8, 8)"});
  std::vector<float> labels = r.labels;
  labels[3] = 2;
  const train::image_set bad_labels(make_host_span(r.pixels), make_host_span(labels), 8, 8);
  require_throws_naming<std::invalid_argument>([&] { (void)train::fit(model, bad_labels, o); },
                                               {"'train' has label 2", "image 3"});
  o.validation = wrong_set;
  require_throws_naming<std::invalid_argument>([&] { (void)train::fit(model, set, o); }, {"'options.validation'"});
  o.validation.reset();
  o.augment.zoom_range = -1;
  require_throws_naming<std::invalid_argument>([&] { (void)train::fit(model, set, o); }, {"'zoom_range' = -1"});
  CHECK(train_test::parameters_of(model) == before);
  require_throws_naming<std::invalid_argument>([&] { (void)train::predict(model, host_span<const std::uint8_t>(r.pixels.data(), 100)); },
                                               {"gpukit::train::predict", "100 bytes", "(None, 3, 8, 8)"});
}
