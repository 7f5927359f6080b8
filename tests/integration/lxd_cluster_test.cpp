// The LXD provider on a real LXD cluster: two LXD daemons on this machine
// (scripts/lxd-cluster.sh: each with its own LXD_DIR, network namespace,
// storage pool; a bridge made for them), the ads-debian-12 image imported
// from the tarballs scripts/build-image.sh caches. The cluster is made once
// for the suite and removed at its end, even when a test fails. The main
// LXD daemon is only read from (AdsPlacementNeedsACluster).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

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

const std::string kScript = std::string(ADS_SOURCE_DIR) + "/scripts/lxd-cluster.sh";

class Cluster {
 public:
  Cluster() {
    dir_ = std::make_unique<TempDir>();
    std::string out;
    if (run({"bash", kScript, "up", dir_->str()}, &out) != 0) {
      error_ = "scripts/lxd-cluster.sh up failed:\n" + out;
      return;
    }
    std::ifstream env(dir_->path / "cluster.env");
    for (std::string line; std::getline(env, line);) {
      auto eq = line.find('=');
      if (eq != std::string::npos) vars_[line.substr(0, eq)] = line.substr(eq + 1);
    }
    if (vars_["SOCKET1"].empty()) error_ = "no SOCKET1 in cluster.env";
  }
  ~Cluster() {
    std::string out;
    if (run({"bash", kScript, "down", dir_->str()}, &out) != 0) std::cerr << "lxd-cluster.sh down: " << out;
  }
  const std::string& error() const { return error_; }
  std::string var(const std::string& k) { return vars_[k]; }
  std::string member_dir(int n) const { return (dir_->path / ("m" + std::to_string(n))).string(); }

 private:
  std::unique_ptr<TempDir> dir_;
  std::string error_;
  std::map<std::string, std::string> vars_;
};

class LxdClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new Cluster(); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (geteuid() != 0) GTEST_FAIL() << "needs root (LXD daemons, network namespaces)";
    ASSERT_EQ(cluster_->error(), "");
  }
  void TearDown() override {
    for (auto& [p, name] : made_) (void)p->destroy(name);
  }
  ads::LxdProvider* provider(const std::string& placement, int member = 1) {
    auto p = ads::make_provider(
        "lxd", json{{"placement", placement}, {"socket", cluster_->var("SOCKET" + std::to_string(member))}});
    EXPECT_TRUE(p.ok()) << p.error().to_string();
    providers_.push_back(std::move(p.value()));
    return dynamic_cast<ads::LxdProvider*>(providers_.back().get());
  }
  ads::MachineSpec spec(const std::string& what, uint64_t memory_mb) {
    ads::MachineSpec s;
    s.name = "ads-cl-" + what + "-" + std::to_string(getpid());
    s.os_key = "debian-12";
    s.memory_mb = memory_mb;
    s.labels = {{"deployment", what}};
    return s;
  }
  ads::Status create(ads::LxdProvider* p, const ads::MachineSpec& s, std::vector<std::string>* notes = nullptr) {
    made_.push_back({p, s.name});
    auto st = p->create(s, [&](const std::string& n) {
      if (notes) notes->push_back(n);
    });
    if (!st) std::cerr << "create " << s.name << ": " << st.error().message << "\n";
    return st;
  }

  static Cluster* cluster_;
  std::vector<std::unique_ptr<ads::Provider>> providers_;
  std::vector<std::pair<ads::Provider*, std::string>> made_;
};
Cluster* LxdClusterTest::cluster_ = nullptr;

bool contains(const std::vector<std::string>& v, const std::string& part) {
  for (auto& s : v)
    if (s.find(part) != std::string::npos) return true;
  return false;
}

TEST_F(LxdClusterTest, BothMembersAreOnlineWithTheirMemory) {
  auto load = provider("ads")->cluster_load();
  ASSERT_TRUE(load) << load.error().message;
  ASSERT_EQ(load->size(), 2u);
  std::set<std::string> names;
  for (auto& m : *load) {
    names.insert(m.name);
    EXPECT_EQ(m.status, "Online") << m.name;
    EXPECT_GT(m.free_mb, 0u) << m.name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"m1", "m2"}));
}

