// Lab spec parsing: the seed (v1) format and ADS's v2, and the field named
// in every error.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/labspec.h"
#include "core/size.h"

namespace {
using ads::parse_labspec_v1;
using ads::parse_labspec_v2;

std::string read(const std::string& rel) {
  std::ifstream in(std::string(ADS_SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The seed-labspec.md example (phy07), as JSON.
const char* kPhy07 = R"({
  "template": "1.0",
  "lab": {
    "description": {"id": "phy07", "name": "Optics Bench", "status": "released", "type": "Simulation",
                    "server-side": true, "integration_level": 5, "discipline": ["Physical Sciences"],
                    "developer": [{"name": "A. Author", "role": "Lab Developer"}]},
    "build_requirements": {"platform": {"os": "ubuntu", "osVersion": "14", "arch": "x86_64", "service_pack": "",
      "installer": ["apt-get install -y make"],
      "build_steps": {"configure": [], "pre_build": [], "build": ["make -C ../src"], "post_build": [], "status": []}}},
    "runtime_requirements": {"platform": {"os": "ubuntu", "osVersion": "14", "arch": "x86_64", "servicepack": "",
      "hosting": "dedicated", "memory": {"min_required": "512mb", "max_required": "2gb", "swap": "1gb"},
      "storage": {"min_required": "10gb"},
      "installer": ["apt-get update", "apt-get install -y apache2 php5"],
      "lab_actions": {"init": ["cp -r ../build/* /var/www/html/"], "start": ["service apache2 start"],
        "shutdown": ["service apache2 stop"], "stop": [], "pause": [], "resume": [], "backup": [], "restore": [],
        "clean": [], "stats": [], "publish": []}}}
  }
})";

TEST(SpecV1, SeedExampleParsesWithTheSeedSystemsMeaning) {
  auto r = parse_labspec_v1(kPhy07);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto& s = *r;
  EXPECT_EQ(s.format, 1);
  EXPECT_EQ(s.id, "phy07");
  EXPECT_EQ(s.title, "Optics Bench");
  EXPECT_EQ(s.os, "ubuntu");
  EXPECT_EQ(s.os_version, "14.04");
  EXPECT_EQ(s.os_key(), "ubuntu-14.04");
  EXPECT_EQ(s.memory_mb, 512u);
  EXPECT_EQ(s.swap_mb, 1024u);
  EXPECT_EQ(s.storage_mb, 10240u);
  EXPECT_EQ(s.workdir, "scripts");
  ASSERT_EQ(s.install.size(), 4u);
  EXPECT_EQ(s.install[0].name, "build-installer");
  EXPECT_EQ(s.install[1].name, "build");
  EXPECT_EQ(s.install[1].commands, std::vector<std::string>{"make -C ../src"});
  EXPECT_EQ(s.install[2].name, "runtime-installer");
  EXPECT_EQ(s.install[2].commands.size(), 2u);
  EXPECT_EQ(s.install[3].name, "init");
  EXPECT_EQ(s.action("start"), std::vector<std::string>{"service apache2 start"});
  EXPECT_EQ(s.action("shutdown"), std::vector<std::string>{"service apache2 stop"});
  EXPECT_TRUE(s.action("backup").empty());
}

TEST(SpecV1, CentosSixAndNumericVersionNormalise) {
  auto r = parse_labspec_v1(
      R"({"lab":{"runtime_requirements":{"platform":{"os":"CentOS","osVersion":6,"memory":{"min_required":null}}}}})");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->os, "centos");
  EXPECT_EQ(r->os_version, "6.9");
  EXPECT_EQ(r->memory_mb, 0u);  // null means the default, as in the seed system
}

TEST(SpecV1, BundledSeedExampleParses) {
  auto r = ads::parse_labspec(ads::kSpecV1Path, read("examples/labs/seed-lab/scripts/labspec.json"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->os_key(), "debian-12");
  EXPECT_EQ(r->install.front().name, "pre_build");
  EXPECT_EQ(r->install.back().name, "init");
}

struct Bad {
  const char* json;
  const char* field;
};

class SpecV1Invalid : public ::testing::TestWithParam<Bad> {};

TEST_P(SpecV1Invalid, NamesTheField) {
  auto r = parse_labspec_v1(GetParam().json);
  ASSERT_FALSE(r.ok()) << GetParam().json;
  EXPECT_EQ(r.error().code, "invalid");
  EXPECT_EQ(r.error().field, GetParam().field) << r.error().message;
  EXPECT_FALSE(r.error().message.empty());
}

#define RT(x) R"({"lab":{"runtime_requirements":{"platform":)" x "}}}"
INSTANTIATE_TEST_SUITE_P(
    Fields, SpecV1Invalid,
    ::testing::Values(
        Bad{"{", ""}, Bad{"[]", ""}, Bad{"{}", "lab"},
        Bad{"1111111111111110000000000000E012643644952371772294", ""},  // found by the fuzzer: number overflow
        Bad{R"({"lab":{}})", "lab.runtime_requirements"},
        Bad{R"({"lab":{"runtime_requirements":{}}})", "lab.runtime_requirements.platform"},
        Bad{RT(R"({"osVersion":"12"})"), "lab.runtime_requirements.platform.os"},
        Bad{RT(R"({"os":"windows","osVersion":"12"})"), "lab.runtime_requirements.platform.os"},
        Bad{RT(R"({"os":"debian"})"), "lab.runtime_requirements.platform.osVersion"},
        Bad{RT(R"({"os":"debian","osVersion":"twelve"})"), "lab.runtime_requirements.platform.osVersion"},
        Bad{RT(R"({"os":"debian","osVersion":"12","memory":{"min_required":"lots"}})"),
            "lab.runtime_requirements.platform.memory.min_required"},
        Bad{RT(R"({"os":"debian","osVersion":"12","memory":{"swap":"-1mb"}})"),
            "lab.runtime_requirements.platform.memory.swap"},
        Bad{RT(R"({"os":"debian","osVersion":"12","memory":"512mb"})"), "lab.runtime_requirements.platform.memory"},
        Bad{RT(R"({"os":"debian","osVersion":"12","storage":{"min_required":"10 parsecs"}})"),
            "lab.runtime_requirements.platform.storage.min_required"},
        Bad{RT(R"({"os":"debian","osVersion":"12","installer":"apt-get update"})"),
            "lab.runtime_requirements.platform.installer"},
        Bad{RT(R"({"os":"debian","osVersion":"12","installer":["ok", 5]})"),
            "lab.runtime_requirements.platform.installer[1]"},
        Bad{RT(R"({"os":"debian","osVersion":"12","installer":["ok", "  "]})"),
            "lab.runtime_requirements.platform.installer[1]"},
        Bad{RT(R"({"os":"debian","osVersion":"12","lab_actions":{"strat":["x"]}})"),
            "lab.runtime_requirements.platform.lab_actions.strat"},
        Bad{RT(R"({"os":"debian","osVersion":"12","lab_actions":{"start":"x"}})"),
            "lab.runtime_requirements.platform.lab_actions.start"},
        Bad{R"({"lab":{"description":{"id":"cse02; rm -rf /"},"runtime_requirements":{"platform":{"os":"debian","osVersion":"12"}}}})",
            "lab.description.id"},
        Bad{R"({"lab":{"description":{"id":"../etc"},"runtime_requirements":{"platform":{"os":"debian","osVersion":"12"}}}})",
            "lab.description.id"},
        Bad{R"({"lab":{"build_requirements":{"platform":{"installer":[1]}},"runtime_requirements":{"platform":{"os":"debian","osVersion":"12"}}}})",
            "lab.build_requirements.platform.installer[0]"},
        Bad{R"({"lab":{"build_requirements":{"platform":{"build_steps":{"compile":["x"]}}},"runtime_requirements":{"platform":{"os":"debian","osVersion":"12"}}}})",
            "lab.build_requirements.platform.build_steps.compile"}));

const char* kV2 = R"({"ads":2,"name":"static-site","title":"T","os":{"name":"Debian","version":"12"},
  "resources":{"memory":"256mb","swap":"512M","storage":"1gb"},
  "install":["mkdir -p /srv/www","cp -r site/. /srv/www/"],"ansible":"deploy/site.yml",
  "actions":{"start":["busybox httpd -p 8080 -h /srv/www"],"test":["true"],"backup":["tar czf /tmp/b.tgz /srv/www"]},
  "http":{"port":8080,"path":"/index.html"}})";

