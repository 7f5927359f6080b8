// Releases and rollbacks on real LXD containers through a real `ads serve`
// (issue 17 part 2): a new version built beside the serving one, its data
// carried over, switched to only when it passed; a release whose test fails
// leaves the old one serving; a rollback to the kept release; keep_releases;
// destroy removes every release's machine; `ads serve` killed mid-release.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using namespace ads::test;

// Removes the machines of every release a test made (ads-ID-rN), even when it fails.
struct ReleaseMachinesGuard {
  std::set<std::string> ids;
  ~ReleaseMachinesGuard() {
    auto p = lxd();
    for (auto& id : ids)
      for (int n = 1; n <= 9; ++n) (void)p->destroy("ads-" + id + "-r" + std::to_string(n));
  }
};

class ReleaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ads::LxdProvider p({});
    if (!p.ping()) GTEST_FAIL() << "LXD is not running: run scripts/lxd-host.sh first";
    // the notes lab (data to carry over) whose page shows its version: tags
    // v1, v2, and v3-broken whose test action fails
    fs::path src = tmp.path / "src";
    fs::copy(kSource + "/examples/labs/notes-lab", src, fs::copy_options::recursive);
    write(src / "www/index.html", "version 1\n");
    repo = make_repo(tmp, src.string(), "repo");
    write(fs::path(repo) / "www/index.html", "version 2\n");
    git({"commit", "-q", "-am", "v2"});
    git({"tag", "v2"});
    std::ifstream in(fs::path(repo) / "ads-lab.json");
    json spec = json::parse(in);
    spec["actions"]["test"] = json::array({"echo the new version is broken; exit 3"});
    write(fs::path(repo) / "ads-lab.json", spec.dump(2));
    write(fs::path(repo) / "www/index.html", "version 3\n");
    git({"commit", "-q", "-am", "v3"});
    git({"tag", "v3-broken"});
    config = (tmp.path / "ads.json").string();
    write(config, R"({"drain_ms": 100, "keep_releases": 1})");
  }
  static void write(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::trunc);
    out << text;
  }
  void git(std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "git", "-C", repo, "-c", "user.name=ads-test", "-c", "user.email=ads@test.invalid"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    ASSERT_EQ(run(argv, &out), 0) << out;
  }
  std::string deploy(Server& s, const std::string& ref) {
    json req = {{"source", repo}, {"ref", ref}, {"name", "cse02"}};
    json d = s.call("POST", "/api/v1/deployments", &req);
    std::string id = d.value("id", "");
    guard.ids.insert(id);
    releases_guard.ids.insert(id);
    return id;
  }
  json post(Server& s, const std::string& id, const std::string& what, const json& body, long* status = nullptr) {
    long st = 0;
    json j = s.call("POST", "/api/v1/deployments/" + id + "/" + what, &body, &st);
    if (status) *status = st;
    return j;
  }
  json run_job(Server& s, const std::string& id, const std::string& what, const json& body) {
    long status = 0;
    json j = post(s, id, what, body, &status);
    EXPECT_EQ(status, 202) << what << ": " << j.dump();
    if (status != 202) return j;
    return s.wait_job(j["id"]);
  }
  static std::string page(const json& d) { return http_get(d["url"].get<std::string>()); }
  static std::string notes(const json& d) { return http_get(d["url"].get<std::string>() + "cgi-bin/list"); }
  static void add_note(const json& d, const std::string& note) {
    EXPECT_NE(http_get(d["url"].get<std::string>() + "cgi-bin/add?" + note).find("added"), std::string::npos);
  }
  static std::string machine_status(const std::string& name) {
    auto m = lxd()->inspect(name);
    return m ? m->status : m.error().code;
  }
  // What `ads doctor` says of this test's machines (other tests may share the LXD).
  static json problems_of(Server& s, const std::string& id) {
    json out = json::array();
    json doctor = s.call("GET", "/api/v1/doctor");  // held: a loop over a temporary's member dangles
    for (auto& p : doctor["problems"])
      if (p.value("machine", "").find(id) != std::string::npos) out.push_back(p);
    return out;
  }
  json releases(Server& s, const std::string& id) {
    return s.call("GET", "/api/v1/deployments/" + id + "/releases")["releases"];
  }

  TempDir tmp;
  std::string repo, config;
  ContainerGuard guard;
  ReleaseMachinesGuard releases_guard;
};

