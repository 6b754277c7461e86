// gpukit/fractal/colour.hpp — palettes: a smooth escape count → an RGB8 colour.
//
//   gray     the count as brightness, 0 → black, max_iters (inside the set) → white: the
//            seed article's uint8 image scaled to the full 0..255 range.
//   classic, fire, ocean
//            cyclic gradients over sqrt(count) (one cycle per 4 units of sqrt(count), so
//            zooms with counts in the thousands still show bands); inside the set is black.
//
// Host-only header: compiles with a plain C++17 compiler. colour_of() is also a device
// function, so the GPU colours with the same code.
#pragma once

#include "gpukit/core/config.hpp"
#include "gpukit/core/error.hpp"

#include <cmath>
#include <cstdint>
#include <string>

namespace gpukit::fractal {

/// One pixel of an 8-bit RGB image (3 bytes, no padding: an image is width·height·3 bytes).
struct rgb8 {
  std::uint8_t r, g, b;
};
static_assert(sizeof(rgb8) == 3, "rgb8 must be three packed bytes");

enum class palette { gray, classic, fire, ocean };

inline const char* to_string(palette p) noexcept {
  switch (p) {
    case palette::gray: return "gray";
    case palette::classic: return "classic";
    case palette::fire: return "fire";
    case palette::ocean: return "ocean";
  }
  return "?";
}

/// "gray" (or "grey"), "classic", "fire", "ocean"; std::invalid_argument otherwise.
inline palette parse_palette(const std::string& name) {
  if (name == "gray" || name == "grey") return palette::gray;
  if (name == "classic") return palette::classic;
  if (name == "fire") return palette::fire;
  if (name == "ocean") return palette::ocean;
  throw std::invalid_argument("gpukit::fractal::parse_palette: argument 'name' = '" + name +
                              "' is not one of gray, classic, fire, ocean");
}

namespace detail {

struct rgbf {
  float r, g, b;
};

/// The gradient's control colours, equally spaced around one cycle.
GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE rgbf control_colour(palette p, int k) {
  // Five stops per palette, stored flat so the table lives in registers/constant data.
  constexpr unsigned char classic[5][3] = {{6, 12, 64}, {32, 104, 204}, {238, 246, 255}, {255, 178, 36}, {92, 30, 8}};
  constexpr unsigned char fire[5][3] = {{12, 0, 0}, {178, 24, 0}, {255, 132, 0}, {255, 232, 128}, {120, 20, 4}};
  constexpr unsigned char ocean[5][3] = {{0, 10, 42}, {0, 92, 142}, {82, 202, 212}, {232, 250, 255}, {20, 60, 122}};
  const unsigned char* c = p == palette::fire ? fire[k] : (p == palette::ocean ? ocean[k] : classic[k]);
  return {static_cast<float>(c[0]), static_cast<float>(c[1]), static_cast<float>(c[2])};
}

GPUKIT_HOST_DEVICE GPUKIT_FORCEINLINE std::uint8_t to_byte(float v) {
  // NaN fails every comparison, so it lands on 0 here instead of reaching the conversion
  // to an integer, which is undefined for it.
  v = v > 0.0f ? (v < 255.0f ? v : 255.0f) : 0.0f;
  return static_cast<std::uint8_t>(v + 0.5f);
}

}  // namespace detail

/// The colour of a pixel whose smooth count is `smooth` (0 ..= max_iters; max_iters means
/// inside the set), as float channels in [0, 255] (supersampling averages these). Counts
/// outside that range are clamped to it; a NaN count gives black.
GPUKIT_HOST_DEVICE inline detail::rgbf colour_of_f(float smooth, std::uint32_t max_iters, palette p) {
  const float top = static_cast<float>(max_iters);
  if (p == palette::gray) {
    const float v = 255.0f * (smooth >= top ? 1.0f : smooth / top);
    return {v, v, v};
  }
  if (smooth >= top) return {0.0f, 0.0f, 0.0f};
  constexpr int stops = 5;
  const float pos = std::sqrt(smooth > 0.0f ? smooth : 0.0f) * (stops / 4.0f);
  const float base = std::floor(pos);
  const float f = pos - base;
  const int k = static_cast<int>(base - stops * std::floor(base / stops));
  const detail::rgbf a = detail::control_colour(p, k % stops), b = detail::control_colour(p, (k + 1) % stops);
  return {a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f};
}

/// colour_of_f rounded to bytes.
GPUKIT_HOST_DEVICE inline rgb8 colour_of(float smooth, std::uint32_t max_iters, palette p) {
  const detail::rgbf c = colour_of_f(smooth, max_iters, p);
  return {detail::to_byte(c.r), detail::to_byte(c.g), detail::to_byte(c.b)};
}

}  // namespace gpukit::fractal
