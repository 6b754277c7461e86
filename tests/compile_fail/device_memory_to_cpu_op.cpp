// Must NOT compile: device memory given to a CPU op. The front end refuses memory of the
// wrong kind for the executor at compile time ("memory does not match the executor").
//   bad_input<compile error>("gpukit::add", "'a'", "device memory (device_buffer) with a cpu_executor")
#include "gpukit/ops.hpp"

void misuse(gpukit::device_buffer<float>& d) { gpukit::add(gpukit::cpu_executor{}, d, d, d); }
