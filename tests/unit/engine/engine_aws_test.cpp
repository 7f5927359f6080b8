// The engine deploying through the aws provider against the local fake EC2
// (tests/support/fake_ec2.h). In the full-path test the fake "boots" each
// instance by running its cloud-init user data on this host: the agent is
// downloaded from agent_url, checked against the SHA-256 in the user data
// and run with the deployment's config on the instance's loopback address
// (127.77.0.N:9089), so the engine talks to a real agent through the address
// EC2 reported. Real engine, real SQLite store, real agent; EC2 is the fake.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <ctime>
#include <fstream>
#include <thread>

#include "agent/client.h"
#include "agent/identity.h"
#include "engine/engine.h"
#include "providers/aws/user_data.h"
#include "support/build_paths.h"
#include "support/engine_wait.h"
#include "support/fake_ec2.h"
#include "support/ports.h"
#include "support/process.h"
#include "support/raw_client.h"

namespace {
using nlohmann::json;

class EngineAwsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(fake.start_error(), "");
    fake.add_key("AKIDENGINE", "engine-test-secret-key");
    auto s = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(s.value());
  }
  void TearDown() override {
    // the lab's web servers, should a test stop half-way
    std::error_code ec;
    for (auto& e : std::filesystem::recursive_directory_iterator(tmp.path / "ec2", ec))
      if (e.path().filename() == "httpd.pid") {
        std::ifstream in(e.path());
        int pid = 0;
        if (in >> pid && pid > 1) ::kill(pid, SIGKILL);
      }
  }
  std::unique_ptr<ads::Engine> engine(std::chrono::milliseconds agent_timeout, int keep_backups = 0) {
    json settings = {{"region", "us-east-1"},
                     {"endpoint", fake.endpoint()},
                     {"access_key_id", "AKIDENGINE"},
                     {"secret_access_key", "engine-test-secret-key"},
                     {"images", {{"debian-12", "ami-0debian12example"}}},
                     {"agent_url", fake.agent_url()},
                     {"subnet_id", "subnet-0abc"},
                     {"poll_ms", 20},
                     {"wait_timeout_s", 10}};
    auto p = ads::make_provider("aws", settings);
    EXPECT_TRUE(p.ok()) << p.error().to_string();
    std::map<std::string, std::unique_ptr<ads::Provider>> providers;
    providers["aws"] = std::move(p.value());
    auto o = ads::test::engine_options(tmp.path);
    o.default_provider = "aws";
    o.workers = 1;
    o.address_timeout = std::chrono::seconds(10);
    o.agent_timeout = agent_timeout;
    o.http_check_timeout = std::chrono::seconds(20);
    o.provider_attempts = 1;
    o.keep_backups = keep_backups;
    auto e = std::make_unique<ads::Engine>(*store, std::move(providers), o);
    auto st = e->start();
    EXPECT_TRUE(st.ok()) << st.error().message;
    return e;
  }
  std::string submit(ads::Engine& e, const std::string& source) {
    ads::DeployRequest r;
    r.source = source;
    r.owner = "tester";
    r.admin = true;  // a path on the server: admins only (engine/source_access.h)
    auto d = e.submit(r);
    EXPECT_TRUE(d.ok()) << d.error().message;
    return d.ok() ? d->id : "";
  }
  // Waits (a wait, not a timing assertion) until every job of `id` has finished.
  ads::Deployment settle(const std::string& id) {
    for (int i = 0; i < 1200; ++i) {
      auto jobs = store->jobs_of(id);
      bool done = jobs.ok() && !jobs->empty();
      if (jobs.ok())
        for (auto& j : *jobs) done = done && j.state != "queued" && j.state != "running";
      if (done) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return *store->get(id);
  }
  std::string log_of(const std::string& id) {
    std::string out;
    auto lines = store->logs(id, 0, 2000);
    if (!lines) return lines.error().message;
    for (auto& l : *lines) out += l.text + "\n";
    return out;
  }
  // A lab whose web server is busybox httpd on `port` (every address).
  std::string make_lab(int port) {
    auto dir = tmp.path / "lab";
    std::filesystem::create_directories(dir / "www");
    std::ofstream(dir / "www/index.html") << "<h1>ADS on EC2 (fake)</h1>\n";
    std::string p = std::to_string(port);
    json spec = {{"ads", 2},
                 {"name", "aws-lab"},
                 {"os", {{"name", "debian"}, {"version", "12"}}},
                 {"resources", {{"memory", "512mb"}, {"storage", "1gb"}}},
                 {"install", {"echo installed > www/installed.txt"}},
                 {"actions",
                  {{"start", {"busybox httpd -f -p " + p + " -h www </dev/null >/dev/null 2>&1 & echo $! > httpd.pid"}},
                   {"stop", {"kill $(cat httpd.pid) || true"}},
                   {"test", {"busybox wget -q -O - http://127.0.0.1:" + p + "/installed.txt | grep -q installed"}}}},
                 {"http", {{"port", port}, {"path", "/"}}}};
    std::ofstream(dir / "ads-lab.json") << spec.dump(2);
    return dir.string();
  }

  ads::test::TempDir tmp;
  ads::test::FakeEc2 fake;
  std::unique_ptr<ads::Store> store;
};

