// Life-cycle jobs on real LXD containers through a real `ads serve`: stop,
// start, restart, test, backup, restore (in place and into a new machine),
// destroy; crash recovery; concurrency; idempotency; events; the reconciler.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <set>
#include <thread>

#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using namespace ads::test;

class LifecycleTest : public LxdServerTest {
 protected:
  std::string notes(const json& d) { return http_get(d["url"].get<std::string>() + "cgi-bin/list"); }
  void add_note(const json& d, const std::string& note) {
    EXPECT_NE(http_get(d["url"].get<std::string>() + "cgi-bin/add?" + note).find("added"), std::string::npos);
  }
  // Snapshot names of an LXD instance, asked of LXD itself.
  std::set<std::string> lxd_snapshots(const std::string& name) {
    ads::http::ClientRequest r;
    r.unix_socket = "/var/lib/lxd/unix.socket";
    r.url = "http://lxd/1.0/instances/" + name + "/snapshots";
    auto res = ads::http::request(r);
    std::set<std::string> out;
    EXPECT_TRUE(res.ok() && res->status == 200) << (res.ok() ? res->body : res.error().message);
    if (!res.ok()) return out;
    for (auto& url : json::parse(res->body, nullptr, false).value("metadata", json::array()))
      out.insert(url.get<std::string>().substr(url.get<std::string>().rfind('/') + 1));
    return out;
  }
};

TEST_F(LifecycleTest, StopStartRestartTestBackupRestoreDestroyAndRestoreIntoANewMachine) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s, kSource + "/examples/labs/notes-lab");
  json d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  add_note(d, "alpha");

  // backup: the lab's data plus an LXD snapshot, listed with time, size and checksum
  json job = op(s, id, "backup");
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  std::string backup = job["result"]["backup"];
  json backups = s.call("GET", "/api/v1/deployments/" + id + "/backups")["backups"];
  ASSERT_EQ(backups.size(), 1u);
  EXPECT_EQ(backups[0]["id"], backup);
  EXPECT_GT(backups[0]["size_bytes"].get<long long>(), 0);
  EXPECT_EQ(backups[0]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(backups[0]["snapshot"], "backup-" + backup);
  EXPECT_FALSE(backups[0]["created_at"].get<std::string>().empty());

  add_note(d, "beta");
  EXPECT_EQ(notes(d), "alpha\nbeta\n");
  json restore_req = {{"backup", backup}};
  job = op(s, id, "restore", &restore_req);
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(notes(d), "alpha\n");  // the data came back as it was at the backup

  // stop: the lab no longer answers, the container is stopped
  job = op(s, id, "stop");
  ASSERT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_EQ(s.call("GET", "/api/v1/deployments/" + id)["state"], "stopped");
  EXPECT_EQ(lxd()->inspect("ads-" + id)->status, "Stopped");
  EXPECT_EQ(http_get(d["url"]), "");
  // the lab's own stop action ran cleanly before the machine stopped (a
  // missing command would only show in the log: the example used to call
  // busybox pkill, which this image's busybox lacks)
  std::string log = s.log_text(id);
  EXPECT_EQ(log.find("stop action failed"), std::string::npos) << log;
  EXPECT_EQ(log.find("applet not found"), std::string::npos) << log;
  EXPECT_EQ(log.find("command not found"), std::string::npos) << log;
  EXPECT_NE(log.find("$ busybox start-stop-daemon -K"), std::string::npos) << log;
  // a backup needs a running lab
  long status = 0;
  s.call("POST", "/api/v1/deployments/" + id + "/backup", nullptr, &status);
  EXPECT_EQ(status, 409);

  job = op(s, id, "start");
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  d = s.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(d["state"], "running");
  EXPECT_EQ(notes(d), "alpha\n");  // data survives a stop and start

  job = op(s, id, "restart");
  ASSERT_EQ(job["state"], "succeeded") << job.dump();
  job = op(s, id, "test");
  ASSERT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_EQ(job["result"]["passed"], true);
  EXPECT_EQ(job["result"]["http_ok"], true);
  EXPECT_EQ(job["result"]["test_exit_code"], 0);

  // destroy, then restore the backup into a new machine
  status = 0;
  s.call("DELETE", "/api/v1/deployments/" + id, nullptr, &status);
  EXPECT_EQ(status, 202);
  EXPECT_EQ(s.wait_for(id, {"destroyed", "failed"}, 60)["state"], "destroyed");
  EXPECT_EQ(lxd()->inspect("ads-" + id).error().code, "not_found");
  job = op(s, id, "restore", &restore_req);
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  d = s.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(d["state"], "running");
  EXPECT_EQ(notes(d), "alpha\n");

  // deleting backups: the first one's snapshot went with the destroyed
  // machine; a new one's LXD snapshot goes with it
  job = op(s, id, "backup");
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  std::string second = job["result"]["backup"];
  EXPECT_EQ(lxd_snapshots("ads-" + id), (std::set<std::string>{"backup-" + second}));
  for (const std::string& b : {backup, second}) {
    status = 0;
    json del = s.call("DELETE", "/api/v1/deployments/" + id + "/backups/" + b, nullptr, &status);
    ASSERT_EQ(status, 202) << del.dump();
    job = s.wait_job(del["id"]);
    ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  }
  EXPECT_TRUE(lxd_snapshots("ads-" + id).empty());
  EXPECT_TRUE(s.call("GET", "/api/v1/deployments/" + id + "/backups")["backups"].empty());
  EXPECT_FALSE(fs::exists(tmp.path / "data" / "backups" / id / (second + ".tar.gz")));
  EXPECT_EQ(notes(d), "alpha\n");  // the lab itself is untouched

  json jobs = s.call("GET", "/api/v1/deployments/" + id + "/jobs")["jobs"];
  std::vector<std::string> kinds;
  for (auto& j : jobs) kinds.push_back(j["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"deploy", "backup", "restore", "stop", "start", "restart", "test",
                                             "destroy", "restore", "backup", "delete-backup", "delete-backup"}));
}

