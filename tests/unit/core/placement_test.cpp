// pick_member: ADS's own placement on an LXD cluster (most memory available
// that fits, online members only); parse_lxd_memory_mb: LXD's limits.memory.
#include "core/placement.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>

namespace {
using ads::MemberLoad;
using ads::parse_lxd_memory_mb;
using ads::pick_member;

TEST(Placement, PicksTheOnlineMemberWithMostMemoryAvailable) {
  std::vector<MemberLoad> ms = {{"m1", "Online", 8000, 0}, {"m2", "Online", 12000, 0}, {"m3", "Online", 9000, 0}};
  auto r = pick_member(ms, 512);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "m2");
}

TEST(Placement, ReservedMemoryOfExistingMachinesCounts) {
  // same host figures (two members on one machine): the member with a
  // machine's limit already on it is the fuller one
  std::vector<MemberLoad> ms = {{"m1", "Online", 16000, 4096}, {"m2", "Online", 16000, 0}};
  auto r = pick_member(ms, 4096);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "m2");
  ms[1].reserved_mb = 8192;
  r = pick_member(ms, 4096);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "m1");
}

TEST(Placement, PendingPlacementsCountSoTwoAtOnceSpreadOut) {
  // two machines placed at the same moment on equal members: the first one's
  // promise sends the second elsewhere, before either is listed by LXD
  std::vector<MemberLoad> figures = {{"m1", "Online", 16000, 0}, {"m2", "Online", 16000, 0}};
  std::map<std::string, uint64_t> pending;
  auto first = figures;
  ads::add_pending(first, pending);
  auto a = pick_member(first, 2048);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(*a, "m1");
  pending[*a] += 2048;
  auto second = figures;  // the same figures: LXD does not list the first yet
  ads::add_pending(second, pending);
  EXPECT_EQ(second[0].reserved_mb, 2048u);
  EXPECT_EQ(second[1].reserved_mb, 0u);
  auto b = pick_member(second, 2048);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(*b, "m2");
  // promises for a member not in the figures change nothing
  auto third = figures;
  ads::add_pending(third, {{"m9", 99999}});
  EXPECT_EQ(third[0].reserved_mb, 0u);
  EXPECT_EQ(third[1].reserved_mb, 0u);
}

TEST(Placement, TiesGoToTheFirstNameWhateverTheOrder) {
  std::vector<MemberLoad> ms = {{"m2", "Online", 4000, 0}, {"m1", "Online", 4000, 0}};
  auto r = pick_member(ms, 100);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "m1");
}

TEST(Placement, OfflineMembersAreSkippedEvenWhenEmptier) {
  std::vector<MemberLoad> ms = {{"big", "Offline", 64000, 0}, {"small", "Online", 2000, 0}};
  auto r = pick_member(ms, 1024);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "small");
  ms[0].status = "Evacuated";
  r = pick_member(ms, 1024);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "small");
}

TEST(Placement, ExactFitIsAccepted) {
  auto r = pick_member({{"m1", "Online", 3000, 1000}}, 2000);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "m1");
}

TEST(Placement, NoNeedStatedTakesAnyMemberWithMemoryLeft) {
  auto r = pick_member({{"m1", "Online", 1000, 1000}, {"m2", "Online", 1000, 999}}, 0);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "m2");
  r = pick_member({{"m1", "Online", 1000, 1000}}, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "unavailable");
}

TEST(Placement, NoMemberFitsNamesEachMembersMemory) {
  std::vector<MemberLoad> ms = {{"m1", "Online", 3000, 2000}, {"m2", "Online", 1500, 0}, {"m3", "Offline", 9000, 0}};
  auto r = pick_member(ms, 2048);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "unavailable");
  const std::string& msg = r.error().message;
  EXPECT_NE(msg.find("2048 MB"), std::string::npos) << msg;
  EXPECT_NE(msg.find("m1 has 1000 MB"), std::string::npos) << msg;
  EXPECT_NE(msg.find("m2 has 1500 MB"), std::string::npos) << msg;
  EXPECT_NE(msg.find("m3 is Offline"), std::string::npos) << msg;
}

TEST(Placement, ReservedBeyondFreeLeavesNothing) {
  EXPECT_EQ(ads::available_mb({"m1", "Online", 1000, 5000}), 0u);
  EXPECT_EQ(ads::available_mb({"m1", "Online", 5000, 1000}), 4000u);
  auto r = pick_member({{"m1", "Online", 1000, 5000}}, 1);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("m1 has 0 MB"), std::string::npos) << r.error().message;
}

TEST(Placement, AllMembersOfflineSaysSo) {
  auto r = pick_member({{"m1", "Offline", 8000, 0}, {"m2", "", 8000, 0}}, 100);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "unavailable");
  EXPECT_NE(r.error().message.find("no cluster member is online"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("m1 is Offline"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("m2 is in an unknown state"), std::string::npos) << r.error().message;
}

TEST(Placement, NoMembersAtAll) {
  auto r = pick_member({}, 100);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "unavailable");
  EXPECT_NE(r.error().message.find("no members"), std::string::npos);
}

TEST(LxdMemoryLimit, DecimalAndBinaryUnits) {
  using O = std::optional<uint64_t>;
  EXPECT_EQ(parse_lxd_memory_mb("512MiB", 0), O(512));
  EXPECT_EQ(parse_lxd_memory_mb("2GiB", 0), O(2048));
  EXPECT_EQ(parse_lxd_memory_mb("1TiB", 0), O(1024 * 1024));
  EXPECT_EQ(parse_lxd_memory_mb("1048576KiB", 0), O(1024));
  EXPECT_EQ(parse_lxd_memory_mb("1048576", 0), O(1));  // bytes
  EXPECT_EQ(parse_lxd_memory_mb("1048576B", 0), O(1));
  EXPECT_EQ(parse_lxd_memory_mb("1048577", 0), O(2));  // rounded up
  EXPECT_EQ(parse_lxd_memory_mb("512MB", 0), O(489));  // 512e6 bytes = 488.3 MiB
  EXPECT_EQ(parse_lxd_memory_mb("4GB", 0), O(3815));   // 4e9 bytes = 3814.7 MiB
  EXPECT_EQ(parse_lxd_memory_mb("1000kB", 0), O(1));
  EXPECT_EQ(parse_lxd_memory_mb("0", 0), O(0));
}

TEST(LxdMemoryLimit, PercentOfTheMembersMemory) {
  using O = std::optional<uint64_t>;
  EXPECT_EQ(parse_lxd_memory_mb("50%", 8000), O(4000));
  EXPECT_EQ(parse_lxd_memory_mb("100%", 8000), O(8000));
  EXPECT_EQ(parse_lxd_memory_mb("1%", 150), O(2));  // rounded up
}

TEST(LxdMemoryLimit, RejectsOtherShapes) {
  for (const char* bad : {"", "MB", "12XB", "-5MB", "1.5GB", "101%", "5 parsecs", "99999999999999999999", "12MBx"})
    EXPECT_EQ(parse_lxd_memory_mb(bad, 1000), std::nullopt) << bad;
}

}  // namespace
