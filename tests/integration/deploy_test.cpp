// End-to-end deployments into real LXD containers through a real `ads serve`
// (SQLite store in a temp dir). Needs scripts/lxd-host.sh and
// scripts/build-image.sh to have run (scripts/test.sh does that).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/protocol.h"
#include "http/client.h"
#include "providers/lxd/lxd_provider.h"
#include "support/ads_server.h"
#include "support/build_paths.h"

namespace fs = std::filesystem;
using ads::test::TempDir;
using nlohmann::json;

namespace {
using namespace ads::test;

class DeployTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ads::LxdProvider p({});
    if (!p.ping()) GTEST_FAIL() << "LXD is not running: run scripts/lxd-host.sh first";
  }
  TempDir tmp;
  ContainerGuard guard;
};

TEST_F(DeployTest, StaticLabFromGitTagServesItsPageAndIsDestroyed) {
  std::string repo = make_repo(tmp, kSource + "/examples/labs/static-site", "static-site");
  Server s((tmp.path / "data").string());
  ASSERT_FALSE(s.base().empty());
  json req = {{"source", repo}, {"ref", "v1"}, {"name", "cse02"}};
  long status = 0;
  json d = s.call("POST", "/api/v1/deployments", &req, &status);
  ASSERT_EQ(status, 202) << d.dump();
  std::string id = d["id"];
  guard.ids.insert(id);
  EXPECT_EQ(d["name"], "cse02");
  EXPECT_EQ(d["state"], "accepted");

  d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << "\n" << s.log_text(id);
  EXPECT_EQ(d["commit"].get<std::string>().size(), 40u);
  EXPECT_EQ(d["machine"], "ads-" + id);
  ASSERT_FALSE(d["url"].get<std::string>().empty());
  std::string page = http_get(d["url"]);
  EXPECT_NE(page.find("ADS example lab"), std::string::npos) << page;
  std::string log = s.log_text(id);
  EXPECT_NE(log.find("step installing"), std::string::npos) << log;
  EXPECT_NE(log.find("$ cp -r site/. /srv/www/"), std::string::npos) << log;

  // the agent: not sent when the image carries this very binary (an image
  // built from this tree, as scripts/test.sh does), sent when it differs
  {
    std::ifstream in(ADS_AGENT_BIN, std::ios::binary);
    const std::string ours((std::istreambuf_iterator<char>(in)), {});
    long status = 0;
    auto listed = ads::LxdProvider::parse_image_manifest(lxd_file("ads-" + id, ads::kImageManifest, &status));
    ASSERT_TRUE(status == 200 || status == 404) << status;
    if (listed["/usr/local/bin/ads-agent"] == ads::agent::sha256_hex(ours)) {
      EXPECT_NE(log.find("/usr/local/bin/ads-agent is in the image already"), std::string::npos) << log;
      EXPECT_EQ(log.find("placing /usr/local/bin/ads-agent"), std::string::npos) << log;
    } else {
      EXPECT_NE(log.find("placing /usr/local/bin/ads-agent"), std::string::npos) << log;
    }
  }

  auto m = lxd()->inspect("ads-" + id);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, "Running");
  EXPECT_EQ(m->labels["deployment"], id);
  EXPECT_EQ(m->labels["lab"], "cse02");

  // health figures are the container's own: its memory is the lab's 256mb
  // (LXD's limits.memory "256MB" = 256,000,000 bytes, served by lxcfs as
  // MemTotal), and its uptime counts from the container's start, not the host's
  json h = s.call("GET", "/api/v1/deployments/" + id + "/health", nullptr, &status);
  ASSERT_EQ(status, 200) << h.dump();
  EXPECT_EQ(h["memory"]["total_kb"], 256000000 / 1024) << h.dump();
  double host_up = 0;
  std::ifstream("/proc/uptime") >> host_up;
  EXPECT_LT(h["uptime_s"].get<double>(), 600.0) << h.dump() << " (host up " << host_up << " s)";
  EXPECT_LT(h["uptime_s"].get<double>(), host_up) << h.dump();

  d = s.call("DELETE", "/api/v1/deployments/" + id, nullptr, &status);
  EXPECT_EQ(status, 202);
  d = s.wait_for(id, {"destroyed", "failed"}, 60);
  EXPECT_EQ(d["state"], "destroyed") << d.dump();
  auto gone = lxd()->inspect("ads-" + id);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, "not_found");
}

