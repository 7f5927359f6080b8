// Several `ads serve` processes on one PostgreSQL (started by the test on
// loopback): they share deployments, users and jobs; jobs are claimed with
// leases, and when one server is killed (SIGKILL) mid-deployment another
// takes the job over once the lease lapses and applies the recovery rules (a
// deploy mid-way is deployed again from the start, once; an idempotent job is
// run again; nothing is left half-made).
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <regex>

#include "support/ads_server.h"
#include "support/build_paths.h"
#include "support/postgres.h"

namespace {
using namespace ads::test;

class MultiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ads::LxdProvider p({});
    if (!p.ping()) GTEST_FAIL() << "LXD is not running: run scripts/lxd-host.sh first";
    ASSERT_TRUE(pg.ok()) << "cannot start PostgreSQL: " << pg.error();
    url = pg.fresh_database();
    ASSERT_FALSE(url.empty()) << pg.error();
  }
  // A config file for one server: the shared store, its id, a short lease.
  std::string config(const std::string& server_id) {
    std::string path = (tmp.path / (server_id + ".json")).string();
    json c = {{"store", {{"kind", "postgres"}, {"url", url}}}, {"server_id", server_id}, {"lease_ms", 3000}};
    std::ofstream(path) << c.dump();
    return path;
  }
  std::string deploy(Server& s, const std::string& source, const std::string& name) {
    json req = {{"source", source}, {"name", name}};
    json d = s.call("POST", "/api/v1/deployments", &req);
    std::string id = d.value("id", "");
    EXPECT_FALSE(id.empty()) << d.dump();
    guard.ids.insert(id);
    return id;
  }
  // The value of one sample of GET /metrics, or -1.
  double metric(Server& s, const std::string& sample) {
    ads::http::ClientRequest r;
    r.url = s.base() + "/metrics";
    r.headers = s.auth();
    auto res = ads::http::request(r);
    if (!res) return -1;
    auto pos = res->body.find("\n" + sample + " ");
    if (pos == std::string::npos) return -1;
    return std::stod(res->body.substr(pos + sample.size() + 2));
  }

  TempDir tmp;
  PostgresServer pg;
  std::string url;
  ContainerGuard guard;
};

TEST_F(MultiServerTest, TwoServersShareStateAndTheSurvivorDeploysAgainAKilledServersDeployment) {
  fs::path slow = tmp.path / "slow";
  fs::create_directories(slow);
  std::ofstream(slow / "ads-lab.json") << R"({"ads":2,"os":{"name":"debian","version":"12"},
    "install":["echo installing","sleep 300"],"actions":{"start":["true"]}})";

  auto a = std::make_unique<Server>((tmp.path / "a").string(), ADS_AGENT_BIN, std::vector<std::string>{}, "2",
                                    config("ads-a"));
  ASSERT_FALSE(a->base().empty()) << "server a did not start";
  ASSERT_FALSE(a->token().empty());
  // server a alone: it claims the slow deployment and works on it
  std::string slow_id = deploy(*a, slow.string(), "slow");
  ASSERT_EQ(a->wait_for(slow_id, {"installing", "failed"}, 180)["state"], "installing") << a->log_text(slow_id);

  // server b on the same store: same users (a's token works), same deployments
  Server b((tmp.path / "b").string(), ADS_AGENT_BIN, {}, "2", config("ads-b"));
  ASSERT_FALSE(b.base().empty()) << "server b did not start";
  EXPECT_FALSE(fs::exists(tmp.path / "b" / "admin.token"));  // the admin exists already
  b.use_token(a->token());
  EXPECT_EQ(b.call("GET", "/api/v1/deployments/" + slow_id)["state"], "installing");
  json jobs = b.call("GET", "/api/v1/deployments/" + slow_id + "/jobs")["jobs"];
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["state"], "running");

  // a deployment asked of b runs (on whichever server claims it) and both see it
  std::string web = deploy(b, kSource + "/examples/labs/static-site", "web");
  json d = b.wait_for(web, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << b.log_text(web);
  EXPECT_NE(http_get(d["url"]).find("ADS example lab"), std::string::npos);
  EXPECT_EQ(a->call("GET", "/api/v1/deployments/" + web)["state"], "running");

  // kill a mid-deployment: b takes the job over once a's lease lapses,
  // removes a's container and deploys again from the start. The lab is
  // fetched again, so a quick install now lets that second run finish.
  EXPECT_EQ(b.call("GET", "/api/v1/deployments/" + slow_id)["state"], "installing");
  std::ofstream(slow / "ads-lab.json", std::ios::trunc) << R"({"ads":2,"os":{"name":"debian","version":"12"},
    "install":["echo installing again","mkdir -p /srv/w","echo ok > /srv/w/index.html"],
    "actions":{"start":["busybox start-stop-daemon -S -b -m -p /run/w.pid -x /bin/busybox -- httpd -f -p 80 -h /srv/w"]}})";
  a->kill(SIGKILL);
  a.reset();
  json f = b.wait_for(slow_id, {"running", "failed"}, 240);
  std::string log = b.log_text(slow_id);
  ASSERT_EQ(f["state"], "running") << f.dump() << log;
  EXPECT_NE(log.find("taken over by server ads-b; removing what it made and deploying again from the start"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("removed machine ads-" + slow_id), std::string::npos) << log;
  EXPECT_NE(log.find("installing again"), std::string::npos) << log;
  EXPECT_EQ(lxd()->inspect("ads-" + slow_id)->status, "Running");
  jobs = b.call("GET", "/api/v1/deployments/" + slow_id + "/jobs")["jobs"];
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["state"], "succeeded");
  EXPECT_EQ(jobs[0]["attempts"], 2);

  // b's metrics count what the shared store holds
  EXPECT_EQ(metric(b, "ads_deployments{state=\"running\"}"), 2);
  EXPECT_EQ(metric(b, "ads_deployments{state=\"failed\"}"), 0);
  EXPECT_EQ(metric(b, "ads_jobs_running"), 0);

  // and b still does the work: destroy the web deployment
  long status = 0;
  b.call("DELETE", "/api/v1/deployments/" + web, nullptr, &status);
  EXPECT_EQ(status, 202);
  EXPECT_EQ(b.wait_for(web, {"destroyed", "failed"}, 120)["state"], "destroyed");
}

