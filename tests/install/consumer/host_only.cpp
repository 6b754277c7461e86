#include <gpukit/gpukit.hpp>
#include <gpukit/io/image_file.hpp>

#include <cstdio>

int main() {
  gpukit::host_buffer<float> b(16, gpukit::host_memory::pageable, gpukit::zero_init);
  std::printf("consumer_host: %d CUDA device(s), cpu threads %d, buffer %zu\n", gpukit::device_count(),
              gpukit::cpu_executor{}.threads(), b.size());
  // libjpeg comes with the gpukit target: a JPEG round trip links and runs.
  const std::vector<std::uint8_t> gray(64, 128);
  const auto jpeg = gpukit::io::encode_jpeg(gpukit::make_host_span(gray), 8, 8, gpukit::io::pixel_format::gray8);
  const auto img = gpukit::io::decode_image(gpukit::make_host_span(jpeg), "consumer.jpg");
  return b[0] == 0.0f && img.width == 8 && img.pixels.size() == 8 * 8 * 3 ? 0 : 1;
}
