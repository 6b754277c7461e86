// gpukit/io/dataset.hpp — image datasets in the class-per-subfolder layout (Keras'
// flow_from_directory), decoded once into one contiguous in-memory cache, and seeded
// per-epoch shuffles.
//
//   auto folder = gpukit::io::list_image_folder("data/training_set");  // cats/, dogs/
//   auto cache = gpukit::io::image_cache::load(folder, 64, 64);        // NHWC uint8, RGB
//   for (std::size_t i : gpukit::io::epoch_order(cache.size(), seed, epoch)) ...
//
// Errors: dataset_error for a folder that cannot be listed or holds no images (naming the
// path); the decoders' image_file_error family for a file that fails to decode (naming the
// file); std::invalid_argument for bad arguments.
// Host-only header: compiles with a plain C++17 compiler; decoding uses OpenMP threads.
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/executor.hpp"
#include "gpukit/core/span.hpp"
#include "gpukit/io/detail/random.hpp"
#include "gpukit/io/image.hpp"
#include "gpukit/io/image_file.hpp"
#include "gpukit/io/resize.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace gpukit::io {

namespace detail {

/// Runs body(i) for i in [0, n) on `threads` threads and rethrows the exception of the
/// lowest-numbered failing i seen (exceptions must not leave an OpenMP region).
template <class Body>
void parallel_for_rethrow(int threads, std::size_t n, Body body) {
  std::exception_ptr error;
  std::size_t error_index = n;
  std::atomic<bool> failed{false};
  (void)threads;  // unused without OpenMP
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      body(static_cast<std::size_t>(i));
    } catch (...) {
#pragma omp critical(gpukit_io_parallel_for_rethrow)
      if (static_cast<std::size_t>(i) < error_index) {
        error_index = static_cast<std::size_t>(i);
        error = std::current_exception();
      }
      failed.store(true, std::memory_order_relaxed);
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

/// A dataset folder could not be listed, or does not have the expected layout; what()
/// names the path and the reason.
class dataset_error : public std::runtime_error {
 public:
  dataset_error(const std::string& path, const std::string& what_arg) : std::runtime_error(what_arg), path_(path) {}
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// The images of a class-per-subfolder dataset. files[i] has label labels[i], an index into
/// class_names.
struct image_folder {
  std::vector<std::string> class_names;
  std::vector<std::string> files;
  std::vector<int> labels;
};

/// True for names ending in .jpg, .jpeg or .png (any case) that are not hidden (leading '.').
inline bool is_image_file_name(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (char& ch : ext) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  return ext == "jpg" || ext == "jpeg" || ext == "png";
}

/// Lists `root` the way Keras' flow_from_directory does: every non-hidden subfolder is a
/// class; class names are sorted (byte order) and a class's label is its index. Each class
/// folder is searched recursively (hidden files and folders skipped, links to folders not
/// followed) for .jpg/.jpeg/.png files (any case; contents are not checked here), sorted
/// by path. Files of class 0 come first, then class 1, and so on. Throws dataset_error when
/// `root` is missing or not a folder, has no class subfolder, or a class folder has no
/// image (a class that could never be seen is almost always a mistake).
inline image_folder list_image_folder(const std::string& root) {
  namespace fs = std::filesystem;
  const char* where = "gpukit::io::list_image_folder";
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw dataset_error(root,
                        std::string(where) + ": '" + root + "' is not a folder" + (ec ? ": " + ec.message() : ""));
  image_folder out;
  std::vector<fs::path> class_dirs;
  std::error_code entry_ec;  // an entry whose type cannot be read (a broken link) is skipped, not an error
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && it->is_directory(entry_ec)) class_dirs.push_back(it->path());
  }
  if (ec) throw dataset_error(root, std::string(where) + ": cannot list '" + root + "': " + ec.message());
  if (class_dirs.empty())
    throw dataset_error(root, std::string(where) + ": '" + root + "' has no class subfolder (expected one per class)");
  std::sort(class_dirs.begin(), class_dirs.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
  for (std::size_t label = 0; label < class_dirs.size(); ++label) {
    const fs::path& dir = class_dirs[label];
    out.class_names.push_back(dir.filename().string());
    std::vector<std::string> files;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && name[0] == '.') {
        it.disable_recursion_pending();
        continue;
      }
      if (is_image_file_name(name) && it->is_regular_file(entry_ec)) files.push_back(it->path().string());
    }
    if (ec)
      throw dataset_error(dir.string(), std::string(where) + ": cannot list '" + dir.string() + "': " + ec.message());
    if (files.empty())
      throw dataset_error(
          dir.string(), std::string(where) + ": class folder '" + dir.string() + "' holds no .jpg, .jpeg or .png file");
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      out.files.push_back(std::move(f));
      out.labels.push_back(static_cast<int>(label));
    }
  }
  return out;
}

/// A whole dataset decoded, converted to RGB and resized (resize_bilinear) to one size,
/// in one contiguous NHWC uint8 buffer: image i's pixels are the width · height · 3 bytes
/// at offset i · height · width · 3, row-major, top row first, R, G, B interleaved. Labels
/// are the class indices as floats (0.0f, 1.0f, ...), ready for a loss.
class image_cache {
 public:
  image_cache() = default;

