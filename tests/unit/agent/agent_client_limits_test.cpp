// Issues 15.4 and 16.8 from ADS's side: a lab machine's root can read its
// agent's config, derive the agent's key and put anything in its place. The
// agent client must stay bounded against it: a hostile "agent" on loopback
// (the real HTTPS server with the derived key) that streams forever, sends
// endless lines or goes silent; and a real agent process frozen with SIGSTOP.
#include <signal.h>

#include <future>

#include "agent_fixture.h"
#include "http/server.h"
#include "http/tls_mbedtls.h"
#include "support/build_paths.h"
#include "support/ports.h"

namespace {
using namespace ads::test::agent_fixture;
using nlohmann::json;

template <class T>
T get_within(std::future<T>& f, std::chrono::seconds guard, const char* what) {
  if (f.wait_for(guard) != std::future_status::ready) {
    ADD_FAILURE() << what << " did not return";
    std::abort();  // the thread still references this frame
  }
  return f.get();
}

// What a lab's root could run in place of the agent: it has the key, so
// ADS's pin accepts it.
class HostileAgent {
 public:
  HostileAgent() : server_(options()) {
    auto forever = [this](const std::string& first, const std::string& piece) {
      return [this, first, piece](ads::http::Request&) {
        ads::http::Response r;
        r.content_type = "application/x-ndjson";
        r.stream = [this, first, piece](ads::http::StreamWriter& w) {
          if (!w.write(first)) return;
          while (!stop_ && w.write(piece)) {
          }
        };
        return r;
      };
    };
    std::string blob(64 * 1024, 'x');
    std::string event = json{{"event", "output"}, {"stream", "stdout"}, {"line", std::string(1000, 'o')}}.dump() + "\n";
    server_.route("GET", "/v1/health", forever("{", blob));
    server_.route("GET", "/v1/backup", forever("", blob));
    server_.route("PUT", "/v1/lab", forever("{", blob));
    server_.route("POST", "/v1/actions/flood", forever("", event));
    server_.route("POST", "/v1/actions/longline", forever(R"({"event":"output","line":")", blob));
    // announces heartbeats, then sends nothing
    server_.route("POST", "/v1/actions/silent", [this](ads::http::Request&) {
      ads::http::Response r;
      r.content_type = "application/x-ndjson";
      r.headers.push_back({ads::agent::kHeaderHeartbeat, "1"});
      r.stream = [this](ads::http::StreamWriter& w) {
        w.write(json{{"event", "command"}, {"command", "sleep"}}.dump() + "\n");
        for (int i = 0; i < 600 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      };
      return r;
    });
    // an agent from before heartbeats: quiet for 4 s, then done
    server_.route("POST", "/v1/actions/older", [this](ads::http::Request&) {
      ads::http::Response r;
      r.content_type = "application/x-ndjson";
      r.stream = [this](ads::http::StreamWriter& w) {
        w.write(json{{"event", "command"}, {"command", "sleep 4"}}.dump() + "\n");
        for (int i = 0; i < 40 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        w.write(json{{"event", "done"}, {"code", 0}}.dump() + "\n");
      };
      return r;
    });
    EXPECT_TRUE(server_.start().ok());
  }
  ~HostileAgent() {
    stop_ = true;
    server_.stop();
  }
  std::string base() const { return "https://127.0.0.1:" + std::to_string(server_.port()); }

 private:
  static ads::http::ServerOptions options() {
    ads::http::ServerOptions o;
    o.host = "127.0.0.1";
    auto id = ads::agent::agent_identity(kSecret);
    EXPECT_TRUE(id.ok());
    o.tls_cert_pem = id->cert_pem;
    o.tls_backend = ads::http::mbedtls_tls;
    o.tls_key_pem = id->key_pem;
    return o;
  }
  std::atomic<bool> stop_{false};
  ads::http::Server server_;
};

TEST(AgentClientLimits, EveryAnswerOfAHostileAgentIsBounded) {
  HostileAgent evil;
  ads::agent::AgentLimits limits;
  limits.action_bytes = 4u << 20;
  limits.line_bytes = 256 * 1024;
  limits.idle_ms = 1500;
  ads::agent::AgentClient c(evil.base(), kSecret, limits);

  auto h = c.health(60000);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, "too_large") << h.error().message;
  EXPECT_NE(h.error().message.find("65536 bytes"), std::string::npos) << h.error().message;

  auto up = c.upload_lab("x");
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.error().code, "too_large") << up.error().message;

  auto b = c.download_backup(8u << 20, 60000);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, "too_large") << b.error().message;
  EXPECT_NE(b.error().message.find("8388608 bytes"), std::string::npos) << b.error().message;

  // an action's stream: lines forever, past the action's total
  size_t lines = 0, bytes = 0;
  auto flood = c.run_action("flood", [&](const std::string&, const std::string& l) {
    ++lines;
    bytes += l.size();
  });
  ASSERT_FALSE(flood.ok());
  EXPECT_EQ(flood.error().code, "too_large") << flood.error().message;
  EXPECT_NE(flood.error().message.find("action flood: the agent sent more than 4194304 bytes"), std::string::npos)
      << flood.error().message;
  EXPECT_GT(lines, 0u);
  EXPECT_LE(bytes, limits.action_bytes);

  // one line that never ends
  lines = 0;
  auto longline = c.run_action("longline", [&](const std::string&, const std::string&) { ++lines; });
  ASSERT_FALSE(longline.ok());
  EXPECT_EQ(longline.error().code, "too_large") << longline.error().message;
  EXPECT_NE(longline.error().message.find("a line longer than 262144 bytes"), std::string::npos)
      << longline.error().message;
  EXPECT_EQ(lines, 0u);

