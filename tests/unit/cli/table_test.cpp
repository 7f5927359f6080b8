// The CLI's tables size their columns to what they hold (`ads list` shifted
// its columns for lab names over 17 characters).
#include "cli/table.h"

#include <gtest/gtest.h>

#include <sstream>

namespace {
using ads::cli::Table;

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(CliTable, ColumnsAreAsWideAsTheirWidestCell) {
  Table t({"ID", "NAME", "STATE"});
  t.add({"01a", "a-lab-name-well-over-seventeen-characters", "running"});
  t.add({"01b", "short", "failed"});
  auto l = lines(t.str());
  ASSERT_EQ(l.size(), 3u);
  // every row's STATE starts where the header's does
  size_t col = l[0].find("STATE");
  EXPECT_EQ(l[1].find("running"), col) << t.str();
  EXPECT_EQ(l[2].find("failed"), col) << t.str();
  EXPECT_EQ(l[1].substr(col - 2, 2), "  ") << "two spaces between columns";
  EXPECT_EQ(l[0], "ID   NAME                                       STATE");
  EXPECT_EQ(l[2].back(), 'd') << "no trailing spaces";
}

TEST(CliTable, WidthsCountCharactersAndControlCharactersAreShownAsQuestionMarks) {
  EXPECT_EQ(Table::width("ünïcødé"), 7u);
  Table t({"NAME", "X"});
  t.add({"ünïcødé", "1"});
  t.add({"plain", "2"});
  t.add({"bad\x1b[31mred", "3"});  // a terminal escape from the server stays inert
  auto l = lines(t.str());
  EXPECT_EQ(l[1].find('1'), l[0].find('X') + (std::string("ünïcødé").size() - 7)) << t.str();
  EXPECT_EQ(l[3].find('\x1b'), std::string::npos);
  EXPECT_NE(l[3].find("bad?[31mred"), std::string::npos);
  Table ragged({"A", "B"});
  ragged.add({"only one"});
  ragged.add({"x", "y", "dropped"});
  EXPECT_EQ(ragged.str(), "A         B\nonly one\nx         y\n");
}

}  // namespace
