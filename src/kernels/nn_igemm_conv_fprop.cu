// One unit of gpukit's kernel library (cmake/gpukit_kernels.cmake): the implicit-GEMM tiles
// of the conv fprop product, compiled here once for the program instead of in every file
// that includes the nn headers (they declare it extern under GPUKIT_PRECOMPILED_KERNELS).
#include "gpukit/nn/detail/conv_igemm.cuh"

namespace gpukit::nn::detail {
GPUKIT_NN_IGEMM_INSTANCE(, conv_fprop_map)
}  // namespace gpukit::nn::detail
