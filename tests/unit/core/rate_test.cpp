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

TEST(TokenBucket, ASavedBucketGoesOnWhereItStopped) {
  TokenBucket a(2.0, 3.0);
  int64_t t = 1'000'000;
  EXPECT_TRUE(a.take(t));
  EXPECT_TRUE(a.take(t));
  EXPECT_DOUBLE_EQ(a.tokens(), 1.0);
  EXPECT_EQ(a.last_ms(), t);
  // two tokens are missing at 2/s: full a second later (plus the rounding)
  EXPECT_EQ(a.full_at_ms(), t + 1001);
  TokenBucket b(2.0, 3.0, a.tokens(), a.last_ms());
  EXPECT_TRUE(b.take(t + 100));
  int64_t wait = 0;
  EXPECT_FALSE(b.take(t + 100, &wait));  // 0.2 tokens refilled in 100 ms: none whole
  EXPECT_EQ(wait, 401);
  EXPECT_TRUE(b.take(t + 500));
}

TEST(TokenBucket, ASavedStateOutsideTheBucketIsClamped) {
  TokenBucket over(1.0, 2.0, 50.0, 1'000);  // a row written with a larger burst
  EXPECT_TRUE(over.take(1'000));
  EXPECT_TRUE(over.take(1'000));
  EXPECT_FALSE(over.take(1'000));
  TokenBucket under(1.0, 2.0, -3.0, 1'000);
  EXPECT_FALSE(under.take(1'000));
  EXPECT_TRUE(under.take(2'000));
  EXPECT_EQ(TokenBucket(1.0, 2.0, 2.0, 7).full_at_ms(), 7);          // full already
  EXPECT_EQ(TokenBucket(0.0, 2.0, 1.0, 7).full_at_ms(), INT64_MAX);  // never refills
}

}  // namespace
}  // namespace ads
