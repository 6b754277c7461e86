// Bad input to the train layer: image sets, epoch plans and batches, augmentation, fit,
// evaluate, predict, model files and the GPU loader. Each check is one row of
// docs/BAD_INPUT_MATRIX.md (tests/support/bad_input.hpp); after each, the outputs, the model's
// parameters and the files it could have written are checked untouched.
#include "gpukit/gpukit.cuh"
#include "gpukit/nn.cuh"
#include "gpukit/train/augment.hpp"
#include "gpukit/train/fit.hpp"
#include "gpukit/train/loader.hpp"
#include "gpukit/train/model_file.hpp"
#include "support/bad_input.hpp"
#include "train/train_support.hpp"

#include <cmath>
#include <filesystem>
#include <limits>
#include <vector>

namespace nn = gpukit::nn;
namespace train = gpukit::train;
using gpukit::make_host_span;
using gpukit_test::bad_input;
using invalid = std::invalid_argument;

namespace {

/// Two 4 x 4 RGB images labelled 0 and 1.
struct small_set {
  std::vector<std::uint8_t> pixels = std::vector<std::uint8_t>(2 * 4 * 4 * 3, 120);
  std::vector<float> labels{0.0f, 1.0f};
  train::image_set set() const { return train::image_set(make_host_span(pixels), make_host_span(labels), 4, 4, 3); }
};

template <class Exec>
nn::sequential<Exec> small_model(const Exec& exec, bool compile = true) {
  nn::sequential<Exec> m(exec, 3, 4, 4);
  m.add(nn::flatten{}).add(nn::dense(48, 1)).add(nn::sigmoid{});
  if (compile) m.compile(2, nn::binary_crossentropy{}, nn::adam{}, 5);
  return m;
}

template <class Exec, class Read>
void check_fit_refusals(const Exec& exec, Read read_parameters) {
  small_set data;
  const train::image_set set = data.set();
  auto m = small_model(exec);
  const std::vector<float> before = read_parameters(m);
  auto uncompiled = small_model(exec, false);
  train::fit_options quiet;  // valid options, each check below breaks one of them
  quiet.verbose = 0;
  quiet.batch_size = 2;

  bad_input<invalid>("gpukit::train::fit", "'model'", "not compiled", [&] { (void)train::fit(uncompiled, set, quiet); },
                     {"compile()"});
  const train::image_set none(gpukit::host_span<const std::uint8_t>(), gpukit::host_span<const float>(), 4, 4, 3);
  bad_input<invalid>("gpukit::train::fit", "'train'", "no image", [&] { (void)train::fit(m, none, quiet); });
  std::vector<std::uint8_t> small_pixels(2 * 2 * 2 * 3, 1);
  const train::image_set wrong_size(make_host_span(small_pixels), make_host_span(data.labels), 2, 2, 3);
  bad_input<invalid>("gpukit::train::fit", "'train'", "images of another size than the model's input",
                     [&] { (void)train::fit(m, wrong_size, quiet); }, {"2 x 2 x 3"});
  const std::vector<float> two{0.0f, 2.0f};
  const train::image_set bad_label(make_host_span(data.pixels), make_host_span(two), 4, 4, 3);
  bad_input<invalid>("gpukit::train::fit", "'train'", "a label other than 0 or 1 for one output",
                     [&] { (void)train::fit(m, bad_label, quiet); }, {"label 2"});
  train::fit_options o = quiet;
  o.batch_size = 3;
  bad_input<invalid>("gpukit::train::fit", "'batch_size'", "above the model's max_batch", [&] { (void)train::fit(m, set, o); },
                     {"3", "[1, 2]"});
  o = quiet;
  o.batch_size = 0;
  bad_input<invalid>("gpukit::train::fit", "'batch_size'", "0", [&] { (void)train::fit(m, set, o); }, {"0"});
  o = quiet;
  o.verbose = 3;
  bad_input<invalid>("gpukit::train::fit", "'verbose'", "3", [&] { (void)train::fit(m, set, o); }, {"3"});
  o = quiet;
  o.progress_seconds = -1;
  bad_input<invalid>("gpukit::train::fit", "'progress_seconds'", "negative", [&] { (void)train::fit(m, set, o); });
  o = quiet;
  o.augment.zoom_range = 1.0f;
  bad_input<invalid>("gpukit::train::fit", "'zoom_range'", "1 (must be below 1)", [&] { (void)train::fit(m, set, o); }, {"[0, 1)"});
  o = quiet;
  o.validation = none;
  bad_input<invalid>("gpukit::train::fit", "'validation'", "no image", [&] { (void)train::fit(m, set, o); });
  o = quiet;
  o.validation = bad_label;
  bad_input<invalid>("gpukit::train::fit", "'options.validation'", "a label other than 0 or 1",
                     [&] { (void)train::fit(m, set, o); }, {"label 2"});
  bad_input<invalid>("gpukit::train::evaluate", "'set'", "no image", [&] { (void)train::evaluate(m, none); });
  bad_input<invalid>("gpukit::train::evaluate", "'batch_size'", "above the model's max_batch",
                     [&] { (void)train::evaluate(m, set, 5); }, {"5"});
  bad_input<invalid>("gpukit::train::evaluate", "'model'", "not compiled", [&] { (void)train::evaluate(uncompiled, set); });
  bad_input<invalid>("gpukit::train::predict", "'model'", "not compiled",
                     [&] { (void)train::predict(uncompiled, make_host_span(data.pixels)); });
  const std::vector<std::uint8_t> partial(50, 1);
  bad_input<invalid>("gpukit::train::predict", "'pixels'", "not a whole number of images",
                     [&] { (void)train::predict(m, make_host_span(partial)); }, {"50 bytes"});
  CHECK(read_parameters(m) == before);
  CHECK(m.steps() == 0);
}

}  // namespace

