// The benchmark harness: registration, timing, the copy ceiling and the final table.
#include "support/harness.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

namespace gpukit_bench {

std::vector<result>& results() {
  static std::vector<result> r;
  return r;
}
double& copy_ceiling_bytes_per_second() {
  static double c = 0;
  return c;
}
int& skipped_gpu_cases() {
  static int n = 0;
  return n;
}
std::vector<std::string>& failed_cases() {
  static std::vector<std::string> f;
  return f;
}

std::map<std::string, double>& flops_per_item() {
  static std::map<std::string, double> f;
  return f;
}
void set_flops_per_item(const std::string& family, double flops) { flops_per_item()[family] = flops; }

/// GFLOP/s of a finished case, 0 when its family declared no operation count.
double gflops(const result& r) {
  const auto it = flops_per_item().find(r.family);
  return it == flops_per_item().end() || r.seconds <= 0 ? 0.0 : it->second * r.items / r.seconds / 1e9;
}

std::string size_label(std::size_t n) {
  if (n != 0 && (n & (n - 1)) == 0) {
    int p = 0;
    while ((std::size_t{1} << p) != n) ++p;
    return "2^" + std::to_string(p);
  }
  return std::to_string(n);
}

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// A buffer twice the L2's size, written before each timed GPU call so that no input is
/// served from the cache.
class l2_flusher {
 public:
  l2_flusher() {
    const auto info = gpukit::device_properties(gpukit::current_device());
    buffer_ = gpukit::device_buffer<unsigned char>(2 * info.l2_cache_bytes);
  }
  void flush(gpukit::stream_view s) { GPUKIT_CUDA_TRY(cudaMemsetAsync(buffer_.data(), 0x5a, buffer_.bytes(), s)); }

