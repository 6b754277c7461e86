// fit, evaluate and predict: a short training run on a small synthetic dataset written to a
// temporary folder (JPEG and PNG files, read back through the dataset cache) must lift the
// validation accuracy well above chance on each executor; the history, the progress lines,
// evaluate against predict, and the argument checks.
#include "gpukit/gpukit.cuh"
#include "gpukit/io/dataset.hpp"
#include "gpukit/io/synthetic.hpp"
#include "gpukit/nn.cuh"
#include "gpukit/train/fit.hpp"
#include "support/bad_input.hpp"
#include "train/train_support.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>
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

/// Each epoch's line of the progress log against the history: the same numbers, as the
/// line rounds them (4 decimals; images/s to a whole number with separators).
void history_matches_the_progress_lines(const train::history& h, const std::string& log, bool validation) {
  const std::regex line(R"(Epoch (\d+)/(\d+): \d+/\d+ batches - \S+ - loss: (\S+) - accuracy: (\S+))"
                        R"((?: - val_loss: (\S+) - val_accuracy: (\S+))? - ([0-9,]+) images/s)");
  std::size_t rows = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it, ++rows) {
    const std::smatch& m = *it;
    const std::size_t e = std::stoul(m[1]) - 1;
    INFO("epoch " << e + 1 << ": " << m[0]);
    REQUIRE(e == rows);
    REQUIRE(std::stoul(m[2]) == h.epochs());
    CHECK(m[3] == train::detail::fixed(h.loss[e], 4));
    CHECK(m[4] == train::detail::fixed(h.accuracy[e], 4));
    CHECK(m[5].matched == validation);
    if (validation) {
      CHECK(m[5] == train::detail::fixed(h.val_loss[e], 4));
      CHECK(m[6] == train::detail::fixed(h.val_accuracy[e], 4));
    } else {
      CHECK(std::isnan(h.val_loss[e]));
      CHECK(std::isnan(h.val_accuracy[e]));
    }
    CHECK(m[7] == train::detail::thousands(h.images_per_second[e]));
    CHECK(h.seconds[e] > 0);
    CHECK(h.images_per_second[e] == Approx(320 / h.seconds[e]).epsilon(1e-12));
    CHECK(h.learning_rate[e] == double(nn::adam{}.learning_rate));
  }
  CHECK(rows == h.epochs());
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
  history_matches_the_progress_lines(h, log.str(), true);
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

TEST_CASE("fit: without a validation set the history's val_* are NaN, one row per epoch as printed", "[train][fit]") {
  auto model = small_cnn(cpu, image_size, 64, 11);
  train::fit_options o;
  o.epochs = 2;
  o.batch_size = 64;
  o.verbose = 2;
  std::ostringstream log;
  o.out = &log;
  const train::history h = train::fit(model, data().train, o);
  REQUIRE(h.epochs() == 2);
  history_matches_the_progress_lines(h, log.str(), false);
}

TEST_CASE("predict: always in inference, dropout or not, and the model's mode left as it was", "[train][fit]") {
  nn::sequential<cpu_executor> model(cpu, 3, image_size, image_size);
  model.add(nn::conv2d(3, 4, 3, 1, 1)).add(nn::relu{}).add(nn::global_avgpool2d{}).add(nn::dropout(0.5f));
  model.add(nn::dense(4, 1)).add(nn::sigmoid{});
  model.compile(16, nn::binary_crossentropy{}, nn::adam{}, 4);
  const std::vector<float> plain = train::predict(model, data().test);
  model.set_training(true);
  CHECK(train::predict(model, data().test) == plain);
  CHECK(model.training());
  CHECK(model.dropout_step() == 0);  // no training pass ran
}

namespace {

/// Equal value for value, NaN equal to NaN.
bool same_values(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  return true;
}

void require_same_history(const train::history& a, const train::history& b) {
  CHECK(same_values(a.loss, b.loss));
  CHECK(same_values(a.accuracy, b.accuracy));
  CHECK(same_values(a.val_loss, b.val_loss));
  CHECK(same_values(a.val_accuracy, b.val_accuracy));
  CHECK(same_values(a.images_per_second, b.images_per_second));
  CHECK(same_values(a.seconds, b.seconds));
  CHECK(same_values(a.learning_rate, b.learning_rate));
}

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

train::history sample_history() {
  train::history h;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  h.loss = {0.6931471805599453, 0.1 + 0.2};
  h.accuracy = {0.5, 1.0 / 3.0};
  h.val_loss = {nan, 0.25};  // e.g. validation only from the second epoch on
  h.val_accuracy = {nan, 0.75};
  h.images_per_second = {123456.789, 1e-300};
  h.seconds = {0.0123, 42.0};
  h.learning_rate = {1e-3, 1e-3 / 7};
  return h;
}

}  // namespace