TEST_F(MultiServerTest, AnIdempotentJobOfAKilledServerIsResumedByTheOther) {
  // the static site, with a slow test action
  fs::path lab = tmp.path / "slow-test";
  fs::copy(kSource + "/examples/labs/static-site", lab, fs::copy_options::recursive);
  json spec = json::parse(std::ifstream(lab / "ads-lab.json"));
  spec["actions"]["test"] = {"sleep 20", "busybox wget -q -O - http://127.0.0.1/ | grep -q 'ADS example lab'"};
  std::ofstream(lab / "ads-lab.json") << spec.dump();

  auto a = std::make_unique<Server>((tmp.path / "a").string(), ADS_AGENT_BIN, std::vector<std::string>{}, "2",
                                    config("ads-a"));
  ASSERT_FALSE(a->base().empty()) << "server a did not start";
  std::string id = deploy(*a, lab.string(), "slow-test");
  ASSERT_EQ(a->wait_for(id, {"running", "failed"})["state"], "running") << a->log_text(id);
  long status = 0;
  json job = a->call("POST", "/api/v1/deployments/" + id + "/test", nullptr, &status);
  ASSERT_EQ(status, 202) << job.dump();
  std::string job_id = job["id"];
  json j;
  for (int i = 0; i < 240; ++i) {  // until a is inside the lab's test
    j = a->call("GET", "/api/v1/jobs/" + job_id);
    if (j.value("step", "") == "running the lab's test") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(j["step"], "running the lab's test") << j.dump();

  Server b((tmp.path / "b").string(), ADS_AGENT_BIN, {}, "2", config("ads-b"));
  ASSERT_FALSE(b.base().empty()) << "server b did not start";
  b.use_token(a->token());
  a->kill(SIGKILL);
  a.reset();
  json done = b.wait_job(job_id, 180);
  EXPECT_EQ(done["state"], "succeeded") << done.dump() << b.log_text(id);
  EXPECT_EQ(done["attempts"], 2) << done.dump();  // once on a, again on b
  EXPECT_NE(b.log_text(id).find("taken over by server ads-b"), std::string::npos) << b.log_text(id);
  EXPECT_EQ(b.call("GET", "/api/v1/deployments/" + id)["state"], "running");

  b.call("DELETE", "/api/v1/deployments/" + id, nullptr, &status);
  EXPECT_EQ(status, 202);
  EXPECT_EQ(b.wait_for(id, {"destroyed", "failed"}, 120)["state"], "destroyed");
}

}  // namespace
