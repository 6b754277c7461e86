// libFuzzer target: the dataset reader. Each input becomes a small directory tree
// (fuzz/dataset_tree.hpp) in a temporary folder, which list_image_folder lists and
// image_cache::load decodes. They may refuse a tree only with dataset_error (listing) or
// the decoders' image_file_error; what they accept must hold up: one label per file, each
// a class index, classes sorted, and a cache of exactly one resized image per file.
#include "fuzz/dataset_tree.hpp"
#include "fuzz/fuzz_support.hpp"
#include "gpukit/io/dataset.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;

/// A private temporary folder for this process, removed at exit.
const fs::path& scratch() {
  static const fs::path root = [] {
    std::string pattern = (fs::temp_directory_path() / "gpukit_fuzz_dataset_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) gpukit_fuzz::fail("cannot create a temporary folder");
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch(), ec);
    });
    return fs::path(pattern);
  }();
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace gpukit::io;
  const fs::path root = scratch() / "tree";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directory(root, ec);
  gpukit_fuzz::write_tree(root, gpukit_fuzz::parse_tree(data, size));
  try {
    const image_folder folder = list_image_folder(root.string());
    gpukit_fuzz::check(!folder.class_names.empty(), "a listing with no class");
    gpukit_fuzz::check(std::is_sorted(folder.class_names.begin(), folder.class_names.end()), "classes not sorted");
    gpukit_fuzz::check(folder.files.size() == folder.labels.size() && !folder.files.empty(), "files and labels disagree");
    for (int label : folder.labels)
      gpukit_fuzz::check(label >= 0 && static_cast<std::size_t>(label) < folder.class_names.size(), "a label out of range");
    const image_cache cache = image_cache::load(gpukit::cpu_executor(1), folder, 5, 3);
    gpukit_fuzz::check(cache.size() == folder.files.size(), "a cache with the wrong number of images");
    gpukit_fuzz::check(cache.pixels().size() == cache.size() * 5 * 3 * 3, "a cache with the wrong number of bytes");
  } catch (const dataset_error&) {
  } catch (const image_file_error&) {
  }
  return 0;
}
