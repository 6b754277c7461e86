// examples/vector_add — the article's array addition, done properly.
//
//   vector_add [--n N] [--repeats R]
//
// 1. A = [1..6], B = [7..12] -> C = [8, 10, 12, 14, 16, 18] with gpukit::add, on the GPU
//    when there is one.
// 2. A large N (default 2^26) timed on the GPU (the add alone, and with the transfers)
//    and on the CPU fallback, with the speedup. Without a GPU it runs the CPU path only.
#include <gpukit/gpukit.cuh>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

double median_ms(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void print_vector(const char* name, const std::vector<float>& v) {
  std::printf("%s = [", name);
  for (std::size_t i = 0; i < v.size(); ++i) std::printf(i ? ", %g" : "%g", v[i]);
  std::printf("]\n");
}

std::size_t parse_size(const char* text, const char* flag) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0') {
    std::fprintf(stderr, "vector_add: %s expects a number, got '%s'\n", flag, text);
    std::exit(2);
  }
  return static_cast<std::size_t>(v);
}

}  // namespace

int main(int argc, char** argv) try {
  std::size_t n = std::size_t{1} << 26;
  std::size_t repeats = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--n" && i + 1 < argc) {
      n = parse_size(argv[++i], "--n");
    } else if (arg == "--repeats" && i + 1 < argc) {
      repeats = std::max<std::size_t>(1, parse_size(argv[++i], "--repeats"));
    } else {
      std::fprintf(stderr, "usage: vector_add [--n N] [--repeats R]\n");
      return 2;
    }
  }

  const bool gpu = gpukit::is_cuda_available();
  if (gpu) {
    const auto info = gpukit::device_properties(gpukit::current_device());
    std::printf("GPU: %s (%d SMs, compute capability %d.%d)\n", info.name.c_str(), info.sm_count,
                info.compute_capability_major, info.compute_capability_minor);
  } else {
    std::printf("No usable CUDA device: running the CPU path only.\n");
  }

  // 1. The article's six elements, on whichever executor default_executor() picks.
  const std::vector<float> a6{1, 2, 3, 4, 5, 6}, b6{7, 8, 9, 10, 11, 12};
  const std::vector<float> c6 = std::visit(
      [&](const auto& exec) {
        auto a = gpukit::make_buffer<float>(exec, 6), b = gpukit::make_buffer<float>(exec, 6),
             c = gpukit::make_buffer<float>(exec, 6);
        gpukit::transfer(a.span(), gpukit::make_host_span(a6));
        gpukit::transfer(b.span(), gpukit::make_host_span(b6));
        gpukit::add(exec, a, b, c);
        std::vector<float> out(6);
        gpukit::transfer(gpukit::make_host_span(out), std::as_const(c).span());
        return out;
      },
      gpukit::default_executor());
  print_vector("A", a6);
  print_vector("B", b6);
  print_vector("C", c6);

  // 2. Large N.
  std::printf("\nN = %zu floats (%.1f MiB per array), median of %zu runs\n", n, n * 4.0 / (1 << 20), repeats);
  const gpukit::cpu_executor cpu;
  gpukit::host_buffer<float> a(n, gpukit::host_memory::pageable), b(n), c_cpu(n);
  gpukit::sequence(cpu, a, 0.0f, 0.5f);
  gpukit::sequence(cpu, b, 1.0f, 0.25f);
  std::vector<double> cpu_ms;
  for (std::size_t r = 0; r < repeats; ++r) {
    gpukit::cpu_timer t;
    t.start();
    gpukit::add(cpu, a, b, c_cpu);
    t.stop();
    cpu_ms.push_back(t.elapsed_ms());
  }
  const double cpu_med = median_ms(cpu_ms);
  const double bytes = 3.0 * n * sizeof(float);
  std::printf("CPU fallback (%d threads): %9.3f ms  %7.1f GB/s\n", cpu.threads(), cpu_med, bytes / cpu_med / 1e6);
  if (!gpu) {
    std::printf("GPU: skipped (no usable CUDA device)\n");
    return 0;
  }

  gpukit::stream s;
  const gpukit::cuda_executor exec(s.view());
  gpukit::host_buffer<float> pa(n, gpukit::host_memory::pinned), pb(n, gpukit::host_memory::pinned),
      pc(n, gpukit::host_memory::pinned);
  std::copy(a.begin(), a.end(), pa.begin());
  std::copy(b.begin(), b.end(), pb.begin());
  gpukit::device_buffer<float> da(n, s), db(n, s), dc(n, s);
  std::vector<double> kernel_ms, total_ms;
  for (std::size_t r = 0; r < repeats + 1; ++r) {  // the first run warms up
    gpukit::gpu_timer total(s), kernel(s);
    total.start();
    da.copy_from_host_async(pa, s);
    db.copy_from_host_async(pb, s);
    kernel.start();
    gpukit::add(exec, da, db, dc);
    kernel.stop();
    dc.copy_to_host_async(pc, s);
    total.stop();
    const double k = kernel.elapsed_ms(), t = total.elapsed_ms();
    if (r == 0) continue;
    kernel_ms.push_back(k);
    total_ms.push_back(t);
  }
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < n; ++i) mismatches += pc[i] != c_cpu[i];
  const double k = median_ms(kernel_ms), t = median_ms(total_ms);
  std::printf("GPU add:                  %9.3f ms  %7.1f GB/s\n", k, bytes / k / 1e6);
  std::printf("GPU with transfers:       %9.3f ms\n", t);
  std::printf("Speedup over the CPU fallback: %.1fx for the add; %.1fx with the transfers\n", cpu_med / k, cpu_med / t);
  std::printf("GPU result %s the CPU result (%zu mismatches)\n", mismatches == 0 ? "matches" : "DIFFERS FROM", mismatches);
  return mismatches == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "vector_add: %s\n", e.what());
  return 1;
}
