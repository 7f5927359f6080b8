// The config examples in the docs are real: every ```json block marked
// <!-- tested: tests/unit/cli/docs_config_test.cpp --> in these pages is a
// whole `ads serve` config file that load_config_file accepts.
//   docs/reference/config.md, docs/operators/tls.md,
//   docs/operators/postgres-and-several-servers.md, docs/operators/limits.md,
//   docs/operators/jobs.md
// (scripts/check-doc-blocks.sh checks that each page marking a block so is named here.)
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/config.h"
#include "support/build_paths.h"
#include "support/process.h"

namespace {

const char* const kMarker = "<!-- tested: tests/unit/cli/docs_config_test.cpp -->";

struct Block {
  std::string page;
  int line = 0;
  std::string text;
};

// The ```json blocks right after the marker (blank lines allowed between).
std::vector<Block> tested_blocks(const std::string& page) {
  std::ifstream in(std::string(ADS_SOURCE_DIR) + "/" + page);
  EXPECT_TRUE(in.good()) << "cannot read " << page;
  std::vector<Block> out;
  std::string line;
  int n = 0;
  bool marked = false;
  while (std::getline(in, line)) {
    ++n;
    if (line == kMarker) {
      marked = true;
      continue;
    }
    if (marked && line.rfind("```json", 0) == 0) {
      Block b{page, n, ""};
      while (std::getline(in, line) && (++n, line.rfind("```", 0) != 0)) b.text += line + "\n";
      out.push_back(b);
      marked = false;
      continue;
    }
    if (!line.empty()) marked = false;
  }
  return out;
}

TEST(DocsConfigExamples, EveryTestedConfigBlockLoads) {
  const std::vector<std::string> pages = {"docs/reference/config.md", "docs/operators/tls.md",
                                          "docs/operators/postgres-and-several-servers.md", "docs/operators/limits.md",
                                          "docs/operators/jobs.md"};
  ads::test::TempDir tmp;
  size_t total = 0;
  for (const auto& page : pages) {
    auto blocks = tested_blocks(page);
    EXPECT_FALSE(blocks.empty()) << page << " has no block marked " << kMarker;
    for (const auto& b : blocks) {
      ++total;
      std::string path = (tmp.path / "c.json").string();
      std::ofstream(path) << b.text;
      ads::cli::ServeConfig cfg;
      auto st = ads::cli::load_config_file(path, cfg);
      EXPECT_TRUE(st.ok()) << b.page << ":" << b.line << ": " << st.error().to_string() << "\n" << b.text;
    }
  }
  EXPECT_GE(total, pages.size());
}

// The same reader refuses what a broken example would be, so the test above
// cannot pass on blocks it failed to read.
TEST(DocsConfigExamples, ABrokenExampleWouldFail) {
  ads::test::TempDir tmp;
  std::string path = (tmp.path / "c.json").string();
  std::ofstream(path) << R"({"workers": 4, "no_such_setting": 1})";
  ads::cli::ServeConfig cfg;
  auto st = ads::cli::load_config_file(path, cfg);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "no_such_setting");
}

}  // namespace
