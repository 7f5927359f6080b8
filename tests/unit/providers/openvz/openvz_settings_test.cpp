// OpenvzProvider settings, CTIDs and labels: no host needed.
#include <gtest/gtest.h>

#include "providers/openvz/openvz_provider.h"
#include "providers/provider.h"

namespace {
using nlohmann::json;

json good() {
  return {{"host", "10.250.3.254"},
          {"port", 2222},
          {"private_key", "/etc/ads/key"},
          {"known_hosts", "/etc/ads/known_hosts"},
          {"subnet", "10.250.3.0/24"}};
}

TEST(OpenvzSettings, RegisteredAndBuiltFromJson) {
  auto kinds = ads::provider_kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "openvz"), kinds.end());
  auto p = ads::make_provider("openvz", good());
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ((*p)->kind(), "openvz");
  EXPECT_EQ((*p)->address_pool(), "10.250.3.0/24");
}

TEST(OpenvzSettings, EveryBadFieldIsNamed) {
  struct Case {
    std::string field;
    json value;  // null: remove the field
  };
  std::vector<Case> cases = {
      {"host", nullptr},
      {"host", 5},
      {"host", ""},
      {"private_key", nullptr},
      {"private_key", "rel/key"},
      {"known_hosts", nullptr},
      {"known_hosts", "known_hosts"},
      {"subnet", nullptr},
      {"subnet", "10.250.3.0"},
      {"subnet", "10.250.3.9/24"},
      {"subnet", "10.0.0.0/31"},
      {"port", 0},
      {"port", 70000},
      {"port", "22"},
      {"ctid_base", 100},
      {"ctid_base", 2147483600},
      {"nameserver", "dns.example"},
      {"templates", json::object()},
      {"templates", json{{"centos-6", 1}}},
      {"root_dir", "vz/root"},
      {"root_dir", "/vz/../etc"},
      {"memory_mb", -1},
      {"swap_mb", "1G"},
      {"command_timeout_s", 0},
      {"surprise", 1},
      {"backup_dir", "dump"},
      {"backup_dir", "/vz/../x"},
  };
  for (auto& c : cases) {
    json j = good();
    if (c.value.is_null()) j.erase(c.field);
    else j[c.field] = c.value;
    auto p = ads::make_provider("openvz", j);
    ASSERT_FALSE(p.ok()) << c.field << " = " << c.value.dump();
    EXPECT_EQ(p.error().code, "invalid");
    EXPECT_EQ(p.error().field.rfind("providers.openvz." + c.field, 0), 0u)
        << c.field << ": " << p.error().field << " " << p.error().message;
  }
  auto notobj = ads::make_provider("openvz", json::array());
  ASSERT_FALSE(notobj.ok());
  EXPECT_EQ(notobj.error().field, "providers.openvz");
}

TEST(OpenvzSettings, CtidFollowsTheAddress) {
  ads::OpenvzProvider::Settings s;
  s.subnet = *ads::parse_ipv4_subnet("10.250.3.0/24");
  s.subnet_text = "10.250.3.0/24";
  s.ctid_base = 1000;
  ads::OpenvzProvider p(s);
  EXPECT_EQ(*p.ctid_for("10.250.3.2"), 1002);
  EXPECT_EQ(*p.ctid_for("10.250.3.254"), 1254);
  for (std::string bad : {"10.250.3.0", "10.250.3.1", "10.250.3.255", "10.250.4.2", "x", ""}) {
    auto c = p.ctid_for(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.error().code, "invalid");
  }
}

TEST(OpenvzLabels, RoundTripThroughOneWordDescription) {
  std::map<std::string, std::string> labels = {{"deployment", "01jabc"}, {"lab", "it's a lab, = 100%\n$(x)"}};
  std::string d = ads::OpenvzProvider::encode_labels(labels);
  EXPECT_EQ(d.rfind("ads:", 0), 0u);
  EXPECT_EQ(d.find_first_of(" \t\n'\"$"), std::string::npos) << d;
  auto back = ads::OpenvzProvider::decode_labels(d);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, labels);
  EXPECT_FALSE(ads::OpenvzProvider::decode_labels("someone else's container").has_value());
  EXPECT_FALSE(ads::OpenvzProvider::decode_labels("ads:broken").has_value());
  EXPECT_FALSE(ads::OpenvzProvider::decode_labels("ads:a=%zz").has_value());
}

}  // namespace
