// Job control on real LXD containers through a real `ads serve` (issues
// 14.4 and 16.7): cancel of a hung install, destroy of a deployment whose
// job is under way, and SIGTERM of the server in the middle of an action.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using namespace ads::test;

class JobControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ads::LxdProvider p({});
    if (!p.ping()) GTEST_FAIL() << "LXD is not running: run scripts/lxd-host.sh first";
    // a lab whose install hangs (as a lab waiting on something that never comes)
    lab = tmp.path / "hung";
    fs::create_directories(lab);
    std::ofstream(lab / "ads-lab.json") << R"({"ads":2,"os":{"name":"debian","version":"12"},
      "install":["echo installing","sleep 100000"],"actions":{"start":["true"]}})";
  }
  std::string deploy(Server& s) {
    json req = {{"source", lab.string()}, {"name", "hung"}};
    json d = s.call("POST", "/api/v1/deployments", &req);
    std::string id = d.value("id", "");
    guard.ids.insert(id);
    return id;
  }
  // Waits (bounded) until the hung command runs in the machine.
  void wait_for_hang(Server& s, const std::string& id) {
    s.wait_for(id, {"installing", "failed"}, 180);
    for (int i = 0; i < 600 && s.log_text(id).find("$ sleep 100000") == std::string::npos; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_NE(s.log_text(id).find("$ sleep 100000"), std::string::npos) << s.log_text(id);
  }
  // Processes in the container whose command line is `sleep 100000`.
  int sleeps_in(const std::string& machine) {
    std::string out;
    if (run({"lxc", "exec", machine, "--", "sh", "-c",
             "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done"},
            &out) != 0)
      return -1;
    int n = 0;
    for (size_t at = out.find("sleep 100000"); at != std::string::npos; at = out.find("sleep 100000", at + 1)) ++n;
    return n;
  }
  TempDir tmp;
  fs::path lab;
  ContainerGuard guard;
};

TEST_F(JobControlTest, CancelOfAHungInstallKillsItAndRollsTheDeploymentBack) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s);
  wait_for_hang(s, id);
  ASSERT_GE(sleeps_in("ads-" + id), 1);
  std::string job = s.call("GET", "/api/v1/deployments/" + id + "/jobs")["jobs"][0]["id"];
  long status = 0;
  json c = s.call("POST", "/api/v1/jobs/" + job + "/cancel", nullptr, &status);
  ASSERT_EQ(status, 202) << c.dump();
  json j = s.wait_job(job, 120);
  EXPECT_EQ(j["state"], "cancelled") << j.dump() << s.log_text(id);
  json d = s.wait_for(id, {"failed"}, 60);
  EXPECT_EQ(d["failed_step"], "installing");
  EXPECT_NE(d["error"].get<std::string>().find("cancelled"), std::string::npos) << d.dump();
  EXPECT_EQ(d["machine"], "");
  EXPECT_EQ(lxd()->inspect("ads-" + id).error().code, "not_found");
  std::string log = s.log_text(id);
  // the agent killed the command in the machine before the machine went
  EXPECT_NE(log.find("cancel: the agent stopped the command it was running"), std::string::npos) << log;
  EXPECT_NE(log.find("removed machine ads-" + id), std::string::npos) << log;
  // a second cancel: the job has ended
  s.call("POST", "/api/v1/jobs/" + job + "/cancel", nullptr, &status);
  EXPECT_EQ(status, 409);
}

TEST_F(JobControlTest, DestroyCancelsTheJobUnderWayFirst) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s);
  wait_for_hang(s, id);
  long status = 0;
  json r = s.call("DELETE", "/api/v1/deployments/" + id, nullptr, &status);
  ASSERT_EQ(status, 202) << r.dump();
  json d = s.wait_for(id, {"destroyed"}, 180);
  EXPECT_EQ(d["state"], "destroyed") << s.log_text(id);
  json jobs = s.call("GET", "/api/v1/deployments/" + id + "/jobs")["jobs"];
  ASSERT_EQ(jobs.size(), 2u) << jobs.dump();
  EXPECT_EQ(jobs[0]["kind"], "deploy");
  EXPECT_EQ(jobs[0]["state"], "cancelled");
  EXPECT_EQ(jobs[1]["kind"], "destroy");
  EXPECT_EQ(jobs[1]["state"], "succeeded");
  EXPECT_EQ(lxd()->inspect("ads-" + id).error().code, "not_found");
}

// SIGTERM while the lab's install runs: ads serve exits cleanly at once (not
// after the command, which would run for days; Child::kill_now gives it 10 s
// before SIGKILL), the job is handed back, and the next start deals with it
// by its rules (here deploy_attempts 1: rolled back, nothing left behind).
TEST_F(JobControlTest, SigtermMidActionStopsAtOnceAndTheNextStartRollsTheJobBack) {
  std::string data = (tmp.path / "data").string();
  std::string config = (tmp.path / "ads.json").string();
  std::ofstream(config) << R"({"deploy_attempts":1})";
  std::string id;
  {
    Server s(data, ADS_AGENT_BIN, {}, "2", config);
    id = deploy(s);
    wait_for_hang(s, id);
    EXPECT_EQ(s.kill(SIGTERM), 0) << "ads serve did not exit cleanly after SIGTERM";
  }
  Server s2(data, ADS_AGENT_BIN, {}, "2", config);
  json d = s2.wait_for(id, {"failed"}, 120);
  EXPECT_EQ(d["failed_step"], "installing");
  EXPECT_NE(d["error"].get<std::string>().find("interrupted: ads serve stopped during deploy (installing)"),
            std::string::npos)
      << d.dump();
  EXPECT_EQ(d["machine"], "");
  EXPECT_EQ(lxd()->inspect("ads-" + id).error().code, "not_found");
  json jobs = s2.call("GET", "/api/v1/deployments/" + id + "/jobs")["jobs"];
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["state"], "failed");
}

}  // namespace
