// LXD cluster placement: the "placement" setting and the member figures read
// from LXD's answers (no LXD needed; tests/integration/lxd_cluster_test.cpp
// runs the placement on a real two-member cluster).
#include <gtest/gtest.h>

#include "providers/lxd/lxd_provider.h"

namespace {
using nlohmann::json;
constexpr uint64_t kMiB = 1024 * 1024;

TEST(LxdPlacementSettings, LxdAndAdsAreAccepted) {
  for (const char* p : {"lxd", "ads"}) {
    auto r = ads::make_provider("lxd", json{{"placement", p}});
    ASSERT_TRUE(r.ok()) << p << ": " << r.error().to_string();
    EXPECT_EQ((*r)->kind(), "lxd");
  }
}

TEST(LxdPlacementSettings, AnythingElseIsRefusedNamingTheField) {
  for (const json& bad : {json("LXD"), json("m1"), json(""), json(1), json::array(), json(nullptr)}) {
    auto r = ads::make_provider("lxd", json{{"placement", bad}});
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.error().code, "invalid");
    EXPECT_EQ(r.error().field, "providers.lxd.placement");
    EXPECT_NE(r.error().message.find("\"ads\""), std::string::npos) << r.error().message;
  }
}

TEST(LxdMemberLoads, FreeMemoryAndReservedLimitsPerMember) {
  json members = json::parse(R"([
    {"server_name": "m1", "status": "Online", "url": "https://10.251.1.11:8443"},
    {"server_name": "m2", "status": "Online"},
    {"server_name": "m3", "status": "Offline"}])");
  std::map<std::string, json> memory = {
      {"m1", {{"total", 16384 * kMiB}, {"used", 4096 * kMiB}}},
      {"m2", {{"total", 8192 * kMiB}, {"used", 1024 * kMiB}}},
  };
  json instances = json::parse(R"([
    {"name": "a", "location": "m1", "config": {"limits.memory": "2GiB"}, "expanded_config": {"limits.memory": "2GiB"}},
    {"name": "b", "location": "m1", "config": {}, "expanded_config": {"limits.memory": "512MiB"}},
    {"name": "c", "location": "m2", "config": {"limits.memory": "50%"}},
    {"name": "d", "location": "m2", "config": {}},
    {"name": "e", "location": "m2", "config": {"limits.memory": "lots"}},
    {"name": "f", "location": "m3", "config": {"limits.memory": "1GiB"}},
    {"name": "g", "location": "elsewhere", "config": {"limits.memory": "1GiB"}}])");
  auto loads = ads::LxdProvider::member_loads(members, memory, instances);
  ASSERT_EQ(loads.size(), 3u);
  EXPECT_EQ(loads[0].name, "m1");
  EXPECT_EQ(loads[0].status, "Online");
  EXPECT_EQ(loads[0].free_mb, 12288u);
  EXPECT_EQ(loads[0].reserved_mb, 2048u + 512u);  // profile limits count too (expanded_config)
  EXPECT_EQ(loads[1].name, "m2");
  EXPECT_EQ(loads[1].free_mb, 7168u);
  EXPECT_EQ(loads[1].reserved_mb, 4096u);  // 50% of its 8192 MiB; "lots" and no limit count as nothing
  EXPECT_EQ(loads[2].name, "m3");
  EXPECT_EQ(loads[2].status, "Offline");
  EXPECT_EQ(loads[2].free_mb, 0u);  // no figures asked of an offline member
  EXPECT_EQ(loads[2].reserved_mb, 1024u);

  auto pick = ads::pick_member(loads, 1024);
  ASSERT_TRUE(pick) << pick.error().message;
  EXPECT_EQ(*pick, "m1");  // 9728 MB available against m2's 3072
  pick = ads::pick_member(loads, 10000);
  ASSERT_FALSE(pick);
  EXPECT_EQ(pick.error().code, "unavailable");
}

TEST(LxdMemberLoads, MalformedAnswersGiveNoFiguresRatherThanACrash) {
  EXPECT_TRUE(ads::LxdProvider::member_loads(json::object(), {}, json::object()).empty());
  json members = json::parse(R"([{"status": "Online"}, 7, {"server_name": 3}, {"server_name": "m1"}])");
  std::map<std::string, json> memory = {{"m1", {{"total", "many"}, {"used", -1}}}};
  json instances = json::parse(R"([1, {"location": "m1", "config": {"limits.memory": 512}}, {"config": 5}])");
  auto loads = ads::LxdProvider::member_loads(members, memory, instances);
  ASSERT_EQ(loads.size(), 1u);
  EXPECT_EQ(loads[0].name, "m1");
  EXPECT_EQ(loads[0].status, "");
  EXPECT_EQ(loads[0].free_mb, 0u);
  EXPECT_EQ(loads[0].reserved_mb, 0u);
  auto pick = ads::pick_member(loads, 0);
  ASSERT_FALSE(pick);
  EXPECT_NE(pick.error().message.find("no cluster member is online"), std::string::npos) << pick.error().message;
}

TEST(LxdPlacement, UnreachableLxdIsAClearError) {
  auto p = ads::make_provider("lxd", json{{"placement", "ads"}, {"socket", "/nonexistent/ads-test/unix.socket"}});
  ASSERT_TRUE(p.ok());
  auto* lxd = dynamic_cast<ads::LxdProvider*>(p->get());
  ASSERT_NE(lxd, nullptr);
  auto load = lxd->cluster_load();
  ASSERT_FALSE(load);
  EXPECT_NE(load.error().message.find("LXD is not reachable on /nonexistent/ads-test/unix.socket"), std::string::npos)
      << load.error().message;
}

}  // namespace
