# Sanitizer builds (ADS_SANITIZE, set in the top CMakeLists.txt): every
# executable gets the runtimes' options (default_options.cpp).
function(ads_sanitizer_options target)
  target_sources(${target} PRIVATE ${CMAKE_SOURCE_DIR}/tests/sanitizers/default_options.cpp)
  set_source_files_properties(${CMAKE_SOURCE_DIR}/tests/sanitizers/default_options.cpp
    TARGET_DIRECTORY ${target} PROPERTIES
    COMPILE_DEFINITIONS ADS_SANITIZER_DIR="${CMAKE_SOURCE_DIR}/tests/sanitizers")
endfunction()