TEST_F(DeployTest, SeedFormatLabFromPlainDirectoryAndStateSurvivesRestart) {
  std::string data = (tmp.path / "data").string();
  std::string id;
  {
    Server s(data);
    json req = {{"source", kSource + "/examples/labs/seed-lab"}};
    long status = 0;
    json d = s.call("POST", "/api/v1/deployments", &req, &status);
    ASSERT_EQ(status, 202) << d.dump();
    id = d["id"];
    guard.ids.insert(id);
    EXPECT_EQ(d["name"], "seed-lab");
    d = s.wait_for(id, {"running", "failed"});
    ASSERT_EQ(d["state"], "running") << d.dump() << "\n" << s.log_text(id);
    EXPECT_NE(http_get(d["url"]).find("Optics Bench"), std::string::npos);
    std::string log = s.log_text(id);
    // v1 phases ran in the seed system's order
    auto pre = log.find("$ mkdir -p ../build"), init = log.find("$ cp -r ../build/. /var/www/html/");
    ASSERT_NE(pre, std::string::npos) << log;
    ASSERT_NE(init, std::string::npos) << log;
    EXPECT_LT(pre, init);
  }
  // a new server process on the same data dir still knows the deployment
  Server s2(data);
  json d = s2.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(d["state"], "running");
  json list = s2.call("GET", "/api/v1/deployments");
  ASSERT_EQ(list["deployments"].size(), 1u);
  EXPECT_EQ(list["deployments"][0]["id"], id);
  s2.call("DELETE", "/api/v1/deployments/" + id);
  EXPECT_EQ(s2.wait_for(id, {"destroyed", "failed"}, 60)["state"], "destroyed");
}

TEST_F(DeployTest, FailingInstallStepEndsFailedWithItsLogAndRemovesTheContainer) {
  fs::path lab = tmp.path / "broken";
  fs::create_directories(lab);
  std::ofstream(lab / "ads-lab.json") << R"({"ads":2,"os":{"name":"debian","version":"12"},
    "install":["echo about to fail","echo boom-on-stderr >&2; exit 7","echo never-runs"],
    "actions":{"start":["true"]}})";
  Server s((tmp.path / "data").string());
  json req = {{"source", lab.string()}, {"name", "broken"}};
  json d = s.call("POST", "/api/v1/deployments", &req);
  std::string id = d["id"];
  guard.ids.insert(id);
  d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "failed");
  EXPECT_EQ(d["failed_step"], "installing");
  EXPECT_NE(d["error"].get<std::string>().find("exit code 7"), std::string::npos) << d.dump();
  std::string log = s.log_text(id);
  EXPECT_NE(log.find("about to fail"), std::string::npos) << log;
  EXPECT_NE(log.find("boom-on-stderr"), std::string::npos) << log;
  EXPECT_EQ(log.find("never-runs\n"), std::string::npos) << log;
  EXPECT_NE(log.find("removed machine ads-" + id), std::string::npos) << log;
  EXPECT_EQ(lxd()->inspect("ads-" + id).error().code, "not_found");
  EXPECT_EQ(d["machine"], "");
}

TEST_F(DeployTest, UnknownGitUrlAndUnknownRefFailAtFetching) {
  std::string repo = make_repo(tmp, kSource + "/examples/labs/static-site", "lab");
  Server s((tmp.path / "data").string());
  json a = {{"source", (tmp.path / "no-such-repo.git").string()}, {"ref", "main"}};
  json b = {{"source", repo}, {"ref", "no-such-tag"}};
  std::string ida = s.call("POST", "/api/v1/deployments", &a)["id"];
  std::string idb = s.call("POST", "/api/v1/deployments", &b)["id"];
  json da = s.wait_for(ida, {"running", "failed"}, 60);
  json db = s.wait_for(idb, {"running", "failed"}, 60);
  EXPECT_EQ(da["state"], "failed");
  EXPECT_EQ(da["failed_step"], "fetching");
  EXPECT_NE(da["error"].get<std::string>().find("cannot fetch"), std::string::npos) << da.dump();
  EXPECT_EQ(db["state"], "failed");
  EXPECT_EQ(db["failed_step"], "fetching");
  EXPECT_NE(db["error"].get<std::string>().find("no-such-tag"), std::string::npos) << db.dump();
  EXPECT_EQ(da["machine"], "");
  EXPECT_EQ(db["machine"], "");
}

