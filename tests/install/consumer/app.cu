// The smallest GPU program of a user's project: core's umbrella header, a kernel of its own
// launched through gpukit. (consumer_layers, package.default_arch, includes gpukit.cuh.)
#include <gpukit/core.cuh>

#include <cstdio>

__global__ void add_one(gpukit::device_span<int> v) {
  for (std::size_t i : gpukit::grid_stride_range(v.size())) v[i] += 1;
}

int main() {
  if (!gpukit::is_cuda_available()) {
    std::printf("consumer: no GPU, built fine\n");
    return 0;
  }
  gpukit::stream s;
  auto d = gpukit::device_buffer<int>::from_host(std::vector<int>(1000, 41), s);
  gpukit::launch(add_one, gpukit::config_for_elements(d.size(), add_one), s, d.span());
  for (int x : d.to_host(s))
    if (x != 42) return 1;
  std::printf("consumer: ok\n");
  return 0;
}
