// The agent's bootstrap secret and its replacement (agent/secret_file.h,
// POST /v1/secret, agent/handover.h): what a holder of the bootstrap secret
// (anyone who read the machine's user data) can do before and after the
// switch, the switch kept across a restart, the crash windows on both sides,
// bad input.
#include <sys/stat.h>

#include "agent/handover.h"
#include "agent/secret_file.h"
#include "agent_fixture.h"

namespace {
using namespace ads::test::agent_fixture;
namespace agent = ads::agent;

class AgentSecretTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    file = (tmp.path / "etc/ads-agent/secret").string();
    restart_with_file();
  }
  void restart_with_file() {
    restart_agent([this](agent::AgentConfig& c) { c.secret_file = file; });
  }
  // A request signed with `secret`, over TLS with whatever key the agent
  // presents now (as an attacker's client that checks nothing would).
  long attacker_status(const std::string& secret, const std::string& method, const std::string& target,
                       const std::string& presented_secret, const std::string& body = "") {
    ads::http::ClientRequest r;
    r.method = method;
    r.url = base + target;
    r.headers = agent::signed_headers(secret, method, target, body, now_s());
    r.body = body;
    r.pinned_key = *agent::agent_pin(presented_secret);
    auto res = ads::http::request(r);
    return res ? res->status : -1;
  }
  std::string file_text() {
    std::ifstream in(file);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  std::string file;
  const std::string fresh = agent::random_hex(32);
};

TEST_F(AgentSecretTest, TheBootstrapSecretOnlyHandsOverAndIsRefusedOnceReplaced) {
  agent::AgentClient boot(base, kSecret);
  // before the switch: health (ADS's first contact) and the switch, nothing else
  ASSERT_TRUE(boot.health().ok());
  auto up = boot.upload_lab(lab_tarball(spec_with(R"(["true"])")));
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.error().code, "forbidden") << up.error().message;
  EXPECT_EQ(attacker_status(kSecret, "POST", "/v1/actions/start", kSecret), 403);
  EXPECT_EQ(attacker_status(kSecret, "GET", "/v1/backup", kSecret), 403);
  EXPECT_FALSE(fs::exists(tmp.path / "lab"));

  ASSERT_TRUE(boot.replace_secret(fresh).ok());
  // the file holds the new secret, root-only
  EXPECT_EQ(file_text(), fresh + "\n");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // the bootstrap secret: the agent no longer proves it (TLS), and a request
  // signed with it over any TLS is refused, whatever it asks
  auto h = boot.health();
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, "tls") << h.error().message;
  for (auto [m, t] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/health"}, {"POST", "/v1/actions/start"}, {"PUT", "/v1/lab"}, {"GET", "/v1/backup"}})
    EXPECT_EQ(attacker_status(kSecret, m, t, fresh), 401) << m << " " << t;
  EXPECT_EQ(
      attacker_status(kSecret, "POST", "/v1/secret", fresh, nlohmann::json{{"secret", agent::random_hex(32)}}.dump()),
      401);
  EXPECT_EQ(file_text(), fresh + "\n");

  // the new secret does everything
  agent::AgentClient now(base, fresh);
  ASSERT_TRUE(now.health().ok());
  ASSERT_TRUE(now.upload_lab(lab_tarball(spec_with(R"(["true"])"))).ok());
  auto rc = now.run_action("install", [](const std::string&, const std::string&) {});
  ASSERT_TRUE(rc.ok()) << rc.error().message;
  EXPECT_EQ(*rc, 0);
}

TEST_F(AgentSecretTest, TheSwitchIsKeptAcrossARestartOfTheAgent) {
  ASSERT_TRUE(agent::AgentClient(base, kSecret).replace_secret(fresh).ok());
  restart_with_file();  // the same config, bootstrap secret and all
  auto h = agent::AgentClient(base, kSecret).health();
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, "tls");
  EXPECT_EQ(attacker_status(kSecret, "GET", "/v1/health", fresh), 401);
  EXPECT_EQ(attacker_status(kSecret, "POST", "/v1/actions/start", fresh), 401);
  EXPECT_TRUE(agent::AgentClient(base, fresh).health().ok());
}

TEST_F(AgentSecretTest, ARetryOfTheSameSwitchIsAnsweredAndBadInputChangesNothing) {
  agent::AgentClient boot(base, kSecret);
  auto post = [&](const std::string& body) { return attacker_status(kSecret, "POST", "/v1/secret", kSecret, body); };
  for (const std::string& bad : {std::string("not json"), std::string("{}"), std::string(R"({"secret":42})"),
                                 nlohmann::json{{"secret", "short"}}.dump(),
                                 nlohmann::json{{"secret", std::string(64, 'A')}}.dump(),   // upper case
                                 nlohmann::json{{"secret", std::string(63, 'a')}}.dump(),   // too short
                                 nlohmann::json{{"secret", std::string(257, 'a')}}.dump(),  // too long
                                 nlohmann::json{{"secret", std::string(63, 'a') + " "}}.dump(),
                                 nlohmann::json{{"secret", std::string(64, 'k')}}.dump()})  // the bootstrap itself
    EXPECT_EQ(post(bad), 400) << bad;
  EXPECT_FALSE(fs::exists(file));
  ASSERT_TRUE(boot.health().ok());  // still on the bootstrap secret

  ASSERT_TRUE(boot.replace_secret(fresh).ok());
  // ADS sends it again (say its first answer was lost): the agent, now on it, agrees
  agent::AgentClient now(base, fresh);
  ASSERT_TRUE(now.replace_secret(fresh).ok());
  EXPECT_EQ(file_text(), fresh + "\n");
  EXPECT_TRUE(now.health().ok());
}

