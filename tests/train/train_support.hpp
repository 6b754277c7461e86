// tests/train/train_support.hpp — what the train tests share: a temporary folder, random
// uint8 image sets, and small models of the seed's shape.
#pragma once

#include "gpukit/core.hpp"
#include "gpukit/nn.hpp"
#include "support/catch.hpp"
#include "support/numeric_checks.hpp"
#include "support/temp_dir.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace train_test {

namespace nn = gpukit::nn;

using gpukit_test::temp_dir;

/// n random images of w × h × c bytes and labels alternating 0, 1.
struct random_images {
  std::vector<std::uint8_t> pixels;
  std::vector<float> labels;
  std::size_t width = 0, height = 0, channels = 3;

  random_images(std::size_t n, std::size_t w, std::size_t h, std::uint64_t salt, std::size_t c = 3)
      : pixels(n * w * h * c), labels(n), width(w), height(h), channels(c) {
    auto rng = gpukit_test::rng(salt);
    for (auto& p : pixels) p = static_cast<std::uint8_t>(rng() & 0xff);
    for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<float>(i % 2);
  }
};

/// The seed CNN's shape at a smaller size: conv 3→8 3x3 + relu + maxpool 2, flatten,
/// dense → 16 + relu, dense 16 → 1 + sigmoid; binary cross-entropy, Adam.
template <class Exec>
nn::sequential<Exec> small_cnn(const Exec& exec, std::size_t size, std::size_t max_batch, std::uint64_t seed = 3) {
  nn::sequential<Exec> m(exec, 3, size, size);
  const std::size_t pooled = (size - 2) / 2;
  m.add(nn::conv2d(3, 8, 3, 1)).add(nn::relu{}).add(nn::maxpool2d(2)).add(nn::flatten{});
  m.add(nn::dense(8 * pooled * pooled, 16)).add(nn::relu{}).add(nn::dense(16, 1)).add(nn::sigmoid{});
  m.compile(max_batch, nn::binary_crossentropy{}, nn::adam{}, seed);
  return m;
}

/// Every parameter of a model, on the host (GPU: waits).
template <class Model>
std::vector<float> parameters_of(Model& m) {
  auto p = m.parameters();
  std::vector<float> host(p.size());
  gpukit::stream_view s{};
  if constexpr (gpukit::is_gpu_executor_v<std::decay_t<decltype(m.executor())>>) s = m.executor().stream();
  gpukit::transfer(gpukit::make_host_span(host), p, s);
  return host;
}

}  // namespace train_test