TEST(SpecV2, FullSpecParses) {
  auto r = parse_labspec_v2(kV2);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->format, 2);
  EXPECT_EQ(r->id, "static-site");
  EXPECT_EQ(r->os_key(), "debian-12");
  EXPECT_EQ(r->memory_mb, 256u);
  EXPECT_EQ(r->swap_mb, 512u);
  EXPECT_EQ(r->storage_mb, 1024u);
  EXPECT_EQ(r->workdir, ".");
  EXPECT_EQ(r->ansible_playbook, "deploy/site.yml");
  ASSERT_EQ(r->install.size(), 1u);
  EXPECT_EQ(r->install[0].commands.size(), 2u);
  EXPECT_EQ(r->action("backup").size(), 1u);
  EXPECT_EQ(r->http_port, 8080);
  EXPECT_EQ(r->http_path, "/index.html");
}

TEST(SpecV2, BundledExampleParsesAndDispatchPicksTheFormat) {
  auto r = ads::parse_labspec(ads::kSpecV2Path, read("examples/labs/static-site/ads-lab.json"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->format, 2);
  EXPECT_EQ(r->http_port, 80);
  auto other = ads::parse_labspec("labspec.yaml", "{}");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().field, "spec");
}

class SpecV2Invalid : public ::testing::TestWithParam<Bad> {};