TEST_F(EngineAwsTest, AFailedDeployTerminatesItsInstance) {
  // no boot: the instance runs but its agent never answers
  auto e = engine(std::chrono::milliseconds(300));
  std::string id = submit(*e, std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site");
  auto d = settle(id);
  e->stop();
  ASSERT_EQ(d.state, ads::State::kFailed) << log_of(id);
  EXPECT_EQ(d.failed_step, "starting_agent") << d.error;
  ASSERT_EQ(fake.instances().size(), 1u);
  auto inst = fake.instances()[0];
  EXPECT_EQ(inst.tags["ads:deployment"], id);
  EXPECT_EQ(inst.tags["ads:lab"], "static-site");
  auto t = fake.calls_of("TerminateInstances");
  ASSERT_EQ(t.size(), 1u) << log_of(id);
  EXPECT_EQ(t[0].params["InstanceId.1"], inst.id);
  fake.settle();
  EXPECT_EQ(fake.instance(inst.id)->state, "terminated");
  EXPECT_EQ(d.machine, "");
  EXPECT_NE(log_of(id).find("removed machine ads-" + id), std::string::npos);
  EXPECT_EQ(fake.rejected(), 0);
  // the deployment's secret went into the user data, never into the log
  std::string secret = store->get(id)->secret;
  EXPECT_FALSE(secret.empty());
  EXPECT_EQ(log_of(id).find(secret), std::string::npos);
}

TEST_F(EngineAwsTest, DeploysStopsStartsBacksUpRestoresAndDestroysWithARealAgentOnLoopback) {
  fake.boot_agents(ADS_AGENT_BIN, tmp.path / "ec2");
  int port = ads::test::free_loopback_port();
  auto e = engine(std::chrono::seconds(20));
  std::string id = submit(*e, make_lab(port));
  auto d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  ASSERT_EQ(fake.instances().size(), 1u);
  auto inst = fake.instances()[0];
  EXPECT_EQ(inst.boot_error, "");
  EXPECT_EQ(d.address, inst.private_ip);
  EXPECT_EQ(d.url, "http://" + inst.private_ip + ":" + std::to_string(port) + "/");
  // the agent the instance runs is the one it downloaded and checked
  EXPECT_TRUE(std::filesystem::exists(inst.root / "usr/local/bin/ads-agent"));
  EXPECT_TRUE(std::filesystem::exists(inst.root / "opt/lab/www/installed.txt"));
  ads::http::ClientRequest hr;
  hr.url = d.url;
  auto page = ads::http::request(hr);
  ASSERT_TRUE(page.ok());
  EXPECT_NE(page->body.find("ADS on EC2 (fake)"), std::string::npos);

  ASSERT_TRUE(e->operate(id, "stop").ok());
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kStopped) << d.error << "\n" << log_of(id);
  EXPECT_EQ(fake.instance(inst.id)->state, "stopped");
  EXPECT_FALSE(ads::http::request(hr).ok());  // powered off: nothing answers

  ASSERT_TRUE(e->operate(id, "start").ok());
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  EXPECT_EQ(fake.calls_of("StartInstances").size(), 1u);
  EXPECT_TRUE(ads::http::request(hr).ok());

  ASSERT_TRUE(e->operate(id, "backup").ok());
  d = settle(id);
  auto backups = store->backups_of(id);
  ASSERT_TRUE(backups.ok());
  ASSERT_EQ(backups->size(), 1u) << log_of(id);
  EXPECT_FALSE((*backups)[0].snapshot.empty());
  ASSERT_EQ(fake.images().size(), 1u);
  EXPECT_EQ(fake.images()[0].tags["ads:snapshot"], (*backups)[0].snapshot);

  ASSERT_TRUE(e->operate(id, "restore", json{{"backup", (*backups)[0].id}}).ok());
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  auto running = fake.instances_in("running");
  ASSERT_EQ(running.size(), 1u);
  EXPECT_NE(running[0].id, inst.id);  // a new instance from the AMI
  EXPECT_EQ(running[0].image, fake.images()[0].id);
  EXPECT_EQ(d.address, running[0].private_ip);
  hr.url = d.url;
  EXPECT_TRUE(ads::http::request(hr).ok()) << d.url;

  ASSERT_TRUE(e->operate(id, "destroy").ok());
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kDestroyed) << d.error << "\n" << log_of(id);
  fake.settle();
  EXPECT_TRUE(fake.instances_in("running").empty());
  EXPECT_TRUE(fake.instances_in("stopped").empty());

  // the backup outlives the deployment (its AMI and EBS snapshot too) until it is deleted
  const ads::Backup b = (*backups)[0];
  ASSERT_EQ(fake.images().size(), 1u);
  ASSERT_EQ(fake.snapshots().size(), 1u);
  ASSERT_TRUE(std::filesystem::exists(b.path));
  fake.inject("DeregisterImage", 403, "UnauthorizedOperation", "You are not authorized to perform this operation.");
  auto del = e->operate(id, "delete-backup", json{{"backup", b.id}});
  ASSERT_TRUE(del.ok()) << del.error().message;
  settle(id);
  auto failed = store->get_job(del->id);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->state, "failed");
  EXPECT_NE(failed->error.find("UnauthorizedOperation"), std::string::npos) << failed->error;
  EXPECT_TRUE(store->get_backup(b.id).ok());  // nothing is lost: still listed, archive still there
  EXPECT_TRUE(std::filesystem::exists(b.path));
  EXPECT_EQ(store->get(id)->state, ads::State::kDestroyed);

  del = e->operate(id, "delete-backup", json{{"backup", b.id}});
  ASSERT_TRUE(del.ok()) << del.error().message;
  settle(id);
  e->stop();
  EXPECT_EQ(store->get_job(del->id)->state, "succeeded") << log_of(id);
  EXPECT_TRUE(fake.images().empty());
  EXPECT_TRUE(fake.snapshots().empty());
  EXPECT_FALSE(std::filesystem::exists(b.path));
  EXPECT_EQ(store->get_backup(b.id).error().code, "not_found");
  EXPECT_NE(log_of(id).find("deleted backup " + b.id), std::string::npos);
  // a deleted backup can be neither deleted nor restored again
  auto again = e->operate(id, "delete-backup", json{{"backup", b.id}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().field, "backup");
  EXPECT_FALSE(e->operate(id, "restore", json{{"backup", b.id}}).ok());
  EXPECT_EQ(fake.rejected(), 0);
}

