// Who may deploy from which source through the API (issues 14.8, 15.6):
// deployers get only sources the server's policy allows and one answer for
// every refused local path; admins may use any path; credentials never go in
// a source and never come out of the server.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/git_http_server.h"
#include "unit/api/api_fixture.h"

namespace fs = std::filesystem;

namespace {
using ads::test::ApiTest;

class SourceAccessTest : public ApiTest {
 protected:
  ads::EngineOptions engine_options() override {
    ads::EngineOptions o;
    o.work_dir = (roots.path / "work").string();
    fs::create_directories(roots.path / "labs" / "static-site");
    std::ofstream(roots.path / "labs" / "static-site" / "ads-lab.json") << "{}";
    fs::create_symlink("/etc", roots.path / "labs" / "etc-link");
    o.sources.policy.local_roots = {(roots.path / "labs").string()};
    return o;
  }
  void SetUp() override {
    ApiTest::SetUp();
    ASSERT_EQ(call("POST", "/api/v1/users", R"({"name":"dan","role":"deployer"})").status, 201);
    dan = call("POST", "/api/v1/tokens", R"({"name":"t","user":"dan"})").body["secret"];
    ASSERT_FALSE(dan.empty());
  }
  Reply deploy_as(const std::string& tok, const std::string& source) {
    return call_as(tok, "POST", "/api/v1/deployments", nlohmann::json{{"source", source}}.dump());
  }
  ads::test::TempDir roots;
  std::string dan;
};

TEST_F(SourceAccessTest, ADeployerGetsOneAnswerForEveryServerPathOutsideTheRoots) {
  std::string first;
  for (const std::string& path :
       std::vector<std::string>{"/etc", "/var/lib/ads", "/no/such/dir", "/etc/shadow", "/proc/self",
                                (roots.path / "labs" / "etc-link").string(), (roots.path / "labs" / "missing").string(),
                                (roots.path / "labs" / ".." / "work").string(), "file:///etc", "file:///no/such/dir"}) {
    auto r = deploy_as(dan, path);
    expect_error(r, 403, "source");
    std::string msg = r.body["error"].value("message", "");
    if (first.empty()) first = msg;
    EXPECT_EQ(msg, first) << path << ": the answer differs, so it tells something about the server's files";
    EXPECT_EQ(msg.find(path), std::string::npos) << msg;
  }
  EXPECT_EQ(count(), 0u);
  // inside the roots it is accepted
  EXPECT_EQ(deploy_as(dan, (roots.path / "labs" / "static-site").string()).status, 202);
}

TEST_F(SourceAccessTest, ADeployerCannotReachTheServersOwnNetwork) {
  for (std::string s : {"http://127.0.0.1:8089/api/v1/health", "https://127.0.0.1:8089/x.git", "https://[::1]/x.git",
                        "https://169.254.169.254/latest/meta-data", "git://10.0.0.1/x", "ssh://192.168.1.1/x",
                        "https://[::ffff:127.0.0.1]/x"}) {
    auto r = deploy_as(dan, s);
    EXPECT_TRUE(r.status == 403) << s << " " << r.body.dump();
  }
  expect_error(deploy_as(dan, "http://git.example.org/x.git"), 403, "source");  // http is off by default
  EXPECT_EQ(count(), 0u);
  EXPECT_EQ(deploy_as(dan, "https://git.example.org/labs/x.git").status, 202);
}

TEST_F(SourceAccessTest, AnAdminMayUseAnyPath) {
  EXPECT_EQ(call("POST", "/api/v1/deployments", R"({"source":"/etc"})").status, 202);
  EXPECT_EQ(call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})").status, 202);
  // but not the server's network either: that is no question of paths
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"http://127.0.0.1:8089/x"})"), 403, "source");
}

TEST_F(SourceAccessTest, CredentialsInASourceAreRefusedSayingWhereTheyGo) {
  for (auto* tok : {&token, &dan}) {
    for (std::string s : {"https://user:tok3n@git.example.org/r.git", "https://tok3n@git.example.org/r.git",
                          "ssh://git:pw@git.example.org/r.git"}) {
      auto r = deploy_as(*tok, s);
      expect_error(r, 400, "source");
      EXPECT_NE(r.body["error"].value("message", "").find("sources.git_credentials"), std::string::npos) << r.body;
      EXPECT_EQ(r.body.dump().find("tok3n"), std::string::npos);
    }
  }
  EXPECT_EQ(count(), 0u);
}

