# Chooses CMAKE_CUDA_ARCHITECTURES when gpukit is the top-level project:
#   1. the user's choice (-DCMAKE_CUDA_ARCHITECTURES=... or the CUDAARCHS variable) wins;
#   2. otherwise the compute capability of the visible GPU(s), read with nvidia-smi;
#   3. otherwise GPUKIT_DEFAULT_CUDA_ARCHITECTURES: 90 (H100/H200: sm_90 code plus
#      compute_90 PTX that the driver compiles for newer chips). Pass e.g. "80;90" to
#      also build native code for A100.
set(GPUKIT_DEFAULT_CUDA_ARCHITECTURES "90" CACHE STRING "CUDA architectures when none is given and no GPU is visible")

function(gpukit_choose_cuda_architectures)
  if(DEFINED CMAKE_CUDA_ARCHITECTURES OR DEFINED ENV{CUDAARCHS})
    return()
  endif()
  find_program(GPUKIT_NVIDIA_SMI nvidia-smi)
  set(archs "")
  if(GPUKIT_NVIDIA_SMI)
    execute_process(COMMAND ${GPUKIT_NVIDIA_SMI} --query-gpu=compute_cap --format=csv,noheader
      OUTPUT_VARIABLE caps RESULT_VARIABLE rc ERROR_QUIET TIMEOUT 20)
    if(rc EQUAL 0)
      string(REPLACE "\n" ";" caps "${caps}")
      foreach(cap IN LISTS caps)
        string(STRIP "${cap}" cap)
        if(cap MATCHES "^([0-9]+)\\.([0-9]+)$")
          list(APPEND archs "${CMAKE_MATCH_1}${CMAKE_MATCH_2}")
        endif()
      endforeach()
      list(REMOVE_DUPLICATES archs)
    endif()
  endif()
  if(archs)
    message(STATUS "gpukit: building for the visible GPU(s): ${archs}")
  else()
    set(archs "${GPUKIT_DEFAULT_CUDA_ARCHITECTURES}")
    message(STATUS "gpukit: no GPU visible; building for the default architectures ${archs}")
  endif()
  set(CMAKE_CUDA_ARCHITECTURES "${archs}" CACHE STRING "CUDA architectures to build for")
endfunction()
