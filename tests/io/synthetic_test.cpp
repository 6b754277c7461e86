// The synthetic dataset: deterministic files in the Keras layout, in the expected counts,
// with classes that differ in colour and shape.
#include "gpukit/io/synthetic.hpp"
#include "io_support.hpp"
#include "support/catch.hpp"

#include <map>
#include <string>
#include <vector>

using namespace gpukit::io;
using gpukit_test::require_throws_naming;
namespace fs = std::filesystem;

namespace {

/// Every file under `root` (relative path → bytes).
std::map<std::string, std::vector<std::uint8_t>> snapshot(const fs::path& root) {
  std::map<std::string, std::vector<std::uint8_t>> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = io_test::read_bytes(e.path().string());
  return files;
}

}  // namespace

TEST_CASE("write_synthetic_dataset writes the expected files, the same for the same seed", "[io][synthetic]") {
  io_test::temp_dir dir("synthetic");
  synthetic_options o;
  o.train_per_class = 7;
  o.test_per_class = 3;
  o.png_every = 3;
  o.seed = 5;
  const synthetic_dataset made = write_synthetic_dataset(dir / "a", o);
  CHECK(made.files == 20);
  CHECK(made.training_dir == dir / "a/training_set");
  CHECK(made.test_dir == dir / "a/test_set");
  const auto a = snapshot(dir / "a");
  REQUIRE(a.size() == 20);
  for (const char* name :
       {"training_set/cats/cat.00000.jpg", "training_set/cats/cat.00002.png", "training_set/dogs/dog.00006.jpg",
        "test_set/cats/cat.00002.png", "test_set/dogs/dog.00000.jpg"})
    CHECK(a.count(name) == 1);
  for (const auto& [name, bytes] : a) {
    INFO(name);
    const bool png = name.substr(name.size() - 4) == ".png";
    CHECK(detect_image_format(gpukit::make_host_span(bytes)) ==
          (png ? image_file_format::png : image_file_format::jpeg));
  }
  const image_folder train = list_image_folder(made.training_dir), test = list_image_folder(made.test_dir);
  CHECK(train.class_names == std::vector<std::string>{"cats", "dogs"});
  CHECK(train.files.size() == 14);
  CHECK(std::count(train.labels.begin(), train.labels.end(), 1) == 7);
  CHECK(test.files.size() == 6);
  // Every file decodes, with a size in the range, and the PNGs hold make_synthetic_image exactly.
  for (std::size_t i = 0; i < train.files.size(); ++i) {
    const image img = read_image(train.files[i]);
    CHECK((img.width >= o.min_size && img.width <= o.max_size && img.height >= o.min_size && img.height <= o.max_size));
    if (i % 7 % 3 == 2) CHECK(img.pixels == make_synthetic_image(train.labels[i], 5, i % 7).pixels);
  }
  // Same options, same bytes (on any thread count); another seed, other bytes.
  (void)write_synthetic_dataset(gpukit::cpu_executor{1}, dir / "b", o);
  CHECK(snapshot(dir / "b") == a);
  o.seed = 6;
  (void)write_synthetic_dataset(dir / "c", o);
  const auto c = snapshot(dir / "c");
  CHECK(c.size() == a.size());
  CHECK(c.at("training_set/cats/cat.00000.jpg") != a.at("training_set/cats/cat.00000.jpg"));
}

TEST_CASE("write_synthetic_dataset refuses to mix with existing files unless asked to replace them",
          "[io][synthetic]") {
  io_test::temp_dir dir("synthetic_existing");
  synthetic_options o;
  o.train_per_class = 2;
  o.test_per_class = 1;
  (void)write_synthetic_dataset(dir / "d", o);
  require_throws_naming<dataset_error>([&] { (void)write_synthetic_dataset(dir / "d", o); },
                                       {dir / "d/training_set/cats", "replace_existing"});
  io_test::write_bytes(dir / "d/test_set/dogs/stale.jpg", {1});
  o.replace_existing = true;
  o.train_per_class = 1;
  (void)write_synthetic_dataset(dir / "d", o);
  CHECK(snapshot(dir / "d").size() == 4);
  o.jpeg_quality = 0;
  require_throws_naming<std::invalid_argument>([&] { (void)write_synthetic_dataset(dir / "e", o); },
                                               {"'jpeg_quality'", "0"});
  o.jpeg_quality = 90;
  o.min_size = 10;
  o.max_size = 9;
  require_throws_naming<std::invalid_argument>([&] { (void)write_synthetic_dataset(dir / "e", o); },
                                               {"'min_size'", "10"});
  CHECK_FALSE(fs::exists(dir / "e"));
  io_test::write_bytes(dir / "f", {1});  // a file where the root folder should go
  o.max_size = 20;
  require_throws_naming<dataset_error>([&] { (void)write_synthetic_dataset(dir / "f", o); }, {dir / "f"});
}

TEST_CASE("make_synthetic_image: deterministic, sized as asked, classes differ in colour", "[io][synthetic]") {
  const image a = make_synthetic_image(1, 3, 17, 20, 30);
  CHECK(a.format == pixel_format::rgb8);
  CHECK((a.width >= 20 && a.width <= 30 && a.height >= 20 && a.height <= 30));
  CHECK(make_synthetic_image(1, 3, 17, 20, 30).pixels == a.pixels);
  CHECK(make_synthetic_image(1, 3, 18, 20, 30).pixels != a.pixels);
  CHECK(make_synthetic_image(0, 3, 17, 20, 30).pixels != a.pixels);
  CHECK(make_synthetic_image(0, 1, 0, 64, 64).width == 64);
  // Cats are warm (red above blue), dogs cool, on average over many images; single images
  // vary (dull animals, random backgrounds).
  double warmth[2] = {0, 0};
  for (int label = 0; label < 2; ++label)
    for (std::uint64_t i = 0; i < 60; ++i) {
      const image img = make_synthetic_image(label, 9, i, 48, 64);
      double sum = 0;
      for (std::size_t p = 0; p < img.width * img.height; ++p) sum += double(img.pixels[3 * p]) - img.pixels[3 * p + 2];
      warmth[label] += sum / double(img.width * img.height) / 60;
    }
  INFO("mean R - B: cats " << warmth[0] << ", dogs " << warmth[1]);
  CHECK(warmth[0] > warmth[1] + 20);
  require_throws_naming<std::invalid_argument>([] { (void)make_synthetic_image(2, 0, 0); }, {"'label'", "2"});
  require_throws_naming<std::invalid_argument>([] { (void)make_synthetic_image(0, 0, 0, 0, 5); }, {"'min_size'", "0"});
}

TEST_CASE("make_synthetic_cache equals make_synthetic_image resized, cats first", "[io][synthetic]") {
  const image_cache cache = make_synthetic_cache(3, 16, 12, 4);
  REQUIRE(cache.size() == 6);
  CHECK(cache.class_names() == std::vector<std::string>{"cats", "dogs"});
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(cache.labels()[i] == float(i / 3));
    const image want = resize_bilinear(make_synthetic_image(int(i / 3), 4, i % 3), 16, 12);
    CHECK(std::equal(want.pixels.begin(), want.pixels.end(), cache.pixels_of(i).begin()));
  }
}