TEST_F(LifecycleTest, OperationsRefuseBadRequestsWithClearErrors) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s, kSource + "/examples/labs/static-site");
  long status = 0;
  // while the deploy job is under way, another job is refused
  json r = s.call("POST", "/api/v1/deployments/" + id + "/stop", nullptr, &status);
  EXPECT_EQ(status, 409) << r.dump();
  ASSERT_EQ(s.wait_for(id, {"running", "failed"})["state"], "running");
  r = s.call("POST", "/api/v1/deployments/" + id + "/frobnicate", nullptr, &status);
  EXPECT_EQ(status, 404);
  json bad = {{"backup", "01zzzzzzzzzzzzzzzzzzzzzzzz"}};
  r = s.call("POST", "/api/v1/deployments/" + id + "/restore", &bad, &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(r["error"]["field"], "backup");
  json none = json::object();
  r = s.call("POST", "/api/v1/deployments/" + id + "/restore", &none, &status);
  EXPECT_EQ(status, 400);
  json extra = {{"force", true}};
  r = s.call("POST", "/api/v1/deployments/" + id + "/stop", &extra, &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(r["error"]["field"], "force");
  // the static lab has no backup action: the backup is the snapshot, with an empty data archive
  json job = op(s, id, "backup");
  EXPECT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_NE(s.log_text(id).find("the lab has no backup action"), std::string::npos);
  std::string backup = job["result"]["backup"];
  // once the machine is destroyed, that backup cannot come back: no restore
  // action, and the LXD snapshot went with the container. Refused up front,
  // not after a new machine was made for nothing.
  s.call("DELETE", "/api/v1/deployments/" + id, nullptr, &status);
  ASSERT_EQ(s.wait_for(id, {"destroyed", "failed"}, 60)["state"], "destroyed");
  json pick = {{"backup", backup}};
  r = s.call("POST", "/api/v1/deployments/" + id + "/restore", &pick, &status);
  EXPECT_EQ(status, 409) << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find(
                "cannot be restored into a new machine: the lab has no restore action and its lxd snapshot went with "
                "the destroyed machine"),
            std::string::npos)
      << r.dump();
  EXPECT_EQ(s.call("GET", "/api/v1/deployments/" + id)["state"], "destroyed");
  // it can still be deleted (the snapshot is gone already: nothing to do there)
  r = s.call("DELETE", "/api/v1/deployments/" + id + "/backups/" + backup, nullptr, &status);
  ASSERT_EQ(status, 202) << r.dump();
  EXPECT_EQ(s.wait_job(r["id"])["state"], "succeeded") << s.log_text(id);
  EXPECT_TRUE(s.call("GET", "/api/v1/deployments/" + id + "/backups")["backups"].empty());
}

