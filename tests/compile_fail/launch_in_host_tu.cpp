// Must NOT compile: a host-only (g++) file reaching for the GPU launch helpers. The test
// passes when the compiler stops with gpukit's message instead of a run-time surprise.
#include "gpukit/core/launch.cuh"

int main() { return 0; }
