// The agent's SSH door for ADS's Ansible controller (agent/ssh_access.h),
// with this host's real sshd and ssh: the run's key gets in, and only it,
// only while the door is open (DELETE, its time to live, an agent restart
// close it); the host key the agent answers is the one sshd proves; bad
// requests are refused with the field they got wrong.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "agent_fixture.h"
#include "support/ports.h"

namespace {
using namespace ads::test::agent_fixture;
using nlohmann::json;

class SshAccessTest : public AgentTest {
 protected:
  void SetUp() override {
    if (access("/usr/sbin/sshd", X_OK) != 0 || access("/usr/bin/ssh", X_OK) != 0)
      GTEST_FAIL() << "sshd or ssh is missing: run scripts/install-deps.sh (openssh-server, openssh-client)";
    AgentTest::SetUp();
    // sshd's StrictModes refuses an authorized keys file below a world-writable
    // directory such as /tmp: the door's directory is under /run
    dir = "/run/ads-unit-ssh-" + std::to_string(getpid());
    fs::remove_all(dir);
    fs::create_directories(dir);
    port = ads::test::free_loopback_port();
    ASSERT_GT(port, 0);
    restart_agent([&](ads::agent::AgentConfig& c) { door(c); });
    key = make_key("run");
  }
  void TearDown() override {
    if (server) server->stop();
    server.reset();  // closes the door
    fs::remove_all(dir);
  }
  void door(ads::agent::AgentConfig& c) {
    c.ssh.dir = dir + "/agent";
    c.ssh.listen = "127.0.0.1";
    c.ssh.port = port;
  }
  // A key pair made like the engine makes one; its public line.
  std::string make_key(const std::string& name) {
    std::string path = dir + "/" + name;
    std::string out;
    EXPECT_EQ(ads::test::run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ads-test", "-f", path}, &out), 0)
        << out;
    std::ifstream in(path + ".pub");
    std::string line;
    std::getline(in, line);
    return line;
  }
  // ssh as root to the door with key `name`, trusting only `host_key`.
  int ssh(const std::string& name, const std::string& host_key, const std::string& command, std::string* out) {
    std::ofstream(dir + "/known_hosts", std::ios::trunc) << "[127.0.0.1]:" << port << " " << host_key << "\n";
    return ads::test::run({"ssh",
                           "-i",
                           dir + "/" + name,
                           "-p",
                           std::to_string(port),
                           "-F",
                           "/dev/null",
                           "-o",
                           "UserKnownHostsFile=" + dir + "/known_hosts",
                           "-o",
                           "GlobalKnownHostsFile=/dev/null",
                           "-o",
                           "StrictHostKeyChecking=yes",
                           "-o",
                           "BatchMode=yes",
                           "-o",
                           "IdentitiesOnly=yes",
                           "-o",
                           "ConnectTimeout=5",
                           "root@127.0.0.1",
                           command},
                          out);
  }
  std::string dir;
  int port = 0;
  std::string key;
};

TEST_F(SshAccessTest, TheRunsKeyGetsInUntilTheDoorCloses) {
  ads::agent::AgentClient c(base, kSecret);
  auto g = c.open_ssh(key, 300);
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->port, port);
  // the host key is the machine's own, made by the agent on first use
  std::ifstream pub(dir + "/agent/host_ed25519_key.pub");
  std::string type, blob;
  pub >> type >> blob;
  EXPECT_EQ(g->host_key, type + " " + blob);
  std::string out;
  ASSERT_EQ(ssh("run", g->host_key, "echo inside", &out), 0) << out;
  EXPECT_NE(out.find("inside"), std::string::npos) << out;

  ASSERT_TRUE(c.close_ssh().ok());
  EXPECT_FALSE(fs::exists(dir + "/agent/authorized_keys"));
  EXPECT_NE(ssh("run", g->host_key, "echo inside", &out), 0) << out;
  EXPECT_EQ(ads::test::try_bind_loopback(port), port) << "sshd still listens";
  // closing what is closed is fine
  EXPECT_TRUE(c.close_ssh().ok());
}

TEST_F(SshAccessTest, ClosingTheDoorEndsTheSessionsStillOpen) {
  // sshd makes each connection a session of its own: a signal to sshd alone
  // would leave it running with the key already out
  ads::agent::AgentClient c(base, kSecret);
  auto g = c.open_ssh(key, 300);
  ASSERT_TRUE(g.ok()) << g.error().message;
  auto session = std::async(std::launch::async, [&] {
    std::string out;
    ssh("run", g->host_key, "echo started; sleep 30; echo survived", &out);
    return out;
  });
  // the session is in once its command runs
  bool in = false;
  for (int i = 0; i < 100 && !in; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::string ps;
    ads::test::run({"pgrep", "-f", "sleep 30; echo survived"}, &ps);
    in = !ps.empty();
  }
  ASSERT_TRUE(in) << "the session never started";
  ASSERT_TRUE(c.close_ssh().ok());
  ASSERT_EQ(session.wait_for(std::chrono::seconds(15)), std::future_status::ready) << "the session outlived the door";
  std::string out = session.get();
  EXPECT_EQ(out.find("survived"), std::string::npos) << out;
}

TEST_F(SshAccessTest, AnotherProgramOnTheDoorsPortIsNotTakenForTheDoor) {
  // a lab's own listener on the port: the door says so instead of answering a host key it cannot serve
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ads::agent::AgentClient c(base, kSecret);
  auto g = c.open_ssh(key, 60);
  ::close(fd);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message.find("sshd"), std::string::npos) << g.error().message;
  EXPECT_FALSE(fs::exists(dir + "/agent/authorized_keys"));
}

