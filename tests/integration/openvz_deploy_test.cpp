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
#include "support/build_paths.h"
#include "support/engine_wait.h"
#include "support/openvz_engine.h"

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
    auto providers = ads::test::openvz_providers(host);
    ASSERT_EQ(providers.size(), 1u);
    engine = std::make_unique<ads::Engine>(*store, std::move(providers), ads::test::openvz_engine_options(tmp.path));
    auto st = engine->start();
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  void TearDown() override {
    if (engine) engine->stop();
  }
  // The static example lab submitted to the engine: its id ("" if refused).
  std::string submit_static_lab() {
    ads::DeployRequest r;
    r.source = std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site";
    r.owner = "tester";
    r.admin = true;  // a path on the server: admins only (engine/source_access.h)
    auto sub = engine->submit(r);
    EXPECT_TRUE(sub.ok()) << sub.error().message;
    return sub.ok() ? sub->id : "";
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
  std::string id = submit_static_lab();
  ASSERT_FALSE(id.empty());
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

// The same deploy to `running`, then a search of the deployment's log, the
// commands run on the host and every file of the machine for the provider's
// SSH key and the deployment's agent secret: the secret may be in the agent's
// config file (0600) and nowhere else; the key nowhere. The agent answered
// over TLS with the key derived from that secret (or the deploy would stop
// at starting_agent).
TEST_F(OpenvzDeployTest, ARunningLabHoldsNoProviderKeyAndTheAgentSecretOnlyInItsConfig) {
  std::string id = submit_static_lab();
  ASSERT_FALSE(id.empty());
  auto d = settle(id);
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error << "\n" << log_of(id);
  auto job = engine->operate(id, "test");
  ASSERT_TRUE(job.ok()) << job.error().message;
  d = settle(id);
  ASSERT_EQ(d.secret.size(), 64u);

  std::vector<std::string> key_lines;
  std::ifstream key(host.client_key());
  for (std::string line; std::getline(key, line);)
    if (line.size() >= 40 && line.find("-----") == std::string::npos) key_lines.push_back(line);
  ASSERT_FALSE(key_lines.empty());
  std::string log = log_of(id), calls;
  for (auto& c : host.calls())
    for (auto& a : c) calls += a + " ";
  EXPECT_NE(log.find("agent answers on https://"), std::string::npos) << log;
  for (auto& text : {log, calls}) {
    EXPECT_EQ(text.find(d.secret), std::string::npos);
    for (auto& k : key_lines) EXPECT_EQ(text.find(k), std::string::npos);
  }
  std::vector<std::string> holders;
  int files = 0;
  auto root = host.state_dir() / "ct" / "1002" / "private";
  for (auto it = std::filesystem::recursive_directory_iterator(
           root, std::filesystem::directory_options::skip_permission_denied);
       it != std::filesystem::recursive_directory_iterator(); ++it) {
    if (it->is_symlink() || !it->is_regular_file()) continue;
    if (it->file_size() > (64u << 20)) continue;
    ++files;
    std::ifstream in(it->path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (text.find(d.secret) != std::string::npos) holders.push_back(it->path().string());
    for (auto& k : key_lines) EXPECT_EQ(text.find(k), std::string::npos) << it->path();
  }
  EXPECT_GT(files, 100);  // a whole root file system was searched
  ASSERT_EQ(holders.size(), 1u) << (holders.empty() ? "" : holders[0]);
  EXPECT_EQ(holders[0], (root / "etc/ads-agent/agent.json").string());
  EXPECT_EQ(std::filesystem::status(holders[0]).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  job = engine->operate(id, "destroy");
  ASSERT_TRUE(job.ok());
  d = settle(id);
  EXPECT_EQ(d.state, ads::State::kDestroyed) << d.error;
}

}  // namespace