// The whole way through the engine: a private repository fetched with the
// credentials of the config, and the password in no answer, log line, event
// or server log line.
class PrivateRepoTest : public SourceAccessTest {
 protected:
  ads::EngineOptions engine_options() override {
    auto o = SourceAccessTest::engine_options();
    repo_dir = roots.path / "git" / "private";
    fs::create_directories(repo_dir / "site");
    std::ofstream(repo_dir / "ads-lab.json")
        << R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"start":["true"]}})";
    std::ofstream(repo_dir / "site" / "index.html") << "hello";
    for (std::vector<std::string> a :
         {std::vector<std::string>{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "lab"}}) {
      std::vector<std::string> argv = {"git",         "-C", repo_dir.string(),       "-c",
                                       "user.name=t", "-c", "user.email=t@t.invalid"};
      argv.insert(argv.end(), a.begin(), a.end());
      std::string out;
      EXPECT_EQ(ads::test::run(argv, &out), 0) << out;
    }
    std::ofstream(roots.path / "pw") << kPassword << "\n";
    o.sources.policy.schemes = {"https", "http"};
    o.sources.policy.allow_addresses = {ads::parse_ip_range("127.0.0.1/32", "t").value()};
    o.sources.credentials["127.0.0.1"] = {"labs", (roots.path / "pw").string(), "", "", ""};
    // an empty agent binary: the engine starts, and a deploy stops at provisioning, before any machine
    std::ofstream empty_agent(roots.path / "empty-agent");
    EXPECT_TRUE(empty_agent.is_open()) << (roots.path / "empty-agent");
    o.agent_binary = (roots.path / "empty-agent").string();
    return o;
  }
  static constexpr const char* kPassword = "pw-7f3a9c2e-not-to-be-seen";
  fs::path repo_dir;
};

TEST_F(PrivateRepoTest, IsFetchedWithConfiguredCredentialsThatAppearNowhere) {
  std::ostringstream server_log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(server_log)));
  ads::test::GitHttpServer git((roots.path / "git").string(), "labs", kPassword);
  ASSERT_TRUE(git.ok());
  ASSERT_TRUE(engine->start().ok());
  auto r = deploy_as(dan, git.url("private"));
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = r.body["id"];
  // it fails later, at provisioning (this test's engine has no agent binary): after fetching
  nlohmann::json d;
  for (int i = 0; i < 240; ++i) {
    d = call("GET", "/api/v1/deployments/" + id).body;
    if (d.value("state", "") == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(d.value("state", ""), "failed") << d;
  EXPECT_EQ(d.value("failed_step", ""), "provisioning") << d;
  EXPECT_EQ(d.value("commit", "").size(), 40u) << "fetched";
  ASSERT_FALSE(git.authorizations().empty());
  std::string everything = d.dump() + call("GET", "/api/v1/deployments").body.dump() +
                           call("GET", "/api/v1/deployments/" + id + "/logs?limit=1000").body.dump() +
                           call("GET", "/api/v1/deployments/" + id + "/jobs").body.dump() +
                           call_as(dan, "GET", "/api/v1/deployments/" + id + "/logs?limit=1000").body.dump();
  ads::http::ClientRequest ev;
  ev.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/api/v1/deployments/" + id + "/events?until=settled";
  ev.headers = {{"Authorization", "Bearer " + token}};
  auto events = ads::http::request(ev);
  ASSERT_TRUE(events.ok());
  everything += events->body;
  engine->stop();
  spdlog::set_default_logger(previous);
  everything += server_log.str();
  EXPECT_NE(everything.find("checked out"), std::string::npos);
  EXPECT_EQ(everything.find(kPassword), std::string::npos) << "the password was shown";
  EXPECT_EQ(everything.find(ads::test::GitHttpServer::base64(std::string("labs:") + kPassword)), std::string::npos);
}

}  // namespace