 private:
  gpukit::device_buffer<unsigned char> buffer_;
};

/// 1.23 G, 456 k, ...: items per second at a glance, whatever their scale.
std::string si_rate(double per_second) {
  const char* units[] = {"", " k", " M", " G", " T"};
  int u = 0;
  while (per_second >= 1000.0 && u < 4) {
    per_second /= 1000.0;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.3g%s", per_second, units[u]);
  return text;
}

l2_flusher& flusher() {
  static l2_flusher f;
  return f;
}

/// Runs one case's body. An exception — out_of_memory when the inputs do not fit, any other
/// gpukit error — ends only this case: Google Benchmark reports it as an error with the
/// message, the summary lists it, and the run goes on with the next case.
template <class Body>
void guarded(benchmark::State& state, const std::string& name, Body body) {
  try {
    body();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    failed_cases().push_back(name + ": " + e.what());
    // An earlier, shorter run of the same case may have recorded a figure: drop it.
    auto& r = results();
    r.erase(std::remove_if(r.begin(), r.end(),
                           [&](const result& x) { return x.family + "/" + x.variant + "/" + x.size == name; }),
            r.end());
  }
}

void record(benchmark::State& state, result r, double seconds) {
  r.seconds = seconds;
  state.counters["median_us"] = seconds * 1e6;  // the figure the summary uses (Google Benchmark's own is a mean)
  if (r.bytes > 0) {
    state.counters["GB/s"] = r.bytes / seconds / 1e9;
    if (r.on_gpu && copy_ceiling_bytes_per_second() > 0)
      state.counters["of_copy"] = r.bytes / seconds / copy_ceiling_bytes_per_second();
  }
  if (r.items > 0) state.counters["Gitems/s"] = r.items / seconds / 1e9;
  if (gflops(r) > 0) state.counters["GFLOP/s"] = gflops(r);
  // Repetitions overwrite: the table shows the last run of each case.
  for (auto& old : results()) {
    if (old.family == r.family && old.variant == r.variant && old.size == r.size) {
      old = r;
      return;
    }
  }
  results().push_back(r);
}

}  // namespace

void add_gpu_case(const std::string& family, const std::string& variant, std::size_t n, double bytes, double items,
                  gpu_factory make) {
  if (!gpukit::is_cuda_available()) {
    ++skipped_gpu_cases();
    return;
  }
  result proto{family, variant, size_label(n), 0, bytes, items, true};
  const std::string name = family + "/" + variant + "/" + proto.size;
  benchmark::RegisterBenchmark(name.c_str(),
                               [=](benchmark::State& state) {
                                 guarded(state, name, [&] {
                                   gpukit::stream s;
                                   const auto call = make(s);
                                   call(s);  // warm-up: module load, first touch
                                   s.synchronize();
                                   gpukit::event start, stop;
                                   std::vector<double> times;
                                   for (auto _ : state) {
                                     flusher().flush(s);
                                     start.record(s);
                                     call(s);
                                     stop.record(s);
                                     stop.synchronize();
                                     const double sec = gpukit::event::elapsed_ms(start, stop) / 1e3;
                                     state.SetIterationTime(sec);
                                     times.push_back(sec);
                                   }
                                   record(state, proto, median(times));
                                 });
                               })
      ->UseManualTime()
      ->MinTime(0.2)  // hundreds of cases: keep a full run within minutes
      ->Unit(benchmark::kMicrosecond);
}

void add_cpu_case(const std::string& family, const std::string& variant, std::size_t n, double bytes, double items,
                  cpu_factory make) {
  result proto{family, variant, size_label(n), 0, bytes, items, false};
  const std::string name = family + "/" + variant + "/" + proto.size;
  benchmark::RegisterBenchmark(name.c_str(),
                               [=](benchmark::State& state) {
                                 guarded(state, name, [&] {
                                   const auto call = make();
                                   call();  // warm-up: page faults, thread pool start
                                   std::vector<double> times;
                                   for (auto _ : state) {
                                     const auto t0 = std::chrono::steady_clock::now();
                                     call();
                                     const auto t1 = std::chrono::steady_clock::now();
                                     times.push_back(std::chrono::duration<double>(t1 - t0).count());
                                   }
                                   record(state, proto, median(times));
                                 });
                               })
      ->UseRealTime()
      ->MinTime(0.2)
      ->Unit(benchmark::kMicrosecond);
}

double measure_copy_ceiling() {
  // 2^28 floats (1 GiB) each way: far past the L2, long enough to hide launch costs.
  const std::size_t n = std::size_t{1} << 28;
  gpukit::stream s;
  gpukit::device_buffer<float> a(n, s, gpukit::zero_init), b(n, s);
  gpukit::event start, stop;
  std::vector<double> times;
  for (int r = 0; r < 21; ++r) {
    start.record(s);
    GPUKIT_CUDA_TRY(cudaMemcpyAsync(b.data(), a.data(), a.bytes(), cudaMemcpyDeviceToDevice, s.view()));
    stop.record(s);
    stop.synchronize();
    if (r > 0) times.push_back(gpukit::event::elapsed_ms(start, stop) / 1e3);
  }
  copy_ceiling_bytes_per_second() = 2.0 * static_cast<double>(a.bytes()) / median(times);
  return copy_ceiling_bytes_per_second();
}

void print_summary(const std::string& markdown_path) {
  std::ostringstream md;
  const double ceiling = copy_ceiling_bytes_per_second();
  std::string gpu_name = "none";
  if (gpukit::is_cuda_available()) gpu_name = gpukit::device_properties(gpukit::current_device()).name;
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  md << "GPU: " << gpu_name << ", date: " << date << ", CPU threads: " << gpukit::cpu_executor{}.threads() << "\n\n";
  if (ceiling > 0) md << "Device-to-device copy ceiling (read + write): " << ceiling / 1e9 << " GB/s\n\n";
  md << "| case | size | variant | time (us) | GB/s | of copy ceiling | items/s | GFLOP/s | speedup vs cpu |\n";
  md << "|---|---|---|---:|---:|---:|---:|---:|---:|\n";
  char line[512];
  for (const auto& r : results()) {
    double cpu_seconds = 0;
    for (const auto& o : results())
      if (o.family == r.family && o.size == r.size && o.variant == "cpu") cpu_seconds = o.seconds;
    const double gbs = r.bytes > 0 ? r.bytes / r.seconds / 1e9 : 0;
    std::string of_ceiling = "", speedup = "";
    if (r.on_gpu && r.bytes > 0 && ceiling > 0) {
      std::snprintf(line, sizeof line, "%.1f%%", 100.0 * r.bytes / r.seconds / ceiling);
      of_ceiling = line;
    }
    if (cpu_seconds > 0 && r.variant != "cpu") {
      std::snprintf(line, sizeof line, "%.1fx", cpu_seconds / r.seconds);
      speedup = line;
    }
    std::string gbs_text = "", items_text = "";
    if (gbs > 0) {
      std::snprintf(line, sizeof line, "%.1f", gbs);
      gbs_text = line;
    }
    if (r.items > 0) items_text = si_rate(r.items / r.seconds);
    std::string flops_text = "";
    if (gflops(r) > 0) {
      std::snprintf(line, sizeof line, "%.1f", gflops(r));
      flops_text = line;
    }
    std::snprintf(line, sizeof line, "| %s | %s | %s | %.2f | %s | %s | %s | %s | %s |\n", r.family.c_str(),
                  r.size.c_str(), r.variant.c_str(), r.seconds * 1e6, gbs_text.c_str(), of_ceiling.c_str(),
                  items_text.c_str(), flops_text.c_str(),
                  speedup.c_str());
    md << line;
  }
  if (skipped_gpu_cases() > 0)
    md << "\nGPU cases skipped: " << skipped_gpu_cases() << " (no usable CUDA device); the CPU cases ran.\n";
  if (!failed_cases().empty()) {
    md << "\nCases that stopped with an error (no figure; the other cases ran):\n\n";
    for (const auto& f : failed_cases()) md << "- " << f << "\n";
  }
  std::printf("\n%s", md.str().c_str());
  if (!markdown_path.empty()) {
    std::ofstream out(markdown_path);
    out << md.str();
    std::printf("\nTable written to %s\n", markdown_path.c_str());
  }
}

}  // namespace gpukit_bench
