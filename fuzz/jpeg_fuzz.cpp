// libFuzzer target: gpukit::io::decode_jpeg on arbitrary bytes. The decoder may refuse the
// bytes only with jpeg_file_error; a crash, a sanitizer report, any other exception, a
// hang or an image that breaks its invariants is a finding.
#include "fuzz/fuzz_support.hpp"
#include "gpukit/io/jpeg.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    gpukit_fuzz::check_image(gpukit::io::decode_jpeg(gpukit::host_span<const std::uint8_t>(data, size), "fuzz.jpg"));
  } catch (const gpukit::io::jpeg_file_error&) {
  }
  return 0;
}