// A destroyed deployment restored from its backup into a new machine, the
// lab having no restore action: the data comes from the AMI. The instance
// launched from it has an address of its own and its agent the secret of the
// machine the backup was taken on; the engine learns both (before, the
// restore failed: it talked to the terminated instance's address with the
// new machine's secret).
TEST_F(EngineAwsTest, ADestroyedDeploymentIsRestoredIntoANewInstanceFromItsAmi) {
  fake.boot_agents(ADS_AGENT_BIN, tmp.path / "ec2");
  int port = ads::test::free_loopback_port();
  auto e = engine(std::chrono::seconds(20));
  std::string id = submit(*e, make_lab(port));
  auto d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  ASSERT_TRUE(e->operate(id, "backup").ok());
  settle(id);
  auto backups = store->backups_of(id);
  ASSERT_TRUE(backups.ok());
  ASSERT_EQ(backups->size(), 1u) << log_of(id);
  // a release since the backup: the deployment's agent secret is now its new
  // machine's, not the one on the AMI's disk
  const std::string backed_up_secret = store->get(id)->secret;
  ASSERT_TRUE(e->operate(id, "release", json::object()).ok());
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  ASSERT_EQ(store->releases_of(id)->size(), 2u) << log_of(id);
  ASSERT_NE(store->get(id)->secret, backed_up_secret);
  ASSERT_TRUE(e->operate(id, "destroy").ok());
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kDestroyed) << d.error << "\n" << log_of(id);
  fake.settle();
  ASSERT_TRUE(fake.instances_in("running").empty());
  // as if it were a throwaway (ads lab try) whose time ran out: brought back,
  // it is kept for good (else the janitor would destroy it again at once)
  auto rec = store->get(id).value();
  rec.expires_ms = 1;
  rec.keep_failed = true;
  ASSERT_TRUE(store->update(rec).ok());

  ASSERT_TRUE(e->operate(id, "restore", json{{"backup", (*backups)[0].id}}).ok());
  EXPECT_EQ(store->get(id)->expires_ms, 0);
  EXPECT_FALSE(store->get(id)->keep_failed);
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  fake.settle();
  auto running = fake.instances_in("running");
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].image, fake.images()[0].id);  // from the AMI
  EXPECT_EQ(d.address, running[0].private_ip);
  EXPECT_NE(log_of(id).find("restored from snapshot"), std::string::npos) << log_of(id);
  ads::http::ClientRequest hr;
  hr.url = d.url;
  auto page = ads::http::request(hr);
  ASSERT_TRUE(page.ok()) << d.url;
  EXPECT_NE(page->body.find("ADS on EC2 (fake)"), std::string::npos);
  // the life cycle goes on with what the engine learnt (address and secret)
  ASSERT_TRUE(e->operate(id, "stop").ok());
  d = settle(id);
  EXPECT_EQ(d.state, ads::State::kStopped) << d.error << "\n" << log_of(id);
  ASSERT_TRUE(e->operate(id, "destroy").ok());
  d = settle(id);
  e->stop();
  EXPECT_EQ(d.state, ads::State::kDestroyed) << d.error << "\n" << log_of(id);
}