// `ads serve` killed mid-install: the next start removes the container and
// deploys again from the start (a fresh container: the lab's install finds
// no trace of the first run); killed mid-install again, the next start rolls
// the deployment back (deploy_attempts 2) and leaves nothing half-made.
TEST_F(LifecycleTest, ServerKilledMidDeploymentDeploysAgainThenRollsBackTheSecondTime) {
  fs::path lab = tmp.path / "slow";
  fs::create_directories(lab);
  // prints "reused" (spelled so that the echoed command does not contain it)
  // if /root/ran is left from an earlier run in the same container
  std::ofstream(lab / "ads-lab.json") << R"({"ads":2,"os":{"name":"debian","version":"12"},
    "install":["echo installing","if test -e /root/ran; then printf 'reu%s\\n' sed; fi; touch /root/ran","sleep 60"],
    "actions":{"start":["true"]}})";
  std::string data = (tmp.path / "data").string();
  std::string id;
  auto sleeps = [](const std::string& log) {
    size_t n = 0;
    for (size_t at = log.find("$ sleep 60"); at != std::string::npos; at = log.find("$ sleep 60", at + 1)) ++n;
    return n;
  };
  {
    Server s(data);
    id = deploy(s, lab.string(), "slow");
    s.wait_for(id, {"installing", "failed"}, 120);
    ASSERT_EQ(lxd()->inspect("ads-" + id)->status, "Running");
    for (int i = 0; i < 600 && sleeps(s.log_text(id)) < 1; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(sleeps(s.log_text(id)), 1u) << s.log_text(id);
    s.kill(SIGKILL);
  }
  {
    Server s2(data);
    // recovered before serving: the deploy is under way again
    for (int i = 0; i < 1800 && sleeps(s2.log_text(id)) < 2; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::string log = s2.log_text(id);
    ASSERT_EQ(sleeps(log), 2u) << log;
    EXPECT_NE(log.find("removing what it made and deploying again from the start (run 2 of at most 2)"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("removed machine ads-" + id), std::string::npos) << log;
    EXPECT_EQ(log.find("reused"), std::string::npos) << "the second run found the first run's container\n" << log;
    EXPECT_EQ(s2.call("GET", "/api/v1/deployments/" + id)["state"], "installing");
    s2.kill(SIGKILL);
  }
  Server s3(data);
  json d = s3.wait_for(id, {"failed"}, 60);
  EXPECT_EQ(d["failed_step"], "installing");
  EXPECT_NE(d["error"].get<std::string>().find("interrupted"), std::string::npos) << d.dump();
  EXPECT_EQ(d["machine"], "");
  EXPECT_EQ(lxd()->inspect("ads-" + id).error().code, "not_found");
  json jobs = s3.call("GET", "/api/v1/deployments/" + id + "/jobs")["jobs"];
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["state"], "failed");
  EXPECT_EQ(jobs[0]["attempts"], 2);
  // the reconciler finds nothing out of place
  json doctor = s3.call("GET", "/api/v1/doctor");
  for (auto& p : doctor["problems"]) EXPECT_NE(p["deployment"], id) << p.dump();
}

TEST_F(LifecycleTest, ServerKilledWithQueuedWorkResumesIt) {
  std::string data = (tmp.path / "data").string();
  std::string id;
  {
    // no worker can take the job before the kill: the deployment stays accepted
    Server s(data, ADS_AGENT_BIN, {}, "1");
    fs::path lab = tmp.path / "blocker";
    fs::create_directories(lab);
    std::ofstream(lab / "ads-lab.json") << R"({"ads":2,"os":{"name":"debian","version":"12"},
      "install":["sleep 60"],"actions":{"start":["true"]}})";
    std::string blocker = deploy(s, lab.string(), "blocker");
    s.wait_for(blocker, {"installing"}, 120);
    id = deploy(s, kSource + "/examples/labs/static-site", "queued");
    EXPECT_EQ(s.call("GET", "/api/v1/deployments/" + id)["state"], "accepted");
    s.kill(SIGKILL);
  }
  Server s2(data);
  json d = s2.wait_for(id, {"running", "failed"});
  EXPECT_EQ(d["state"], "running") << d.dump() << s2.log_text(id);
  EXPECT_NE(s2.log_text(id).find("resuming deploy job"), std::string::npos);
}

TEST_F(LifecycleTest, FiveConcurrentDeploymentsAllRunOnTheirOwnMachines) {
  Server s((tmp.path / "data").string(), ADS_AGENT_BIN, {}, "5");
  std::vector<std::string> ids;
  ids.reserve(5);
  for (int i = 0; i < 5; ++i)
    ids.push_back(deploy(s, kSource + "/examples/labs/static-site", "lab" + std::to_string(i)));
  std::set<std::string> addresses;
  for (auto& id : ids) {
    json d = s.wait_for(id, {"running", "failed"});
    ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
    addresses.insert(d["address"].get<std::string>());
    EXPECT_NE(http_get(d["url"]).find("ADS example lab"), std::string::npos);
  }
  EXPECT_EQ(addresses.size(), 5u);
  for (auto& id : ids) s.call("DELETE", "/api/v1/deployments/" + id);
  for (auto& id : ids) EXPECT_EQ(s.wait_for(id, {"destroyed", "failed"}, 60)["state"], "destroyed");
}

