// tests/io/io_support.hpp — temporary folders, files as bytes, and test images for the io tests.
#pragma once

#include "gpukit/io/image.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace io_test {

namespace fs = std::filesystem;

using gpukit_test::temp_dir;

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// A smooth image (gradients and a soft blob) that JPEG reproduces closely, varied by `salt`.
inline gpukit::io::image smooth_image(std::size_t w, std::size_t h, gpukit::io::pixel_format f, unsigned salt) {
  gpukit::io::image img;
  img.width = w;
  img.height = h;
  img.format = f;
  const std::size_t c = gpukit::io::channels(f);
  img.pixels.resize(w * h * c);
  for (std::size_t y = 0; y < h; ++y)
    for (std::size_t x = 0; x < w; ++x)
      for (std::size_t k = 0; k < c; ++k) {
        const double u = double(x) / double(w), v = double(y) / double(h);
        const double value = 40 + 80 * u + 60 * v * double(k + 1) / double(c) + 50 * ((salt + k) % 3) / 2.0 +
                             30 * std::exp(-8 * ((u - 0.5) * (u - 0.5) + (v - 0.4) * (v - 0.4)));
        img.pixels[(y * w + x) * c + k] = static_cast<std::uint8_t>(value);
      }
  return img;
}

/// Random pixels from Catch's seed.
inline std::vector<std::uint8_t> noise_bytes(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng() >> 56);
  return v;
}

}  // namespace io_test
