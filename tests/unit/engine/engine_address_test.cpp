// The engine gives machines of a provider with an address pool (openvz) a
// static address from the store before create, and gives it back when the
// machine is removed: after a failed deploy, and on destroy. Real engine,
// real SQLite store, real openvz provider over SSH to the test host (the
// vzctl stand-in: no OpenVZ kernel, so the agent never answers and the
// deploys fail at starting_agent, which is what these tests need).
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "engine/engine.h"
#include "support/build_paths.h"
#include "support/engine_wait.h"
#include "support/openvz_engine.h"

namespace {
using nlohmann::json;

class EngineAddressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(host.error(), "") << "test host";
    host.add_template("debian-12.0-x86_64-minimal");
    auto s = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(s.value());
  }
  std::unique_ptr<ads::Engine> engine(bool keep_failed) {
    auto providers = ads::test::openvz_providers(host, ",\"start_command\":\"true\"");
    auto o = ads::test::openvz_engine_options(tmp.path);
    o.workers = 2;
    o.jobs_per_owner = 2;  // one owner's two deploys at once (fair share would keep one worker free)
    o.address_timeout = std::chrono::seconds(20);
    o.agent_timeout = std::chrono::milliseconds(500);  // nothing will answer
    o.provider_attempts = 1;
    o.keep_failed = keep_failed;
    auto e = std::make_unique<ads::Engine>(*store, std::move(providers), o);
    auto st = e->start();
    EXPECT_TRUE(st.ok()) << st.error().message;
    return e;
  }
  std::string submit(ads::Engine& e, const std::string& name = "") {
    ads::DeployRequest r;
    r.name = name;  // live labs' names are unique
    r.source = std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site";
    r.owner = "tester";
    r.admin = true;  // a path on the server: admins only (engine/source_access.h)
    auto d = e.submit(r);
    EXPECT_TRUE(d.ok()) << d.error().message;
    return d.ok() ? d->id : "";
  }
  ads::Deployment settle(const std::string& id) { return ads::test::settle(*store, id, 1200); }
  std::string log_of(const std::string& id) { return ads::test::log_of(*store, id); }
  std::string ip(int last) const { return host.subnet().substr(0, host.subnet().size() - 4) + std::to_string(last); }
  // The --ipadd of every `vzctl set`.
  std::vector<std::string> ipadds() const {
    std::vector<std::string> out;
    for (auto& c : host.calls_of("vzctl"))
      for (size_t i = 0; i + 1 < c.size(); ++i)
        if (c[1] == "set" && c[i] == "--ipadd") out.push_back(c[i + 1]);
    return out;
  }

  ads::test::SshTestHost host;
  ads::test::TempDir tmp;
  std::unique_ptr<ads::Store> store;
};

TEST_F(EngineAddressTest, ConcurrentDeploysGetDistinctAddressesReleasedWhenTheyFail) {
  auto e = engine(false);
  std::string a = submit(*e, "lab-a"), b = submit(*e, "lab-b");
  auto da = settle(a), db = settle(b);
  e->stop();
  EXPECT_EQ(da.state, ads::State::kFailed);
  EXPECT_EQ(db.state, ads::State::kFailed);
  EXPECT_EQ(da.failed_step, "starting_agent") << da.error << "\n" << log_of(a);
  // each got its own address from the pool, and the machine was made with it
  auto sent = ipadds();
  EXPECT_EQ(std::set<std::string>(sent.begin(), sent.end()), (std::set<std::string>{ip(2), ip(3)}))
      << log_of(a) << log_of(b);
  EXPECT_NE(log_of(a).find("static address 10.250."), std::string::npos) << log_of(a);
  // the failed machines were removed and their addresses given back
  std::set<std::string> destroyed;
  for (auto& c : host.calls_of("vzctl"))
    if (c[1] == "destroy") destroyed.insert(c[2]);
  EXPECT_EQ(destroyed, (std::set<std::string>{"1002", "1003"}));
  EXPECT_TRUE(std::filesystem::is_empty(host.state_dir() / "ct"));
  EXPECT_EQ(*store->allocate_address(host.subnet(), "probe"), ip(2));
}

TEST_F(EngineAddressTest, AKeptFailedMachineKeepsItsAddressUntilDestroyed) {
  auto e = engine(true);
  std::string id = submit(*e);
  auto d = settle(id);
  ASSERT_EQ(d.state, ads::State::kFailed) << log_of(id);
  EXPECT_EQ(d.machine, "ads-" + id);  // kept for inspection
  // still held: the next owner gets the one after it
  EXPECT_EQ(*store->allocate_address(host.subnet(), "probe"), ip(3));
  ASSERT_TRUE(store->release_addresses("probe").ok());

  auto job = e->operate(id, "destroy");
  ASSERT_TRUE(job.ok()) << job.error().message;
  d = settle(id);
  e->stop();
  EXPECT_EQ(d.state, ads::State::kDestroyed) << d.error << "\n" << log_of(id);
  EXPECT_TRUE(std::filesystem::is_empty(host.state_dir() / "ct"));
  EXPECT_EQ(*store->allocate_address(host.subnet(), "probe"), ip(2));
}

TEST_F(EngineAddressTest, AnExhaustedPoolFailsTheDeployWithAClearError) {
  // take every address of the pool first
  for (int i = 2; i <= 254; ++i) ASSERT_TRUE(store->allocate_address(host.subnet(), "other" + std::to_string(i)).ok());
  auto e = engine(false);
  std::string id = submit(*e);
  auto d = settle(id);
  e->stop();
  EXPECT_EQ(d.state, ads::State::kFailed);
  EXPECT_EQ(d.failed_step, "provisioning");
  EXPECT_NE(d.error.find("every address of " + host.subnet() + " is taken"), std::string::npos) << d.error;
  EXPECT_TRUE(host.calls_of("vzctl").empty()) << "no machine without an address";
}

// The reconciler (`ads doctor`) sees openvz machines through vzlist: one with
// an ADS label the store does not know is an orphan.
TEST_F(EngineAddressTest, ReconcilerFindsAnOrphanOpenvzContainer) {
  auto e = engine(false);
  auto providers = ads::test::openvz_providers(host);
  ASSERT_EQ(providers.size(), 1u);
  auto& p = providers["openvz"];
  ads::MachineSpec m;
  m.name = "ads-01jorphan";
  m.os_key = "debian-12";
  m.address = ip(9);
  m.labels = {{"deployment", "01jorphan"}, {"lab", "x"}};
  ASSERT_TRUE(p->create(m, nullptr).ok());
  auto drift = e->reconcile();
  e->stop();
  ASSERT_TRUE(drift.ok()) << drift.error().message;
  ASSERT_EQ(drift->size(), 1u);
  EXPECT_EQ((*drift)[0].provider, "openvz");
  EXPECT_EQ((*drift)[0].machine, "ads-01jorphan");
  EXPECT_EQ((*drift)[0].deployment_id, "01jorphan");
  EXPECT_NE((*drift)[0].problem.find("orphan"), std::string::npos);
  EXPECT_TRUE(p->destroy("ads-01jorphan").ok());
}

}  // namespace
