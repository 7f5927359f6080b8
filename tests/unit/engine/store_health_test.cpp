// The engine's bookkeeping for store outages (issue 16.2 and 16.5), without
// a clock of its own: a lease that lapsed here is lost for good (its job's
// writes are fenced, even when renewals work again), only live leases are
// renewed; the trouble is said once per spell, with a doubling, capped wait,
// and shown to clients only past a blip.
#include "engine/store_health.h"

#include <gtest/gtest.h>

#include "engine/lease_book.h"

namespace {
using namespace std::chrono_literals;

TEST(LeaseBook, ALeaseThatLapsedIsLostForGoodAndNoLongerRenewed) {
  ads::LeaseBook b;
  b.add("j1", "d1", 1000);
  b.add("j2", "d2", 1000);
  EXPECT_EQ(b.live(500), (std::vector<std::string>{"j1", "j2"}));
  b.renewed({"j1"}, 2000);
  EXPECT_TRUE(b.held("d1", 1500));
  EXPECT_FALSE(b.held("d2", 1500));  // lapsed at 1000
  EXPECT_EQ(b.live(1500), (std::vector<std::string>{"j1"}));
  b.renewed({"j2"}, 9000);  // a renewal that comes too late changes nothing
  EXPECT_FALSE(b.held("d2", 1600));
  EXPECT_EQ(b.live(1600), (std::vector<std::string>{"j1"}));
  EXPECT_TRUE(b.has("j2"));  // until its worker is done with it
  b.remove("j2");
  EXPECT_FALSE(b.has("j2"));
  EXPECT_TRUE(b.held("d2", 1700));  // no job of this process on it: nothing to fence
  EXPECT_EQ(b.expiry_of_deployment("d1"), 2000);
  EXPECT_EQ(b.expiry_of_deployment("d9"), 0);
}

TEST(StoreHealth, TheTroubleIsSaidOnceWithADoublingCappedWaitAndShownPastABlip) {
  ads::StoreHealth h(100ms, 350ms);
  EXPECT_FALSE(h.succeeded(0).has_value());  // nothing to say
  auto f1 = h.failed("down", 1000);
  EXPECT_TRUE(f1.began);
  EXPECT_EQ(f1.wait, 100ms);
  EXPECT_FALSE(h.trouble().has_value()) << "one failure is a blip";
  auto f2 = h.failed("still down", 1100);
  EXPECT_FALSE(f2.began);
  EXPECT_EQ(f2.wait, 200ms);
  EXPECT_EQ(h.failed("still down", 1300).wait, 350ms);
  EXPECT_EQ(h.failed("still down", 1650).wait, 350ms);
  auto t = h.trouble();
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->message, "still down");
  EXPECT_EQ(t->since_ms, 1000);
  EXPECT_EQ(t->failures, 4);
  auto lasted = h.succeeded(3000);
  ASSERT_TRUE(lasted.has_value());
  EXPECT_EQ(*lasted, 2000);
  EXPECT_FALSE(h.succeeded(3100).has_value());
  EXPECT_FALSE(h.trouble().has_value());
  auto again = h.failed("down again", 5000);
  EXPECT_TRUE(again.began);
  EXPECT_EQ(again.wait, 100ms);  // a new spell starts from the first wait
}

}  // namespace
