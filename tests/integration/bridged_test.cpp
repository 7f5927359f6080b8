// LXD containers on a "LAN" through a host bridge (nictype bridged), as
// release 1.0.4 of the original asked: a DHCP lease from that LAN's server,
// or a static address from the pool. The LAN is made here: a bridge on the
// host (10.252.X.1/24, standing for the host's own LAN address) and a network
// namespace plugged into it that runs dnsmasq (10.252.X.254, DHCP
// .100-.150, router and DNS .254, which forwards nothing). Real LXD, real
// image, real dnsmasq; everything removed at scope exit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>

#include "agent/client.h"
#include "agent/protocol.h"
#include "engine/engine.h"
#include "http/client.h"
#include "providers/lxd/lxd_provider.h"
#include "store/store.h"
#include "support/build_paths.h"
#include "support/engine_wait.h"
#include "support/process.h"

namespace {
using nlohmann::json;
using namespace ads::test;

class Lan {
 public:
  Lan() { error_ = setup(); }
  ~Lan() {
    dnsmasq_.reset();
    if (ns_made_) run({"ip", "netns", "del", ns_});
    if (veth_made_) run({"ip", "link", "del", veth_host_});
    if (bridge_made_) run({"ip", "link", "del", bridge_});
  }
  const std::string& error() const { return error_; }
  const std::string& bridge() const { return bridge_; }
  std::string net() const { return net_; }  // "10.252.X."
  std::string leases() const {
    std::ifstream in(dir_.path / "leases");
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

 private:
  static int run(const std::vector<std::string>& argv) {
    std::string out;
    return ads::test::run(argv, &out);
  }
  std::string must(const std::vector<std::string>& argv) {
    std::string out;
    if (ads::test::run(argv, &out) == 0) return "";
    std::string cmd;
    for (auto& a : argv) cmd += a + " ";
    return "`" + cmd + "` failed: " + out;
  }
  std::string setup() {
    static std::atomic<int> counter{0};
    std::string tag = std::to_string(getpid() % 1000000) + "n" + std::to_string(counter++);
    bridge_ = "adsl" + tag;
    veth_host_ = "adsv" + tag;
    veth_ns_ = "adsw" + tag;
    ns_ = "ads-lan-" + tag;
    int x = -1;
    for (int i = 0; i < 250; ++i) {
      int cand = static_cast<int>((getpid() + i) % 250) + 1;
      std::string out;
      ads::test::run({"ip", "-4", "-o", "addr", "show", "to", "10.252." + std::to_string(cand) + ".0/24"}, &out);
      if (out.empty()) {
        x = cand;
        break;
      }
    }
    if (x < 0) return "no free 10.252.X.0/24";
    net_ = "10.252." + std::to_string(x) + ".";
    if (auto e = must({"ip", "link", "add", "name", bridge_, "type", "bridge"}); !e.empty()) return e;
    bridge_made_ = true;
    if (auto e = must({"ip", "netns", "add", ns_}); !e.empty()) return e;
    ns_made_ = true;
    if (auto e = must({"ip", "link", "add", veth_host_, "type", "veth", "peer", "name", veth_ns_}); !e.empty())
      return e;
    veth_made_ = true;
    for (const auto& argv :
         std::vector<std::vector<std::string>>{{"ip", "addr", "add", net_ + "1/24", "dev", bridge_},
                                               {"ip", "link", "set", bridge_, "up"},
                                               {"ip", "link", "set", veth_host_, "master", bridge_},
                                               {"ip", "link", "set", veth_host_, "up"},
                                               {"ip", "link", "set", veth_ns_, "netns", ns_},
                                               {"ip", "-n", ns_, "addr", "add", net_ + "254/24", "dev", veth_ns_},
                                               {"ip", "-n", ns_, "link", "set", veth_ns_, "up"},
                                               {"ip", "-n", ns_, "link", "set", "lo", "up"}}) {
      if (auto e = must(argv); !e.empty()) return e;
    }
    dnsmasq_ = std::make_unique<Child>(std::vector<std::string>{
        "ip", "netns", "exec", ns_, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
        "--user=root", "--bind-interfaces", "--interface=" + veth_ns_,
        "--dhcp-range=" + net_ + "100," + net_ + "150,255.255.255.0,10m", "--dhcp-option=option:router," + net_ + "254",
        "--dhcp-option=option:dns-server," + net_ + "254", "--dhcp-authoritative",
        "--dhcp-leasefile=" + (dir_.path / "leases").string(), "--pid-file=" + (dir_.path / "dnsmasq.pid").string()});
    // ready once it wrote its pid file
    for (int i = 0; i < 200 && !std::filesystem::exists(dir_.path / "dnsmasq.pid"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!std::filesystem::exists(dir_.path / "dnsmasq.pid")) return "dnsmasq did not start";
    return "";
  }

  TempDir dir_;
  std::string bridge_, veth_host_, veth_ns_, ns_, net_, error_;
  bool bridge_made_ = false, ns_made_ = false, veth_made_ = false;
  std::unique_ptr<Child> dnsmasq_;
};

class BridgedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ads::LxdProvider p({});
    if (!p.ping()) GTEST_FAIL() << "LXD is not running: run scripts/lxd-host.sh first";
    ASSERT_EQ(lan.error(), "");
  }
  void TearDown() override {
    for (auto& [p, name] : made) (void)p->destroy(name);
  }
  // Owned by the fixture: TearDown uses them after the test body.
  ads::Provider* provider(const json& nic) {
    auto p = ads::make_provider("lxd", json{{"nic", nic}});
    EXPECT_TRUE(p.ok()) << p.error().to_string();
    providers.push_back(std::move(p.value()));
    return providers.back().get();
  }
  std::string name(const std::string& what) { return "ads-" + what + "-" + std::to_string(getpid()); }
  // Creates and starts `m` on `p` (removed at teardown) and waits for its address.
  ads::Result<std::string> up(ads::Provider* p, const ads::MachineSpec& m) {
    made.push_back({p, m.name});
    if (auto st = p->create(m, nullptr); !st) return st.error();
    if (auto st = p->start(m.name); !st) return st.error();
    return p->wait_address(m.name, std::chrono::seconds(60));
  }

