// gpukit/nn/init.hpp — weight initialisers, seeded and reproducible.
//
// Values are generated on the host from a counter-based generator (splitmix64 of seed,
// tensor salt and element index) and then copied, so a given (seed, model) gives the same
// bits on the CPU and the GPU executor, whatever the thread count.
//   glorot_uniform (Keras' default): U(-l, l), l = √(6 / (fan_in + fan_out))
//   he_uniform:                      U(-l, l), l = √(6 / fan_in)
//   he_normal:                       N(0, 2 / fan_in)
//   zeros
// Fans follow Keras: dense (in, out); conv2d (in_channels·kh·kw, out_channels·kh·kw).
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace gpukit::nn {

enum class init { glorot_uniform, he_uniform, he_normal, zeros };

namespace detail {

inline std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// A uniform double in [0, 1) for element `i` of the stream (seed, salt).
inline double uniform01(std::uint64_t seed, std::uint64_t salt, std::uint64_t i) noexcept {
  const std::uint64_t key = splitmix64(seed ^ splitmix64(salt + 0x632BE59BD9B4E019ull));
  return static_cast<double>(splitmix64(key + i) >> 11) * 0x1p-53;
}

}  // namespace detail

/// Fills out[0, count) with `kind` for a tensor with the given fans. `salt` tells the
/// tensors of one model apart (the model uses the layer index).
template <class T>
void initialise(T* out, std::size_t count, init kind, std::size_t fan_in, std::size_t fan_out, std::uint64_t seed,
                std::uint64_t salt) {
  const double fi = static_cast<double>(fan_in == 0 ? 1 : fan_in);
  const double fo = static_cast<double>(fan_out == 0 ? 1 : fan_out);
  switch (kind) {
    case init::zeros:
      for (std::size_t i = 0; i < count; ++i) out[i] = T(0);
      return;
    case init::glorot_uniform:
    case init::he_uniform: {
      const double limit = kind == init::glorot_uniform ? std::sqrt(6.0 / (fi + fo)) : std::sqrt(6.0 / fi);
      for (std::size_t i = 0; i < count; ++i)
        out[i] = static_cast<T>(limit * (2.0 * detail::uniform01(seed, salt, i) - 1.0));
      return;
    }
    case init::he_normal: {
      const double sigma = std::sqrt(2.0 / fi);
      const double two_pi = 6.283185307179586476925;
      for (std::size_t i = 0; i < count; ++i) {
        // Box–Muller on two uniforms of this element; 1 - u keeps the log finite.
        const double u1 = 1.0 - detail::uniform01(seed, salt, 2 * i);
        const double u2 = detail::uniform01(seed, salt, 2 * i + 1);
        out[i] = static_cast<T>(sigma * std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2));
      }
      return;
    }
  }
}

inline const char* init_name(init kind) noexcept {
  switch (kind) {
    case init::glorot_uniform: return "glorot_uniform";
    case init::he_uniform: return "he_uniform";
    case init::he_normal: return "he_normal";
    default: return "zeros";
  }
}

}  // namespace gpukit::nn