TEST_F(LifecycleTest, IdempotencyKeyReturnsTheSameDeployment) {
  Server s((tmp.path / "data").string());
  auto post = [&](const json& body, const std::string& key, long* status) {
    ads::http::ClientRequest r;
    r.method = "POST";
    r.url = s.base() + "/api/v1/deployments";
    r.body = body.dump();
    r.headers = {{"Content-Type", "application/json"}, {"Idempotency-Key", key}, s.auth()[0]};
    auto res = ads::http::request(r);
    *status = res ? res->status : 0;
    return res ? json::parse(res->body, nullptr, false) : json();
  };
  json body = {{"source", kSource + "/examples/labs/static-site"}, {"name", "idem"}};
  long s1 = 0, s2 = 0, s3 = 0;
  json a = post(body, "key-123", &s1);
  json b = post(body, "key-123", &s2);
  ASSERT_EQ(s1, 202);
  EXPECT_EQ(s2, 202);
  EXPECT_EQ(a["id"], b["id"]);
  guard.ids.insert(a["id"]);
  json other = {{"source", kSource + "/examples/labs/seed-lab"}, {"name", "idem"}};
  json c = post(other, "key-123", &s3);
  EXPECT_EQ(s3, 409);
  EXPECT_EQ(c["error"]["field"], "Idempotency-Key");
  json list = s.call("GET", "/api/v1/deployments");
  EXPECT_EQ(list["deployments"].size(), 1u);
  s.wait_for(a["id"], {"running", "failed"});
  s.call("DELETE", "/api/v1/deployments/" + a["id"].get<std::string>());
  s.wait_for(a["id"], {"destroyed", "failed"}, 60);
}

TEST_F(LifecycleTest, EventsStreamLogLinesAndStatesUntilSettled) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s, kSource + "/examples/labs/static-site", "sse");
  ads::http::ClientRequest r;
  r.url = s.base() + "/api/v1/deployments/" + id + "/events?until=settled";
  r.headers = s.auth();
  r.timeout_ms = 240000;
  auto res = ads::http::request(r);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers["content-type"], "text/event-stream");
  const std::string& body = res->body;
  EXPECT_NE(body.find("event: log\ndata: "), std::string::npos);
  EXPECT_NE(body.find("\"state\":\"running\""), std::string::npos) << body.substr(0, 2000);
  EXPECT_NE(body.find("step installing"), std::string::npos);
  // resuming after the last seen event gives only what came after it
  ads::http::ClientRequest again = r;
  again.headers = {{"Last-Event-ID", "3"}, s.auth()[0]};
  auto tail = ads::http::request(again);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->body.find("id: 3\n"), std::string::npos);
  EXPECT_NE(tail->body.find("id: 4\n"), std::string::npos);
  s.call("DELETE", "/api/v1/deployments/" + id);
  s.wait_for(id, {"destroyed", "failed"}, 60);
}

TEST_F(LifecycleTest, DoctorReportsOrphanContainersAndMissingMachines) {
  Server s((tmp.path / "data").string());
  // a container that claims to be an ADS deployment the store never heard of
  ads::MachineSpec ms;
  ms.name = "ads-orphan-test";
  ms.os_key = "debian-12";
  ms.labels = {{"deployment", "01zzzzzzzzzzzzzzzzzzzzzzzz"}, {"lab", "ghost"}};
  struct Drop {
    ~Drop() { (void)lxd()->destroy("ads-orphan-test"); }
  } drop;
  ASSERT_TRUE(lxd()->create(ms, nullptr).ok());
  // and a running deployment whose container vanished behind ADS's back
  std::string id = deploy(s, kSource + "/examples/labs/static-site", "vanishing");
  ASSERT_EQ(s.wait_for(id, {"running", "failed"})["state"], "running");
  ASSERT_TRUE(lxd()->destroy("ads-" + id).ok());
  json problems = s.call("GET", "/api/v1/doctor")["problems"];
  bool orphan = false, missing = false;
  for (auto& p : problems) {
    orphan |= p["machine"] == "ads-orphan-test" && p["problem"].get<std::string>().rfind("orphan", 0) == 0;
    missing |= p["deployment"] == id && p["problem"].get<std::string>().rfind("missing", 0) == 0;
  }
  EXPECT_TRUE(orphan) << problems.dump();
  EXPECT_TRUE(missing) << problems.dump();
  std::string out;
  EXPECT_EQ(run({ADS_CLI_BIN, "--server", s.base(), "--token", s.token(), "doctor"}, &out), 1);
  EXPECT_NE(out.find("ads-orphan-test"), std::string::npos) << out;
}

}  // namespace
