// The bundled example labs parse, each with the format and phases docs/integrators/labspec.md
// says they have.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/labspec.h"
#include "support/build_paths.h"

namespace {

std::string read(const std::string& rel) {
  std::ifstream in(std::string(ADS_SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ExampleLabs, SeedFormatLabParsesWithItsV1Phases) {
  auto r = ads::parse_labspec(ads::kSpecV1Path, read("examples/labs/seed-lab/scripts/labspec.json"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->format, 1);
  EXPECT_EQ(r->os_key(), "debian-12");
  EXPECT_EQ(r->install.front().name, "pre_build");
  EXPECT_EQ(r->install.back().name, "init");
}

TEST(ExampleLabs, StaticSiteIsV2AndServesOnPort80) {
  auto r = ads::parse_labspec(ads::kSpecV2Path, read("examples/labs/static-site/ads-lab.json"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->format, 2);
  EXPECT_EQ(r->http_port, 80);
  EXPECT_FALSE(r->action("test").empty());
}

TEST(ExampleLabs, NotesLabHasBackupAndRestoreActions) {
  auto r = ads::parse_labspec(ads::kSpecV2Path, read("examples/labs/notes-lab/ads-lab.json"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_FALSE(r->action("backup").empty());
  EXPECT_FALSE(r->action("restore").empty());
}

}  // namespace
