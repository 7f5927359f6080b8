// `ads lab try DIR` through a real `ads serve` on real LXD: a lab directory
// checked, then deployed as a throwaway (keep_failed, ttl_s); a good one
// runs and says when it goes; a failed one keeps its machine for inspection
// and prints how to get in, until it expires and the server destroys it; a
// lab with spec errors is not deployed at all.
#include <gtest/gtest.h>

#include <fstream>

#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using namespace ads::test;

class LabTryTest : public LxdServerTest {
 protected:
  int lab_try(Server& s, const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv = {ADS_CLI_BIN, "--server", s.base(), "--token", s.token(), "lab", "try"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, out);
  }
  // The deployment named `name` (its containers removed after the test).
  json named(Server& s, const std::string& name) {
    json list = s.call("GET", "/api/v1/deployments?name=" + name);
    if (list["deployments"].size() != 1u) return json::object();
    json d = list["deployments"][0];
    guard.ids.insert(d["id"]);
    return d;
  }
};

TEST_F(LabTryTest, AGoodLabRunsAndSaysWhenItGoes) {
  Server s((tmp.path / "data").string());
  std::string out;
  int rc = lab_try(s, {kSource + "/examples/labs/static-site", "--name", "try-ok", "--ttl", "2h"}, &out);
  json d = named(s, "try-ok");
  ASSERT_EQ(rc, 0) << out;
  ASSERT_EQ(d.value("state", ""), "running") << d.dump();
  EXPECT_EQ(d["keep_failed"], true);
  ASSERT_TRUE(d.contains("expires_at")) << d.dump();
  EXPECT_NE(out.find("lab try-ok is running at http://"), std::string::npos) << out;
  EXPECT_NE(out.find("a throwaway: destroyed at " + d["expires_at"].get<std::string>()), std::string::npos) << out;
  EXPECT_NE(out.find("] installing"), std::string::npos) << out;  // the steps and the log as it goes
  EXPECT_NE(out.find("ads | lab spec v2: debian-12"), std::string::npos) << out;
}

TEST_F(LabTryTest, AFailedLabKeepsItsMachineForInspectionUntilItExpires) {
  fs::path cfg = tmp.path / "config.json";
  std::ofstream(cfg) << json{{"cleanup_interval_s", 1}}.dump();
  Server s((tmp.path / "data").string(), ADS_AGENT_BIN, {}, "2", cfg.string());
  std::string dir =
      lab_with_spec("static-site", [](json& spec) { spec["actions"]["test"] = {"echo the lab is not right; exit 3"}; });
  std::string out;
  int rc = lab_try(s, {dir, "--name", "try-bad"}, &out);
  json d = named(s, "try-bad");
  EXPECT_EQ(rc, 1) << out;
  ASSERT_EQ(d.value("state", ""), "failed") << d.dump() << out;
  std::string id = d["id"], machine = d["machine"];
  ASSERT_FALSE(machine.empty()) << "the machine was not kept: " << d.dump();
  EXPECT_NE(out.find("the lab is not right"), std::string::npos) << out;
  EXPECT_NE(out.find("its machine " + machine + " is kept for inspection until " + d["expires_at"].get<std::string>()),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("ads exec " + id + " -- "), std::string::npos) << out;
  EXPECT_NE(out.find("ads destroy " + id), std::string::npos) << out;
  std::string ignored;
  EXPECT_EQ(run({"lxc", "info", machine}, &ignored), 0) << "the kept machine is gone";
  // and one can look inside it
  rc = run({ADS_CLI_BIN, "--server", s.base(), "--token", s.token(), "exec", id, "--", "cat", "/srv/www/index.html"},
           &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("ADS example lab"), std::string::npos) << out;

  // time passes: its expiry, moved into the past in the store, brings the server to destroy it
  rc = run({"sqlite3", "-cmd", ".timeout 10000", (tmp.path / "data" / "ads.db").string(),
            "UPDATE deployments SET expires_ms = 1 WHERE id = '" + id + "'"},
           &out);
  ASSERT_EQ(rc, 0) << out;
  json gone = s.wait_for(id, {"destroyed"}, 120);
  EXPECT_EQ(gone.value("state", ""), "destroyed") << gone.dump();
  EXPECT_NE(run({"lxc", "info", machine}, &ignored), 0) << "the machine outlived its deployment";
  std::string log = s.log_text(id);
  EXPECT_NE(log.find("the deployment expired at 1970-01-01T00:00:00.001Z (ttl): destroying it"), std::string::npos)
      << log;
}

TEST_F(LabTryTest, ALabWithSpecErrorsIsNotDeployedAndABadTtlIsAUsageError) {
  Server s((tmp.path / "data").string());
  std::string dir = lab_with_spec("static-site", [](json& spec) { spec["os"]["version"] = "not a version"; });
  std::string out;
  EXPECT_EQ(lab_try(s, {dir, "--name", "try-spec"}, &out), 1) << out;
  EXPECT_NE(out.find("os.version"), std::string::npos) << out;
  EXPECT_NE(out.find("not deployed: 1 problem(s)"), std::string::npos) << out;
  EXPECT_EQ(lab_try(s, {kSource + "/examples/labs/static-site", "--ttl", "3w"}, &out), 2) << out;
  EXPECT_NE(out.find("ttl: must be a time such as 90s, 30m, 2h or 1d"), std::string::npos) << out;
  EXPECT_EQ(lab_try(s, {(tmp.path / "nothing-here").string()}, &out), 2) << out;
  EXPECT_NE(out.find("is not a directory"), std::string::npos) << out;
  json list = s.call("GET", "/api/v1/deployments");
  EXPECT_EQ(list["deployments"].size(), 0u) << list.dump();
}

}  // namespace
