// gpukit/core/views.hpp — shaped, non-owning views for images (2-D, row-major with a
// pitch) and tensors (4-D, NCHW, contiguous). Usable in kernels and CPU loops alike;
// indexing is unchecked, construction from a span checks the sizes.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/error.hpp"
#include "gpukit/core/span.hpp"

#include <string>

namespace gpukit {

/// A width × height image, row-major; element (x, y) lives at data[y * pitch + x].
/// `pitch` (in elements) is ≥ width.
template <class T>
struct view2d {
  T* data = nullptr;
  std::size_t width = 0;
  std::size_t height = 0;
  std::size_t pitch = 0;

  GPUKIT_HOST_DEVICE constexpr T& operator()(std::size_t x, std::size_t y) const noexcept { return data[y * pitch + x]; }
  GPUKIT_HOST_DEVICE constexpr std::size_t size() const noexcept { return width * height; }
  GPUKIT_HOST_DEVICE constexpr bool empty() const noexcept { return width == 0 || height == 0; }
};

/// An N × C × H × W tensor, contiguous NCHW: (n, c, h, w) lives at ((n·C + c)·H + h)·W + w.
template <class T>
struct view4d {
  T* data = nullptr;
  std::size_t n = 0, c = 0, h = 0, w = 0;

  GPUKIT_HOST_DEVICE constexpr std::size_t index(std::size_t in, std::size_t ic, std::size_t ih, std::size_t iw) const noexcept {
    return ((in * c + ic) * h + ih) * w + iw;
  }
  GPUKIT_HOST_DEVICE constexpr T& operator()(std::size_t in, std::size_t ic, std::size_t ih, std::size_t iw) const noexcept {
    return data[index(in, ic, ih, iw)];
  }
  GPUKIT_HOST_DEVICE constexpr std::size_t size() const noexcept { return n * c * h * w; }
};

/// A dense width × height view over `s`; s.size() must equal width · height.
template <class T, memory_space S>
view2d<T> make_view2d(span<T, S> s, std::size_t width, std::size_t height) {
  detail::require(s.size() == width * height, "gpukit::make_view2d",
                  "argument 's' has " + std::to_string(s.size()) + " elements, but width " + std::to_string(width) +
                      " x height " + std::to_string(height) + " needs " + std::to_string(width * height));
  return view2d<T>{s.data(), width, height, width};
}

/// A contiguous NCHW view over `s`; s.size() must equal n·c·h·w.
template <class T, memory_space S>
view4d<T> make_view4d(span<T, S> s, std::size_t n, std::size_t c, std::size_t h, std::size_t w) {
  detail::require(s.size() == n * c * h * w, "gpukit::make_view4d",
                  "argument 's' has " + std::to_string(s.size()) + " elements, but n*c*h*w = " + std::to_string(n) + "*" +
                      std::to_string(c) + "*" + std::to_string(h) + "*" + std::to_string(w) + " needs " +
                      std::to_string(n * c * h * w));
  return view4d<T>{s.data(), n, c, h, w};
}

}  // namespace gpukit
