// Issue 14.9: a job's log keeps its head and its tail and says what it cut.
#include "core/log_cap.h"

#include <gtest/gtest.h>

namespace {

ads::LogLine line(int i, const std::string& text = "") {
  ads::LogLine l;
  l.ts_ms = 1000 + i;
  l.step = "installing";
  l.stream = "stdout";
  l.text = text.empty() ? "line " + std::to_string(i) : text;
  return l;
}

// Runs `n` lines through a cap; what would be written, in order.
std::vector<ads::LogLine> through(ads::LogCap& cap, int from, int n) {
  std::vector<ads::LogLine> out;
  for (int i = from; i < from + n; ++i) {
    auto l = line(i);
    if (cap.add(l)) out.push_back(l);
  }
  return out;
}

size_t cost(const std::vector<ads::LogLine>& v) {
  size_t n = 0;
  for (auto& l : v) n += l.text.size() + ads::LogCap::kLineOverhead;
  return n;
}

TEST(LogCap, OutputWithinTheHeadGoesThroughWhole) {
  ads::LogCap cap({.head_bytes = 10000, .tail_bytes = 1000, .line_bytes = 100});
  auto out = through(cap, 0, 50);
  ASSERT_EQ(out.size(), 50u);
  EXPECT_EQ(out.front().text, "line 0");
  EXPECT_EQ(out.back().text, "line 49");
  EXPECT_TRUE(cap.drain().empty());
  EXPECT_EQ(cap.cut_lines(), 0);
}

TEST(LogCap, KeepsTheHeadAndTheTailAndSaysWhatWasCutBetween) {
  ads::LogCapLimits lim{.head_bytes = 2000, .tail_bytes = 1000, .line_bytes = 100};
  ads::LogCap cap(lim);
  auto head = through(cap, 0, 300000);  // 300k lines, as in the issue
  EXPECT_LE(cost(head), lim.head_bytes);
  EXPECT_EQ(head.front().text, "line 0");
  auto rest = cap.drain();
  ASSERT_GE(rest.size(), 2u);
  EXPECT_EQ(rest.front().stream, "ads");
  EXPECT_NE(rest.front().text.find("of output cut here"), std::string::npos) << rest.front().text;
  EXPECT_EQ(rest.back().text, "line 299999");  // the very end is there
  std::vector<ads::LogLine> tail(rest.begin() + 1, rest.end());
  EXPECT_LE(cost(tail), lim.tail_bytes);
  // the tail is contiguous and ends at the last line; the head, the cut and
  // the tail add up to every line
  int first_tail = std::stoi(tail.front().text.substr(5));
  for (size_t i = 0; i < tail.size(); ++i)
    EXPECT_EQ(tail[i].text, "line " + std::to_string(first_tail + static_cast<int>(i)));
  EXPECT_EQ(static_cast<int64_t>(head.size()) + cap.cut_lines() + static_cast<int64_t>(tail.size()), 300000);
  EXPECT_NE(rest.front().text.find(std::to_string(cap.cut_lines()) + " lines"), std::string::npos) << rest.front().text;
}

TEST(LogCap, ManyPiecesOfOutputCannotMultiplyTheTail) {
  ads::LogCapLimits lim{.head_bytes = 1000, .tail_bytes = 1000, .line_bytes = 100};
  ads::LogCap cap(lim);
  size_t written = 0;
  for (int piece = 0; piece < 100; ++piece) {  // output, an engine line, output...
    written += cost(through(cap, piece * 1000, 1000));
    auto held = cap.drain();
    for (auto& l : held)
      if (l.stream != "ads") written += l.text.size() + ads::LogCap::kLineOverhead;
  }
  EXPECT_LE(written, lim.head_bytes + ads::LogCap::kTails * lim.tail_bytes);
  EXPECT_GT(cap.cut_lines(), 90000);
}

TEST(LogCap, ALongLineIsShortenedAtACharacterBoundaryAndMarked) {
  ads::LogCap cap({.head_bytes = 1 << 20, .tail_bytes = 1 << 10, .line_bytes = 10});
  auto l = line(0, "abcdefghi\xc3\xa9xyz and more");  // é straddles byte 10
  ASSERT_TRUE(cap.add(l));
  EXPECT_EQ(l.text.rfind("abcdefghi [... ", 0), 0u) << l.text;
  EXPECT_NE(l.text.find("bytes cut]"), std::string::npos) << l.text;
}

}  // namespace
