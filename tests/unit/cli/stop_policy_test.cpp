// Issue 16.7: ads serve's stop deadline, the systemd unit's TimeoutStopSec
// and `ads service stop`'s wait agree, and the unit no longer promises a
// stop "at a step boundary" (a whole agent action, up to 30 minutes).
#include "cli/stop_policy.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <string>

#include "support/build_paths.h"

TEST(StopPolicy, TheUnitFileAgreesWithTheServerAndTheCli) {
  std::ifstream in(std::string(ADS_SOURCE_DIR) + "/packaging/ads.service");
  ASSERT_TRUE(in) << "packaging/ads.service";
  std::string unit((std::istreambuf_iterator<char>(in)), {});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(unit, m, std::regex(R"(\nTimeoutStopSec=(\d+)\n)"))) << unit;
  EXPECT_EQ(std::stoi(m[1]), ads::cli::kStopWaitS);
  EXPECT_GT(std::stoi(m[1]), ads::cli::kServeStopDeadlineS);
  EXPECT_NE(unit.find("exits by " + std::to_string(ads::cli::kServeStopDeadlineS) + " s"), std::string::npos) << unit;
  EXPECT_EQ(unit.find("step boundary"), std::string::npos) << unit;
  EXPECT_NE(unit.find("KillSignal=SIGTERM"), std::string::npos);
}
