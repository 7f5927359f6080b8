#include "core/rate.h"

#include <gtest/gtest.h>

namespace ads {
namespace {

TEST(TokenBucket, AllowsTheBurstThenRefusesWithTheWaitUntilTheNextToken) {
  TokenBucket b(2.0, 3.0);  // 2 a second, 3 at once
  int64_t t = 1'000'000;
  EXPECT_TRUE(b.take(t));
  EXPECT_TRUE(b.take(t));
  EXPECT_TRUE(b.take(t));
  int64_t wait = 0;
  EXPECT_FALSE(b.take(t, &wait));
  EXPECT_EQ(wait, 501);  // half a second for one token at 2/s, rounded up
  EXPECT_FALSE(b.take(t + 499));
  EXPECT_TRUE(b.take(t + 500));
  EXPECT_FALSE(b.take(t + 500));
}

TEST(TokenBucket, RefillsUpToTheBurstOnlyAndSurvivesAClockGoingBack) {
  TokenBucket b(1.0, 2.0);
  int64_t t = 5'000;
  EXPECT_TRUE(b.take(t));
  EXPECT_TRUE(b.take(t));
  EXPECT_FALSE(b.full(t));
  // an hour later: still only 2 tokens
  t += 3'600'000;
  EXPECT_TRUE(b.full(t));
  EXPECT_TRUE(b.take(t));
  EXPECT_TRUE(b.take(t));
  EXPECT_FALSE(b.take(t));
  // the clock steps back: no tokens are minted, none are lost
  EXPECT_FALSE(b.take(t - 10'000));
  EXPECT_TRUE(b.take(t - 10'000 + 1000));
}

TEST(TokenBucket, ZeroRateNeverRefills) {
  TokenBucket b(0.0, 1.0);
  EXPECT_TRUE(b.take(1));
  int64_t wait = 0;
  EXPECT_FALSE(b.take(1'000'000'000, &wait));
  EXPECT_EQ(wait, INT64_MAX);
}

}  // namespace
}  // namespace ads