TEST_F(EngineAwsTest, KeepBackupsDeletesTheOldestAfterEachBackupAndAFailedDeletionDoesNotFailTheBackup) {
  fake.boot_agents(ADS_AGENT_BIN, tmp.path / "ec2");
  auto e = engine(std::chrono::seconds(20), 2);
  std::string id = submit(*e, make_lab(ads::test::free_loopback_port()));
  ASSERT_EQ(settle(id).state, ads::State::kRunning) << log_of(id);
  std::vector<std::string> made;
  auto backup = [&] {
    auto j = e->operate(id, "backup");
    EXPECT_TRUE(j.ok());
    settle(id);
    auto done = store->get_job(j->id);
    EXPECT_EQ(done->state, "succeeded") << done->error << log_of(id);
    made.push_back(json::parse(done->result_json).value("backup", ""));
  };
  auto listed = [&] {
    std::vector<std::string> ids;
    auto all = store->backups_of(id);
    EXPECT_TRUE(all.ok());
    if (all.ok())
      for (auto& b : *all) ids.push_back(b.id);
    return ids;
  };
  backup();
  backup();
  EXPECT_EQ(listed(), made);  // two: nothing to prune yet
  auto first = *store->get_backup(made[0]);
  backup();
  EXPECT_EQ(listed(), (std::vector<std::string>{made[1], made[2]}));
  EXPECT_FALSE(std::filesystem::exists(first.path));
  EXPECT_EQ(fake.images().size(), 2u);  // the first one's AMI and EBS snapshot are gone
  EXPECT_EQ(fake.snapshots().size(), 2u);
  EXPECT_NE(log_of(id).find("keeping the last 2 backups: deleting backup " + made[0]), std::string::npos) << log_of(id);

  // EC2 refuses to deregister: the new backup still succeeds, the old one stays listed
  fake.inject("DeregisterImage", 403, "UnauthorizedOperation", "You are not authorized to perform this operation.");
  backup();
  EXPECT_EQ(listed(), (std::vector<std::string>{made[1], made[2], made[3]}));
  EXPECT_NE(log_of(id).find("could not delete backup " + made[1] + " (it stays listed)"), std::string::npos)
      << log_of(id);
  // the next backup catches up
  backup();
  e->stop();
  EXPECT_EQ(listed(), (std::vector<std::string>{made[3], made[4]}));
  EXPECT_EQ(fake.images().size(), 2u);
  EXPECT_EQ(fake.snapshots().size(), 2u);
  EXPECT_EQ(fake.rejected(), 0);
}

