// fuzz_make_seeds OUT — writes the seed corpora of the fuzz targets: small valid inputs of
// every kind each reader accepts, from which libFuzzer's mutations start.
//   OUT/png/          gray, gray+alpha, RGB, RGBA, 16-bit gray and RGB images (libpng)
//   OUT/jpeg/         gray and colour baselines at a few sizes and qualities
//   OUT/safetensors/  no tensor, F32 tensors with metadata, a scalar, an empty tensor,
//                     and other dtypes
//   OUT/dataset/      directory trees (fuzz/dataset_tree.hpp) holding those images
#include "fuzz/dataset_tree.hpp"
#include "gpukit/io/jpeg.hpp"
#include "gpukit/io/png.hpp"
#include "gpukit/io/safetensors.hpp"

#include <png.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::vector<std::uint8_t> pattern(std::size_t n, unsigned salt) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 37 + salt * 101) ^ (i >> 3));
  return v;
}

std::vector<std::uint8_t> png_bytes(std::uint32_t width, std::uint32_t height, std::uint32_t format) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = width;
  img.height = height;
  img.format = format;
  const auto pixels = pattern(PNG_IMAGE_SIZE(img), width + height + format);
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&img, nullptr, &size, 0, pixels.data(), 0, nullptr)) return {};
  std::vector<std::uint8_t> out(size);
  if (!png_image_write_to_memory(&img, out.data(), &size, 0, pixels.data(), 0, nullptr)) return {};
  out.resize(size);
  return out;
}

std::vector<std::uint8_t> jpeg_bytes(std::size_t width, std::size_t height, gpukit::io::pixel_format f, int quality) {
  const auto pixels = pattern(width * height * gpukit::io::channels(f), static_cast<unsigned>(width * 7 + height));
  return gpukit::io::encode_jpeg(gpukit::make_host_span(pixels), width, height, f, quality);
}

/// A safetensors file written by hand, for the dtypes the writer does not produce.
std::vector<std::uint8_t> safetensors_by_hand() {
  const std::string header =
      R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"I64","shape":[1,1],"data_offsets":[4,12]},)"
      R"("c":{"dtype":"BOOL","shape":[3],"data_offsets":[12,15]},)"
      R"("__metadata__":{"format":"pt"}})";
  std::vector<std::uint8_t> out(8);
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  const auto data = pattern(15, 3);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  if (bytes.empty()) {
    std::fprintf(stderr, "fuzz_make_seeds: could not make %s\n", path.string().c_str());
    std::exit(1);
  }
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* d : {"png", "jpeg", "safetensors", "dataset"}) fs::create_directories(out / d);
  using gpukit::io::pixel_format;

  const std::uint32_t png_formats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA,
                                       PNG_FORMAT_LINEAR_Y, PNG_FORMAT_LINEAR_RGB};
  int k = 0;
  for (std::uint32_t f : png_formats) {
    write(out / "png" / ("seed" + std::to_string(k++) + ".png"), png_bytes(1, 1, f));
    write(out / "png" / ("seed" + std::to_string(k++) + ".png"), png_bytes(7, 3, f));
  }

  k = 0;
  for (auto f : {pixel_format::gray8, pixel_format::rgb8})
    for (auto [w, h, q] : {std::tuple{1, 1, 90}, std::tuple{8, 8, 50}, std::tuple{17, 9, 95}})
      write(out / "jpeg" / ("seed" + std::to_string(k++) + ".jpg"), jpeg_bytes(w, h, f, q));

  using gpukit::io::safetensors_tensor;
  const std::vector<float> six{1, 2, 3, 4, 5, 6}, one{42}, none{};
  write(out / "safetensors" / "empty.safetensors", gpukit::io::serialize_safetensors({}));
  write(out / "safetensors" / "two.safetensors",
        gpukit::io::serialize_safetensors({{"w", {2, 3}, gpukit::make_host_span(six)}, {"b", {1}, gpukit::make_host_span(one)}},
                                          {{"framework", "gpukit"}}));
  write(out / "safetensors" / "scalar_and_empty.safetensors",
        gpukit::io::serialize_safetensors({{"s", {}, gpukit::make_host_span(one)}, {"e", {0, 4}, gpukit::make_host_span(none)}}));
  write(out / "safetensors" / "dtypes.safetensors", safetensors_by_hand());

  using gpukit_fuzz::tree_entry;
  const auto small_png = png_bytes(3, 2, PNG_FORMAT_RGB);
  const auto gray_png = png_bytes(2, 2, PNG_FORMAT_GRAY);
  const auto small_jpeg = jpeg_bytes(4, 3, pixel_format::rgb8, 80);
  // kind = where | what << 3 (see dataset_tree.hpp)
  write(out / "dataset" / "two_classes.tree",
        gpukit_fuzz::encode_tree({tree_entry{0 | 0 << 3, small_png}, tree_entry{1 | 1 << 3, small_jpeg}}));
  write(out / "dataset" / "nested_and_ignored.tree",
        gpukit_fuzz::encode_tree({tree_entry{0 | 0 << 3, small_png}, tree_entry{4 | 3 << 3, gray_png},
                                  tree_entry{1 | 2 << 3, small_jpeg}, tree_entry{2 | 4 << 3, {'t', 'x', 't'}},
                                  tree_entry{2 | 0 << 3, gray_png}, tree_entry{3 | 0 << 3, small_png},
                                  tree_entry{0 | 5 << 3, small_png}, tree_entry{1 | 6 << 3, {}},
                                  tree_entry{1 | 7 << 3, {}}, tree_entry{6 | 0 << 3, small_png}}));
  write(out / "dataset" / "one_class.tree", gpukit_fuzz::encode_tree({tree_entry{2 | 1 << 3, small_jpeg}}));
  return 0;
}
