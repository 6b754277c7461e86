# Installs gpukit into a temporary prefix (or uses add_subdirectory), then configures,
# builds and runs the consumer project against it.
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -DMODE=install|subdirectory|default_arch [-DCUDA_ARCHS=...] -P run.cmake
# install and subdirectory build the small consumer (core's GPU code, header-only, and the
# host-only program) for CUDA_ARCHS: the packaging itself. default_arch installs gpukit,
# gives the consumer no CUDA architecture at all (CMake's default for the compiler, e.g.
# sm_75 with nvcc 13), builds gpukit_add_kernel_library()'s library from the installed
# sources and links it to consumer_layers, GPU code of every layer. The kernel library is
# the longest part (minutes on one core): it is compiled here once, not in every mode.
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_args -S ${SOURCE_DIR}/tests/install/consumer -B ${WORK_DIR}/consumer -DCMAKE_BUILD_TYPE=Release)
set(consumer_programs consumer_host consumer_gpu)
if(MODE STREQUAL "default_arch")
  unset(ENV{CUDAARCHS})  # would stand in for the architectures the consumer does not set
  list(APPEND consumer_args -DCONSUMER_EVERY_LAYER=ON -DCONSUMER_KERNEL_LIBRARY=ON)
  list(APPEND consumer_programs consumer_layers)
else()
  list(APPEND consumer_args -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS})
endif()

if(MODE STREQUAL "install" OR MODE STREQUAL "default_arch")
  step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/gpukit-build -DGPUKIT_BUILD_TESTS=OFF
       -DGPUKIT_BUILD_BENCHMARKS=OFF -DGPUKIT_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
  step(${CMAKE_COMMAND} --install ${WORK_DIR}/gpukit-build)
  step(${CMAKE_COMMAND} ${consumer_args} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
elseif(MODE STREQUAL "subdirectory")
  step(${CMAKE_COMMAND} ${consumer_args} -DGPUKIT_SOURCE_DIR=${SOURCE_DIR})
else()
  message(FATAL_ERROR "MODE must be install, subdirectory or default_arch, not '${MODE}'")
endif()

step(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer -j 2)
foreach(program IN LISTS consumer_programs)
  step(${WORK_DIR}/consumer/${program})
endforeach()
