// tests/support/main.cpp — the Catch2 entry point of every gpukit test program.
//
// CTest runs each program twice: once for the CPU test cases ("~[gpu]") and once for the
// GPU ones ("[gpu]") with --gpu-or-skip. Without a usable CUDA device the GPU run exits
// with code 77, which CTest reports as skipped — never as passed.
#if __has_include(<catch2/catch_session.hpp>)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif

#include "gpukit/core/device.hpp"

#include <cstdio>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  std::vector<char*> args;
  bool gpu_or_skip = false;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--gpu-or-skip") == 0) {
      gpu_or_skip = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  if (gpu_or_skip && !gpukit::is_cuda_available()) {
    std::printf("SKIPPED: no usable CUDA device; the [gpu] test cases of %s did not run\n", argv[0]);
    return 77;
  }
  return Catch::Session().run(static_cast<int>(args.size()), args.data());
}
