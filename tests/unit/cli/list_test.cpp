// `ads list` against a real `ads serve`: a lab name longer than the old
// fixed column (17 characters) no longer shifts the columns after it.
#include <gtest/gtest.h>

#include <sstream>

#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using ads::test::run;

TEST(CliList, ALongLabNameWidensItsColumnInsteadOfShiftingTheOthers) {
  ads::test::TempDir tmp;
  ads::test::Server server((tmp.path / "data").string());
  long status = 0;
  // a source that does not exist: the deploy fails at once, nothing is provisioned
  for (const char* name : {"a-lab-name-well-over-seventeen-characters", "short"}) {
    ads::test::json body = {{"source", (tmp.path / "no-such-lab").string()}, {"name", name}};
    server.call("POST", "/api/v1/deployments", &body, &status);
    ASSERT_EQ(status, 202);
  }
  std::string out;
  ASSERT_EQ(run({ADS_CLI_BIN, "--server", server.base(), "--token", server.token(), "list"}, &out), 0) << out;
  std::istringstream in(out);
  std::string header;
  std::getline(in, header);
  size_t state_col = header.find("STATE"), address_col = header.find("ADDRESS");
  ASSERT_NE(state_col, std::string::npos) << out;
  int rows = 0;
  for (std::string line; std::getline(in, line);) {
    ++rows;
    ASSERT_GT(line.size(), address_col) << out;
    EXPECT_EQ(line.substr(state_col - 2, 2), "  ") << out;
    EXPECT_TRUE(std::isalpha(static_cast<unsigned char>(line[state_col]))) << "a state starts under STATE:\n" << out;
  }
  EXPECT_EQ(rows, 2) << out;
}

}  // namespace