  Lan lan;
  std::vector<std::unique_ptr<ads::Provider>> providers;
  std::vector<std::pair<ads::Provider*, std::string>> made;
};

TEST_F(BridgedTest, DhcpLeaseFromTheLansServer) {
  auto p = provider({{"type", "bridged"}, {"parent", lan.bridge()}});
  ads::MachineSpec m;
  m.name = name("dhcp");
  m.os_key = "debian-12";
  m.labels = {{"test", "bridged"}};
  auto addr = up(p, m);
  ASSERT_TRUE(addr.ok()) << addr.error().message;
  ASSERT_EQ(addr->rfind(lan.net(), 0), 0u) << *addr << " is not on the LAN " << lan.net() << "0/24";
  int last = std::stoi(addr->substr(lan.net().size()));
  EXPECT_GE(last, 100);
  EXPECT_LE(last, 150);
  EXPECT_NE(lan.leases().find(" " + *addr + " "), std::string::npos) << "dnsmasq leases:\n" << lan.leases();
}

// macvlan on the LAN's interface (here the bridge itself): the same lease.
// (The host cannot talk to its own macvlan children, so only the lease and
// the address LXD reports are checked.)
TEST_F(BridgedTest, MacvlanDhcpLeaseFromTheLansServer) {
  auto p = provider({{"type", "macvlan"}, {"parent", lan.bridge()}});
  ads::MachineSpec m;
  m.name = name("macvlan");
  m.os_key = "debian-12";
  auto addr = up(p, m);
  ASSERT_TRUE(addr.ok()) << addr.error().message;
  ASSERT_EQ(addr->rfind(lan.net(), 0), 0u) << *addr;
  EXPECT_NE(lan.leases().find(" " + *addr + " "), std::string::npos) << "dnsmasq leases:\n" << lan.leases();
}

TEST_F(BridgedTest, StaticAddressFromThePoolReachableOnTheLan) {
  std::string subnet = lan.net() + "0/24";
  auto p =
      provider({{"type", "bridged"}, {"parent", lan.bridge()}, {"subnet", subnet}, {"gateway", lan.net() + "254"}});
  EXPECT_EQ(p->address_pool(), subnet);
  // the address comes from the store, as the engine takes it
  TempDir tmp;
  auto store = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
  ASSERT_TRUE(store.ok());
  auto address = (*store)->allocate_address(subnet, "static-test");
  ASSERT_TRUE(address.ok()) << address.error().message;
  EXPECT_EQ(*address, lan.net() + "2");

  ads::MachineSpec m;
  m.name = name("static");
  m.os_key = "debian-12";
  m.address = *address;
  std::ifstream agent(ADS_AGENT_BIN, std::ios::binary);
  std::string secret(64, 'a');
  json cfg = {{"secret", secret},
              {"port", ads::agent::kAgentPort},
              {"host", "0.0.0.0"},
              {"lab_dir", "/opt/lab"},
              {"command_timeout_s", 60}};
  m.files = {{"/usr/local/bin/ads-agent", std::string((std::istreambuf_iterator<char>(agent)), {}), 0755},
             {"/etc/ads-agent/agent.json", cfg.dump(), 0600}};
  auto addr = up(p, m);
  ASSERT_TRUE(addr.ok()) << addr.error().message;
  EXPECT_EQ(*addr, *address);  // not a lease, although the LAN's DHCP server answers
  // the host reaches the agent at that address through the bridge
  ads::agent::AgentClient client(ads::agent::AgentClient::url_for(*addr), secret);
  auto ready = client.wait_ready(std::chrono::seconds(30));
  EXPECT_TRUE(ready.ok()) << ready.error().message;
  EXPECT_EQ(lan.leases().find(" " + *addr + " "), std::string::npos);
}

// The whole 1.0.4 case through the engine: a lab deployed onto the LAN with
// a static address from the pool, serving its page there; destroyed, the
// address goes back to the pool.
TEST_F(BridgedTest, EngineDeploysALabOnTheLanWithAStaticAddress) {
  std::string subnet = lan.net() + "0/24";
  TempDir tmp;
  auto store = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
  ASSERT_TRUE(store.ok());
  auto p = ads::make_provider(
      "lxd",
      json{{"nic",
            {{"type", "bridged"}, {"parent", lan.bridge()}, {"subnet", subnet}, {"gateway", lan.net() + "254"}}}});
  ASSERT_TRUE(p.ok());
  std::map<std::string, std::unique_ptr<ads::Provider>> providers;
  providers["lxd"] = std::move(p.value());
  ads::Engine engine(**store, std::move(providers), ads::test::engine_options(tmp.path));
  ASSERT_TRUE(engine.start().ok());
  ads::DeployRequest r;
  r.source = std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site";
  r.owner = "tester";
  r.admin = true;  // a path on the server: admins only (engine/source_access.h)
  auto sub = engine.submit(r);
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  std::string id = sub->id;
  auto cleanup = ads::make_provider("lxd", json::object());
  struct Guard {
    ads::Provider* p;
    std::string name;
    ~Guard() { (void)p->destroy(name); }
  } guard{cleanup->get(), "ads-" + id};
  auto settle = [&] {
    for (int i = 0; i < 3000; ++i) {  // a wait for the jobs, not a timing assertion
      auto jobs = (*store)->jobs_of(id);
      bool done = jobs.ok() && !jobs->empty();
      if (jobs.ok())
        for (auto& j : *jobs) done = done && j.state != "queued" && j.state != "running";
      if (done) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return *(*store)->get(id);
  };
  auto d = settle();
  ASSERT_EQ(d.state, ads::State::kRunning) << d.error;
  EXPECT_EQ(d.address, lan.net() + "2");
  ads::http::ClientRequest get;
  get.url = d.url;
  get.timeout_ms = 5000;
  auto page = ads::http::request(get);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_NE(page->body.find("ADS example lab"), std::string::npos);
  ASSERT_TRUE(engine.operate(id, "destroy").ok());
  d = settle();
  engine.stop();
  EXPECT_EQ(d.state, ads::State::kDestroyed) << d.error;
  EXPECT_EQ(*(*store)->allocate_address(subnet, "probe"), lan.net() + "2");
}

}  // namespace
