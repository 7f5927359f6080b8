// LXD bridged/macvlan NIC settings and the static-address hook (no LXD needed;
// tests/integration/bridged_test.cpp runs them on real containers).
#include <gtest/gtest.h>

#include <fstream>

#include "providers/lxd/lxd_provider.h"
#include "support/process.h"

namespace {
using nlohmann::json;

TEST(LxdNicSettings, DefaultHasNoPoolAndBridgedStaticHasOne) {
  auto plain = ads::make_provider("lxd", json::object());
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ((*plain)->address_pool(), "");
  auto dhcp = ads::make_provider("lxd", json{{"nic", {{"type", "bridged"}, {"parent", "br0"}}}});
  ASSERT_TRUE(dhcp.ok()) << dhcp.error().to_string();
  EXPECT_EQ((*dhcp)->address_pool(), "");  // DHCP on the LAN: nothing to allocate
  auto st =
      ads::make_provider("lxd", json{{"nic", {{"type", "macvlan"}, {"parent", "eth1"}, {"subnet", "192.168.7.0/24"}}}});
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_EQ((*st)->address_pool(), "192.168.7.0/24");
}

TEST(LxdNicSettings, EveryBadFieldIsNamed) {
  struct Case {
    json nic;
    std::string field;
  };
  std::vector<Case> cases = {
      {json::array(), "providers.lxd.nic"},
      {{{"type", "routed"}, {"parent", "br0"}}, "providers.lxd.nic.type"},
      {{{"parent", "br0"}}, "providers.lxd.nic.type"},
      {{{"type", "bridged"}}, "providers.lxd.nic.parent"},
      {{{"type", "bridged"}, {"parent", "a-very-long-interface"}}, "providers.lxd.nic.parent"},
      {{{"type", "bridged"}, {"parent", "br0; reboot"}}, "providers.lxd.nic.parent"},
      {{{"type", "bridged"}, {"parent", "../x"}}, "providers.lxd.nic.parent"},
      {{{"type", "bridged"}, {"parent", 3}}, "providers.lxd.nic.parent"},
      {{{"type", "bridged"}, {"parent", "br0"}, {"subnet", "10.0.0.1/24"}}, "providers.lxd.nic.subnet"},
      {{{"type", "bridged"}, {"parent", "br0"}, {"subnet", "10.0.0.0/31"}}, "providers.lxd.nic.subnet"},
      {{{"type", "bridged"}, {"parent", "br0"}, {"subnet", "10.0.0.0/24"}, {"gateway", "10.0.1.1"}},
       "providers.lxd.nic.gateway"},
      {{{"type", "bridged"}, {"parent", "br0"}, {"subnet", "10.0.0.0/24"}, {"nameserver", "$(x)"}},
       "providers.lxd.nic.nameserver"},
      {{{"type", "bridged"}, {"parent", "br0"}, {"subnet", "10.0.0.0/24"}, {"static_hook", "rel"}},
       "providers.lxd.nic.static_hook"},
      {{{"type", "bridged"}, {"parent", "br0"}, {"gateway", "10.0.0.1"}}, "providers.lxd.nic.subnet"},
      {{{"type", "bridged"}, {"parent", "br0"}, {"mtu", "1500"}}, "providers.lxd.nic.mtu"},
  };
  for (auto& c : cases) {
    auto p = ads::make_provider("lxd", json{{"nic", c.nic}});
    ASSERT_FALSE(p.ok()) << c.nic.dump();
    EXPECT_EQ(p.error().code, "invalid");
    EXPECT_EQ(p.error().field, c.field) << c.nic.dump() << ": " << p.error().message;
  }
}

TEST(LxdNicSettings, StaticHookSetsTheAddressWhateverTheEvent) {
  ads::LxdProvider::Settings s;
  s.nic.type = "bridged";
  s.nic.parent = "br0";
  s.nic.subnet = "10.252.9.0/24";
  s.nic.gateway = "10.252.9.1";
  s.nic.nameserver = "10.252.9.53";
  ads::LxdProvider p(s);
  auto hook = p.static_hook_script("10.252.9.7");
  ASSERT_TRUE(hook.ok()) << hook.error().message;
  EXPECT_NE(hook->find("busybox ip addr add 10.252.9.7/24 dev \"$interface\""), std::string::npos) << *hook;
  EXPECT_NE(hook->find("default via 10.252.9.1 "), std::string::npos);
  EXPECT_NE(hook->find("nameserver 10.252.9.53"), std::string::npos);
  for (std::string bad : {"10.252.9.0", "10.252.9.1", "10.252.9.255", "10.252.10.7", "10.252.9.7; reboot", ""}) {
    auto h = p.static_hook_script(bad);
    ASSERT_FALSE(h.ok()) << bad;
    EXPECT_EQ(h.error().field, "address");
  }
  // it is a valid shell script
  ads::test::TempDir tmp;
  std::string f = (tmp.path / "hook").string();
  { std::ofstream(f) << *hook; }
  std::string out;
  EXPECT_EQ(ads::test::run({"/bin/sh", "-n", f}, &out), 0) << out;
}

// A machine on a static pool must come with its address.
TEST(LxdNicSettings, StaticPoolNeedsAnAddressBeforeTouchingLxd) {
  auto p =
      ads::make_provider("lxd", json{{"socket", "/nonexistent/lxd.socket"},
                                     {"nic", {{"type", "bridged"}, {"parent", "br0"}, {"subnet", "10.252.9.0/24"}}}});
  ASSERT_TRUE(p.ok());
  ads::MachineSpec m;
  m.name = "ads-01jnoaddr";
  m.os_key = "debian-12";
  auto st = (*p)->create(m, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "address");
  m.address = "10.99.0.2";
  st = (*p)->create(m, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "address");
}

}  // namespace
