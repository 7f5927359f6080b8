// Ids, names and the deployment state machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/deployment.h"
#include "core/id.h"
#include "core/names.h"

namespace {

TEST(Ids, KnownEncodings) {
  std::array<uint8_t, 10> zero{}, ones;
  ones.fill(0xff);
  EXPECT_EQ(ads::encode_ulid(0, zero), std::string(26, '0'));
  EXPECT_EQ(ads::encode_ulid(0xFFFFFFFFFFFFull, ones), "7" + std::string(25, 'z'));
  // ULID spec example time 1469918176385 ms encodes as 01ARYZ6S41 (lower-cased here)
  EXPECT_EQ(ads::encode_ulid(1469918176385ull, zero).substr(0, 10), "01aryz6s41");
}

TEST(Ids, StrictlyIncreaseAndSortByTimeEvenWithinAMillisecondOrWhenTheClockGoesBack) {
  ads::IdGenerator g;
  std::array<uint8_t, 10> e{};
  std::vector<std::string> ids;
  uint64_t times[] = {1000, 1000, 1000, 999, 2000, 2000, 1500, 3000};
  for (uint64_t t : times) {
    e[9] = static_cast<uint8_t>(ids.size() * 37);  // entropy varies, order must not depend on it
    ids.push_back(g.next(t, e));
  }
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]) << i;
  std::set<std::string> uniq(ids.begin(), ids.end());
  EXPECT_EQ(uniq.size(), ids.size());
  for (auto& id : ids) EXPECT_TRUE(ads::is_valid_id(id)) << id;
}

TEST(Ids, ValidityChecksShapeAndAlphabet) {
  EXPECT_FALSE(ads::is_valid_id(""));
  EXPECT_FALSE(ads::is_valid_id(std::string(25, '0')));
  EXPECT_FALSE(ads::is_valid_id(std::string(27, '0')));
  EXPECT_FALSE(ads::is_valid_id("8" + std::string(25, '0')));   // above the 128-bit range
  for (char c : std::string("ilouILOU/.-")) EXPECT_FALSE(ads::is_valid_id(std::string(25, '0') + c)) << c;
}

TEST(Names, LabNames) {
  for (std::string ok : {"cse02", "a", "Lab_1.v2", "x-y"}) EXPECT_TRUE(ads::validate_lab_name(ok).ok()) << ok;
  for (std::string bad : std::vector<std::string>{"", "-x", ".x", "a b", "a;b", "$(x)", "a/b", "a..b", "`id`", "x\n", std::string(64, 'a')}) {
    auto st = ads::validate_lab_name(bad);
    EXPECT_FALSE(st.ok()) << bad;
    if (!st.ok()) {
      EXPECT_EQ(st.error().field, "name");
    }
  }
}

TEST(Names, RefsAndSources) {
  for (std::string ok : {"main", "v1.2", "release/2024", "0123abcd"}) EXPECT_TRUE(ads::validate_git_ref(ok).ok()) << ok;
  for (std::string bad : {"", "-x", "a..b", "a b", "a~1", "a^", "a:b", "a\x01"}) EXPECT_FALSE(ads::validate_git_ref(bad).ok()) << bad;
  EXPECT_TRUE(ads::validate_source("https://example.invalid/x.git").ok());
  EXPECT_TRUE(ads::validate_source("/srv/labs/x").ok());
  EXPECT_FALSE(ads::validate_source("").ok());
  EXPECT_FALSE(ads::validate_source("--upload-pack=x").ok());
  EXPECT_FALSE(ads::validate_source("/x\ny").ok());
}

TEST(States, NamesRoundTrip) {
  ASSERT_EQ(ads::all_states().size(), 14u);
  for (auto s : ads::all_states()) EXPECT_EQ(ads::state_from_string(ads::to_string(s)), s);
  EXPECT_FALSE(ads::state_from_string("sideways"));
  EXPECT_TRUE(ads::is_job_kind("backup"));
  EXPECT_FALSE(ads::is_job_kind("format"));
}

TEST(States, PipelineInOrderFailureFromAnyWorkingStepAndNoSkipping) {
  const auto& p = ads::pipeline();
  ASSERT_EQ(p.front(), ads::State::kAccepted);
  ASSERT_EQ(p.back(), ads::State::kRunning);
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    EXPECT_TRUE(ads::can_transition(p[i], p[i + 1])) << i;
    EXPECT_TRUE(ads::can_transition(p[i], ads::State::kFailed)) << i;
    if (i + 2 < p.size()) {
      EXPECT_FALSE(ads::can_transition(p[i], p[i + 2])) << i;
    }
    EXPECT_FALSE(ads::can_transition(p[i + 1], p[i])) << i;
  }
  EXPECT_FALSE(ads::can_transition(ads::State::kRunning, ads::State::kFailed));
  EXPECT_TRUE(ads::can_transition(ads::State::kRunning, ads::State::kDestroying));
  EXPECT_TRUE(ads::can_transition(ads::State::kFailed, ads::State::kDestroying));
  EXPECT_TRUE(ads::can_transition(ads::State::kDestroying, ads::State::kDestroyed));
  for (auto s : p) {
    // out of destroyed only a restore, which starts the pipeline again
    EXPECT_EQ(ads::can_transition(ads::State::kDestroyed, s), s == ads::State::kAccepted) << ads::to_string(s);
  }
  EXPECT_TRUE(ads::can_transition(ads::State::kRunning, ads::State::kStopped));
  EXPECT_TRUE(ads::can_transition(ads::State::kStopped, ads::State::kRunning));
  EXPECT_TRUE(ads::can_transition(ads::State::kStopped, ads::State::kDestroying));
  EXPECT_FALSE(ads::can_transition(ads::State::kFailed, ads::State::kStopped));
  EXPECT_FALSE(ads::can_transition(ads::State::kInstalling, ads::State::kStopped));
  EXPECT_TRUE(ads::is_settled(ads::State::kStopped));
  EXPECT_FALSE(ads::can_transition(ads::State::kAccepted, ads::State::kDestroying));
  EXPECT_TRUE(ads::is_settled(ads::State::kRunning));
  EXPECT_FALSE(ads::is_settled(ads::State::kInstalling));
}

}  // namespace