TEST_CASE("image sets, plans, batches and augmentation refuse bad input", "[train][bad_input]") {
  small_set data;
  bad_input<invalid>("gpukit::train::image_set", "image size", "5 channels",
                     [&] { train::image_set s(make_host_span(data.pixels), make_host_span(data.labels), 4, 4, 5); },
                     {"4 x 4 x 5"});
  bad_input<invalid>("gpukit::train::image_set", "'pixels'", "fewer bytes than the labelled images need",
                     [&] { train::image_set s(make_host_span(data.pixels), make_host_span(data.labels), 4, 5, 3); },
                     {"96 bytes", "120"});
  const train::image_set set = data.set();
  train::augment_options aug;
  aug.rescale = std::numeric_limits<float>::quiet_NaN();
  bad_input<invalid>("gpukit::train::plan_epoch", "'rescale'", "NaN", [&] { (void)train::plan_epoch(set, 1, 0, true, aug); },
                     {"nan"});
  aug = {};
  aug.shear_range = 91.0f;
  bad_input<invalid>("gpukit::train::plan_epoch", "'shear_range'", "above 90 degrees",
                     [&] { (void)train::plan_epoch(set, 1, 0, true, aug); }, {"91"});
  aug = {};
  aug.zoom_range = -0.5f;
  bad_input<invalid>("gpukit::train::plan_epoch", "'zoom_range'", "negative", [&] { (void)train::plan_epoch(set, 1, 0, true, aug); },
                     {"-0.5"});

  const gpukit::cpu_executor cpu;
  const train::epoch_plan plan = train::plan_epoch(set, 1, 0, true, train::augment_options{});
  std::vector<float> x(2 * 48, -5.0f), y(2, -5.0f), y_short(1, -5.0f);
  std::vector<std::uint8_t> three(3 * 48, 9);
  std::vector<float> labels3{0, 1, 0};
  const train::image_set other(make_host_span(three), make_host_span(labels3), 4, 4, 3);
  bad_input<invalid>("gpukit::train::load_batch", "'plan'", "made for another set",
                     [&] { train::load_batch(cpu, other, plan, 0, 2, 1.0f, make_host_span(x), make_host_span(y), 1); },
                     {"2 positions", "3 images"});
  bad_input<invalid>("gpukit::train::load_batch", "positions", "an empty range",
                     [&] { train::load_batch(cpu, set, plan, 1, 0, 1.0f, make_host_span(x), make_host_span(y), 1); }, {"[1, 1)"});
  bad_input<invalid>("gpukit::train::load_batch", "positions", "past the end of the set",
                     [&] { train::load_batch(cpu, set, plan, 1, 2, 1.0f, make_host_span(x), make_host_span(y), 1); }, {"[1, 3)"});
  bad_input<invalid>("gpukit::train::load_batch", "'y'", "fewer targets than the batch",
                     [&] { train::load_batch(cpu, set, plan, 0, 2, 1.0f, make_host_span(x), make_host_span(y_short), 1); },
                     {"1 elements"});
  for (float v : x) REQUIRE(v == -5.0f);
  for (float v : y) REQUIRE(v == -5.0f);

  const std::vector<std::uint32_t> rows{0, 1}, bad_rows{0, 2};
  const std::vector<train::sample_map> one_map(1);
  const auto px = make_host_span(data.pixels);
  const auto r = make_host_span(rows);
  const gpukit::host_span<const train::sample_map> no_maps;
  bad_input<invalid>("gpukit::train::augment_batch", "'width'", "0",
                     [&] { train::augment_batch(cpu, px, 0, 4, 3, r, no_maps, 1.0f, make_host_span(x)); }, {"0 x 4"});
  bad_input<invalid>("gpukit::train::augment_batch", "'channels'", "5",
                     [&] { train::augment_batch(cpu, px, 4, 4, 5, r, no_maps, 1.0f, make_host_span(x)); }, {"5"});
  bad_input<invalid>("gpukit::train::augment_batch", "'images'", "not a whole number of images",
                     [&] { train::augment_batch(cpu, px, 5, 4, 3, r, no_maps, 1.0f, make_host_span(x)); }, {"96 bytes"});
  bad_input<invalid>("gpukit::train::augment_batch", "'maps'", "neither none nor one per row",
                     [&] { train::augment_batch(cpu, px, 4, 4, 3, r, make_host_span(one_map), 1.0f, make_host_span(x)); },
                     {"1 entries", "'rows' 2"});
  bad_input<invalid>("gpukit::train::augment_batch", "'out'", "fewer elements than the rows need",
                     [&] { train::augment_batch(cpu, px, 4, 4, 3, r, no_maps, 1.0f, make_host_span(y)); }, {"2 elements", "96"});
  bad_input<invalid>("gpukit::train::augment_batch", "'rows'[1]", "an image that does not exist",
                     [&] { train::augment_batch(cpu, px, 4, 4, 3, make_host_span(bad_rows), no_maps, 1.0f, make_host_span(x)); },
                     {"= 2", "there are 2"});
  for (float v : x) REQUIRE(v == -5.0f);
  for (float v : y) REQUIRE(v == -5.0f);
}