TEST_F(ReleaseTest, ReleaseRollbackAndAFailedReleaseThatLeavesTheOldOneServing) {
  Server s((tmp.path / "data").string(), ADS_AGENT_BIN, {}, "2", config);
  std::string id = deploy(s, "v1");
  json d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  EXPECT_EQ(page(d), "version 1\n");
  add_note(d, "alpha");
  // before any release, the deployment is release #1
  json rs = releases(s, id);
  ASSERT_EQ(rs.size(), 1u) << rs.dump();
  EXPECT_EQ(rs[0]["seq"], 1);
  EXPECT_EQ(rs[0]["state"], "serving");

  // v2: a new machine, the data carried over, switched to
  json job = run_job(s, id, "releases", {{"ref", "v2"}});
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  d = s.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(d["state"], "running");
  EXPECT_EQ(d["machine"], "ads-" + id + "-r2");
  EXPECT_EQ(d["ref"], "v2");
  EXPECT_EQ(page(d), "version 2\n");
  EXPECT_EQ(notes(d), "alpha\n");
  EXPECT_EQ(machine_status("ads-" + id), "Stopped");  // kept for a rollback
  rs = releases(s, id);
  ASSERT_EQ(rs.size(), 2u) << rs.dump();
  EXPECT_EQ(rs[0]["state"], "kept");
  EXPECT_EQ(rs[1]["state"], "serving");
  EXPECT_EQ(rs[1]["ref"], "v2");
  EXPECT_EQ(rs[1]["by"], "admin");
  EXPECT_FALSE(rs[1].contains("secret"));
  std::string first_release = rs[0]["id"];

  // v3-broken: its test fails; v2 keeps serving, v3's machine is gone
  job = run_job(s, id, "releases", {{"ref", "v3-broken"}});
  ASSERT_EQ(job["state"], "failed") << job.dump();
  EXPECT_NE(job["error"].get<std::string>().find("release #3 failed, release #2 keeps serving"), std::string::npos)
      << job.dump();
  d = s.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(d["state"], "running");
  EXPECT_EQ(d["machine"], "ads-" + id + "-r2");
  EXPECT_EQ(page(d), "version 2\n");
  EXPECT_EQ(machine_status("ads-" + id + "-r3"), "not_found");
  rs = releases(s, id);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[2]["state"], "failed");
  EXPECT_NE(rs[2]["error"].get<std::string>().find("test failed"), std::string::npos) << rs.dump();

  // the rollback: release #1 again, with the data written meanwhile
  add_note(d, "beta");
  job = run_job(s, id, "rollback", json::object());
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  d = s.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(d["machine"], "ads-" + id);
  EXPECT_EQ(d["ref"], "v1");
  EXPECT_EQ(page(d), "version 1\n");
  EXPECT_EQ(notes(d), "alpha\nbeta\n");
  EXPECT_EQ(machine_status("ads-" + id + "-r2"), "Stopped");
  rs = releases(s, id);
  EXPECT_EQ(rs[0]["state"], "serving");
  EXPECT_EQ(rs[1]["state"], "kept");

  // a serving or unknown release cannot be rolled back to
  long status = 0;
  json refused = post(s, id, "rollback", {{"release", first_release}}, &status);
  EXPECT_EQ(status, 409) << refused.dump();
  EXPECT_EQ(refused["error"]["field"], "release");
  refused = post(s, id, "rollback", {{"release", "01aaaaaaaaaaaaaaaaaaaaaaaa"}}, &status);
  EXPECT_EQ(status, 404) << refused.dump();
  refused = post(s, id, "releases", {{"ref", "--upload-pack=x"}}, &status);
  EXPECT_EQ(status, 400) << refused.dump();
  refused = post(s, id, "releases", {{"branch", "main"}}, &status);
  EXPECT_EQ(status, 400) << refused.dump();

  // keep_releases 1: after release #4 only #1 stays kept; #2's machine goes
  job = run_job(s, id, "releases", {{"ref", "v2"}});
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  d = s.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(d["machine"], "ads-" + id + "-r4");
  EXPECT_EQ(notes(d), "alpha\nbeta\n");
  EXPECT_EQ(machine_status("ads-" + id + "-r2"), "not_found");
  EXPECT_EQ(machine_status("ads-" + id), "Stopped");
  rs = releases(s, id);
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[0]["state"], "kept");
  EXPECT_EQ(rs[1]["state"], "removed");
  EXPECT_EQ(rs[3]["state"], "serving");
  refused = post(s, id, "rollback", {{"release", rs[1]["id"]}}, &status);
  EXPECT_EQ(status, 409) << refused.dump();

  // the reconciler knows the kept machine is a release's, not an orphan
  EXPECT_TRUE(problems_of(s, id).empty()) << problems_of(s, id).dump();

  // destroy removes the machines of every release
  s.call("DELETE", "/api/v1/deployments/" + id, nullptr, &status);
  EXPECT_EQ(status, 202);
  EXPECT_EQ(s.wait_for(id, {"destroyed", "failed"}, 120)["state"], "destroyed") << s.log_text(id);
  EXPECT_EQ(machine_status("ads-" + id), "not_found");
  EXPECT_EQ(machine_status("ads-" + id + "-r4"), "not_found");
  EXPECT_TRUE(problems_of(s, id).empty()) << problems_of(s, id).dump();
}