TEST_F(AgentSecretTest, AnAgentWithoutASecretFileKeepsItsSecretAndServesAsBefore) {
  restart_agent([](agent::AgentConfig&) {});  // LXD and OpenVZ machines: no secret_file
  agent::AgentClient c(base, kSecret);
  auto r = c.replace_secret(fresh);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "not_found") << r.error().message;
  EXPECT_TRUE(c.upload_lab(lab_tarball(spec_with(R"(["true"])"))).ok());  // no bootstrap limit
  EXPECT_TRUE(c.health().ok());
}

TEST_F(AgentSecretTest, ASecretThatCannotBeKeptIsNotUsed) {
  // the temporary file cannot be made (a directory is in its way)
  fs::create_directories(file + ".tmp");
  agent::AgentClient boot(base, kSecret);
  auto r = boot.replace_secret(fresh);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "failed") << r.error().message;
  EXPECT_NE(r.error().message.find("cannot keep the new secret"), std::string::npos) << r.error().message;
  EXPECT_TRUE(boot.health().ok());  // still the bootstrap: ADS may try again
  EXPECT_FALSE(agent::AgentClient(base, fresh).health().ok());
}

// The agent dies mid-write: before the rename only "<file>.tmp" exists, so
// it restarts on the bootstrap secret (ADS, which never got an answer, sends
// the new one again); after the rename it restarts on the new one.
TEST_F(AgentSecretTest, AWriteCutOffBeforeItsRenameLeavesTheBootstrapSecretAndTheSwitchCanBeRedone) {
  server->stop();
  fs::create_directories(fs::path(file).parent_path());
  std::ofstream(file + ".tmp") << fresh.substr(0, 10);  // half written
  restart_with_file();
  agent::AgentClient boot(base, kSecret);
  ASSERT_TRUE(boot.health().ok());
  ASSERT_TRUE(boot.replace_secret(fresh).ok());
  EXPECT_FALSE(fs::exists(file + ".tmp"));
  EXPECT_EQ(file_text(), fresh + "\n");
}

TEST_F(AgentSecretTest, ASecretFileThatIsDamagedStopsTheAgentRatherThanFallingBack) {
  server->stop();
  server.reset();
  fs::create_directories(fs::path(file).parent_path());
  for (const std::string& bad : {std::string(""), std::string("zz\n"), fresh.substr(0, 40) + "\n"}) {
    std::ofstream(file, std::ios::trunc) << bad;
    auto cfg = config();
    cfg.secret_file = file;
    agent::AgentServer s(cfg);
    auto st = s.start();
    ASSERT_FALSE(st.ok()) << "started with a secret file holding '" << bad << "'";
    EXPECT_NE(st.error().message.find(file), std::string::npos) << st.error().message;
  }
  // a link in the file's place is not followed
  fs::remove(file);
  std::ofstream(tmp.path / "elsewhere") << fresh << "\n";
  fs::create_symlink(tmp.path / "elsewhere", file);
  auto cfg = config();
  cfg.secret_file = file;
  agent::AgentServer s(cfg);
  EXPECT_FALSE(s.start().ok());
}

TEST(AgentSecretFile, WritesThroughNoLinkAndReadsBackWhatItWrote) {
  ads::test::TempDir tmp;
  std::string path = (tmp.path / "d/secret").string();
  auto none = agent::read_secret_file(path);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // a link planted at the temporary name is replaced, not written through
  std::filesystem::create_directories(tmp.path / "d");
  std::ofstream(tmp.path / "victim") << "keep\n";
  std::filesystem::create_symlink(tmp.path / "victim", path + ".tmp");
  std::string s = agent::random_hex(32);
  ASSERT_TRUE(agent::write_secret_file(path, s).ok());
  std::ifstream v(tmp.path / "victim");
  std::string victim((std::istreambuf_iterator<char>(v)), {});
  EXPECT_EQ(victim, "keep\n");
  auto back = agent::read_secret_file(path);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->value_or(""), s);
  EXPECT_FALSE(agent::write_secret_file(path, "not hex").ok());
  EXPECT_EQ(agent::read_secret_file(path)->value_or(""), s);
}

// The engine's side (agent/handover.h) against a real agent.
TEST_F(AgentSecretTest, HandOverSwitchesTheAgentAndIsSafeToRunAgain) {
  ASSERT_TRUE(agent::hand_over_secret(base, kSecret, fresh, std::chrono::seconds(10)).ok());
  EXPECT_TRUE(agent::AgentClient(base, fresh).health().ok());
  EXPECT_FALSE(agent::AgentClient(base, kSecret).health().ok());
  // run again (ADS did not learn the first one went through): nothing to do, no error
  ASSERT_TRUE(agent::hand_over_secret(base, kSecret, fresh, std::chrono::seconds(10)).ok());
  EXPECT_EQ(file_text(), fresh + "\n");
}

TEST_F(AgentSecretTest, HandOverToAnAgentSomeoneElseSwitchedFirstFailsAsUnauthorized) {
  std::string theirs = agent::random_hex(32);
  ASSERT_TRUE(agent::AgentClient(base, kSecret).replace_secret(theirs).ok());  // read from the user data
  auto st = agent::hand_over_secret(base, kSecret, fresh, std::chrono::seconds(10));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "unauthorized");
  EXPECT_NE(st.error().message.find("someone who read the bootstrap secret"), std::string::npos) << st.error().message;
  EXPECT_EQ(file_text(), theirs + "\n");  // ADS did not take it over either
}

TEST_F(AgentSecretTest, HandOverWaitsForAnAgentThatIsNotUpYetAndGivesUpAtItsDeadline) {
  std::string url = base;
  server->stop();
  server.reset();
  auto st = agent::hand_over_secret(url, kSecret, fresh, std::chrono::milliseconds(600));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "timeout") << st.error().message;
}

}  // namespace
