// Image input on the CPU (no GPU needed):
//   io_decode_cache   image_cache::load of 2000 synthetic files (1000 per class, 48..160 px,
//                     one in four a PNG, the rest JPEG at quality 90), written once to a
//                     temporary folder before the first case runs: read, decode, convert
//                     to RGB and resize to 64x64 into the cache. "omp" on all OpenMP
//                     threads, "serial" on one (the peer: the same work without threads).
//   io_synthetic      write_synthetic_dataset of the same 2000 files (draw, encode, write),
//                     each call replacing the previous call's, on all threads and on one.
// Items are images, so the table's items/s is images/s. The files are in the page cache
// after the first call, so io_decode_cache measures decoding, not the disk; io_synthetic
// creates 2000 files per call and so also measures the file system of TMPDIR (on a VM's
// ext4 creating a file can cost more than drawing and encoding it; tmpfs costs ~10 us).
#include "gpukit/io/dataset.hpp"
#include "gpukit/io/synthetic.hpp"
#include "support/harness.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include <unistd.h>

namespace gpukit_bench {
namespace {

namespace fs = std::filesystem;
constexpr std::size_t per_class = 1000;

gpukit::io::synthetic_options bench_options() {
  gpukit::io::synthetic_options o;
  o.train_per_class = per_class;
  o.test_per_class = 0;
  o.seed = 2026;
  o.replace_existing = true;
  return o;
}

/// A folder of its own under the temporary directory, removed at exit.
class temp_folder {
 public:
  explicit temp_folder(const std::string& stem)
      : path_(fs::temp_directory_path() /
              (stem + "_" + std::to_string(::getpid()) + "_" +
               std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()))) {}
  ~temp_folder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_folder(const temp_folder&) = delete;
  temp_folder& operator=(const temp_folder&) = delete;
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

/// The decode case's dataset, written on first use (outside any timed call).
const gpukit::io::image_folder& decode_folder() {
  static temp_folder dir("gpukit_bench_io");
  static const gpukit::io::image_folder folder = [] {
    const auto made = gpukit::io::write_synthetic_dataset(dir.str(), bench_options());
    return gpukit::io::list_image_folder(made.training_dir);
  }();
  return folder;
}

}  // namespace

void register_io_cases() {
  const std::size_t n = 2 * per_class;
  for (int threads : {0, 1})
    add_cpu_case("io_decode_cache", threads == 0 ? "omp" : "serial", n, 0, double(n), [threads] {
      const gpukit::io::image_folder& folder = decode_folder();
      return std::function<void()>([&folder, threads] {
        const auto cache = gpukit::io::image_cache::load(gpukit::cpu_executor{threads}, folder, 64, 64);
        benchmark::DoNotOptimize(cache.pixels().data());
      });
    });
  for (int threads : {0, 1})
    add_cpu_case("io_synthetic", threads == 0 ? "omp" : "serial", n, 0, double(n), [threads] {
      auto dir = std::make_shared<temp_folder>("gpukit_bench_synthetic");
      return std::function<void()>([dir, threads] {
        (void)gpukit::io::write_synthetic_dataset(gpukit::cpu_executor{threads}, dir->str(), bench_options());
      });
    });
}

}  // namespace gpukit_bench