TEST_P(SpecV2Invalid, NamesTheField) {
  auto r = parse_labspec_v2(GetParam().json);
  ASSERT_FALSE(r.ok()) << GetParam().json;
  EXPECT_EQ(r.error().code, "invalid");
  EXPECT_EQ(r.error().field, GetParam().field) << r.error().message;
}

#define V2(x) R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"start":["s"]})" x "}"
INSTANTIATE_TEST_SUITE_P(
    Fields, SpecV2Invalid,
    ::testing::Values(
        Bad{"not json", ""}, Bad{R"({"os":{"name":"debian","version":"12"}})", "ads"},
        Bad{R"({"ads":1,"os":{"name":"debian","version":"12"}})", "ads"},
        Bad{R"({"ads":"2","os":{"name":"debian","version":"12"}})", "ads"}, Bad{R"({"ads":2})", "os"},
        Bad{R"({"ads":2,"os":{"name":"beos","version":"5"},"actions":{"start":["s"]}})", "os.name"},
        Bad{R"({"ads":2,"os":{"name":"debian"},"actions":{"start":["s"]}})", "os.version"},
        Bad{R"({"ads":2,"os":{"name":"debian","version":"12","arch":"x"},"actions":{"start":["s"]}})", "os.arch"},
        Bad{R"({"ads":2,"os":{"name":"debian","version":"12"}})", "actions.start"},
        Bad{R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"strat":["s"]}})", "actions.strat"},
        Bad{V2(R"(,"colour":"blue")"), "colour"}, Bad{V2(R"(,"name":"a b")"), "name"},
        Bad{V2(R"(,"name":"x;reboot")"), "name"}, Bad{V2(R"(,"resources":{"memory":"1 lot"})"), "resources.memory"},
        Bad{V2(R"(,"resources":{"cpu":2})"), "resources.cpu"}, Bad{V2(R"(,"install":[""])"), "install[0]"},
        Bad{V2(R"(,"install":{"a":"b"})"), "install"}, Bad{V2(R"(,"ansible":"../../etc/x.yml")"), "ansible"},
        Bad{V2(R"(,"ansible":"/abs.yml")"), "ansible"}, Bad{V2(R"(,"ansible":"x.yml'; reboot; '")"), "ansible"},
        Bad{V2(R"(,"http":{"port":9089})"), "http.port"}, Bad{V2(R"(,"http":{"port":0})"), "http.port"},
        Bad{V2(R"(,"http":{"port":70000})"), "http.port"}, Bad{V2(R"(,"http":{"port":"80"})"), "http.port"},
        Bad{V2(R"(,"http":{"path":"index.html"})"), "http.path"}, Bad{V2(R"(,"http":{"host":"x"})"), "http.host"}));

TEST(Sizes, SeedGrammar) {
  EXPECT_EQ(ads::parse_size_mb("256mb"), 256u);
  EXPECT_EQ(ads::parse_size_mb("2gb"), 2048u);
  EXPECT_EQ(ads::parse_size_mb("2 GB"), 2048u);
  EXPECT_EQ(ads::parse_size_mb("512M"), 512u);
  EXPECT_EQ(ads::parse_size_mb("512"), 512u);
  EXPECT_EQ(ads::parse_size_mb("2048kb"), 2u);
  EXPECT_EQ(ads::parse_size_mb(""), 0u);
  EXPECT_FALSE(ads::parse_size_mb("abc"));
  EXPECT_FALSE(ads::parse_size_mb("12x3"));
  EXPECT_FALSE(ads::parse_size_mb("-5mb"));
  EXPECT_FALSE(ads::parse_size_mb("1.5gb"));
  EXPECT_FALSE(ads::parse_size_mb("99999999999999999999999gb"));
}

}  // namespace
