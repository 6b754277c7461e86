# gpukit_add_kernel_library(<name> [FP32_FMA_TILES])
#
# Makes <name>, a static library holding gpukit's heaviest kernels (the nn layers'
# implicit-GEMM tiles) compiled once for the calling project's CMAKE_CUDA_ARCHITECTURES.
# Linking it defines GPUKIT_PRECOMPILED_KERNELS for the linking target (PUBLIC), under which
# the headers declare those kernels extern: a .cu file that includes gpukit's nn headers then
# compiles in about a third of the time (79 s -> 26 s for one that includes gpukit.cuh, with
# nvcc 13 for sm_90 on one core), and a program of many such files stops recompiling the
# same kernels in each. Without it gpukit stays header-only: every file compiles what it uses.
#
# Needs CUDA enabled in the calling project. Every target of a program that includes the nn
# headers must link the same library (or none): a file compiled without the definition holds
# its own copies of the kernels, which is correct but slow to build. FP32_FMA_TILES also
# compiles the implicit GEMM's FP32 FMA tiles beside the 3xTF32 ones (GPUKIT_NN_IGEMM_SIMT,
# PUBLIC: a program that forces them must get it from the library, never define it alone).
#
#   gpukit_add_kernel_library(my_gpukit_kernels)
#   target_link_libraries(my_app PRIVATE my_gpukit_kernels)   # instead of gpukit::gpukit
function(gpukit_add_kernel_library name)
  cmake_parse_arguments(ARG "FP32_FMA_TILES" "" "" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "gpukit_add_kernel_library(${name}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "gpukit_add_kernel_library(${name}): enable CUDA first "
                        "(project(... LANGUAGES CXX CUDA) or enable_language(CUDA))")
  endif()
  if(DEFINED GPUKIT_KERNEL_SOURCE_DIR)
    set(_dir ${GPUKIT_KERNEL_SOURCE_DIR})  # the installed package sets it
  else()
    set(_dir ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../src/kernels)  # the source tree
  endif()
  file(GLOB _sources CONFIGURE_DEPENDS ${_dir}/*.cu)
  if(NOT _sources)
    message(FATAL_ERROR "gpukit_add_kernel_library(${name}): no kernel sources in ${_dir}")
  endif()
  add_library(${name} STATIC ${_sources})
  target_link_libraries(${name} PUBLIC gpukit::gpukit)
  target_compile_definitions(${name} PUBLIC GPUKIT_PRECOMPILED_KERNELS=1)
  if(ARG_FP32_FMA_TILES)
    target_compile_definitions(${name} PUBLIC GPUKIT_NN_IGEMM_SIMT=1)
  endif()
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