  // a stream that goes silent (no output, no heartbeat)
  std::vector<std::string> said;
  auto silent = c.run_action(
      "silent", [&](const std::string&, const std::string& l) { said.push_back(l); }, 600000);
  ASSERT_FALSE(silent.ok());
  EXPECT_EQ(silent.error().code, "timeout") << silent.error().message;
  EXPECT_NE(silent.error().message.find("went silent for 1.5 s"), std::string::npos) << silent.error().message;
  EXPECT_EQ(said, std::vector<std::string>{"$ sleep"});

  // an agent that announces no heartbeats is held to the action's timeout
  // only: quiet for longer than the idle time, it is not taken for gone
  auto older = c.run_action(
      "older", [](const std::string&, const std::string&) {}, 600000);
  ASSERT_TRUE(older.ok()) << older.error().message;
  EXPECT_EQ(*older, 0);
}

// The real agent binary, idle: its main thread sleeps until a stop signal
// (it used to wake every 100 ms to look at a flag, in every lab), and each
// stop signal it heeds (SIGTERM; SIGPWR, what `lxc stop` sends) ends it at
// once, with exit code 0.
// Writes the real agent's config (loopback, `port`, its directories under
// `dir`, plus `extra`) and returns its path.
std::string agent_config(const fs::path& dir, int port, const json& extra = json::object()) {
  json cfg = {{"secret", kSecret},
              {"host", "127.0.0.1"},
              {"port", port},
              {"lab_dir", (dir / "lab").string()},
              {"backup_dir", (dir / "backup").string()}};
  cfg.update(extra);
  std::ofstream(dir / "agent.json") << cfg.dump();
  return (dir / "agent.json").string();
}

long voluntary_switches(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::atol(line.c_str() + 24);
  return -1;
}

TEST(AgentProcess, AnIdleAgentSleepsUntilAStopSignalEndsIt) {
  for (int sig : {SIGTERM, SIGPWR}) {
    ads::test::TempDir tmp;
    const int port = ads::test::free_loopback_port();
    ASSERT_NE(port, 0) << "no free loopback port";
    ads::test::Child agent({ADS_AGENT_BIN, "--config", agent_config(tmp.path, port)});
    ads::agent::AgentClient c(ads::agent::AgentClient::url_for("127.0.0.1", port), kSecret);
    ASSERT_TRUE(c.wait_ready(std::chrono::seconds(30)).ok());
    long before = voluntary_switches(agent.pid());
    ASSERT_GE(before, 0);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    long after = voluntary_switches(agent.pid());
    EXPECT_LE(after - before, 2) << "the main thread woke " << after - before << " times in 1 s of idleness";
    EXPECT_EQ(agent.kill_now(sig), 0) << "signal " << sig;
  }
}

// Issue 16.8: an agent frozen in the middle of an action (SIGSTOP) left the
// job running until the 30-minute command limit. The real agent binary, as
// pushed into machines, frozen while its command runs: the client says so
// after its idle time.
TEST(AgentProcess, AnAgentFrozenMidActionIsDetectedAfterTheIdleTime) {
  ads::test::TempDir tmp;
  const int port = ads::test::free_loopback_port();
  ASSERT_NE(port, 0) << "no free loopback port";
  ads::test::Child agent(
      {ADS_AGENT_BIN, "--config", agent_config(tmp.path, port, {{"command_timeout_s", 120}, {"heartbeat_s", 1}})});
  ads::agent::AgentLimits limits;
  limits.idle_ms = 3000;
  ads::agent::AgentClient c(ads::agent::AgentClient::url_for("127.0.0.1", port), kSecret, limits);
  auto ready = c.wait_ready(std::chrono::seconds(30));
  ASSERT_TRUE(ready.ok()) << ready.error().message;

  // its source: a directory with ads-lab.json, packed by tar
  fs::path src = tmp.path / "src";
  fs::create_directories(src);
  fs::path pidfile = tmp.path / "cmd.pid";
  std::ofstream(src / "ads-lab.json") << json{
      {"ads", 2},
      {"os", {{"name", "debian"}, {"version", "12"}}},
      {"install", {"echo $$ > " + pidfile.string() + "; echo started; sleep 5; echo quiet-but-alive; exec sleep 60"}},
      {"actions", {{"start", {"true"}}}}}.dump();
  std::string out;
  ASSERT_EQ(ads::test::run({"tar", "-czf", (tmp.path / "lab.tgz").string(), "-C", src.string(), "."}, &out), 0) << out;
  std::ifstream in(tmp.path / "lab.tgz", std::ios::binary);
  ASSERT_TRUE(c.upload_lab(std::string((std::istreambuf_iterator<char>(in)), {})).ok());

  // quiet for 5 s (more than the 3 s idle time): heartbeats keep it going;
  // then the agent is frozen
  std::vector<std::string> said;
  auto run = std::async(std::launch::async, [&] {
    return c.run_action("install", [&](const std::string&, const std::string& l) {
      said.push_back(l);
      if (l == "quiet-but-alive") ::kill(agent.pid(), SIGSTOP);
    });
  });
  auto rc = get_within(run, std::chrono::seconds(120), "the action of a frozen agent");
  ::kill(agent.pid(), SIGCONT);
  pid_t cmd = 0;
  std::ifstream(pidfile) >> cmd;
  if (cmd > 0) ::kill(-cmd, SIGKILL);  // the command's group, started by this test's agent
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.error().code, "timeout") << rc.error().message;
  EXPECT_NE(rc.error().message.find("went silent for 3 s"), std::string::npos) << rc.error().message;
  EXPECT_NE(std::find(said.begin(), said.end(), "quiet-but-alive"), said.end());
}

}  // namespace
