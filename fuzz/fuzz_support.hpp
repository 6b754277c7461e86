// fuzz/fuzz_support.hpp — what every gpukit fuzz target shares: the invariants a decoded
// image must satisfy, and a hard stop (abort) when one does not, which libFuzzer reports
// as a crash with the input that caused it.
#pragma once

#include "gpukit/io/image.hpp"

#include <cstdio>
#include <cstdlib>

namespace gpukit_fuzz {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

inline void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

/// A decoder either throws its documented error or returns an image whose size fields,
/// limit and pixel bytes agree.
inline void check_image(const gpukit::io::image& img) {
  using gpukit::io::channels;
  check(img.width >= 1 && img.height >= 1, "an image with no pixels");
  check(img.width <= gpukit::io::max_image_pixels / img.height, "an image over max_image_pixels");
  check(img.format == gpukit::io::pixel_format::gray8 || img.format == gpukit::io::pixel_format::rgb8,
        "an unknown pixel format");
  check(img.pixels.size() == img.width * img.height * channels(img.format), "pixel bytes disagree with the size");
  unsigned sum = 0;  // touch every byte: a short or stale buffer shows up under ASan
  for (auto b : img.pixels) sum += b;
  (void)sum;
}

}  // namespace gpukit_fuzz
