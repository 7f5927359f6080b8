// shell_quote / shell_join: every argv element reaches the program as one
// argument, unchanged, through a real POSIX shell.
#include "providers/openvz/shell_quote.h"

#include <gtest/gtest.h>

#include "support/process.h"

namespace {
using ads::openvz::shell_join;
using ads::openvz::shell_quote;

const std::vector<std::string> kHostile = {"plain",
                                           "",
                                           " ",
                                           "two words",
                                           "it's",
                                           "'",
                                           "''",
                                           "'\\''",
                                           "\"double\"",
                                           "$(touch /tmp/ads-pwned)",
                                           "`id`",
                                           "${HOME}",
                                           "$HOME",
                                           "a;b",
                                           "a|b",
                                           "a&&b",
                                           "a\nb",
                                           "\n",
                                           "\t",
                                           "*",
                                           "?",
                                           "[a]",
                                           "~",
                                           "~root",
                                           "#comment",
                                           "!event",
                                           "-e",
                                           "--",
                                           "a\\b",
                                           "\\",
                                           "<in",
                                           ">out",
                                           "2>&1",
                                           "{a,b}",
                                           "ü ñ 漢字",
                                           "\x01\x7f",
                                           "lab'; rm -rf / #",
                                           "/vz/private/101/it's a \"path\"/$(x)"};

TEST(ShellQuote, WrapsInSingleQuotes) {
  EXPECT_EQ(shell_quote("abc"), "'abc'");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$(x) `y`"), "'$(x) `y`'");
  EXPECT_EQ(*shell_join({"vzctl", "set", "101", "--description", "a b"}), "'vzctl' 'set' '101' '--description' 'a b'");
}

TEST(ShellJoin, RefusesEmptyArgvAndNulBytes) {
  auto e = shell_join({});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, "invalid");
  auto z = shell_join({"echo", std::string("a\0b", 3)});
  ASSERT_FALSE(z.ok());
  EXPECT_EQ(z.error().code, "invalid");
  EXPECT_NE(z.error().message.find("NUL"), std::string::npos);
}

// The joined line goes through /bin/sh (as sshd hands it to the user's shell):
// printf prints each argument NUL-terminated, and we get back exactly kHostile.
TEST(ShellJoin, RealShellSeesEveryElementAsOneArgument) {
  std::vector<std::string> argv = {"printf", "%s\\0"};
  argv.insert(argv.end(), kHostile.begin(), kHostile.end());
  auto line = shell_join(argv);
  ASSERT_TRUE(line.ok());
  std::string out;
  ASSERT_EQ(ads::test::run({"/bin/sh", "-c", *line}, &out), 0) << out;
  std::vector<std::string> got;
  size_t pos = 0, z;
  while ((z = out.find('\0', pos)) != std::string::npos) {
    got.push_back(out.substr(pos, z - pos));
    pos = z + 1;
  }
  EXPECT_EQ(pos, out.size()) << "trailing bytes: " << out.substr(pos);
  EXPECT_EQ(got, kHostile);
  EXPECT_FALSE(std::filesystem::exists("/tmp/ads-pwned"));
}

}  // namespace
