// `ads track` / `ads untrack` / `ads deploy --track` (cli/track.h): what is
// printed of a track (the secret only when the answer holds it), and the
// refusals against a real `ads serve` (no containers: nothing is deployed).
#include "cli/track.h"

#include <gtest/gtest.h>

#include <sstream>

#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using ads::test::run;
using nlohmann::json;

TEST(PrintTrack, TheHookUrlOnTheServerAndTheSecretOnlyWhenGiven) {
  std::ostringstream out;
  json t = {{"branch", "main"}, {"poll_s", 0}, {"hook_path", "/api/v1/hooks/git/01X"}, {"pending_commit", nullptr}};
  ads::cli::print_track(t, "https://ads.example.org/", out);
  EXPECT_NE(out.str().find("tracks:   main"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("hook URL: https://ads.example.org/api/v1/hooks/git/01X"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("webhooks only"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("secret"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("pending"), std::string::npos) << out.str();
  std::ostringstream with;
  t["secret"] = std::string(64, 'f');
  t["poll_s"] = 60;
  t["pending_commit"] = std::string(40, 'b');
  ads::cli::print_track(t, "http://127.0.0.1:8089", with);
  EXPECT_NE(with.str().find("secret:   " + std::string(64, 'f')), std::string::npos) << with.str();
  EXPECT_NE(with.str().find("every 60 s"), std::string::npos) << with.str();
  EXPECT_NE(with.str().find("pending:  " + std::string(40, 'b')), std::string::npos) << with.str();
}

class TrackCli : public ::testing::Test {
 protected:
  TrackCli() : server((tmp.path / "data").string()) {}
  int ads(std::vector<std::string> args, std::string& out) {
    std::vector<std::string> argv = {ADS_CLI_BIN, "--server", server.base(), "--token", server.token()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, &out);
  }
  ads::test::TempDir tmp;
  ads::test::Server server;
};

TEST_F(TrackCli, RefusalsExitTwoWithTheReason) {
  std::string out;
  EXPECT_EQ(ads({"track", "01zzzzzzzzzzzzzzzzzzzzzzzz", "main"}, out), 2) << out;
  EXPECT_NE(out.find("01zzzzzzzzzzzzzzzzzzzzzzzz"), std::string::npos) << out;
  EXPECT_EQ(ads({"untrack", "01zzzzzzzzzzzzzzzzzzzzzzzz"}, out), 2) << out;
  EXPECT_EQ(ads({"deploy", "/nonexistent/lab", "--poll", "60", "--detach"}, out), 2) << out;
  EXPECT_NE(out.find("poll_s"), std::string::npos) << out;
  EXPECT_EQ(ads({"deploy", "/nonexistent/lab", "--track", "refs/heads/main", "--detach"}, out), 2) << out;
  EXPECT_NE(out.find("branch"), std::string::npos) << out;
  EXPECT_EQ(server.call("GET", "/api/v1/deployments")["deployments"].size(), 0u);  // nothing made
}

}  // namespace