TEST_CASE("fit, evaluate and predict refuse bad input on the CPU, the model untouched", "[train][bad_input]") {
  check_fit_refusals(gpukit::cpu_executor{}, [](nn::sequential<gpukit::cpu_executor>& m) {
    auto p = m.parameters();
    return std::vector<float>(p.begin(), p.end());
  });
}

TEST_CASE("fit, evaluate and predict refuse bad input on the GPU, the model untouched", "[gpu][train][bad_input]") {
  gpukit::stream s;
  check_fit_refusals(gpukit::cuda_executor(s.view()), [&](nn::sequential<gpukit::cuda_executor>& m) {
    auto p = m.parameters();
    std::vector<float> host(p.size());
    gpukit::transfer(make_host_span(host), gpukit::device_span<const float>(p), s.view());
    return host;
  });
}

TEST_CASE("model files: refused arguments write nothing, unfit files load nothing", "[train][bad_input]") {
  train_test::temp_dir dir("bad_model_file");
  const std::string path = dir / "m.safetensors";
  const gpukit::cpu_executor cpu;
  auto uncompiled = small_model(cpu, false);
  auto m = small_model(cpu);
  bad_input<invalid>("gpukit::train::save_model", "'model'", "not compiled", [&] { train::save_model(path, uncompiled); });
  bad_input<invalid>("gpukit::train::save_model", "'metadata'", "a key save_model writes itself",
                     [&] { train::save_model(path, m, {{train::architecture_key, "x"}}); }, {train::architecture_key});
  CHECK_FALSE(std::filesystem::exists(path));
  train::load_options zero;
  zero.max_batch = 0;
  bad_input<invalid>("gpukit::train::load_model", "'options.max_batch'", "0", [&] { (void)train::load_model(path, cpu, zero); });

  // A valid safetensors file that is not this model: weights only, under another name.
  const std::vector<float> w(48, 0.5f);
  gpukit::io::write_safetensors(path, {{"bogus.weight", {1, 48}, make_host_span(w)}});
  const auto before = std::vector<float>(m.parameters().begin(), m.parameters().end());
  bad_input<train::model_file_error>("gpukit::train::load_weights", "m.safetensors", "a tensor of the model missing",
                                     [&] { train::load_weights(path, m); }, {"is missing"});
  bad_input<invalid>("gpukit::train::load_weights", "'model'", "not compiled", [&] { train::load_weights(path, uncompiled); });
  bad_input<train::model_file_error>("gpukit::train::load_model", "m.safetensors", "no architecture in the file",
                                     [&] { (void)train::load_model(path, cpu); }, {train::architecture_key});
  CHECK(std::vector<float>(m.parameters().begin(), m.parameters().end()) == before);
}

TEST_CASE("the GPU loader refuses bad input", "[gpu][train][bad_input]") {
  gpukit::stream s;
  const gpukit::cuda_executor exec(s.view());
  small_set data;
  const train::image_set set = data.set();
  const train::image_set none(gpukit::host_span<const std::uint8_t>(), gpukit::host_span<const float>(), 4, 4, 3);
  bad_input<invalid>("gpukit::train::device_loader", "'max_batch'", "0", [&] { train::device_loader l(exec, set, 0, 1); }, {"= 0"});
  bad_input<invalid>("gpukit::train::device_loader", "'features'", "0", [&] { train::device_loader l(exec, set, 2, 0); }, {"= 0"});
  bad_input<invalid>("gpukit::train::device_loader", "'set'", "no image", [&] { train::device_loader l(exec, none, 2, 1); });
  train::device_loader loader(exec, set, 1, 1);
  const train::epoch_plan plan = train::plan_epoch(set, 1, 0, false, train::augment_options{});
  bad_input<invalid>("gpukit::train::device_loader::stage", "'slot'", "2", [&] { loader.stage(2, plan, 0, 1); }, {"= 2"});
  bad_input<invalid>("gpukit::train::device_loader::stage", "'count'", "above the loader's max_batch",
                     [&] { loader.stage(0, plan, 0, 2); }, {"= 2"});
  s.synchronize();
}
