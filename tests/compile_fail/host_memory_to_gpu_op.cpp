// Must NOT compile: host memory given to a GPU op. The front end refuses memory of the
// wrong kind for the executor at compile time ("memory does not match the executor").
//   bad_input<compile error>("gpukit::add", "'a'", "host memory (std::vector) with a cuda_executor")
#include "gpukit/ops.hpp"

#include <vector>

void misuse() {
  std::vector<float> v(4);
  gpukit::add(gpukit::cuda_executor{}, v, v, v);
}
