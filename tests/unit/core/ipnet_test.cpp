// IPv4 parsing and the pool rule (core/ipnet.h).
#include "core/ipnet.h"

#include <gtest/gtest.h>

namespace {
using ads::format_ipv4;
using ads::lowest_free;
using ads::parse_ipv4;
using ads::parse_ipv4_subnet;

TEST(Ipv4, ParsesAndFormatsRoundTrip) {
  for (std::string s : {"0.0.0.0", "10.250.3.1", "192.168.0.255", "255.255.255.255", "1.2.3.4"}) {
    auto a = parse_ipv4(s);
    ASSERT_TRUE(a.ok()) << s;
    EXPECT_EQ(format_ipv4(*a), s);
  }
  EXPECT_EQ(*parse_ipv4("10.0.0.1"), 0x0a000001u);
}

TEST(Ipv4, RefusesMalformedAddresses) {
  for (std::string s : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "01.2.3.4", "1..2.3", "1.2.3.4 ", " 1.2.3.4",
                        "a.b.c.d", "1.2.3.4/24", "1000.1.1.1", "1.2.3.", ".1.2.3", "1.2.3.4\n"}) {
    auto a = parse_ipv4(s);
    EXPECT_FALSE(a.ok()) << "accepted \"" << s << "\"";
    if (!a.ok()) {
      EXPECT_EQ(a.error().code, "invalid");
    }
  }
}

TEST(Ipv4Subnet, ParsesCanonicalCidr) {
  auto n = parse_ipv4_subnet("10.250.7.0/24");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->to_string(), "10.250.7.0/24");
  EXPECT_EQ(format_ipv4(n->broadcast()), "10.250.7.255");
  EXPECT_EQ(format_ipv4(n->gateway()), "10.250.7.1");
  EXPECT_EQ(format_ipv4(n->first_allocatable()), "10.250.7.2");
  EXPECT_EQ(format_ipv4(n->last_allocatable()), "10.250.7.254");
  EXPECT_TRUE(n->contains(*parse_ipv4("10.250.7.99")));
  EXPECT_FALSE(n->contains(*parse_ipv4("10.250.8.1")));
  auto all = parse_ipv4_subnet("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->broadcast(), 0xffffffffu);
}

TEST(Ipv4Subnet, RefusesBadCidrNamingTheField) {
  for (std::string s : {"10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/2a", "10.0.0.0/024",
                        "10.0.0/24", "/24", "10.0.0.0/24/1", "x/24"}) {
    auto n = parse_ipv4_subnet(s, "providers.openvz.subnet");
    ASSERT_FALSE(n.ok()) << "accepted " << s;
    EXPECT_EQ(n.error().code, "invalid");
    EXPECT_EQ(n.error().field, "providers.openvz.subnet");
  }
  auto n = parse_ipv4_subnet("10.0.0.5/24");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("did you mean 10.0.0.0/24"), std::string::npos) << n.error().message;
}

TEST(LowestFree, SkipsNetworkGatewayAndBroadcast) {
  auto n = *parse_ipv4_subnet("192.168.5.0/29");  // .0 net, .1 gw, .2-.6 pool, .7 bcast
  EXPECT_EQ(format_ipv4(*lowest_free(n, {})), "192.168.5.2");
  std::vector<uint32_t> taken;
  for (int i = 2; i <= 6; ++i) {
    auto a = lowest_free(n, taken);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(format_ipv4(*a), "192.168.5." + std::to_string(i));
    taken.push_back(*a);
  }
  EXPECT_FALSE(lowest_free(n, taken).has_value());
}

TEST(LowestFree, FillsTheLowestGapWhateverTheOrder) {
  auto n = *parse_ipv4_subnet("10.1.0.0/24");
  auto ip = [](const char* s) { return *parse_ipv4(s); };
  // unsorted, duplicates, entries outside the pool
  std::vector<uint32_t> taken = {ip("10.1.0.5"), ip("10.1.0.2"), ip("10.1.0.3"), ip("10.1.0.3"),
                                 ip("10.1.0.1"), ip("10.9.9.9"), ip("10.1.0.0")};
  EXPECT_EQ(format_ipv4(*lowest_free(n, taken)), "10.1.0.4");
}

TEST(LowestFree, TinySubnets) {
  auto n30 = *parse_ipv4_subnet("10.0.0.4/30");  // only .6
  EXPECT_EQ(format_ipv4(*lowest_free(n30, {})), "10.0.0.6");
  EXPECT_FALSE(lowest_free(n30, {*parse_ipv4("10.0.0.6")}).has_value());
  EXPECT_FALSE(lowest_free(*parse_ipv4_subnet("10.0.0.4/31"), {}).has_value());
  EXPECT_FALSE(lowest_free(*parse_ipv4_subnet("10.0.0.4/32"), {}).has_value());
  // the top of the address space does not wrap
  auto top = *parse_ipv4_subnet("255.255.255.252/30");
  EXPECT_EQ(format_ipv4(*lowest_free(top, {})), "255.255.255.254");
  EXPECT_FALSE(lowest_free(top, {0xfffffffeu}).has_value());
}

}  // namespace
