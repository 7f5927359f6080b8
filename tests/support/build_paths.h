// Where the source tree and the built ads and ads-agent binaries are, for the
// tests and the benches. The values are defined in a file CMake writes into
// each build directory (tests/CMakeLists.txt, ads_test_paths), not passed as
// -D flags to every test file: a path in a compile flag differs between two
// clones, so each clone (every CI run is a fresh one) compiled every test
// file again instead of taking it from the compiler cache.
#pragma once

namespace ads::test_paths {
extern const char* const kSourceDir;  // the repository's top directory
extern const char* const kAgentBin;   // the ads-agent built beside the tests
extern const char* const kCliBin;     // the ads built beside the tests
}  // namespace ads::test_paths

#define ADS_SOURCE_DIR (::ads::test_paths::kSourceDir)
#define ADS_AGENT_BIN (::ads::test_paths::kAgentBin)
#define ADS_CLI_BIN (::ads::test_paths::kCliBin)
