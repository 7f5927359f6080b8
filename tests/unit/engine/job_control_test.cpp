// Job control at the engine (issues 14.4, 16.7) against a real agent on
// loopback (the agent's own server, HTTPS with the derived key) running a
// lab's hung command as a real process on this machine, and a real SQLite
// store. No container: the jobs here (test) talk to the agent only, and the
// LXD provider points at a socket where no LXD listens.
//   - cancel of a running job kills its command and ends it "cancelled",
//     the deployment left as the job's rules say (a test: still running);
//   - a stopping engine leaves an agent's action at once (the action goes on
//     in the machine) and hands the job back; the next engine takes it up,
//     and a cancel then reaches the command the stopped engine left behind;
//   - a spec asking a longer command timeout than the operator allows fails
//     the deploy at validation, naming the field and the maximum.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "agent/client.h"
#include "agent/server.h"
#include "engine/engine.h"
#include "providers/provider.h"
#include "support/engine_wait.h"
#include "support/process.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kSecret(64, 'c');

// Processes of this machine whose command line holds `needle`.
std::vector<pid_t> pids_with(const std::string& needle) {
  std::vector<pid_t> out;
  for (auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(in)), {});
    for (auto& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find(needle) != std::string::npos) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}
int processes_with(const std::string& needle) { return static_cast<int>(pids_with(needle).size()); }

class EngineJobControl : public ::testing::Test {
 protected:
  void SetUp() override {
    // a sleep no other test runs: its argument is random
    std::random_device rd;
    marker = "sleep " + std::to_string(200000 + rd() % 700000);
    ads::agent::AgentConfig cfg;
    cfg.secret = kSecret;
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.lab_dir = (tmp.path / "lab").string();
    cfg.backup_dir = (tmp.path / "backup").string();
    cfg.command_timeout_s = 600;
    cfg.heartbeat_s = 1;
    cfg.kill_grace_s = 1;
    agent = std::make_unique<ads::agent::AgentServer>(cfg);
    ASSERT_TRUE(agent->start().ok());
    spec =
        R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"start":["true"],"test":[")" + marker + R"("]}})";
    fs::create_directories(tmp.path / "src");
    std::ofstream(tmp.path / "src" / "ads-lab.json") << spec;
    std::string out;
    ASSERT_EQ(
        ads::test::run({"tar", "-czf", (tmp.path / "lab.tgz").string(), "-C", (tmp.path / "src").string(), "."}, &out),
        0)
        << out;
    std::ifstream in(tmp.path / "lab.tgz", std::ios::binary);
    std::string tgz((std::istreambuf_iterator<char>(in)), {});
    ads::agent::AgentClient c(ads::agent::AgentClient::url_for("127.0.0.1", agent->port()), kSecret);
    auto up = c.upload_lab(tgz);
    ASSERT_TRUE(up.ok()) << up.error().message;

    auto st = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(st.ok()) << st.error().message;
    store = std::move(st.value());
    d = ads::test::lab_record("01m88rqkev9cbfs1eqysk664kc", ads::State::kRunning, "lxd");
    d.address = "127.0.0.1";
    d.secret = kSecret;
    d.owner = "ann";
    d.spec_json = json{{"path", "ads-lab.json"}, {"text", spec}}.dump();
    ASSERT_TRUE(store->create(d).ok());
  }
  void TearDown() override {
    if (agent) agent->stop();
    // a test that failed may leave its own hung command (the random marker): end it by its pid
    for (pid_t p : pids_with(marker)) ::kill(p, SIGKILL);
  }

  std::unique_ptr<ads::Engine> engine(const ads::EngineOptions& o = {}) {
    std::map<std::string, std::unique_ptr<ads::Provider>> providers;
    auto lxd = ads::make_provider("lxd", json{{"socket", (tmp.path / "no-lxd.sock").string()}});
    EXPECT_TRUE(lxd.ok());
    providers["lxd"] = std::move(lxd.value());
    auto opts = ads::test::engine_options(tmp.path);
    opts.agent_port = agent->port();
    opts.cancel_poll = std::chrono::milliseconds(100);
    opts.poll = std::chrono::milliseconds(100);
    opts.action_timeout_ms = o.action_timeout_ms;
    return std::make_unique<ads::Engine>(*store, std::move(providers), opts);
  }
  // Waits (bounded) until the hung command runs on the agent's machine.
  void wait_for_command() {
    for (int i = 0; i < 600 && processes_with(marker) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_GE(processes_with(marker), 1) << ads::test::log_of(*store, d.id);
  }
  ads::Job job_now(const std::string& id) { return store->get_job(id).value(); }

  ads::test::TempDir tmp;
  std::unique_ptr<ads::agent::AgentServer> agent;
  std::unique_ptr<ads::Store> store;
  std::string marker, spec;
  ads::Deployment d;
};