TEST_CASE("history files: CSV and JSON give back the same doubles", "[train][fit][history]") {
  const train_test::temp_dir dir("history");
  const train::history h = sample_history();
  const std::string csv = dir.path().string() + "/h.csv", json = dir.path().string() + "/h.JSON";
  train::write_history(h, csv);
  train::write_history(h, json);
  require_same_history(train::read_history(csv), h);
  require_same_history(train::read_history(json), h);
  const std::string text = file_text(csv);
  CHECK(text.rfind("epoch,loss,accuracy,val_loss,val_accuracy,images_per_second,seconds,learning_rate\n1,", 0) == 0);
  CHECK(text.find("\n1,0.69314718055994529,0.5,,,") != std::string::npos);  // no validation: empty fields
  CHECK(file_text(json).find("null") != std::string::npos);
  // A real run's history through a file.
  auto model = small_cnn(cpu, 8, 4);
  const train_test::random_images r(12, 8, 8, 1);
  const train::image_set set(make_host_span(r.pixels), make_host_span(r.labels), 8, 8);
  train::fit_options o;
  o.epochs = 3;
  o.batch_size = 4;
  o.verbose = 0;
  o.validation = set;
  const train::history fitted = train::fit(model, set, o);
  train::write_history(fitted, csv);
  const train::history back = train::read_history(csv);
  REQUIRE(back.epochs() == 3);
  require_same_history(back, fitted);
}

TEST_CASE("history files: bad input is a typed error naming the file, nothing written", "[train][fit][history][bad_input]") {
  using gpukit_test::bad_input;
  using train::history_file_error;
  const train_test::temp_dir dir("history_bad");
  train::history h = sample_history();
  const std::string txt = dir.path().string() + "/h.txt";
  bad_input<std::invalid_argument>("gpukit::train::write_history", "'path'", "an extension other than .csv or .json",
                                   [&] { train::write_history(h, txt); }, {"h.txt", ".csv", ".json"});
  CHECK_FALSE(std::ifstream(txt).good());
  h.learning_rate.pop_back();
  const std::string csv = dir.path().string() + "/h.csv";
  bad_input<std::invalid_argument>("gpukit::train::write_history", "'h'", "columns of different lengths",
                                   [&] { train::write_history(h, csv); }, {"2 loss values but 1 learning_rate values"});
  CHECK_FALSE(std::ifstream(csv).good());
  const std::string nowhere = dir.path().string() + "/no/such/h.csv";
  bad_input<history_file_error>("gpukit::train::write_history", "'path'", "a folder that does not exist",
                                [&] { train::write_history(sample_history(), nowhere); }, {"no/such/h.csv", "cannot create"});
  const std::string missing = dir.path().string() + "/missing.json";
  bad_input<history_file_error>("gpukit::train::read_history", "'path'", "a file that does not exist",
                                [&] { (void)train::read_history(missing); }, {"missing.json", "cannot open"});
  bad_input<std::invalid_argument>("gpukit::train::read_history", "'path'", "an extension other than .csv or .json",
                                   [&] { (void)train::read_history(txt); }, {"h.txt"});
  write_text(csv, "epoch,loss\n1,0.5\n");
  bad_input<history_file_error>("gpukit::train::read_history", "'path'", "a CSV without the history header",
                                [&] { (void)train::read_history(csv); }, {"h.csv", "header"});
  const std::string good = train::history_csv(sample_history());
  write_text(csv, good.substr(0, good.rfind(',')) + "\n");  // a row one field short
  bad_input<history_file_error>("gpukit::train::read_history", "'path'", "a CSV row with a field missing",
                                [&] { (void)train::read_history(csv); }, {"row 2 has 7 fields"});
  std::string text = good;
  text.replace(text.find("0.5"), 3, "zero");
  write_text(csv, text);
  bad_input<history_file_error>("gpukit::train::read_history", "'path'", "a CSV field that is not a number",
                                [&] { (void)train::read_history(csv); }, {"row 1, column accuracy", "'zero' is not a number"});
  const std::string json = dir.path().string() + "/h.json";
  write_text(json, "{\"epoch\": [1]");
  bad_input<history_file_error>("gpukit::train::read_history", "'path'", "a JSON file cut short",
                                [&] { (void)train::read_history(json); }, {"h.json", "not valid JSON"});
  write_text(json, R"({"epoch":[1],"loss":[null],"accuracy":[1],"val_loss":[null],"val_accuracy":[null],)"
                   R"("images_per_second":[1],"seconds":[1],"learning_rate":[1]})");
  bad_input<history_file_error>("gpukit::train::read_history", "'path'", "a JSON null where a number is required",
                                [&] { (void)train::read_history(json); }, {"'loss'[0] = null is not a number"});
  write_text(json, R"({"epoch":[1,2],"loss":[1]})");
  bad_input<history_file_error>("gpukit::train::read_history", "'path'", "a JSON column shorter than 'epoch'",
                                [&] { (void)train::read_history(json); }, {"'loss' is not an array of 2 values"});
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
