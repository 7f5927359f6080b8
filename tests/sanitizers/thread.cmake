# ThreadSanitizer's test binary: the engine's and the store's unit tests (the
# engine is threaded and one Store is shared by its workers). Included from
# tests/CMakeLists.txt when ADS_SANITIZE=thread.
file(GLOB ADS_TSAN_TESTS CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_SOURCE_DIR}/unit/engine/*_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/unit/store/*_test.cpp)
add_executable(ads_tsan_tests ${ADS_TSAN_TESTS})
target_include_directories(ads_tsan_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(ads_tsan_tests PRIVATE ads_cli ads_agent_server ads_http_client GTest::gtest_main GTest::gmock)
target_compile_definitions(ads_tsan_tests PRIVATE
  ADS_SOURCE_DIR="${CMAKE_SOURCE_DIR}" ADS_AGENT_BIN="$<TARGET_FILE:ads-agent>" ADS_CLI_BIN="$<TARGET_FILE:ads>")
add_dependencies(ads_tsan_tests ads-agent ads)
include(GoogleTest)
ads_sanitizer_options(ads_tsan_tests)
ads_sanitizer_regex_files(${ADS_TSAN_TESTS})
gtest_discover_tests(ads_tsan_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 120)