TEST_F(EngineAwsTest, AFailedBackupLeavesNoArchiveNoImageAndNoRecord) {
  fake.boot_agents(ADS_AGENT_BIN, tmp.path / "ec2");
  auto e = engine(std::chrono::seconds(20));
  std::string id = submit(*e, make_lab(ads::test::free_loopback_port()));
  ASSERT_EQ(settle(id).state, ads::State::kRunning) << log_of(id);
  fake.inject("CreateImage", 400, "InvalidParameterValue", "Invalid value for instance.");
  auto j = e->operate(id, "backup");
  ASSERT_TRUE(j.ok());
  settle(id);
  auto done = store->get_job(j->id);
  e->stop();
  EXPECT_EQ(done->state, "failed");
  EXPECT_NE(done->error.find("snapshot failed"), std::string::npos) << done->error;
  EXPECT_TRUE(store->backups_of(id)->empty());
  EXPECT_TRUE(fake.images().empty());
  // the data archive was copied before the snapshot failed; it is gone too
  auto dir = tmp.path / "backups" / id;
  size_t files = 0;
  if (std::filesystem::exists(dir))
    for ([[maybe_unused]] auto& f : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 0u);
  EXPECT_EQ(store->get(id)->state, ads::State::kRunning);  // the lab itself is untouched
}

TEST_F(EngineAwsTest, ABackupDeletionCutOffByAStoppedServerIsResumedAtTheNextStart) {
  fake.boot_agents(ADS_AGENT_BIN, tmp.path / "ec2");
  std::string id;
  ads::Backup b;
  {
    auto e = engine(std::chrono::seconds(20));
    id = submit(*e, make_lab(ads::test::free_loopback_port()));
    ASSERT_EQ(settle(id).state, ads::State::kRunning) << log_of(id);
    ASSERT_TRUE(e->operate(id, "backup").ok());
    settle(id);
    e->stop();
    auto all = store->backups_of(id);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 1u) << log_of(id);
    b = (*all)[0];
  }
  // as a server that died while deleting it would have left it: a running job
  auto cut_off = [&](const std::string& job_id) {
    ads::Job j;
    j.id = job_id;
    j.deployment_id = id;
    j.kind = "delete-backup";
    j.state = "running";
    j.step = "deleting the snapshot";
    j.params_json = json{{"backup", b.id}}.dump();
    j.created_ms = j.updated_ms = 1;
    ASSERT_TRUE(store->create_job(j).ok());
  };
  cut_off("01jjjjjjjjjjjjjjjjjjjjjjj1");
  {
    auto e = engine(std::chrono::seconds(20));
    settle(id);
    e->stop();
  }
  auto job = store->get_job("01jjjjjjjjjjjjjjjjjjjjjjj1");
  EXPECT_EQ(job->state, "succeeded") << job->error << log_of(id);
  EXPECT_NE(log_of(id).find("resuming delete-backup job 01jjjjjjjjjjjjjjjjjjjjjjj1"), std::string::npos) << log_of(id);
  EXPECT_EQ(store->get_backup(b.id).error().code, "not_found");
  EXPECT_FALSE(std::filesystem::exists(b.path));
  EXPECT_TRUE(fake.images().empty());
  EXPECT_TRUE(fake.snapshots().empty());
  // cut off after the record went: the resumed job finds nothing left to do
  cut_off("01jjjjjjjjjjjjjjjjjjjjjjj2");
  {
    auto e = engine(std::chrono::seconds(20));
    settle(id);
    e->stop();
  }
  job = store->get_job("01jjjjjjjjjjjjjjjjjjjjjjj2");
  EXPECT_EQ(job->state, "succeeded") << job->error << log_of(id);
  EXPECT_NE(log_of(id).find("backup " + b.id + " is already deleted"), std::string::npos) << log_of(id);
  EXPECT_EQ(store->get(id)->state, ads::State::kRunning);
}

