# Sanitizer builds (ADS_SANITIZE, set in the top CMakeLists.txt): every
# executable gets the runtimes' options (default_options.cpp).
function(ads_sanitizer_options target)
  target_sources(${target} PRIVATE ${CMAKE_SOURCE_DIR}/tests/sanitizers/default_options.cpp)
  set_source_files_properties(${CMAKE_SOURCE_DIR}/tests/sanitizers/default_options.cpp
    TARGET_DIRECTORY ${target} PROPERTIES
    COMPILE_DEFINITIONS ADS_SANITIZER_DIR="${CMAKE_SOURCE_DIR}/tests/sanitizers")
endfunction()

# GCC 12 warns -Wmaybe-uninitialized inside libstdc++'s <regex> (std::function
# in regex_automaton.h) at -O1 with -fsanitize=address: a false positive of the
# compiler (GCC bug 105616), not of our code. Off for the files that include
# <regex>, in sanitizer builds only.
function(ads_sanitizer_regex_files)
  foreach(file ${ARGN})
    file(STRINGS ${file} uses_regex REGEX "#include <regex>")
    if(uses_regex)
      set_source_files_properties(${file} PROPERTIES COMPILE_OPTIONS -Wno-maybe-uninitialized)
    endif()
  endforeach()
endfunction()
