// libFuzzer target: gpukit::io::parse_safetensors on arbitrary bytes. The parser may
// refuse the bytes only with safetensors_error. What it accepts must hold up: every
// tensor's byte range lies inside the data section and matches its shape and dtype (each
// byte is read, so ASan sees a range that escapes), and f32() of an F32 tensor returns
// exactly its elements.
#include "fuzz/fuzz_support.hpp"
#include "gpukit/io/safetensors.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace gpukit::io;
  try {
    const safetensors_file f = parse_safetensors(gpukit::host_span<const std::uint8_t>(data, size), "fuzz.safetensors");
    for (const safetensors_entry& t : f.tensors()) {
      const auto bytes = f.bytes(t);
      unsigned sum = 0;
      for (auto b : bytes) sum += b;
      (void)sum;
      const std::size_t element = safetensors_dtype_size(t.dtype);
      gpukit_fuzz::check(element != 0, "an accepted tensor of unknown dtype");
      gpukit_fuzz::check(bytes.size() == t.elements() * element, "an accepted tensor whose bytes disagree with its shape");
      gpukit_fuzz::check(f.find(t.name) == &t, "an accepted tensor that find() does not return");
      if (t.dtype == "F32") gpukit_fuzz::check(f.f32(t.name).size() == t.elements(), "f32() returned the wrong count");
    }
  } catch (const safetensors_error&) {
  }
  return 0;
}