// A deploy cut off mid-way by a stopped server (its job left running, the
// deployment mid-pipeline, its instance made) runs again from the start at
// the next start, on a new instance once the old one is terminated; cut off
// a second time (deploy_attempts 2), it fails and is rolled back.
TEST_F(EngineAwsTest, ADeployCutOffByAStoppedServerRunsAgainOnceThenIsRolledBack) {
  fake.boot_agents(ADS_AGENT_BIN, tmp.path / "ec2");
  std::string id;
  {
    auto e = engine(std::chrono::seconds(20));
    id = submit(*e, make_lab(ads::test::free_loopback_port()));
    ASSERT_EQ(settle(id).state, ads::State::kRunning) << log_of(id);
    e->stop();
  }
  // as a server that died while installing would have left it
  auto cut_off = [&](int attempts) {
    auto d = store->get(id);
    ASSERT_TRUE(d.ok());
    d->state = ads::State::kInstalling;
    ASSERT_TRUE(store->update(*d).ok());
    auto jobs = store->jobs_of(id);
    ASSERT_TRUE(jobs.ok());
    ASSERT_EQ(jobs->size(), 1u);
    ads::Job j = (*jobs)[0];
    ASSERT_EQ(j.kind, "deploy");
    j.state = "running";
    j.step = "installing";
    j.attempts = attempts;
    ASSERT_TRUE(store->update_job(j).ok());
  };
  const std::string machine = store->get(id)->machine;  // the name; the instance is found by it
  ASSERT_FALSE(machine.empty());
  auto running = fake.instances_in("running");
  ASSERT_EQ(running.size(), 1u);
  const std::string first = running[0].id;
  cut_off(1);
  {
    auto e = engine(std::chrono::seconds(20));
    ASSERT_EQ(settle(id).state, ads::State::kRunning) << log_of(id);
    e->stop();
  }
  auto log = log_of(id);
  EXPECT_NE(log.find("interrupted: ads serve stopped during deploy (installing); removing what it made and deploying "
                     "again from the start (run 2 of at most 2)"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("removed machine " + machine), std::string::npos) << log;
  EXPECT_EQ(fake.instance(first)->state, "terminated");
  running = fake.instances_in("running");
  ASSERT_EQ(running.size(), 1u);
  EXPECT_NE(running[0].id, first);  // a new instance
  auto d = *store->get(id);
  auto job = (*store->jobs_of(id))[0];
  EXPECT_EQ(job.state, "succeeded");
  EXPECT_EQ(job.attempts, 2);

  cut_off(2);
  {
    auto e = engine(std::chrono::seconds(20));
    settle(id);
    e->stop();
  }
  d = *store->get(id);
  EXPECT_EQ(d.state, ads::State::kFailed) << log_of(id);
  EXPECT_EQ(d.failed_step, "installing");
  EXPECT_NE(d.error.find("interrupted: ads serve stopped during deploy (installing); rolled back"), std::string::npos)
      << d.error;
  EXPECT_EQ(d.machine, "");
  EXPECT_TRUE(fake.instances_in("running").empty());
  job = (*store->jobs_of(id))[0];
  EXPECT_EQ(job.state, "failed");
  EXPECT_EQ(job.attempts, 2);
}

// The engine keeps to the state machine of core/deployment.h: a deploy job
// found for a deployment that is already running (records that do not fit,
// as a bad restore of the database could leave) fails at its first step, and
// the running deployment and its instance are left alone.
TEST_F(EngineAwsTest, AJobThatDoesNotFitTheDeploymentsStateFailsAndTouchesNothing) {
  fake.boot_agents(ADS_AGENT_BIN, tmp.path / "ec2");
  auto e = engine(std::chrono::seconds(20));
  std::string id = submit(*e, make_lab(ads::test::free_loopback_port()));
  ASSERT_EQ(settle(id).state, ads::State::kRunning) << log_of(id);
  ASSERT_EQ(fake.instances_in("running").size(), 1u);
  ads::Job j;
  j.id = "01jjjjjjjjjjjjjjjjjjjjjjj3";
  j.deployment_id = id;
  j.kind = "deploy";
  j.state = "queued";
  j.created_ms = j.updated_ms = 1;
  ASSERT_TRUE(store->create_job(j).ok());
  settle(id);
  e->stop();
  auto job = store->get_job(j.id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, "failed");
  EXPECT_NE(job->error.find("cannot record step fetching: deployment " + id +
                            " cannot go from running to fetching (not a transition of the state machine)"),
            std::string::npos)
      << job->error;
  auto d = store->get(id);
  EXPECT_EQ(d->state, ads::State::kRunning);
  EXPECT_FALSE(d->machine.empty());
  EXPECT_EQ(fake.instances_in("running").size(), 1u);
  EXPECT_NE(log_of(id).find("(the deployment stays running)"), std::string::npos) << log_of(id);
}

}  // namespace