TEST_F(LxdClusterTest, AdsPlacementPutsTwoMachinesOnDifferentMembers) {
  auto* p = provider("ads");
  auto a = spec("a", 2048), b = spec("b", 2048);
  std::vector<std::string> notes_a, notes_b;
  ASSERT_TRUE(create(p, a, &notes_a)) << "a";
  auto ma = p->inspect(a.name);
  ASSERT_TRUE(ma) << ma.error().message;
  // the first one's 2048 MB limit now counts against its member
  ASSERT_TRUE(create(p, b, &notes_b)) << "b";
  auto mb = p->inspect(b.name);
  ASSERT_TRUE(mb) << mb.error().message;
  EXPECT_TRUE(ma->location == "m1" || ma->location == "m2") << ma->location;
  EXPECT_TRUE(mb->location == "m1" || mb->location == "m2") << mb->location;
  EXPECT_NE(ma->location, mb->location);
  EXPECT_TRUE(contains(notes_a, "cluster member " + ma->location + " chosen")) << notes_a.front();
  EXPECT_TRUE(contains(notes_b, "cluster member " + mb->location + " chosen")) << notes_b.front();

  // the one on the member the socket does not belong to works all the same
  // through member 1's socket (LXD forwards): start, list, stop, destroy
  ASSERT_TRUE(p->start(b.name));
  auto running = p->inspect(b.name);
  ASSERT_TRUE(running);
  EXPECT_EQ(running->status, "Running");
  auto all = p->list();
  ASSERT_TRUE(all) << all.error().message;
  std::map<std::string, std::string> where;
  for (auto& m : *all) where[m.name] = m.location;
  EXPECT_EQ(where[a.name], ma->location);
  EXPECT_EQ(where[b.name], mb->location);
  ASSERT_TRUE(p->destroy(b.name));
  ASSERT_TRUE(p->destroy(a.name));
  for (auto* n : {&a.name, &b.name}) {
    auto gone = p->inspect(*n);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, "not_found") << *n;
  }
}

// Two creates at the same moment (two engine workers): each placement counts
// the memory the other has been promised, so they land on different members
// even though neither container is listed by LXD when the other is placed.
TEST_F(LxdClusterTest, AdsPlacementSpreadsTwoCreatesMadeAtTheSameMoment) {
  auto* p = provider("ads");
  auto a = spec("ca", 2048), b = spec("cb", 2048);
  made_.push_back({p, a.name});
  made_.push_back({p, b.name});
  ads::Status sa = ads::Status::Ok(), sb = ads::Status::Ok();
  std::thread ta([&] { sa = p->create(a, nullptr); });
  std::thread tb([&] { sb = p->create(b, nullptr); });
  ta.join();
  tb.join();
  ASSERT_TRUE(sa) << sa.error().message;
  ASSERT_TRUE(sb) << sb.error().message;
  auto ma = p->inspect(a.name), mb = p->inspect(b.name);
  ASSERT_TRUE(ma) << ma.error().message;
  ASSERT_TRUE(mb) << mb.error().message;
  EXPECT_NE(ma->location, mb->location);
  ASSERT_TRUE(p->destroy(a.name));
  ASSERT_TRUE(p->destroy(b.name));
}

TEST_F(LxdClusterTest, LxdPlacementLetsLxdChooseAndReportsTheMember) {
  auto* p = provider("lxd", 2);  // through member 2's socket this time
  auto s = spec("lxd", 0);
  std::vector<std::string> notes;
  ASSERT_TRUE(create(p, s, &notes));
  auto m = p->inspect(s.name);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_TRUE(m->location == "m1" || m->location == "m2") << m->location;
  EXPECT_TRUE(contains(notes, "LXD placed " + s.name + " on cluster member " + m->location));
  ASSERT_TRUE(p->destroy(s.name));
}

TEST_F(LxdClusterTest, NoMemberWithEnoughMemoryIsRefusedAndNothingIsCreated) {
  auto* p = provider("ads");
  auto s = spec("huge", uint64_t{1} << 40);  // a thousand terabytes
  auto st = create(p, s);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, "unavailable");
  const std::string& msg = st.error().message;
  EXPECT_NE(msg.find("no online cluster member has"), std::string::npos) << msg;
  EXPECT_NE(msg.find("m1 has "), std::string::npos) << msg;
  EXPECT_NE(msg.find("m2 has "), std::string::npos) << msg;
  auto m = p->inspect(s.name);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, "not_found");
}