// `ads serve` killed with SIGKILL while a release is installing: the next
// start removes what the release built and fails it; the old release kept
// serving throughout and nothing is left that no record names.
TEST_F(ReleaseTest, KilledMidReleaseTheOldReleaseKeepsServing) {
  // v2-slow: v2 whose install takes a minute, so that the kill lands in it
  git({"checkout", "-q", "-b", "slow", "v2"});
  {
    std::ifstream in(fs::path(repo) / "ads-lab.json");
    json spec = json::parse(in);
    spec["install"].push_back("sleep 60");
    write(fs::path(repo) / "ads-lab.json", spec.dump(2));
  }
  git({"commit", "-q", "-am", "v2, slow"});
  git({"tag", "v2-slow"});
  git({"checkout", "-q", "main"});
  std::string data = (tmp.path / "data").string();
  std::string id, job_id;
  {
    Server s(data, ADS_AGENT_BIN, {}, "2", config);
    id = deploy(s, "v1");
    json d = s.wait_for(id, {"running", "failed"});
    ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
    long status = 0;
    json job = post(s, id, "releases", {{"ref", "v2-slow"}}, &status);
    ASSERT_EQ(status, 202) << job.dump();
    job_id = job["id"];
    for (int i = 0; i < 1200; ++i) {
      job = s.call("GET", "/api/v1/jobs/" + job_id);
      if (job.value("step", "") == "release: installing" || job.value("state", "") == "succeeded" ||
          job.value("state", "") == "failed")
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(job["step"], "release: installing") << job.dump();
    s.kill(SIGKILL);
    EXPECT_EQ(page(d), "version 1\n");  // the old release never stopped serving
  }
  Server s2(data, ADS_AGENT_BIN, {}, "2", config);
  json job = s2.wait_job(job_id);
  EXPECT_EQ(job["state"], "failed");
  EXPECT_NE(job["error"].get<std::string>().find("interrupted"), std::string::npos) << job.dump();
  json d = s2.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(d["state"], "running");
  EXPECT_EQ(d["machine"], "ads-" + id);
  EXPECT_EQ(page(d), "version 1\n");
  EXPECT_EQ(machine_status("ads-" + id + "-r2"), "not_found");
  EXPECT_TRUE(problems_of(s2, id).empty()) << problems_of(s2, id).dump();
  // and the next release works
  long status = 0;
  json again = post(s2, id, "releases", {{"ref", "v2"}}, &status);
  ASSERT_EQ(status, 202) << again.dump();
  again = s2.wait_job(again["id"]);
  ASSERT_EQ(again["state"], "succeeded") << again.dump() << s2.log_text(id);
  d = s2.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(page(d), "version 2\n");
}

}  // namespace

namespace {
// keep_releases_running: the kept machine keeps serving after the switch, and
// a rollback to it needs no start (its lab's start action would refuse a
// second start: the rollback failed with "start failed with exit code 1"
// before the engine looked whether the kept lab still answers).
TEST_F(ReleaseTest, ARollbackToAKeptReleaseStillRunningNeedsNoStart) {
  write(config, R"({"drain_ms": 100, "keep_releases": 1, "keep_releases_running": true})");
  Server s((tmp.path / "data").string(), ADS_AGENT_BIN, {}, "2", config);
  std::string id = deploy(s, "v1");
  json d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  json job = run_job(s, id, "releases", {{"ref", "v2"}});
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(machine_status("ads-" + id), "Running");  // kept, and still running
  job = run_job(s, id, "rollback", json::object());
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  d = s.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(d["machine"], "ads-" + id);
  EXPECT_EQ(page(d), "version 1\n");
  EXPECT_EQ(machine_status("ads-" + id + "-r2"), "Running");
  EXPECT_NE(s.log_text(id).find("machine is running and its lab answers"), std::string::npos);
}
}  // namespace