TEST_F(DeployTest, MalformedSpecFailsAtValidatingNamingTheField) {
  fs::path lab = tmp.path / "badspec";
  fs::create_directories(lab / "scripts");
  std::ofstream(lab / "scripts" / "labspec.json") << R"({"lab":{"runtime_requirements":{"platform":
    {"os":"ubuntu","osVersion":"14","memory":{"min_required":"lots"}}}}})";
  Server s((tmp.path / "data").string());
  json req = {{"source", lab.string()}};
  std::string id = s.call("POST", "/api/v1/deployments", &req)["id"];
  json d = s.wait_for(id, {"running", "failed"}, 60);
  EXPECT_EQ(d["state"], "failed");
  EXPECT_EQ(d["failed_step"], "validating");
  EXPECT_NE(d["error"].get<std::string>().find("lab.runtime_requirements.platform.memory.min_required"),
            std::string::npos)
      << d.dump();
  EXPECT_EQ(d["machine"], "");
}

TEST_F(DeployTest, UnreachableAgentTimesOutWithClearErrorAndCleansUp) {
  // An "agent" that never listens: the machine boots, nothing answers on 9089.
  fs::path fake = tmp.path / "fake-agent";
  std::ofstream(fake) << "#!/bin/sh\nexec sleep 1000\n";
  fs::permissions(fake, fs::perms::owner_all);
  Server s((tmp.path / "data").string(), fake.string(), {"ADS_AGENT_TIMEOUT_MS=4000"});
  json req = {{"source", kSource + "/examples/labs/static-site"}};
  std::string id = s.call("POST", "/api/v1/deployments", &req)["id"];
  guard.ids.insert(id);
  json d = s.wait_for(id, {"running", "failed"}, 120);
  EXPECT_EQ(d["state"], "failed");
  EXPECT_EQ(d["failed_step"], "starting_agent");
  EXPECT_NE(d["error"].get<std::string>().find(":9089"), std::string::npos) << d.dump();
  EXPECT_EQ(lxd()->inspect("ads-" + id).error().code, "not_found");
}

TEST_F(DeployTest, UnreachableProviderIsRetriedThenFailsWithAClearError) {
  fs::path cfg = tmp.path / "ads.json";
  std::ofstream(cfg) << R"({"providers": {"lxd": {"socket": "/nonexistent/lxd.socket"}}})";
  Server s((tmp.path / "data").string(), ADS_AGENT_BIN, {}, "1", cfg.string());
  json req = {{"source", kSource + "/examples/labs/static-site"}};
  std::string id = s.call("POST", "/api/v1/deployments", &req)["id"];
  json d = s.wait_for(id, {"running", "failed"}, 60);
  EXPECT_EQ(d["state"], "failed");
  EXPECT_EQ(d["failed_step"], "provisioning");
  EXPECT_NE(d["error"].get<std::string>().find("LXD is not reachable on /nonexistent/lxd.socket"), std::string::npos)
      << d.dump();
  std::string log = s.log_text(id);
  EXPECT_NE(log.find("trying again in 500 ms (attempt 2 of 3)"), std::string::npos) << log;
  EXPECT_NE(log.find("trying again in 1000 ms (attempt 3 of 3)"), std::string::npos) << log;
  EXPECT_EQ(log.find("attempt 4"), std::string::npos) << log;
}

TEST_F(DeployTest, ServeRefusesABadConfigNamingTheSetting) {
  fs::path cfg = tmp.path / "ads.json";
  std::ofstream(cfg) << R"({"providers": {"lxd": {"socket": 42}}})";
  std::string out;
  EXPECT_EQ(run({ADS_CLI_BIN, "serve", "--config", cfg.string(), "--data-dir", tmp.str()}, &out), 2);
  EXPECT_NE(out.find("providers.lxd.socket: must be a string"), std::string::npos) << out;
  std::ofstream(cfg) << R"({"workers": 0})";
  EXPECT_EQ(run({ADS_CLI_BIN, "serve", "--config", cfg.string(), "--data-dir", tmp.str()}, &out), 2);
  EXPECT_NE(out.find("workers"), std::string::npos) << out;
  std::ofstream(cfg) << R"({"providers": {"vmware": {}}})";
  EXPECT_EQ(run({ADS_CLI_BIN, "serve", "--config", cfg.string(), "--data-dir", tmp.str()}, &out), 2);
  EXPECT_NE(out.find("unknown provider \"vmware\""), std::string::npos) << out;
}

}  // namespace
