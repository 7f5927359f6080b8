// `ads users` and `ads tokens` against a real `ads serve` (no containers:
// nothing is deployed), and the CLI's own parsing.
#include "cli/accounts.h"

#include <gtest/gtest.h>

#include <regex>

#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using ads::test::run;

TEST(ParseTtl, SecondsAndUnitsAndRefusals) {
  EXPECT_EQ(*ads::cli::parse_ttl("0"), 0);
  EXPECT_EQ(*ads::cli::parse_ttl("90"), 90);
  EXPECT_EQ(*ads::cli::parse_ttl("90s"), 90);
  EXPECT_EQ(*ads::cli::parse_ttl("15m"), 900);
  EXPECT_EQ(*ads::cli::parse_ttl("12h"), 43200);
  EXPECT_EQ(*ads::cli::parse_ttl("30d"), 2592000);
  for (const char* bad : {"", "d", "-5", "5x", "5dd", "1.5h", " 5", "99999999999999", "36501d"}) {
    auto r = ads::cli::parse_ttl(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().field, "ttl") << bad;
  }
}

class AccountsCli : public ::testing::Test {
 protected:
  AccountsCli() : server((tmp.path / "data").string()) {}
  // Runs `ads --server S --token T args...`; returns the exit code.
  int ads(std::vector<std::string> args, std::string& out, const std::string& tok = "", const std::string& input = "") {
    std::vector<std::string> argv = {ADS_CLI_BIN, "--server", server.base(), "--token",
                                     tok.empty() ? server.token() : tok};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, &out, "", input);
  }
  ads::test::TempDir tmp;
  ads::test::Server server;
};

TEST_F(AccountsCli, UsersAreAddedListedChangedAndDisabled) {
  std::string out;
  ASSERT_EQ(ads({"users", "add", "pat", "--role", "deployer", "--password-stdin"}, out, "", "correct horse battery\n"),
            0)
      << out;
  EXPECT_NE(out.find("user pat added (deployer)"), std::string::npos) << out;
  ASSERT_EQ(ads({"users", "list"}, out), 0) << out;
  EXPECT_NE(out.find("pat"), std::string::npos);
  EXPECT_NE(out.find("deployer  yes"), std::string::npos) << out;
  EXPECT_EQ(out.find("argon2"), std::string::npos);
  // bad input: exit 2 and a message naming what is wrong
  EXPECT_EQ(ads({"users", "add", "pat", "--role", "viewer"}, out), 2);
  EXPECT_NE(out.find("exists"), std::string::npos) << out;
  EXPECT_EQ(ads({"users", "add", "x;reboot", "--role", "viewer"}, out), 2);
  EXPECT_NE(out.find("name"), std::string::npos) << out;
  EXPECT_EQ(ads({"users", "add", "zed", "--role", "root"}, out), 2);
  EXPECT_NE(out.find("role"), std::string::npos) << out;
  EXPECT_EQ(ads({"users", "add", "zed", "--role", "viewer", "--password-stdin"}, out, "", ""), 2);
  EXPECT_NE(out.find("no password on standard input"), std::string::npos) << out;
  EXPECT_EQ(ads({"users", "add", "zed", "--role", "viewer", "--password-stdin"}, out, "", "short\n"), 2);
  EXPECT_NE(out.find("at least 12"), std::string::npos) << out;
  EXPECT_EQ(ads({"users", "set", "pat"}, out), 2);
  EXPECT_NE(out.find("give --role"), std::string::npos) << out;
  EXPECT_EQ(ads({"users"}, out), 2);  // a sub-verb is required
  ASSERT_EQ(ads({"users", "list"}, out), 0);
  EXPECT_EQ(out.find("zed"), std::string::npos) << "a refused add made nothing";
  // changes
  ASSERT_EQ(ads({"users", "set", "pat", "--role", "viewer"}, out), 0) << out;
  EXPECT_NE(out.find("user pat is viewer, with a password"), std::string::npos) << out;
  EXPECT_EQ(ads({"users", "disable", "admin"}, out), 2);
  EXPECT_NE(out.find("last admin"), std::string::npos) << out;
  ASSERT_EQ(ads({"users", "disable", "pat"}, out), 0) << out;
  EXPECT_NE(out.find("user pat disabled"), std::string::npos) << out;
  ASSERT_EQ(ads({"users", "list"}, out), 0);
  EXPECT_TRUE(std::regex_search(out, std::regex("\npat +viewer +no +disabled "))) << out;
  ASSERT_EQ(ads({"users", "enable", "pat"}, out), 0) << out;
  EXPECT_NE(out.find("user pat enabled (viewer)"), std::string::npos) << out;
  ASSERT_EQ(ads({"users", "list"}, out), 0);
  EXPECT_TRUE(std::regex_search(out, std::regex("\npat +viewer +no +enabled "))) << out;
  EXPECT_EQ(ads({"users", "enable", "nobody"}, out), 2);
  ASSERT_EQ(ads({"users", "unbind", "pat"}, out), 0) << out;
  EXPECT_NE(out.find("bound to no OpenID identity"), std::string::npos) << out;
}

TEST_F(AccountsCli, TokensAreCreatedOnceListedAndRevoked) {
  std::string out;
  ASSERT_EQ(ads({"users", "add", "vera", "--role", "viewer"}, out), 0) << out;
  ASSERT_EQ(ads({"tokens", "create", "ci", "--ttl", "1h", "--user", "vera"}, out), 0) << out;
  // the secret is the last line; the note about it goes to stderr (merged here)
  std::string secret = out.substr(out.rfind("ads_"));
  secret = secret.substr(0, secret.find('\n'));
  ASSERT_EQ(secret.size(), 52u) << out;
  ASSERT_EQ(ads({"tokens", "list"}, out, secret), 0) << out;
  EXPECT_NE(out.find("ci"), std::string::npos);
  EXPECT_EQ(out.find(secret), std::string::npos) << "listings never show a secret";
  std::string id = out.substr(out.find('\n') + 1, 26);
  // a viewer may not make tokens for others, nor list theirs
  EXPECT_EQ(ads({"tokens", "create", "x", "--user", "admin"}, out, secret), 2);
  EXPECT_NE(out.find("only an admin"), std::string::npos) << out;
  EXPECT_EQ(ads({"tokens", "list", "--user", "admin"}, out, secret), 2);
  EXPECT_EQ(ads({"tokens", "create", "x", "--ttl", "3x"}, out), 2);
  EXPECT_NE(out.find("ttl"), std::string::npos) << out;
  EXPECT_EQ(ads({"tokens", "revoke", "01jzzzzzzzzzzzzzzzzzzzzzzz"}, out), 2);
  // revoke; the token stops working at once
  ASSERT_EQ(ads({"tokens", "revoke", id}, out), 0) << out;
  EXPECT_NE(out.find("revoked"), std::string::npos) << out;
  EXPECT_EQ(ads({"tokens", "list"}, out, secret), 2);
  EXPECT_NE(out.find("revoked"), std::string::npos) << out;
  // an unreachable server: exit 3
  EXPECT_EQ(run({ADS_CLI_BIN, "--server", "http://127.0.0.1:9", "--token", "x", "users", "list"}, &out), 3);
}

}  // namespace