// Issue 15 item 5: the agent's secret travels in the user data, which every
// local user of the instance reads through IMDS (a token PUT, then GET
// /latest/user-data) and anyone allowed ec2:DescribeInstanceAttribute through
// the API. It is a bootstrap secret only: the engine replaces it on first
// contact, so once the lab runs it opens nothing.
namespace {
// One plain-HTTP exchange with the fake's IMDS from `source` (a process
// inside the instance whose address that is); the answer's status and body.
std::pair<int, std::string> imds_exchange(uint16_t port, const std::string& source, const std::string& request) {
  ads::test::RawClient c(port, source);
  if (!c.connected() || !c.send(request)) return {-1, ""};
  std::string out = c.read_all(std::chrono::seconds(10));
  auto end = out.find("\r\n\r\n");
  if (out.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return {-1, out};
  return {std::atoi(out.c_str() + 9), out.substr(end + 4)};
}

// What a local user of the instance at `source` reads: the secret in the
// agent's config inside the user data ("" when it cannot get it).
std::string secret_from_user_data(uint16_t port, const std::string& source) {
  auto token = imds_exchange(port, source,
                             "PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\n"
                             "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n");
  if (token.first != 200) return "";
  auto ud = imds_exchange(port, source,
                          "GET /latest/user-data HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token: " +
                              token.second + "\r\nConnection: close\r\n\r\n");
  const std::string head = "#cloud-config\n";
  if (ud.first != 200 || ud.second.rfind(head, 0) != 0) return "";
  auto doc = json::parse(ud.second.substr(head.size()), nullptr, false);
  if (!doc.is_object()) return "";
  for (auto& f : doc.value("write_files", json::array()))
    if (f.value("path", "") == "/etc/ads-agent/agent.json") {
      auto raw = ads::aws::unbase64(f.value("content", ""));
      auto cfg = json::parse(raw ? *raw : std::string("{}"), nullptr, false);
      return cfg.is_object() ? cfg.value("secret", "") : "";
    }
  return "";
}
}  // namespace

TEST_F(EngineAwsTest, TheSecretInTheUserDataRunsNothingOnceTheLabIsDeployed) {
  fake.boot_agents(ADS_AGENT_BIN, tmp.path / "ec2");
  int port = ads::test::free_loopback_port();
  auto e = engine(std::chrono::seconds(20));
  std::string id = submit(*e, make_lab(port));
  auto d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  auto inst = fake.instances()[0];

  // a local user of the instance, exactly as the issue says
  std::string bootstrap = secret_from_user_data(fake.port(), inst.private_ip);
  ASSERT_EQ(bootstrap.size(), 64u) << "the user data should hold the (bootstrap) secret";
  EXPECT_NE(bootstrap, d.secret);
  // (the fake's IMDS answers the instance itself only: from elsewhere, nothing)
  EXPECT_EQ(secret_from_user_data(fake.port(), "127.0.0.1"), "");

  std::string url = ads::agent::AgentClient::url_for(d.address);
  auto attack = [&](const std::string& method, const std::string& target, const std::string& body = "") {
    ads::http::ClientRequest r;
    r.method = method;
    r.url = url + target;
    r.headers = ads::agent::signed_headers(bootstrap, method, target, body, std::time(nullptr));
    r.body = body;
    // a client that checks nothing: it takes whatever key the agent shows
    r.pinned_key = *ads::agent::agent_pin(store->get(id)->secret);
    auto res = ads::http::request(r);
    return res ? res->status : -1;
  };
  auto refused_everything = [&] {
    EXPECT_EQ(attack("POST", "/v1/actions/start"), 401);
    EXPECT_EQ(attack("POST", "/v1/actions/stop"), 401);
    EXPECT_EQ(attack("GET", "/v1/backup"), 401);
    EXPECT_EQ(attack("GET", "/v1/health"), 401);
    EXPECT_EQ(attack("POST", "/v1/secret", json{{"secret", ads::agent::random_hex(32)}}.dump()), 401);
    // ADS's own client with that secret: the agent does not prove it either
    auto h = ads::agent::AgentClient(url, bootstrap).health();
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.error().code, "tls");
  };
  refused_everything();
  // the instance keeps the new secret root-only; the engine holds only it
  std::ifstream kept(inst.root / "etc/ads-agent/secret");
  std::string kept_secret((std::istreambuf_iterator<char>(kept)), {});
  EXPECT_EQ(kept_secret, d.secret + "\n");
  EXPECT_EQ(std::filesystem::status(inst.root / "etc/ads-agent/secret").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_TRUE(ads::agent::AgentClient(url, d.secret).health().ok());

  // a power cycle restarts the agent from the same user data: still refused,
  // and the engine's normal path (start, the lab's test) works
  ASSERT_TRUE(e->operate(id, "stop").ok());
  ASSERT_EQ(settle(id).state, ads::State::kStopped) << log_of(id);
  ASSERT_TRUE(e->operate(id, "start").ok());
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  refused_everything();
  auto t = e->operate(id, "test");
  ASSERT_TRUE(t.ok());
  settle(id);
  e->stop();
  EXPECT_EQ(store->get_job(t->id)->state, "succeeded") << log_of(id);
  auto log = log_of(id);
  EXPECT_NE(log.find("the agent took a new secret"), std::string::npos) << log;
  EXPECT_EQ(log.find(bootstrap), std::string::npos);
  EXPECT_EQ(log.find(d.secret), std::string::npos);
}

// The engine records the new secret before it sends it. Cut off between the
// two (the record made, the agent never told): the next start deploys again
// from the start on a new instance with a new bootstrap secret, and the lab
// runs; nothing waits on a secret the agent never got.
TEST_F(EngineAwsTest, ADeployCutOffBetweenRecordingTheNewSecretAndSendingItEndsRunning) {
  fake.boot_agents(ADS_AGENT_BIN, tmp.path / "ec2");
  std::string id;
  {
    auto e = engine(std::chrono::seconds(20));
    id = submit(*e, make_lab(ads::test::free_loopback_port()));
    ASSERT_EQ(settle(id).state, ads::State::kRunning) << log_of(id);
    e->stop();
  }
  const std::string first = fake.instances_in("running").at(0).id;
  auto d = *store->get(id);
  d.state = ads::State::kStartingAgent;
  d.secret = ads::agent::random_hex(32);  // recorded, never sent
  ASSERT_TRUE(store->update(d).ok());
  auto j = (*store->jobs_of(id))[0];
  j.state = "running";
  j.step = "starting_agent";
  j.attempts = 1;
  ASSERT_TRUE(store->update_job(j).ok());
  {
    auto e = engine(std::chrono::seconds(20));
    d = settle(id);
    e->stop();
  }
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  EXPECT_EQ(fake.instance(first)->state, "terminated");
  auto running = fake.instances_in("running");
  ASSERT_EQ(running.size(), 1u);
  EXPECT_NE(running[0].id, first);
  EXPECT_TRUE(ads::agent::AgentClient(ads::agent::AgentClient::url_for(d.address), d.secret).health().ok());
  EXPECT_NE(secret_from_user_data(fake.port(), running[0].private_ip), d.secret);
}
