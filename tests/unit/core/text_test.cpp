#include "core/text.h"

#include <gtest/gtest.h>

namespace {
const std::string kR = "\xEF\xBF\xBD";  // U+FFFD

TEST(Utf8, ValidTextPassesUnchanged) {
  for (const std::string& s :
       {std::string(), std::string("plain ascii"), std::string("caf\xC3\xA9"), std::string("\xE2\x82\xAC 20"),
        std::string("\xF0\x9F\x98\x80"), std::string("\xF4\x8F\xBF\xBF"), std::string("nul\0inside", 10)}) {
    EXPECT_TRUE(ads::is_valid_utf8(s)) << s;
    EXPECT_EQ(ads::valid_utf8(s), s);
  }
}

TEST(Utf8, IllFormedSequencesAreReplacedOneSubpartAtATime) {
  struct Case {
    std::string in, out;
  } cases[] = {
      {"\xff\xfe", kR + kR},                    // bytes that never occur
      {"a\x80z", "a" + kR + "z"},               // a lone continuation byte
      {"\xC0\xAF", kR + kR},                    // overlong '/'
      {"\xE0\x80\xAF", kR + kR + kR},           // overlong, three bytes
      {"\xED\xA0\x80", kR + kR + kR},           // a UTF-16 surrogate
      {"\xF4\x90\x80\x80", kR + kR + kR + kR},  // above U+10FFFF
      {"\xE2\x82", kR},                         // truncated at the end: one subpart
      {"\xE2\x82z", kR + "z"},                  // truncated before ASCII
      {"\xF0\x9F\x98", kR},                     // truncated four-byte form
      {"ok\xC3", "ok" + kR},
  };
  for (auto& c : cases) {
    EXPECT_FALSE(ads::is_valid_utf8(c.in)) << c.out;
    std::string got = ads::valid_utf8(c.in);
    EXPECT_EQ(got, c.out);
    EXPECT_TRUE(ads::is_valid_utf8(got));
  }
}
}  // namespace
