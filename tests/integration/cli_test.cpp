// The `ads` command against a real `ads serve` and a real LXD container:
// progress output, exit codes, list/show/logs/destroy.
#include <gtest/gtest.h>

#include <fstream>

#include "http/server.h"
#include "providers/provider.h"
#include "support/build_paths.h"
#include "support/process.h"

using ads::test::Child;
using ads::test::TempDir;

namespace {

std::string g_token;  // the running test server's admin token

std::string read_token(const std::string& data_dir) {
  std::ifstream in(data_dir + "/admin.token");
  std::string t;
  std::getline(in, t);
  return t;
}

int ads_cli(const std::string& server, std::vector<std::string> args, std::string* out) {
  std::vector<std::string> argv = {ADS_CLI_BIN, "--server", server, "--token", g_token};
  argv.insert(argv.end(), args.begin(), args.end());
  return ads::test::run(argv, out);
}

TEST(CliTest, DeployShowsProgressAndUrlThenListShowLogsDestroy) {
  TempDir tmp;
  Child server(
      {ADS_CLI_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", tmp.str(), "--agent-binary", ADS_AGENT_BIN});
  std::string line = server.read_line();
  auto pos = line.find("http://");
  ASSERT_NE(pos, std::string::npos) << line;
  std::string base = line.substr(pos);
  std::string first = server.read_line();
  EXPECT_NE(first.find("first start: created the user admin"), std::string::npos) << first;
  g_token = read_token(tmp.str());
  // not a terminal (a pipe here, a log file under `ads service`): the secret is not printed
  EXPECT_EQ(first.find(g_token), std::string::npos) << first;

  std::string out;
  int rc =
      ads_cli(base, {"deploy", std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site", "--name", "cli-lab"}, &out);
  // the id is on the first line: "deployment <id> accepted (cli-lab)"
  std::string id;
  auto p = out.find("deployment ");
  if (p != std::string::npos) id = out.substr(p + 11, 26);
  struct Guard {
    std::string id;
    ~Guard() {
      if (!id.empty()) (void)ads::make_provider("lxd", nlohmann::json::object()).value()->destroy("ads-" + id);
    }
  } guard{id};
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("==> [2/9] validating"), std::string::npos) << out;
  EXPECT_NE(out.find("==> [9/9] running"), std::string::npos) << out;
  EXPECT_NE(out.find("lab cli-lab is running at http://10.213.87."), std::string::npos) << out;

  ASSERT_EQ(ads_cli(base, {"list"}, &out), 0);
  EXPECT_NE(out.find(id), std::string::npos) << out;
  EXPECT_NE(out.find("running"), std::string::npos) << out;
  ASSERT_EQ(ads_cli(base, {"show", id}, &out), 0);
  EXPECT_NE(out.find("state:    running"), std::string::npos) << out;
  ASSERT_EQ(ads_cli(base, {"logs", id}, &out), 0);
  EXPECT_NE(out.find("running at http://"), std::string::npos) << out;
  // logs -f follows the Server-Sent Events stream; the lab is settled, so it ends
  ASSERT_EQ(ads_cli(base, {"logs", "-f", id}, &out), 0) << out;
  EXPECT_NE(out.find("==> running"), std::string::npos) << out;
  EXPECT_NE(out.find("step installing"), std::string::npos) << out;
  ASSERT_EQ(ads_cli(base, {"test", id}, &out), 0) << out;
  EXPECT_NE(out.find("test passed"), std::string::npos) << out;
  // a check dry-runs an install playbook: this lab installs with commands
  EXPECT_EQ(ads_cli(base, {"check", id}, &out), 1) << out;
  EXPECT_NE(out.find("check failed: check: /"), std::string::npos) << out;
  EXPECT_NE(out.find("installs with commands, not with an Ansible playbook"), std::string::npos) << out;
  ASSERT_EQ(ads_cli(base, {"stop", id}, &out), 0) << out;
  EXPECT_EQ(ads_cli(base, {"test", id}, &out), 2) << out;  // a stopped lab cannot be tested
  EXPECT_NE(out.find("it must be running"), std::string::npos) << out;
  ASSERT_EQ(ads_cli(base, {"start", id}, &out), 0) << out;
  // a backup (the static lab has no data: a snapshot and an empty archive), then deleted
  ASSERT_EQ(ads_cli(base, {"backup", id}, &out), 0) << out;
  p = out.find("backup 01");
  ASSERT_NE(p, std::string::npos) << out;
  std::string backup = out.substr(p + 7, 26);
  ASSERT_EQ(ads_cli(base, {"backups", id}, &out), 0) << out;
  EXPECT_NE(out.find(backup), std::string::npos) << out;
  ASSERT_EQ(ads_cli(base, {"delete-backup", id, backup}, &out), 0) << out;
  EXPECT_NE(out.find("deleted backup " + backup), std::string::npos) << out;
  EXPECT_NE(out.find("delete-backup done"), std::string::npos) << out;
  ASSERT_EQ(ads_cli(base, {"backups", id}, &out), 0) << out;
  EXPECT_EQ(out.find(backup), std::string::npos) << out;
  EXPECT_EQ(ads_cli(base, {"delete-backup", id, backup}, &out), 2) << out;  // gone: a clear 404
  EXPECT_NE(out.find("has no backup " + backup), std::string::npos) << out;
  ASSERT_EQ(ads_cli(base, {"jobs", id}, &out), 0) << out;
  EXPECT_NE(out.find("stop           succeeded"), std::string::npos) << out;
  EXPECT_NE(out.find("delete-backup  succeeded"), std::string::npos) << out;
  ASSERT_EQ(ads_cli(base, {"destroy", id}, &out), 0) << out;
  EXPECT_NE(out.find("destroyed"), std::string::npos) << out;
  ASSERT_EQ(ads_cli(base, {"show", id}, &out), 0);
  EXPECT_NE(out.find("state:    destroyed"), std::string::npos) << out;
}

TEST(CliTest, BadInputAndUnreachableServerGiveMessagesAndExitCodes) {
  TempDir tmp;
  Child server(
      {ADS_CLI_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", tmp.str(), "--agent-binary", ADS_AGENT_BIN});
  std::string line = server.read_line();
  std::string base = line.substr(line.find("http://"));
  g_token = read_token(tmp.str());
  std::string out;
  // without a token, or with a wrong one: refused, exit 2
  EXPECT_EQ(ads::test::run({ADS_CLI_BIN, "--server", base, "--token", "ads_wrong", "list"}, &out), 2);
  EXPECT_NE(out.find("unknown token"), std::string::npos) << out;
  EXPECT_EQ(ads_cli(base, {"deploy", "/srv/lab", "--name", "x; rm -rf /"}, &out), 2);
  EXPECT_NE(out.find("name: may contain only"), std::string::npos) << out;
  EXPECT_EQ(ads_cli(base, {"show", "01jzzzzzzzzzzzzzzzzzzzzzzz"}, &out), 2);
  EXPECT_NE(out.find("no deployment"), std::string::npos) << out;
  EXPECT_EQ(ads_cli(base, {"delete-backup", "01jzzzzzzzzzzzzzzzzzzzzzzz", "01jzzzzzzzzzzzzzzzzzzzzzzz"}, &out), 2);
  EXPECT_NE(out.find("no deployment"), std::string::npos) << out;
  EXPECT_EQ(ads_cli(base, {"delete-backup", "01jzzzzzzzzzzzzzzzzzzzzzzz"}, &out), 2);  // which backup?
  EXPECT_NE(out.find("backup is required"), std::string::npos) << out;
  EXPECT_EQ(ads_cli(base, {"frobnicate"}, &out), 2);
  EXPECT_EQ(ads_cli(base, {"list", "--state", "sideways"}, &out), 2);
  EXPECT_NE(out.find("unknown state"), std::string::npos) << out;
  // nothing listens on port 1 of loopback
  EXPECT_EQ(ads_cli("http://127.0.0.1:1", {"list"}, &out), 3);
  EXPECT_NE(out.find("cannot reach the ADS server"), std::string::npos) << out;
  // serve refuses a bad config with the field named
  EXPECT_EQ(ads::test::run({ADS_CLI_BIN, "serve", "--listen", "nowhere", "--data-dir", tmp.str()}, &out), 2);
  EXPECT_NE(out.find("listen"), std::string::npos) << out;
}

}  // namespace

namespace {

TEST(ServiceTest, StartStatusStopManageOneBackgroundServer) {
  ads::test::TempDir tmp;
  std::string data = tmp.str();
  // a port of our own on loopback: find a free one by binding port 0
  int port = 0;
  {
    ads::http::Server probe(ads::http::ServerOptions{"127.0.0.1", 0, 1024, 1, 1});
    ASSERT_TRUE(probe.start().ok());
    port = probe.port();
  }
  std::string listen = "127.0.0.1:" + std::to_string(port);
  auto service = [&](const std::string& action, std::string* out) {
    return ads::test::run({ADS_CLI_BIN, "service", action, "--data-dir", data, "--listen", listen}, out);
  };
  std::string out;
  EXPECT_EQ(service("status", &out), 3) << out;
  EXPECT_NE(out.find("not running"), std::string::npos);
  ASSERT_EQ(service("start", &out), 0) << out;
  EXPECT_NE(out.find("started (pid"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(data + "/ads.pid"));
  EXPECT_EQ(service("start", &out), 0);
  EXPECT_NE(out.find("already running"), std::string::npos) << out;
  EXPECT_EQ(service("status", &out), 0) << out;
  EXPECT_NE(out.find("answering on http://" + listen), std::string::npos) << out;
  // the proxy of stable URLs comes with the service, and status names it
  EXPECT_NE(out.find("the reverse proxy (haproxy) is running (pid"), std::string::npos) << out;
  // the background server answers the CLI with the token from its first start
  EXPECT_EQ(ads::test::run({ADS_CLI_BIN, "--server", "http://" + listen, "list"}, &out), 2) << out;  // no token
  std::string tok = read_token(data);
  std::ifstream logf(data + "/ads.log");
  std::string log((std::istreambuf_iterator<char>(logf)), {});
  EXPECT_EQ(log.find(tok), std::string::npos) << "the token must not reach the log";
  EXPECT_EQ(std::filesystem::status(data + "/admin.token").permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  EXPECT_EQ(ads::test::run({ADS_CLI_BIN, "--server", "http://" + listen, "--token", tok, "list"}, &out), 0) << out;
  ASSERT_EQ(service("stop", &out), 0) << out;
  EXPECT_NE(out.find("stopped"), std::string::npos);
  EXPECT_NE(out.find("the reverse proxy (haproxy) stopped (pid"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(data + "/ads.pid"));
  EXPECT_EQ(service("status", &out), 3);
  EXPECT_EQ(service("stop", &out), 0);  // stopping a stopped service is fine
  // a server that cannot start (port taken) is reported with its log
  ads::http::Server taken(ads::http::ServerOptions{"127.0.0.1", static_cast<uint16_t>(port), 1024, 1, 1});
  ASSERT_TRUE(taken.start().ok());
  EXPECT_EQ(service("start", &out), 1) << out;
  EXPECT_NE(out.find("cannot listen"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(data + "/ads.pid"));
  // the proxy that start had started before ads serve failed goes too
  EXPECT_EQ(service("stop", &out), 0) << out;
  EXPECT_NE(out.find("the reverse proxy (haproxy) stopped"), std::string::npos) << out;
}

}  // namespace