TEST_F(SshAccessTest, AnotherKeyIsNotLetInAndAnotherHostKeyIsNotTrusted) {
  ads::agent::AgentClient c(base, kSecret);
  auto g = c.open_ssh(key, 300);
  ASSERT_TRUE(g.ok()) << g.error().message;
  make_key("intruder");
  std::string out;
  EXPECT_NE(ssh("intruder", g->host_key, "echo inside", &out), 0) << out;
  EXPECT_NE(out.find("Permission denied"), std::string::npos) << out;
  // a client that trusts some other host key refuses the machine
  std::string other = make_key("other-host");
  EXPECT_NE(ssh("run", other.substr(0, other.rfind(' ')), "echo inside", &out), 0) << out;
  EXPECT_NE(out.find("Host key verification failed"), std::string::npos) << out;
  // the host key stays the machine's from one run to the next
  ASSERT_TRUE(c.close_ssh().ok());
  auto again = c.open_ssh(key, 300);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->host_key, g->host_key);
}

TEST_F(SshAccessTest, TheDoorClosesWhenItsTimeToLiveRunsOut) {
  ads::agent::AgentClient c(base, kSecret);
  auto g = c.open_ssh(key, 1);
  ASSERT_TRUE(g.ok()) << g.error().message;
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {  // 1 s, then sshd's stop: well under 10 s
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    closed = !fs::exists(dir + "/agent/authorized_keys") && ads::test::try_bind_loopback(port) == port;
  }
  EXPECT_TRUE(closed);
  std::string out;
  EXPECT_NE(ssh("run", g->host_key, "true", &out), 0) << out;
}

TEST_F(SshAccessTest, AnAgentStartTakesOutAKeyAKilledAgentLeft) {
  fs::create_directories(dir + "/agent");
  std::ofstream(dir + "/agent/authorized_keys") << "restrict " << key << "\n";
  restart_agent([&](ads::agent::AgentConfig& c) { door(c); });
  EXPECT_FALSE(fs::exists(dir + "/agent/authorized_keys"));
}

TEST_F(SshAccessTest, BadRequestsAreRefusedWithTheFieldAndNothingOpens) {
  ads::agent::AgentClient c(base, kSecret);
  std::string blob = key.substr(12, key.find(' ', 12) - 12);
  struct Bad {
    std::string key;
    int ttl;
    std::string field;
  };
  for (const Bad& b : std::vector<Bad>{{"command=\"id\" " + key, 60, "public_key"},
                                       {key + "\nssh-ed25519 " + blob, 60, "public_key"},
                                       {"ssh-rsa " + blob, 60, "public_key"},
                                       {"", 60, "public_key"},
                                       {key, 0, "ttl_s"},
                                       {key, 691201, "ttl_s"}}) {
    auto g = c.open_ssh(b.key, b.ttl);
    ASSERT_FALSE(g.ok()) << b.key;
    EXPECT_EQ(g.error().code, "invalid") << b.key;
    EXPECT_EQ(g.error().field, b.field) << b.key;
  }
  // bodies the client would never send
  auto head = [&](const std::string& body) {
    return ads::agent::signed_headers(kSecret, "POST", "/v1/ssh", body, now_s());
  };
  for (const std::string& body :
       {std::string("[]"), std::string("{\"public_key\": 5, \"ttl_s\": 5}"), "{\"public_key\": \"" + key + "\"}",
        "{\"public_key\": \"" + key + "\", \"ttl_s\": 1.5}", std::string("not json")}) {
    auto h = head(body);
    h.push_back({"content-type", "application/json"});
    EXPECT_EQ(raw_status("POST", "/v1/ssh", h, body), 400) << body;
  }
  EXPECT_FALSE(fs::exists(dir + "/agent/authorized_keys"));
  EXPECT_EQ(ads::test::try_bind_loopback(port), port);
}

TEST_F(SshAccessTest, AMachineWithoutSshdSaysWhatItLacks) {
  restart_agent([&](ads::agent::AgentConfig& c) {
    door(c);
    c.ssh.sshd = dir + "/no-sshd-here";
  });
  ads::agent::AgentClient c(base, kSecret);
  auto g = c.open_ssh(key, 60);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, "conflict");
  EXPECT_NE(g.error().message.find("openssh-server is not installed in this machine"), std::string::npos)
      << g.error().message;
  EXPECT_NE(g.error().message.find("\"mode\": \"local\""), std::string::npos) << g.error().message;
}

}  // namespace
