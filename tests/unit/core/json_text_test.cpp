// core/json_text: JSON written as text must be what nlohmann::json prints for
// the same values, for any bytes a lab or a user can put into a string.
#include "core/json_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "core/text.h"

namespace {
using nlohmann::json;

std::string as_json(std::string_view s) {
  std::string out;
  ads::append_json_string(out, s);
  return out;
}

TEST(JsonText, StringsAreEscapedAsNlohmannDumpsThem) {
  std::vector<std::string> cases = {"",       "plain",      "quote \" and \\ backslash", "tab\tnew\nline\rcr",
                                    "\b\f",   "é ü 日本 😀", std::string("nul\0byte", 8), "del\x7f",
                                    "/slash/"};
  for (int c = 0; c < 0x20; ++c) cases.push_back(std::string("<") + static_cast<char>(c) + ">");
  for (auto& s : cases) EXPECT_EQ(as_json(s), json(s).dump()) << json(s).dump();
}

TEST(JsonText, RandomValidTextMatchesNlohmann) {
  std::mt19937 rng(19);  // fixed seed: the same strings every run
  for (int n = 0; n < 2000; ++n) {
    std::string s(rng() % 40, ' ');
    for (auto& ch : s) ch = static_cast<char>(rng() % 256);
    std::string valid = ads::valid_utf8(s);
    ASSERT_EQ(as_json(valid), json(valid).dump());
  }
}

TEST(JsonText, InvalidUtf8IsWrittenAsValidUtf8MakesIt) {
  for (std::string s : {"a\xff", "\xc3", "ok \xe2\x82 then \xed\xa0\x80 end", "\x80\x80\"\n"}) {
    std::string out = as_json(s);
    EXPECT_EQ(out, json(ads::valid_utf8(s)).dump());
    EXPECT_EQ(json::parse(out), ads::valid_utf8(s));
  }
  std::string before = "prefix:";  // text already in the buffer stays
  ads::append_json_string(before, "x\xff");
  EXPECT_EQ(before, "prefix:\"x\xEF\xBF\xBD\"");
}

TEST(JsonText, ObjectsInKeyOrderPrintAsTheirDump) {
  std::string out;
  ads::JsonObjectText o(out);
  o.str("a", "x\"y").boolean("b", true).boolean("c", false).integer("d", -42).null("e");
  ads::JsonObjectText inner(o.member("f"));
  inner.integer("g", 1).str("h", "");
  inner.close();
  o.raw("i", "[1,2]");
  o.close();
  json expected = {{"a", "x\"y"}, {"b", true}, {"c", false}, {"d", -42}, {"e", nullptr}, {"f", {{"g", 1}, {"h", ""}}},
                   {"i", {1, 2}}};
  EXPECT_EQ(out, expected.dump());
  std::string empty;
  ads::JsonObjectText(empty).close();
  EXPECT_EQ(empty, "{}");
}

}  // namespace
