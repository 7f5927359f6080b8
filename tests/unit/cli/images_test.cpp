// `ads images` prints GET /api/v1/images as a table; a provider that could
// not be asked is a line of its own and exit code 1.
#include "cli/images.h"

#include <gtest/gtest.h>

#include <sstream>

namespace {
using nlohmann::json;

TEST(ImagesCli, OneRowPerOsKeyTheDefaultMarkedAndAMissingImageWithItsNote) {
  json answer = {{"providers",
                  {{{"provider", "lxd"},
                    {"default", true},
                    {"images",
                     {{{"os", "debian-12"}, {"image", "ads-debian-12"}, {"state", "available"}},
                      {{"os", "debian-12-php"},
                       {"image", "ads-debian-12-php"},
                       {"state", "missing"},
                       {"note", "scripts/build-image.sh --variant php builds it"}}}}},
                   {{"provider", "aws"},
                    {"default", false},
                    {"images", {{{"os", "debian-12"}, {"image", "ami-1"}, {"state", "unchecked"}}}}}}}};
  std::ostringstream out;
  EXPECT_EQ(ads::cli::print_images(answer, out), 0);
  EXPECT_EQ(out.str(),
            "PROVIDER  OS             IMAGE              STATE      NOTE\n"
            "lxd *     debian-12      ads-debian-12      available\n"
            "lxd *     debian-12-php  ads-debian-12-php  missing    scripts/build-image.sh --variant php builds it\n"
            "aws       debian-12      ami-1              unchecked\n"
            "(* the default provider; a lab asks for an OS key with its spec's os name, version and variant)\n");
}

TEST(ImagesCli, AProviderThatCannotBeAskedIsSaidAndFailsTheCommand) {
  json answer = {{"providers",
                  {{{"provider", "lxd"},
                    {"default", true},
                    {"error", {{"code", "unavailable"}, {"message", "LXD is down\x1b[2J"}}}}}}};
  std::ostringstream out;
  EXPECT_EQ(ads::cli::print_images(answer, out), 1);
  EXPECT_NE(out.str().find("lxd *: cannot list its images: LXD is down?[2J"), std::string::npos) << out.str();
}

}  // namespace
