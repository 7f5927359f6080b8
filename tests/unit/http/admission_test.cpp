// http::Admission: which connection is served, waits or is refused (no
// sockets; the file descriptors are just numbers here).
#include "http/admission.h"

#include <gtest/gtest.h>

namespace {
using ads::http::Admission;
using ads::http::AdmissionLimits;
using ads::http::Ticket;
using V = Admission::Verdict;

Ticket ticket(int fd, const std::string& address, int64_t at = 0) { return Ticket{fd, address, false, at}; }

TEST(ConnectionAdmission, ServesUpToTheLimitThenQueuesThenRefusesBusy) {
  Admission a(AdmissionLimits{2, 0, 0, 1, 0});
  Ticket t1 = ticket(1, "a"), t2 = ticket(2, "b"), t3 = ticket(3, "c"), t4 = ticket(4, "d");
  EXPECT_EQ(a.arrive(t1), V::kServe);
  EXPECT_EQ(a.arrive(t2), V::kServe);
  EXPECT_EQ(a.arrive(t3), V::kQueued);
  EXPECT_EQ(a.arrive(t4), V::kBusy);
  EXPECT_EQ(a.open(), 2u);
  EXPECT_EQ(a.queued(), 1u);
  // a slot frees: the waiting one takes it
  auto next = a.release(t1);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->fd, 3);
  EXPECT_EQ(a.open(), 2u);
  EXPECT_EQ(a.queued(), 0u);
  EXPECT_FALSE(a.release(t2));
  EXPECT_FALSE(a.release(*next));
  EXPECT_EQ(a.open(), 0u);
}

TEST(ConnectionAdmission, OneAddressGetsItsShareAndItsOverflowWaitsWithoutBlockingOthers) {
  Admission a(AdmissionLimits{10, 0, 2, 10, 2});
  std::vector<Ticket> mine;
  mine.reserve(4);
  for (int i = 0; i < 4; ++i) mine.push_back(ticket(i, "attacker"));
  EXPECT_EQ(a.arrive(mine[0]), V::kServe);
  EXPECT_EQ(a.arrive(mine[1]), V::kServe);
  EXPECT_EQ(a.arrive(mine[2]), V::kQueued);
  EXPECT_EQ(a.arrive(mine[3]), V::kQueued);
  Ticket over = ticket(9, "attacker");
  EXPECT_EQ(a.arrive(over), V::kTooManyFromAddress);
  EXPECT_EQ(a.open_from("attacker"), 2u);
  // another address is served at once, though the queue holds older ones
  Ticket other = ticket(20, "honest");
  EXPECT_EQ(a.arrive(other), V::kServe);
  // the honest one leaving frees a slot the attacker may not take (over its share)
  EXPECT_FALSE(a.release(other));
  // one of the attacker's own leaving lets its oldest waiting one in
  auto next = a.release(mine[0]);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->fd, 2);
  EXPECT_EQ(a.open_from("attacker"), 2u);
}

// An address holding many slots with many waiting does not get ahead of a
// newcomer holding none: a freed slot goes to the fewest served first.
TEST(ConnectionAdmission, AFreedSlotGoesToTheAddressWithTheFewestServed) {
  Admission a(AdmissionLimits{4, 0, 3, 100, 100});
  std::vector<Ticket> held;
  held.reserve(4);
  for (int i = 0; i < 3; ++i) held.push_back(ticket(i, "attacker", 0));
  held.push_back(ticket(3, "other", 0));
  for (auto& t : held) ASSERT_EQ(a.arrive(t), V::kServe);
  // the attacker queues early and often; the honest client comes last
  for (int i = 10; i < 15; ++i) {
    Ticket t = ticket(i, "attacker", i);
    ASSERT_EQ(a.arrive(t), V::kQueued);
  }
  Ticket honest = ticket(99, "honest", 100);
  ASSERT_EQ(a.arrive(honest), V::kQueued);
  // one of the attacker's is cut: the honest one (nothing served) goes first
  auto next = a.release(held[0]);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->fd, 99);
  // then, among equals, the oldest
  auto after = a.release(held[3]);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->fd, 10);
}

TEST(ConnectionAdmission, NoQueueMeansRefusalAtOnce) {
  Admission a(AdmissionLimits{1, 0, 1, 0, 0});
  Ticket t1 = ticket(1, "a"), t2 = ticket(2, "a"), t3 = ticket(3, "b");
  EXPECT_EQ(a.arrive(t1), V::kServe);
  EXPECT_EQ(a.arrive(t2), V::kTooManyFromAddress);  // its address is at its share
  EXPECT_EQ(a.arrive(t3), V::kBusy);                // the server is full
}

TEST(ConnectionAdmission, ReservedSlotsComeLastAndAreCountedApart) {
  Admission a(AdmissionLimits{4, 2, 0, 0, 0});
  std::vector<Ticket> t;
  t.reserve(5);
  for (int i = 0; i < 5; ++i) t.push_back(ticket(i, "x" + std::to_string(i)));
  for (int i = 0; i < 4; ++i) ASSERT_EQ(a.arrive(t[i]), V::kServe) << i;
  EXPECT_FALSE(t[0].reserved);
  EXPECT_FALSE(t[1].reserved);
  EXPECT_TRUE(t[2].reserved);
  EXPECT_TRUE(t[3].reserved);
  EXPECT_EQ(a.reserved_open(), 2u);
  EXPECT_EQ(a.arrive(t[4]), V::kBusy);
  // a normal slot frees: the next comes in as normal
  a.release(t[0]);
  EXPECT_EQ(a.arrive(t[4]), V::kServe);
  EXPECT_FALSE(t[4].reserved);
  // a reserved one frees: the next gets that reserved slot
  a.release(t[2]);
  Ticket late = ticket(7, "y");
  EXPECT_EQ(a.arrive(late), V::kServe);
  EXPECT_TRUE(late.reserved);
  EXPECT_EQ(a.reserved_open(), 2u);
}

TEST(ConnectionAdmission, WaitingConnectionsExpireOldestFirstAndDrain) {
  Admission a(AdmissionLimits{1, 0, 0, 10, 0});
  Ticket busy = ticket(1, "a", 0);
  ASSERT_EQ(a.arrive(busy), V::kServe);
  for (int i = 2; i <= 5; ++i) {
    Ticket t = ticket(i, "w", i * 100);
    ASSERT_EQ(a.arrive(t), V::kQueued);
  }
  EXPECT_EQ(*a.oldest_waiting(), 200);
  auto gone = a.expire(300);
  ASSERT_EQ(gone.size(), 2u);
  EXPECT_EQ(gone[0].fd, 2);
  EXPECT_EQ(gone[1].fd, 3);
  EXPECT_EQ(*a.oldest_waiting(), 400);
  auto rest = a.drain();
  EXPECT_EQ(rest.size(), 2u);
  EXPECT_FALSE(a.oldest_waiting());
  EXPECT_FALSE(a.release(busy));
}

}  // namespace
