# gpukit_embed_zoo(target): gives `target` the model zoo (benchmarks/zoo/zoo.hpp) with
# benchmarks/zoo/models.json embedded as a string, so the program carries its own copy.
function(gpukit_embed_zoo target)
  set(json ${PROJECT_SOURCE_DIR}/benchmarks/zoo/models.json)
  set(dir ${PROJECT_BINARY_DIR}/zoo_embedded)
  file(READ ${json} text)
  file(CONFIGURE OUTPUT ${dir}/zoo_models_json.inc CONTENT "R\"gpukit_zoo(@text@)gpukit_zoo\"\n" @ONLY)
  set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${json})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/benchmarks ${dir})
endfunction()