TEST_F(LxdClusterTest, AdsPlacementNeedsACluster) {
  // the machine's main LXD (scripts/lxd-host.sh) is not clustered; only
  // GET /1.0 and GET /1.0/cluster are sent to it
  ads::LxdProvider main_lxd({});
  if (!main_lxd.ping()) GTEST_SKIP() << "main LXD not running (scripts/lxd-host.sh)";
  auto p = ads::make_provider("lxd", json{{"placement", "ads"}});
  ASSERT_TRUE(p.ok());
  auto load = dynamic_cast<ads::LxdProvider*>(p->get())->cluster_load();
  ASSERT_FALSE(load);
  EXPECT_EQ(load.error().code, "unavailable");
  EXPECT_NE(load.error().message.find("is not clustered"), std::string::npos) << load.error().message;
}

// The engine on the cluster: two labs deployed with "ads" placement, each
// container on its own member with a bridged NIC on the member's br0 (which
// holds the member's veth into the test bridge) and a static address from
// the pool, the page served there to this host; then both destroyed.
TEST_F(LxdClusterTest, EngineDeploysTwoLabsOnDifferentMembers) {
  std::string net = cluster_->var("NET");
  ASSERT_FALSE(net.empty());
  std::string subnet = net + ".0/24";
  TempDir tmp;
  // the static-site example with 3 GB of memory: a cap, not a use, but large
  // enough that the first lab's limit outweighs any change in the host's free
  // memory between the two placements
  std::string lab = (tmp.path / "lab").string();
  std::filesystem::copy(std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site", lab,
                        std::filesystem::copy_options::recursive);
  json spec;
  {
    std::ifstream in(lab + "/ads-lab.json");
    spec = json::parse(in);
  }
  spec["resources"]["memory"] = "3gb";
  std::ofstream(lab + "/ads-lab.json") << spec.dump(2);

  auto store = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
  ASSERT_TRUE(store.ok());
  json settings = {{"socket", cluster_->var("SOCKET1")},
                   {"placement", "ads"},
                   {"nic", {{"type", "bridged"}, {"parent", cluster_->var("MEMBER_BRIDGE")}, {"subnet", subnet}}}};
  auto p = ads::make_provider("lxd", settings);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  std::map<std::string, std::unique_ptr<ads::Provider>> providers;
  providers["lxd"] = std::move(p.value());
  auto* lxd = provider("ads");  // for inspect and the clean-up guard
  ads::Engine engine(**store, std::move(providers), ads::test::engine_options(tmp.path));
  ASSERT_TRUE(engine.start().ok());
  auto settle = [&](const std::string& id) { return ads::test::settle(**store, id); };
  std::vector<std::string> ids, locations;
  for (int k = 0; k < 2; ++k) {
    ads::DeployRequest r;
    r.source = lab;
    r.name = "lab-" + std::to_string(k);  // two live labs never share a name
    r.owner = "tester";
    r.admin = true;  // a path on the server: admins only (engine/source_access.h)
    auto sub = engine.submit(r);
    ASSERT_TRUE(sub.ok()) << sub.error().message;
    ids.push_back(sub->id);
    made_.push_back({lxd, "ads-" + sub->id});  // removed at teardown whatever happens
    auto d = settle(sub->id);
    ASSERT_EQ(d.state, ads::State::kRunning) << d.error;
    auto m = lxd->inspect(d.machine);
    ASSERT_TRUE(m) << m.error().message;
    locations.push_back(m->location);
    // the deployment's log names the member ADS chose
    std::string log = log_of(**store, sub->id);
    EXPECT_NE(log.find("cluster member " + m->location + " chosen"), std::string::npos) << log;
    ads::http::ClientRequest get;
    get.url = d.url;
    get.timeout_ms = 5000;
    auto page = ads::http::request(get);
    ASSERT_TRUE(page.ok()) << d.url << ": " << page.error().message;
    EXPECT_NE(page->body.find("ADS example lab"), std::string::npos);
  }
  EXPECT_TRUE(locations[0] == "m1" || locations[0] == "m2") << locations[0];
  EXPECT_TRUE(locations[1] == "m1" || locations[1] == "m2") << locations[1];
  EXPECT_NE(locations[0], locations[1]);
  for (auto& id : ids) {
    ASSERT_TRUE(engine.operate(id, "destroy").ok());
    auto d = settle(id);
    EXPECT_EQ(d.state, ads::State::kDestroyed) << d.error;
    auto gone = lxd->inspect("ads-" + id);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, "not_found");
  }
  engine.stop();
}