  /// Wraps images already decoded: `pixels` holds labels.size() images of width × height × 3
  /// bytes; every label is a whole number in [0, class_names.size()).
  image_cache(std::vector<std::string> class_names, std::size_t width, std::size_t height,
              std::vector<std::uint8_t> pixels, std::vector<float> labels)
      : class_names_(std::move(class_names)),
        width_(width),
        height_(height),
        pixels_(std::move(pixels)),
        labels_(std::move(labels)) {
    const char* where = "gpukit::io::image_cache";
    using gpukit::detail::require;
    require(detail::pixel_count_ok(width_, height_), where,
            "arguments 'width' x 'height' = " + std::to_string(width_) + " x " + std::to_string(height_) +
                " is not between 1 and max_image_pixels pixels");
    require(pixels_.size() / image_bytes() == labels_.size() && pixels_.size() % image_bytes() == 0, where,
            "argument 'pixels' has " + std::to_string(pixels_.size()) + " bytes, " + std::to_string(labels_.size()) +
                " images of " + std::to_string(image_bytes()) + " bytes need " +
                std::to_string(labels_.size() * image_bytes()));
    for (std::size_t i = 0; i < labels_.size(); ++i) {
      const float l = labels_[i];
      require(l >= 0.0f && static_cast<double>(l) < static_cast<double>(class_names_.size()) &&
                  l == static_cast<float>(static_cast<int>(l)),
              where,
              "argument 'labels'[" + std::to_string(i) + "] = " + std::to_string(l) + " is not a class index below " +
                  std::to_string(class_names_.size()));
    }
  }

  /// Decodes every file of `folder` (JPEG or PNG, by signature) on `exec`'s threads, each
  /// resized to width × height RGB, into image i = folder.files[i]. The result does not
  /// depend on the thread count. A file that fails to open or decode fails the whole load
  /// with that file's image_file_error (the lowest-numbered failing file seen).
  static image_cache load(const cpu_executor& exec, const image_folder& folder, std::size_t width, std::size_t height) {
    const char* where = "gpukit::io::image_cache::load";
    using gpukit::detail::require;
    require(folder.files.size() == folder.labels.size(), where,
            "argument 'folder' has " + std::to_string(folder.files.size()) + " files but " +
                std::to_string(folder.labels.size()) + " labels");
    require(detail::pixel_count_ok(width, height), where,
            "arguments 'width' x 'height' = " + std::to_string(width) + " x " + std::to_string(height) +
                " is not between 1 and max_image_pixels pixels");
    const std::size_t n = folder.files.size(), bytes = width * height * 3;
    require(n <= SIZE_MAX / bytes, where,
            std::to_string(n) + " images of " + std::to_string(bytes) + " bytes overflow");
    std::vector<float> labels(n);
    for (std::size_t i = 0; i < n; ++i) {
      require(folder.labels[i] >= 0 && static_cast<std::size_t>(folder.labels[i]) < folder.class_names.size(), where,
              "argument 'folder' has label " + std::to_string(folder.labels[i]) + " for '" + folder.files[i] + "', " +
                  std::to_string(folder.class_names.size()) + " classes");
      labels[i] = static_cast<float>(folder.labels[i]);
    }
    std::vector<std::uint8_t> pixels(n * bytes);
    detail::parallel_for_rethrow(exec.threads(), n, [&](std::size_t i) {
      resize_bilinear(read_image(folder.files[i]), width, height,
                      host_span<std::uint8_t>(pixels.data() + i * bytes, bytes));
    });
    return image_cache(folder.class_names, width, height, std::move(pixels), std::move(labels));
  }

  /// As above on all of OpenMP's threads.
  static image_cache load(const image_folder& folder, std::size_t width, std::size_t height) {
    return load(cpu_executor{}, folder, width, height);
  }

  std::size_t size() const noexcept { return labels_.size(); }
  std::size_t width() const noexcept { return width_; }
  std::size_t height() const noexcept { return height_; }
  static constexpr std::size_t channels() noexcept { return 3; }
  /// Bytes of one image: height · width · 3.
  std::size_t image_bytes() const noexcept { return width_ * height_ * 3; }
  /// All images, size() · image_bytes() bytes.
  host_span<const std::uint8_t> pixels() const noexcept { return make_host_span(pixels_); }
  /// Image i (i < size(), unchecked like operator[]).
  host_span<const std::uint8_t> pixels_of(std::size_t i) const noexcept {
    return host_span<const std::uint8_t>(pixels_.data() + i * image_bytes(), image_bytes());
  }
  /// One label per image, the class index as a float.
  host_span<const float> labels() const noexcept { return make_host_span(labels_); }
  const std::vector<std::string>& class_names() const noexcept { return class_names_; }

 private:
  std::vector<std::string> class_names_;
  std::size_t width_ = 0, height_ = 0;
  std::vector<std::uint8_t> pixels_;
  std::vector<float> labels_;
};

/// The order in which to visit n items in epoch `epoch`: a permutation of [0, n) drawn by
/// Fisher–Yates from splitmix64 seeded with (seed, epoch). The same (n, seed, epoch) gives
/// the same order on every platform and standard library; different epochs give
/// independent orders.
inline std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  detail::splitmix64 rng(detail::mix64(detail::mix64(seed) + epoch));
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

}  // namespace gpukit::io
