// A whole deployment through the openvz provider, to `running` and back:
// real engine, real store, real SSH to the test host, real agent and lab. The
// vzctl stand-in unpacks the OS template from the ads-debian-12 root
// filesystem that scripts/build-image.sh caches (as vzctl unpacks
// /vz/template/cache/T.tar.gz) and runs the container's commands chrooted
// into it, inside the test host's network namespace, at the container's
// address. Not an OpenVZ container (no OpenVZ kernel here): what is real is
// everything on the ADS side and the agent and lab inside.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "engine/engine.h"
#include "http/client.h"
#include "support/engine_wait.h"
#include "support/ssh_host.h"

namespace {
using nlohmann::json;

const char* kRootfs = "/var/cache/ads/images/ads-debian-12.rootfs.tar.gz";

class OpenvzDeployTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(host.error(), "") << "test host";
    if (!std::filesystem::exists(kRootfs)) GTEST_FAIL() << kRootfs << " is missing: run scripts/build-image.sh first";
    std::filesystem::create_directories(host.state_dir() / "template-cache");
    std::filesystem::create_symlink(kRootfs, host.state_dir() / "template-cache" / "debian-12.0-x86_64-minimal.tar.gz");
    auto s = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(s.value());
    auto p = ads::make_provider("openvz", json::parse(host.settings_json(
                                              ",\"templates\":{\"debian-12\":\"debian-12.0-x86_64-minimal\"}")));
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    std::map<std::string, std::unique_ptr<ads::Provider>> providers;
    providers["openvz"] = std::move(p.value());
    ads::EngineOptions o;
    o.work_dir = (tmp.path / "work").string();
    o.backup_dir = (tmp.path / "backups").string();
    o.agent_binary = ADS_AGENT_BIN;
    o.default_provider = "openvz";
    engine = std::make_unique<ads::Engine>(*store, std::move(providers), o);
    auto st = engine->start();
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  void TearDown() override {
    if (engine) engine->stop();
  }
  ads::Deployment settle(const std::string& id) { return ads::test::settle(*store, id, 3000); }
  std::string log_of(const std::string& id) { return ads::test::log_of(*store, id); }
  std::string get(const std::string& url) {
    ads::http::ClientRequest r;
    r.url = url;
    r.timeout_ms = 5000;
    auto res = ads::http::request(r);
    return res && res->status == 200 ? res->body : "";
  }

  ads::test::SshTestHost host;
  ads::test::TempDir tmp;
  std::unique_ptr<ads::Store> store;
  std::unique_ptr<ads::Engine> engine;
};

TEST_F(OpenvzDeployTest, StaticLabRunsIsBackedUpRestoredStoppedStartedAndDestroyed) {
  ads::DeployRequest r;
  r.source = std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site";
  r.owner = "tester";
  auto sub = engine->submit(r);
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  std::string id = sub->id;
  auto d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  std::string prefix = host.subnet().substr(0, host.subnet().size() - 4);
  EXPECT_EQ(d.address, prefix + "2");
  EXPECT_EQ(d.url, "http://" + prefix + "2/");
  EXPECT_NE(get(d.url).find("ADS example lab"), std::string::npos);
  bool set_seen = false;
  for (auto& c : host.calls_of("vzctl"))
    if (c[1] == "set") {
      set_seen = true;
      EXPECT_EQ(c[2], "1002");
      EXPECT_EQ(c[4], "ads-" + id);  // --name
    }
  EXPECT_TRUE(set_seen);

  // backup (a vzdump archive on the host) and restore in place
  auto priv = host.state_dir() / "ct" / "1002" / "private";
  { std::ofstream(priv / "srv/www/marker.txt") << "before"; }
  auto job = engine->operate(id, "backup");
  ASSERT_TRUE(job.ok()) << job.error().message;
  d = settle(id);
  auto backups = store->backups_of(id);
  ASSERT_TRUE(backups.ok());
  ASSERT_EQ(backups->size(), 1u) << log_of(id);
  std::string backup = (*backups)[0].id;
  EXPECT_EQ((*backups)[0].snapshot, "backup-" + backup);
  EXPECT_EQ(host.calls_of("vzdump").size(), 1u);
  { std::ofstream(priv / "srv/www/marker.txt", std::ios::trunc) << "after"; }
  EXPECT_EQ(get(d.url + "marker.txt"), "after");
  job = engine->operate(id, "restore", json{{"backup", backup}});
  ASSERT_TRUE(job.ok()) << job.error().message;
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  EXPECT_EQ(store->get_job(job->id)->state, "succeeded") << log_of(id);
  EXPECT_EQ(host.calls_of("vzrestore").size(), 1u);
  EXPECT_EQ(get(d.url + "marker.txt"), "before");  // the machine came back as it was

  job = engine->operate(id, "stop");
  ASSERT_TRUE(job.ok()) << job.error().message;
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kStopped) << d.error << "\n" << log_of(id);
  EXPECT_EQ(get("http://" + prefix + "2/"), "");

  job = engine->operate(id, "start");
  ASSERT_TRUE(job.ok()) << job.error().message;
  d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  EXPECT_NE(get(d.url).find("ADS example lab"), std::string::npos);

  job = engine->operate(id, "destroy");
  ASSERT_TRUE(job.ok()) << job.error().message;
  d = settle(id);
  EXPECT_EQ(d.state, ads::State::kDestroyed) << d.error << "\n" << log_of(id);
  EXPECT_FALSE(std::filesystem::exists(host.state_dir() / "ct" / "1002"));
  EXPECT_EQ(*store->allocate_address(host.subnet(), "probe"), prefix + "2");  // released
}

}  // namespace