// lxd-cluster.sh removes what it made when `up` fails half-way (here: the
// image import, after both daemons joined).
TEST_F(LxdClusterTest, ScriptRemovesEverythingWhenUpFails) {
  TempDir junk;
  std::ofstream(junk.path / "ads-debian-12.meta.tar.gz") << "not a tarball";
  std::ofstream(junk.path / "ads-debian-12.rootfs.tar.gz") << "not a tarball";
  TempDir parent;
  std::string dir = (parent.path / "cluster").string();
  std::string out;
  EXPECT_NE(run({"env", "ADS_IMAGE_CACHE=" + junk.str(), "bash", kScript, "up", dir}, &out), 0) << out;
  EXPECT_NE(out.find("failed; cleaning up"), std::string::npos) << out;
  EXPECT_NE(out.find("removed"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir)) << out;
  // no namespace or bridge left but the suite's own cluster's
  std::string netns, links;
  run({"ip", "netns", "list"}, &netns);
  run({"ip", "-br", "link"}, &links);
  std::istringstream ns_lines(netns);
  for (std::string l; std::getline(ns_lines, l);)
    if (l.rfind("ads-lxdc-", 0) == 0) {
      EXPECT_TRUE(l.rfind(cluster_->var("NS1") + " ", 0) == 0 || l.rfind(cluster_->var("NS2") + " ", 0) == 0 ||
                  l == cluster_->var("NS1") || l == cluster_->var("NS2"))
          << "left behind: " << l;
    }
  std::istringstream link_lines(links);
  for (std::string l; std::getline(link_lines, l);)
    if (l.rfind("adscb", 0) == 0) {
      EXPECT_EQ(l.substr(0, l.find(' ')), cluster_->var("BRIDGE")) << "left behind: " << l;
    }
}

// Last: stops member 2's daemon. Offline members are skipped; a machine
// that needs more than the online members have is refused naming the
// offline one.
TEST_F(LxdClusterTest, AnOfflineMemberIsSkipped) {
  auto* p = provider("ads");
  std::string out;
  // LXD_DIR always explicit: a bare `lxc` would talk to the main daemon
  ASSERT_EQ(
      run({"env", "LXD_DIR=" + cluster_->member_dir(1), "lxc", "config", "set", "cluster.offline_threshold", "12"},
          &out),
      0)
      << out;
  ASSERT_EQ(run({"env", "LXD_DIR=" + cluster_->member_dir(2), "lxd", "shutdown", "--timeout", "60"}, &out), 0) << out;
  // LXD calls a member offline after missing heartbeats for the threshold
  // (before that, LXD still says Online but cannot reach it: Unreachable)
  // (m1 too may look Offline for a moment on a loaded machine, its own
  // heartbeats late: wait until it is Online again, m2 still Offline)
  std::string m1_status, m2_status;
  for (int i = 0; i < 300 && (m2_status != "Offline" || m1_status != "Online"); ++i) {
    auto load = p->cluster_load();
    ASSERT_TRUE(load) << load.error().message;  // an unreachable member is no error
    for (auto& m : *load) {
      if (m.name == "m1") m1_status = m.status;
      if (m.name == "m2") m2_status = m.status;
    }
    EXPECT_TRUE(m2_status == "Online" || m2_status == "Offline" || m2_status.rfind("Unreachable (", 0) == 0)
        << m2_status;
    if (m2_status != "Offline" || m1_status != "Online") std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(m2_status, "Offline");
  ASSERT_EQ(m1_status, "Online");
  for (const char* what : {"off1", "off2"}) {
    auto s = spec(what, 1024);
    ASSERT_TRUE(create(p, s)) << what;
    auto m = p->inspect(s.name);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->location, "m1") << what;
  }
  auto st = create(p, spec("off3", uint64_t{1} << 40));
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("offline: m2 is Offline"), std::string::npos) << st.error().message;
}

}  // namespace