TEST_F(EngineJobControl, CancelKillsTheRunningCommandAndEndsTheJobCancelled) {
  auto e = engine();
  ASSERT_TRUE(e->start().ok());
  auto job = e->operate(d.id, "test");
  ASSERT_TRUE(job.ok()) << job.error().message;
  wait_for_command();
  auto c = e->cancel(job->id, "asked by ann");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->state, "running");
  auto after = ads::test::settle(*store, d.id);
  auto j = job_now(job->id);
  EXPECT_EQ(j.state, "cancelled") << ads::test::log_of(*store, d.id);
  EXPECT_EQ(after.state, ads::State::kRunning);  // a test's rules: the deployment keeps its state
  EXPECT_EQ(processes_with(marker), 0) << "the command still runs in the machine";
  // the agent's answer to the cancel comes once the command has ended, which
  // the job's own stream may report first: wait (bounded) for its log line
  std::string log;
  for (int i = 0; i < 200; ++i) {
    log = ads::test::log_of(*store, d.id);
    if (log.find("cancel: the agent stopped the command it was running") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(log.find("cancel: the agent stopped the command it was running"), std::string::npos) << log;
  EXPECT_NE(log.find("test job " + job->id + " cancelled"), std::string::npos) << log;
  // ended: a second cancel is refused, and the agent takes new work
  auto again = e->cancel(job->id, "x");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "conflict");
}

TEST_F(EngineJobControl, AStoppingEngineHandsTheJobBackAndTheNextTakesItUp) {
  std::string job_id;
  {
    auto e = engine();
    ASSERT_TRUE(e->start().ok());
    auto job = e->operate(d.id, "test");
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_id = job->id;
    wait_for_command();
    // returns although the command would run for days: the stream is left
    e->stop();
    auto j = job_now(job_id);
    EXPECT_EQ(j.state, "running");         // handed back, not failed
    EXPECT_EQ(j.lease_expires_ms, 0);      // free for the next start at once
    EXPECT_GE(processes_with(marker), 1);  // the action goes on in the machine
  }
  auto e2 = engine();
  ASSERT_TRUE(e2->start().ok());
  // the test job is resumable: the next engine runs it again, waiting while the agent is busy
  std::string log;
  for (int i = 0; i < 600; ++i) {
    log = ads::test::log_of(*store, d.id);
    if (log.find("the agent is busy") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(log.find("resuming test job " + job_id + " after a restart"), std::string::npos) << log;
  ASSERT_NE(log.find("the agent is busy"), std::string::npos) << log;
  // a cancel now reaches the command the stopped engine left behind
  ASSERT_TRUE(e2->cancel(job_id, "asked by ann").ok());
  ads::test::settle(*store, d.id);
  EXPECT_EQ(job_now(job_id).state, "cancelled") << ads::test::log_of(*store, d.id);
  EXPECT_EQ(processes_with(marker), 0);
}

TEST_F(EngineJobControl, ASpecAskingMoreThanTheOperatorsMaximumFailsAtValidation) {
  ads::EngineOptions o;
  o.action_timeout_ms = 120000;
  auto e = engine(o);
  ASSERT_TRUE(e->start().ok());
  auto make_lab = [&](const std::string& dir, const std::string& timeouts) {
    fs::create_directories(tmp.path / dir);
    std::ofstream(tmp.path / dir / "ads-lab.json")
        << R"({"ads":2,"os":{"name":"debian","version":"12"},"install":["true"],"actions":{"start":["true"]},"timeouts":)" +
               timeouts + "}";
    return (tmp.path / dir).string();
  };
  ads::DeployRequest over;
  over.source = make_lab("over", R"({"start":"1m","install":"3m"})");
  over.owner = "ann";
  over.admin = true;
  auto dep = e->submit(over);
  ASSERT_TRUE(dep.ok()) << dep.error().message;
  auto failed = ads::test::settle(*store, dep->id);
  EXPECT_EQ(failed.state, ads::State::kFailed);
  EXPECT_EQ(failed.failed_step, "validating");
  EXPECT_NE(failed.error.find("timeouts.install asks 180 s"), std::string::npos) << failed.error;
  EXPECT_NE(failed.error.find("at most 120 s"), std::string::npos) << failed.error;
  // at the maximum: validation passes (it fails later, at provisioning: no LXD here)
  ads::DeployRequest at;
  at.source = make_lab("at", R"({"install":"2m"})");
  at.owner = "ann";
  at.admin = true;
  auto ok = e->submit(at);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  auto later = ads::test::settle(*store, ok->id);
  EXPECT_EQ(later.state, ads::State::kFailed);
  EXPECT_EQ(later.failed_step, "provisioning") << later.error;
}

}  // namespace
