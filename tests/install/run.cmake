# Installs gpukit into a temporary prefix (or uses add_subdirectory), then configures,
# builds and runs the consumer project against it.
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -DMODE=install|subdirectory -DCUDA_ARCHS=... -P run.cmake
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_args -S ${SOURCE_DIR}/tests/install/consumer -B ${WORK_DIR}/consumer -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS})
if(MODE STREQUAL "install")
  step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/gpukit-build -DGPUKIT_BUILD_TESTS=OFF
       -DGPUKIT_BUILD_BENCHMARKS=OFF -DGPUKIT_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
  step(${CMAKE_COMMAND} --install ${WORK_DIR}/gpukit-build)
  step(${CMAKE_COMMAND} ${consumer_args} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  step(${CMAKE_COMMAND} ${consumer_args} -DGPUKIT_SOURCE_DIR=${SOURCE_DIR})
endif()
step(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer -j 2)
step(${WORK_DIR}/consumer/consumer_host)
step(${WORK_DIR}/consumer/consumer_gpu)