namespace {
namespace fs = std::filesystem;

// An LXD daemon as an image server: the main LXD (this machine's, the one
// ADS uses) pulls an image that only cluster member 1 has, over member 1's
// HTTPS API (protocol "lxd", its self-signed certificate given in the
// settings), as operators pull Ubuntu or CentOS images from an image server.
TEST_F(LxdClusterTest, TheMainLxdPullsAnImageFromAnImageServer) {
  // an image only member 1 has: the cached ads-debian-12 with other metadata
  // (another fingerprint), public, under its own alias
  TempDir tmp;
  const std::string cache = "/var/cache/ads/images/ads-debian-12";
  std::string out;
  ASSERT_EQ(run({"tar", "-xzf", cache + ".meta.tar.gz", "-C", tmp.str()}, &out), 0) << out;
  std::ofstream(tmp.path / "metadata.yaml", std::ios::app) << "# pulled by " << getpid() << "\n";
  fs::path meta = tmp.path / "meta.tar.gz";
  ASSERT_EQ(run({"tar", "-czf", meta.string(), "-C", tmp.str(), "metadata.yaml", "templates"}, &out), 0) << out;
  const std::string alias = "ads-pull-" + std::to_string(getpid());
  const std::string lxd_dir = "LXD_DIR=" + cluster_->member_dir(1);
  ASSERT_EQ(run({"env", lxd_dir, "lxc", "image", "import", meta.string(), cache + ".rootfs.tar.gz", "--alias", alias,
                 "--public"},
                &out),
            0)
      << out;
  ASSERT_EQ(run({"env", lxd_dir, "lxc", "query", "/1.0/images/aliases/" + alias}, &out), 0) << out;
  const std::string fingerprint = json::parse(out, nullptr, false).value("target", "");
  ASSERT_EQ(fingerprint.size(), 64u) << out;
  const std::string server = "https://" + cluster_->var("NET") + ".201:8443";
  std::string cert = cluster_->member_dir(1) + "/cluster.crt";
  if (!fs::exists(cert)) cert = cluster_->member_dir(1) + "/server.crt";

  auto main_lxd = [&](const std::string& certificate) {
    json settings = {{"images",
                      {{"debian-12-pulled",
                        {{"server", server}, {"protocol", "lxd"}, {"alias", alias}, {"certificate", certificate}}}}}};
    auto p = ads::make_provider("lxd", settings);
    EXPECT_TRUE(p.ok()) << p.error().to_string();
    providers_.push_back(std::move(p.value()));
    return dynamic_cast<ads::LxdProvider*>(providers_.back().get());
  };
  ads::MachineSpec s = spec("pulled", 0);
  s.os_key = "debian-12-pulled";

  // a certificate that is not the server's: refused, nothing made
  ads::LxdProvider* wrong = main_lxd("/var/lib/lxd/server.crt");
  auto bad = create(wrong, s);
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(wrong->inspect(s.name).ok());
  // a certificate file that is not there: said before LXD is asked
  bad = create(main_lxd("/nonexistent/server.crt"), s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("cannot read the certificate of image server " + server), std::string::npos)
      << bad.error().message;

  ads::LxdProvider* p = main_lxd(cert);
  auto listed = p->images();
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].state, "unchecked");
  EXPECT_EQ((*listed)[0].image, alias + " from " + server);

  std::vector<std::string> notes;
  auto st = create(p, s, &notes);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_TRUE(contains(notes, "from image " + alias + " from " + server + " (lxd) (for debian-12-pulled)"));
  ASSERT_TRUE(p->start(s.name).ok());
  auto m = p->inspect(s.name);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->status, "Running");

  // the main LXD now holds the pulled image, cached; removed again here
  ads::http::ClientRequest r;
  r.unix_socket = "/var/lib/lxd/unix.socket";
  r.url = "http://lxd/1.0/images/" + fingerprint;
  auto img = ads::http::request(r);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->status, 200) << img->body;
  EXPECT_EQ(json::parse(img->body, nullptr, false)["metadata"].value("cached", false), true) << img->body;
  ASSERT_TRUE(p->destroy(s.name).ok());
  r.method = "DELETE";
  (void)ads::http::request(r);
  (void)run({"env", lxd_dir, "lxc", "image", "delete", alias}, &out);
}

}  // namespace
