// libFuzzer target: gpukit::io::decode_png on arbitrary bytes. The decoder may refuse the
// bytes only with png_file_error; a crash, a sanitizer report, any other exception, a hang
// or an image that breaks its invariants is a finding.
//
// libpng refuses a chunk whose CRC does not match, so nearly every mutation would stop at
// the first CRC check. The target therefore recomputes each chunk's CRC before decoding,
// which lets mutations reach the chunk parsers, the inflater and gpukit's own checks.
#include "fuzz/fuzz_support.hpp"
#include "gpukit/io/png.hpp"

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

std::vector<std::uint8_t> with_valid_crcs(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(data, data + size);
  std::size_t at = 8;
  while (size >= 12 && at <= size - 12) {
    const std::uint8_t* p = bytes.data() + at;
    const std::size_t length = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
    if (length > size - at - 12) break;
    const uLong crc = crc32(crc32(0L, Z_NULL, 0), p + 4, static_cast<uInt>(length + 4));
    std::uint8_t* c = bytes.data() + at + 8 + length;
    c[0] = static_cast<std::uint8_t>(crc >> 24);
    c[1] = static_cast<std::uint8_t>(crc >> 16);
    c[2] = static_cast<std::uint8_t>(crc >> 8);
    c[3] = static_cast<std::uint8_t>(crc);
    at += 12 + length;
  }
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes = with_valid_crcs(data, size);
  try {
    gpukit_fuzz::check_image(gpukit::io::decode_png(gpukit::make_host_span(bytes), "fuzz.png"));
  } catch (const gpukit::io::png_file_error&) {
  }
  return 0;
}
