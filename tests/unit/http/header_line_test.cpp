// http::add_header_line: the header lines libcurl hands over, into a map.
#include <gtest/gtest.h>

#include "http/client.h"

namespace {

TEST(HeaderLine, NameLowerCasedValueTrimmed) {
  std::map<std::string, std::string> h;
  ads::http::add_header_line("Content-Type:  application/json \r\n", h);
  ads::http::add_header_line("X-Amz-Request-Id:\tabc-123\r\n", h);
  EXPECT_EQ(h.at("content-type"), "application/json");
  EXPECT_EQ(h.at("x-amz-request-id"), "abc-123");
  EXPECT_EQ(h.size(), 2u);
}

TEST(HeaderLine, StatusLineBlankLineAndEmptyValue) {
  std::map<std::string, std::string> h;
  ads::http::add_header_line("HTTP/1.1 200 OK\r\n", h);
  ads::http::add_header_line("\r\n", h);
  EXPECT_TRUE(h.empty());
  ads::http::add_header_line("Empty:   \r\n", h);
  EXPECT_EQ(h.at("empty"), "");
}

TEST(HeaderLine, ColonInTheValueKeptAndLaterLineWins) {
  std::map<std::string, std::string> h;
  ads::http::add_header_line("Location: http://127.0.0.1:8089/x\r\n", h);
  ads::http::add_header_line("location: /y\r\n", h);
  EXPECT_EQ(h.at("location"), "/y");
  h.clear();
  ads::http::add_header_line("Location: http://127.0.0.1:8089/x\r\n", h);
  EXPECT_EQ(h.at("location"), "http://127.0.0.1:8089/x");
}

}  // namespace
