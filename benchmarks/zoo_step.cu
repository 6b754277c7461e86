// gpukit_zoo_step — runs training steps of zoo models for a profiler to look at.
//
//   gpukit_zoo_step [--models vgg,allconv] [--batches 32,256] [--steps 1] [--graph]
//                   [--precision fp32|tf32|bf16]
//
// Per model and batch: three warm-up steps, then cudaProfilerStart, `steps` training steps
// (eager, or replays of one captured graph with --graph), cudaProfilerStop. Under
// `ncu --profile-from-start off` only the measured steps are profiled; the summary of each
// model (its kernel paths) is printed first.
#include "gpukit/gpukit.cuh"
#include "zoo/zoo.hpp"

#include <cuda_profiler_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace nn = gpukit::nn;

int main(int argc, char** argv) try {
  std::vector<std::string> models;
  std::vector<std::size_t> batches = zoo::batches();
  int steps = 1;
  bool use_graph = false;
  nn::precision numbers = nn::precision::fp32;
  const auto list = [](const std::string& s) {
    std::vector<std::string> out;
    for (std::size_t a = 0, b; a <= s.size(); a = b + 1) {
      b = s.find(',', a);
      if (b == std::string::npos) b = s.size();
      out.push_back(s.substr(a, b - a));
    }
    return out;
  };
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--models") == 0 && i + 1 < argc) models = list(argv[++i]);
    else if (std::strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
      batches.clear();
      for (const auto& b : list(argv[++i])) batches.push_back(std::stoul(b));
    } else if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) steps = std::stoi(argv[++i]);
    else if (std::strcmp(argv[i], "--graph") == 0) use_graph = true;
    else if (std::strcmp(argv[i], "--precision") == 0 && i + 1 < argc) {
      const std::string p = argv[++i];
      bool known = false;
      for (const nn::precision q : {nn::precision::fp32, nn::precision::tf32, nn::precision::bf16})
        if (p == nn::precision_name(q)) numbers = q, known = true;
      if (!known) throw std::invalid_argument("argument '--precision' = '" + p + "' is not fp32, tf32 or bf16");
    } else {
      throw std::invalid_argument(std::string("unknown argument '") + argv[i] + "'");
    }
  }
  gpukit::stream s;
  const gpukit::cuda_executor exec(s.view());
  for (const zoo::model& m : zoo::models()) {
    if (!models.empty() && std::find(models.begin(), models.end(), m.name) == models.end()) continue;
    for (std::size_t batch : batches) {
      auto net = zoo::build(m, exec, batch, 1, nn::adam{}, numbers);
      std::vector<float> xs(batch * m.input.features());
      for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f;
      const auto x = nn::device_tensor::from_host(m.input.with_batch(batch), xs, s.view());
      const auto y = nn::device_tensor::from_host(net->output_shape(batch), zoo::labels(m, batch), s.view());
      std::printf("== %s, batch %zu\n%s", m.name.c_str(), batch, net->summary().c_str());
      nn::graph g;
      if (use_graph) g = net->capture_train_step(x, y);
      for (int i = 0; i < 3; ++i) use_graph ? g.replay(s.view()) : net->train_step_async(x, y);
      s.synchronize();
      GPUKIT_CUDA_TRY(cudaProfilerStart());
      for (int i = 0; i < steps; ++i) use_graph ? g.replay(s.view()) : net->train_step_async(x, y);
      s.synchronize();
      GPUKIT_CUDA_TRY(cudaProfilerStop());
      std::printf("loss after the steps: %g\n", static_cast<double>(net->last_loss()));
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpukit_zoo_step: %s\n", e.what());
  return 1;
}
