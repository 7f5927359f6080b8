// The LXD provider against real LXD (issue 19): an ADS image carries the
// agent and lists it with its SHA-256 (scripts/build-image.sh); a file the
// image holds already is not sent again, a different one is; the machines'
// root disks go to the pool the provider's settings name. Needs
// scripts/lxd-host.sh and scripts/build-image.sh to have run. What it checks
// is described in docs/operators/lxd.md ("The agent in the image").
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/protocol.h"
#include "http/client.h"
#include "providers/lxd/lxd_provider.h"
#include "support/ads_server.h"

using nlohmann::json;

namespace {

const std::string kSocket = "/var/lib/lxd/unix.socket";

// A raw call to LXD's API (what the test checks, not through the provider).
ads::http::ClientResponse lxd_call(const std::string& method, const std::string& path, const std::string& body = "") {
  ads::http::ClientRequest r;
  r.method = method;
  r.url = "http://lxd" + path;
  r.unix_socket = kSocket;
  r.body = body;
  if (!body.empty()) r.headers.push_back({"Content-Type", "application/json"});
  auto res = ads::http::request(r);
  EXPECT_TRUE(res.ok()) << method << " " << path;
  return res ? *res : ads::http::ClientResponse{};
}

// A file of a (stopped) container, which must be there.
std::string file_of(const std::string& machine, const std::string& path) {
  long status = 0;
  std::string body = ads::test::lxd_file(machine, path, &status);
  EXPECT_EQ(status, 200) << machine << ":" << path;
  return body;
}

class LxdImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ads::LxdProvider p({});
    if (!p.ping()) GTEST_FAIL() << "LXD is not running: run scripts/lxd-host.sh first";
  }
  void TearDown() override {
    ads::LxdProvider p({});
    for (auto& m : machines) (void)p.destroy(m);
    for (auto& pool : pools) (void)lxd_call("DELETE", "/1.0/storage-pools/" + pool);
  }
  std::string name(const std::string& what) {
    machines.push_back("ads-imgtest-" + std::to_string(::getpid()) + "-" + what);
    return machines.back();
  }
  // Creates `spec` with `p`; the provider's progress lines.
  static std::vector<std::string> create(ads::LxdProvider& p, const ads::MachineSpec& spec) {
    std::vector<std::string> lines;
    auto st = p.create(spec, [&](const std::string& line) { lines.push_back(line); });
    EXPECT_TRUE(st.ok()) << st.error().message;
    return lines;
  }
  static bool said(const std::vector<std::string>& lines, const std::string& part) {
    for (auto& l : lines)
      if (l.find(part) != std::string::npos) return true;
    return false;
  }
  std::vector<std::string> machines, pools;
};

TEST_F(LxdImageTest, TheAgentTheImageCarriesIsNotSentAgainAndADifferentOneIs) {
  ads::LxdProvider p({});
  ads::MachineSpec bare;
  bare.name = name("bare");
  bare.os_key = "debian-12";
  create(p, bare);
  // the image lists the agent it carries with that file's own SHA-256
  const std::string manifest = file_of(bare.name, ads::kImageManifest);
  const auto listed = ads::LxdProvider::parse_image_manifest(manifest);
  ASSERT_EQ(listed.count("/usr/local/bin/ads-agent"), 1u)
      << "the image lists no agent (scripts/build-image.sh --force after building ads-agent): " << manifest;
  const std::string image_agent = file_of(bare.name, "/usr/local/bin/ads-agent");
  ASSERT_GT(image_agent.size(), 100000u);
  EXPECT_EQ(listed.at("/usr/local/bin/ads-agent"), ads::agent::sha256_hex(image_agent));
  // and no secret or agent config: those are placed per machine
  long status = 0;
  ads::test::lxd_file(bare.name, "/etc/ads-agent/agent.json", &status);
  EXPECT_EQ(status, 404);

  // the same binary: not sent
  ads::MachineSpec same = bare;
  same.name = name("same");
  same.files = {{"/usr/local/bin/ads-agent", image_agent, 0755, ads::agent::sha256_hex(image_agent)},
                {"/etc/ads-agent/agent.json", "{}", 0600}};
  auto lines = create(p, same);
  EXPECT_TRUE(said(lines, "/usr/local/bin/ads-agent is in the image already")) << testing::PrintToString(lines);
  EXPECT_FALSE(said(lines, "placing /usr/local/bin/ads-agent")) << testing::PrintToString(lines);
  EXPECT_TRUE(said(lines, "placing /etc/ads-agent/agent.json")) << testing::PrintToString(lines);
  EXPECT_EQ(file_of(same.name, "/usr/local/bin/ads-agent"), image_agent);
  EXPECT_EQ(file_of(same.name, "/etc/ads-agent/agent.json"), "{}");

  // another binary (an image built before the agent changed): sent
  const std::string other = "#!/bin/sh\necho another agent\n";
  ads::MachineSpec differs = bare;
  differs.name = name("differs");
  differs.files = {{"/usr/local/bin/ads-agent", other, 0755, ads::agent::sha256_hex(other)}};
  lines = create(p, differs);
  EXPECT_TRUE(said(lines, "placing /usr/local/bin/ads-agent")) << testing::PrintToString(lines);
  EXPECT_EQ(file_of(differs.name, "/usr/local/bin/ads-agent"), other);

  // a file given without its SHA-256 is always placed
  ads::MachineSpec plain = bare;
  plain.name = name("plain");
  plain.files = {{"/usr/local/bin/ads-agent", image_agent, 0755}};
  lines = create(p, plain);
  EXPECT_TRUE(said(lines, "placing /usr/local/bin/ads-agent")) << testing::PrintToString(lines);
}

TEST_F(LxdImageTest, TheMachinesRootDiskGoesToThePoolTheSettingsName) {
  const std::string pool = "ads-imgtest-" + std::to_string(::getpid());
  auto made = lxd_call("POST", "/1.0/storage-pools", json{{"name", pool}, {"driver", "dir"}}.dump());
  ASSERT_LT(made.status, 300) << made.body;
  pools.push_back(pool);
  auto settings = ads::LxdProvider::create_from(json{{"pool", pool}});
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  ads::MachineSpec spec;
  spec.name = name("pool");
  spec.os_key = "debian-12";
  auto st = (*settings)->create(spec, nullptr);
  ASSERT_TRUE(st.ok()) << st.error().message;
  json inst = json::parse(lxd_call("GET", "/1.0/instances/" + spec.name).body, nullptr, false);
  ASSERT_TRUE(inst.is_object());
  EXPECT_EQ(inst["metadata"]["expanded_devices"]["root"]["pool"], pool) << inst.dump();
  auto vol = lxd_call("GET", "/1.0/storage-pools/" + pool + "/volumes/container/" + spec.name);
  EXPECT_EQ(vol.status, 200) << vol.body;
  // and a pool that does not exist is LXD's clear error, not a machine elsewhere
  auto nowhere = ads::LxdProvider::create_from(json{{"pool", pool + "-none"}});
  ASSERT_TRUE(nowhere.ok());
  ads::MachineSpec lost = spec;
  lost.name = name("nopool");
  auto bad = (*nowhere)->create(lost, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(pool + "-none"), std::string::npos) << bad.error().message;
  EXPECT_EQ(lxd_call("GET", "/1.0/instances/" + lost.name).status, 404);
}

}  // namespace
