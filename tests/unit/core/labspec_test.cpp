// Lab spec parsing: the seed system's v1 format (shared/reference/seed-labspec.md,
// section 3) and ADS's v2, and the exact field named by every error.
#include "core/labspec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {
using ads::LabSpec;
using ads::parse_labspec;
using ads::parse_labspec_v1;
using ads::parse_labspec_v2;
using nlohmann::json;

// The seed-labspec.md example (phy07) as JSON, every field of the outline.
const char* const kPhy07 = R"({
  "template": "1.0",
  "lab": {
    "description": {
      "id": "phy07", "name": "Optics Bench", "status": "released",
      "type": "Simulation", "server-side": true, "integration_level": 5,
      "discipline": ["Physical Sciences"],
      "developer": [{"name": "A. Author", "role": "Lab Developer", "institute": "Some IIT",
                     "organization": "", "title": "", "web": "", "department": "",
                     "contact": {"email": "a@example.org", "alternate_email": "",
                                 "mobile_number": "", "office_number": ""}}]
    },
    "build_requirements": {
      "platform": {
        "os": "ubuntu", "osVersion": "14", "arch": "x86_64", "service_pack": "",
        "installer": ["apt-get install -y make"],
        "build_steps": {"configure": [], "pre_build": [], "build": ["make -C ../src"],
                        "post_build": [], "status": []}
      }
    },
    "runtime_requirements": {
      "platform": {
        "os": "ubuntu", "osVersion": "14", "arch": "x86_64", "servicepack": "", "hosting": "dedicated",
        "memory": {"min_required": "512mb", "max_required": "2gb"},
        "storage": {"min_required": "10gb"},
        "installer": ["apt-get update", "apt-get install -y apache2 php5"],
        "lab_actions": {
          "init": ["cp -r ../build/* /var/www/html/"],
          "start": ["service apache2 start"], "shutdown": ["service apache2 stop"],
          "stop": [], "pause": [], "resume": [], "backup": [], "restore": [],
          "clean": [], "stats": [], "publish": []
        }
      }
    }
  }
})";

// A v2 spec with every field.
const char* const kV2Full = R"({
  "ads": 2,
  "name": "static-site",
  "title": "ADS example: a static web site",
  "os": {"name": "debian", "version": "12"},
  "resources": {"memory": "256mb", "swap": "512mb", "storage": "1gb"},
  "install": ["mkdir -p /srv/www", "cp -r site/. /srv/www/"],
  "ansible": "deploy/playbook.yml",
  "actions": {
    "init": ["echo init"],
    "start": ["busybox httpd -p 8080 -h /srv/www"],
    "stop": ["busybox pkill -f 'busybox httpd' || true"],
    "test": ["busybox wget -q -O - http://127.0.0.1:8080/ | grep -q lab"],
    "backup": ["cp -r /srv/www/data \"$ADS_BACKUP_DIR\"/"],
    "restore": ["cp -r \"$ADS_BACKUP_DIR\"/data /srv/www/"]
  },
  "http": {"port": 8080, "path": "/index.html"}
})";

const char* const kV2Min = R"({"ads": 2, "os": {"name": "ubuntu", "version": "22.04"}, "actions": {"start": ["x"]}})";

std::vector<std::string> phase_names(const LabSpec& s) {
  std::vector<std::string> out;
  for (const auto& p : s.install) out.push_back(p.name);
  return out;
}

const std::vector<std::string>& phase(const LabSpec& s, const std::string& name) {
  static const std::vector<std::string> kNone;
  for (const auto& p : s.install)
    if (p.name == name) return p.commands;
  return kNone;
}

json phy07() { return json::parse(kPhy07); }
json v2full() { return json::parse(kV2Full); }

// Result of parsing `j` with `parser`, which must succeed.
LabSpec must_parse(ads::Result<LabSpec> (*parser)(std::string_view), const json& j) {
  auto r = parser(j.dump());
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string()) << "\n" << j.dump();
  return r.ok() ? r.value() : LabSpec{};
}

void expect_invalid(const ads::Result<LabSpec>& r, const std::string& field, const std::string& input) {
  ASSERT_FALSE(r.ok()) << "accepted: " << input.substr(0, 300);
  EXPECT_EQ(r.error().code, "invalid") << input.substr(0, 300);
  EXPECT_EQ(r.error().field, field) << r.error().to_string() << "\n" << input.substr(0, 300);
  EXPECT_FALSE(r.error().message.empty());
}

// ------------------------------------------------------------------------ v1

TEST(LabSpecV1, SeedExamplePhy07) {
  auto r = parse_labspec_v1(kPhy07);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const LabSpec& s = r.value();
  EXPECT_EQ(s.format, 1);
  EXPECT_EQ(s.id, "phy07");
  EXPECT_EQ(s.title, "Optics Bench");
  EXPECT_EQ(s.os, "ubuntu");
  EXPECT_EQ(s.os_version, "14.04");  // seed normalisation: ubuntu 14 -> 14.04
  EXPECT_EQ(s.os_key(), "ubuntu-14.04");
  EXPECT_EQ(s.memory_mb, 512u);
  EXPECT_EQ(s.swap_mb, 0u);  // absent: provider default
  EXPECT_EQ(s.storage_mb, 10240u);
  EXPECT_EQ(s.workdir, "scripts");
  EXPECT_TRUE(s.ansible_playbook.empty());
  EXPECT_EQ(s.http_port, 80);
  EXPECT_EQ(s.http_path, "/");

  // Empty build phases are left out; the others keep the seed's order.
  EXPECT_EQ(phase_names(s), (std::vector<std::string>{"build-installer", "build", "runtime-installer", "init"}));
  EXPECT_EQ(phase(s, "build-installer"), (std::vector<std::string>{"apt-get install -y make"}));
  EXPECT_EQ(phase(s, "build"), (std::vector<std::string>{"make -C ../src"}));
  EXPECT_EQ(phase(s, "runtime-installer"),
            (std::vector<std::string>{"apt-get update", "apt-get install -y apache2 php5"}));
  EXPECT_EQ(phase(s, "init"), (std::vector<std::string>{"cp -r ../build/* /var/www/html/"}));

  // Actions: only the non-empty ones are in the map.
  EXPECT_EQ(s.actions.size(), 3u);
  EXPECT_EQ(s.action("init"), (std::vector<std::string>{"cp -r ../build/* /var/www/html/"}));
  EXPECT_EQ(s.action("start"), (std::vector<std::string>{"service apache2 start"}));
  EXPECT_EQ(s.action("shutdown"), (std::vector<std::string>{"service apache2 stop"}));
  EXPECT_TRUE(s.action("stop").empty());
  EXPECT_TRUE(s.action("backup").empty());
  EXPECT_TRUE(s.action("no-such-action").empty());
  EXPECT_EQ(s.actions.count("stop"), 0u);
}

TEST(LabSpecV1, InstallPhasesRunInTheSeedOrder) {
  // Every phase filled; the input lists them in a different order.
  json j = phy07();
  auto& bp = j["lab"]["build_requirements"]["platform"];
  bp["build_steps"] = {{"status", {"s1"}},
                       {"post_build", {"pb1", "pb2"}},
                       {"build", {"b1"}},
                       {"pre_build", {"p1"}},
                       {"configure", {"c1", "c2"}}};
  bp["installer"] = {"bi1", "bi2"};
  LabSpec s = must_parse(parse_labspec_v1, j);
  EXPECT_EQ(phase_names(s), (std::vector<std::string>{"build-installer", "configure", "pre_build", "build",
                                                      "post_build", "status", "runtime-installer", "init"}));
  EXPECT_EQ(phase(s, "build-installer"), (std::vector<std::string>{"bi1", "bi2"}));
  EXPECT_EQ(phase(s, "configure"), (std::vector<std::string>{"c1", "c2"}));
  EXPECT_EQ(phase(s, "post_build"), (std::vector<std::string>{"pb1", "pb2"}));
  EXPECT_EQ(phase(s, "status"), (std::vector<std::string>{"s1"}));
  // init runs once, last, and is also the "init" action.
  EXPECT_EQ(s.install.back().name, "init");
  EXPECT_EQ(s.install.back().commands, s.action("init"));
  auto names = phase_names(s);
  EXPECT_EQ(std::count(names.begin(), names.end(), "init"), 1);
}

TEST(LabSpecV1, CommandsKeepTheirOrderAndText) {
  json j = phy07();
  std::vector<std::string> cmds = {"echo 'a b'", "cd ../src && make", "test -f x || exit 1", "  indented"};
  j["lab"]["runtime_requirements"]["platform"]["installer"] = cmds;
  LabSpec s = must_parse(parse_labspec_v1, j);
  EXPECT_EQ(phase(s, "runtime-installer"), cmds);
}

TEST(LabSpecV1, OsNormalisation) {
  struct Case {
    json os, version;
    std::string want_os, want_version;
  };
  const std::vector<Case> cases = {
      {"ubuntu", "14", "ubuntu", "14.04"},    {"ubuntu", "12", "ubuntu", "12.04"},
      {"ubuntu", "13", "ubuntu", "13.04"},    {"ubuntu", "14.04", "ubuntu", "14.04"},
      {"ubuntu", "12.10", "ubuntu", "12.10"}, {"Ubuntu", "14", "ubuntu", "14.04"},
      {"UBUNTU", 14, "ubuntu", "14.04"},      {"centos", "6", "centos", "6.9"},
      {"CentOS", 6, "centos", "6.9"},         {"centos", "7", "centos", "7"},
      {"centos", "6.5", "centos", "6.5"},     {"debian", "12", "debian", "12"},
      {"Debian", 11, "debian", "11"},
  };
  for (const auto& c : cases) {
    json j = phy07();
    j["lab"]["runtime_requirements"]["platform"]["os"] = c.os;
    j["lab"]["runtime_requirements"]["platform"]["osVersion"] = c.version;
    LabSpec s = must_parse(parse_labspec_v1, j);
    EXPECT_EQ(s.os, c.want_os) << c.os << " " << c.version;
    EXPECT_EQ(s.os_version, c.want_version) << c.os << " " << c.version;
    EXPECT_EQ(s.os_key(), c.want_os + "-" + c.want_version);
  }
}

TEST(LabSpecV1, OnlyTheRuntimePlatformPicksTheOs) {
  // The build platform is ignored (the build runs on the runtime machine).
  json j = phy07();
  j["lab"]["build_requirements"]["platform"]["os"] = "windows";
  j["lab"]["build_requirements"]["platform"]["osVersion"] = "xp";
  j["lab"]["runtime_requirements"]["platform"]["os"] = "centos";
  j["lab"]["runtime_requirements"]["platform"]["osVersion"] = "6";
  LabSpec s = must_parse(parse_labspec_v1, j);
  EXPECT_EQ(s.os_key(), "centos-6.9");
}

TEST(LabSpecV1, NormaliseOsVersionDirectly) {
  EXPECT_EQ(ads::normalise_os_version("ubuntu", "14"), "14.04");
  EXPECT_EQ(ads::normalise_os_version("ubuntu", "16.04"), "16.04");
  EXPECT_EQ(ads::normalise_os_version("centos", "6"), "6.9");
  EXPECT_EQ(ads::normalise_os_version("centos", "7"), "7");
  EXPECT_EQ(ads::normalise_os_version("debian", "12"), "12");
  EXPECT_EQ(ads::normalise_os_version("debian", "6"), "6");
}

TEST(LabSpecV1, SizesInMegabytes) {
  struct Case {
    json mem, swap, storage;
    uint64_t mem_mb, swap_mb, storage_mb;
  };
  const std::vector<Case> cases = {
      {"256mb", "512M", "2gb", 256, 512, 2048}, {"2gb", "1 GB", "10 GB", 2048, 1024, 10240},
      {"1048576kb", "", "512", 1024, 0, 512},   {nullptr, nullptr, nullptr, 0, 0, 0},
      {512, 1024, 4096, 512, 1024, 4096},       {"0", "0mb", "0gb", 0, 0, 0},
  };
  for (const auto& c : cases) {
    json j = phy07();
    auto& p = j["lab"]["runtime_requirements"]["platform"];
    p["memory"]["min_required"] = c.mem;
    p["memory"]["swap"] = c.swap;
    p["storage"]["min_required"] = c.storage;
    LabSpec s = must_parse(parse_labspec_v1, j);
    EXPECT_EQ(s.memory_mb, c.mem_mb) << c.mem;
    EXPECT_EQ(s.swap_mb, c.swap_mb) << c.swap;
    EXPECT_EQ(s.storage_mb, c.storage_mb) << c.storage;
  }
}

TEST(LabSpecV1, MinimalSpecNeedsOnlyTheRuntimePlatform) {
  auto r = parse_labspec_v1(R"({"lab":{"runtime_requirements":{"platform":{"os":"debian","osVersion":"12"}}}})");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->format, 1);
  EXPECT_TRUE(r->id.empty());
  EXPECT_TRUE(r->title.empty());
  EXPECT_TRUE(r->install.empty());
  EXPECT_TRUE(r->actions.empty());
  EXPECT_EQ(r->memory_mb, 0u);
  EXPECT_EQ(r->storage_mb, 0u);
  EXPECT_EQ(r->workdir, "scripts");
}

TEST(LabSpecV1, NullsAndUnknownSeedFieldsAreTolerated) {
  // The seed template has many fields ADS ignores, and nulls for unset values.
  json j = phy07();
  j["lab"]["description"]["slug"] = "optics";
  j["lab"]["description"]["id"] = nullptr;
  j["lab"]["runtime_requirements"]["platform"]["installer"] = nullptr;
  j["lab"]["runtime_requirements"]["platform"]["memory"]["max_required"] = nullptr;
  j["lab"]["runtime_requirements"]["platform"]["something_new"] = {1, 2};
  j["lab"]["build_requirements"] = nullptr;
  j["lab_id"] = "injected";
  LabSpec s = must_parse(parse_labspec_v1, j);
  EXPECT_TRUE(s.id.empty());
  EXPECT_EQ(phase_names(s), (std::vector<std::string>{"init"}));
}

TEST(LabSpecV1, EveryKnownActionIsReadIncludingTest) {
  json j = phy07();
  auto& a = j["lab"]["runtime_requirements"]["platform"]["lab_actions"];
  for (const auto& name : ads::known_actions()) a[name] = {"run " + name};
  LabSpec s = must_parse(parse_labspec_v1, j);
  EXPECT_EQ(s.actions.size(), ads::known_actions().size());
  for (const auto& name : ads::known_actions())
    EXPECT_EQ(s.action(name), (std::vector<std::string>{"run " + name})) << name;
  for (std::string seed : {"init", "shutdown", "pause", "resume", "start", "stop", "backup", "restore", "clean",
                           "stats", "publish", "test"})
    EXPECT_NE(std::find(ads::known_actions().begin(), ads::known_actions().end(), seed), ads::known_actions().end())
        << seed;
}

TEST(LabSpecV1, CommandLimitsAreInclusive) {
  json j = phy07();
  j["lab"]["runtime_requirements"]["platform"]["installer"] = std::vector<std::string>(256, "true");
  j["lab"]["runtime_requirements"]["platform"]["lab_actions"]["start"] = {std::string(8192, 'x')};
  LabSpec s = must_parse(parse_labspec_v1, j);
  EXPECT_EQ(phase(s, "runtime-installer").size(), 256u);
  EXPECT_EQ(s.action("start").front().size(), 8192u);
}

// One invalid input: a change to a valid spec, and the field it must name.
struct BadSpec {
  std::string name;
  std::function<void(json&)> mutate;
  std::string field;
};

void PrintTo(const BadSpec& b, std::ostream* os) { *os << b.name; }

std::string case_name(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

json& rt(json& j) { return j["lab"]["runtime_requirements"]["platform"]; }
json& bld(json& j) { return j["lab"]["build_requirements"]["platform"]; }

const std::string kRt = "lab.runtime_requirements.platform";
const std::string kBld = "lab.build_requirements.platform";

std::vector<BadSpec> v1_bad_specs() {
  return {
      // lab
      {"lab_missing", [](json& j) { j.erase("lab"); }, "lab"},
      {"lab_null", [](json& j) { j["lab"] = nullptr; }, "lab"},
      {"lab_array", [](json& j) { j["lab"] = json::array(); }, "lab"},
      {"lab_string", [](json& j) { j["lab"] = "phy07"; }, "lab"},
      // description
      {"description_string", [](json& j) { j["lab"]["description"] = "x"; }, "lab.description"},
      {"id_number", [](json& j) { j["lab"]["description"]["id"] = 7; }, "lab.description.id"},
      {"id_list", [](json& j) { j["lab"]["description"]["id"] = {"a"}; }, "lab.description.id"},
      {"id_shell", [](json& j) { j["lab"]["description"]["id"] = "cse02; rm -rf /"; }, "lab.description.id"},
      {"id_subst", [](json& j) { j["lab"]["description"]["id"] = "$(reboot)"; }, "lab.description.id"},
      {"id_backtick", [](json& j) { j["lab"]["description"]["id"] = "`id`"; }, "lab.description.id"},
      {"id_traversal", [](json& j) { j["lab"]["description"]["id"] = "../etc"; }, "lab.description.id"},
      {"id_slash", [](json& j) { j["lab"]["description"]["id"] = "a/b"; }, "lab.description.id"},
      {"id_dash", [](json& j) { j["lab"]["description"]["id"] = "-rf"; }, "lab.description.id"},
      {"id_space", [](json& j) { j["lab"]["description"]["id"] = "phy 07"; }, "lab.description.id"},
      {"id_newline", [](json& j) { j["lab"]["description"]["id"] = "phy07\nx"; }, "lab.description.id"},
      {"id_too_long", [](json& j) { j["lab"]["description"]["id"] = std::string(64, 'a'); }, "lab.description.id"},
      {"name_number", [](json& j) { j["lab"]["description"]["name"] = 5; }, "lab.description.name"},
      // build requirements
      {"build_string", [](json& j) { j["lab"]["build_requirements"] = "x"; }, "lab.build_requirements"},
      {"build_platform_list", [](json& j) { j["lab"]["build_requirements"]["platform"] = {1}; }, kBld},
      {"build_installer_string", [](json& j) { bld(j)["installer"] = "apt-get install -y make"; }, kBld + ".installer"},
      {"build_installer_object", [](json& j) { bld(j)["installer"] = json::object(); }, kBld + ".installer"},
      {"build_installer_empty_cmd",
       [](json& j) {
         bld(j)["installer"] = {"ok", ""};
       },
       kBld + ".installer[1]"},
      {"build_installer_blank_cmd",
       [](json& j) {
         bld(j)["installer"] = {"ok", " \t "};
       },
       kBld + ".installer[1]"},
      {"build_installer_newline_cmd",
       [](json& j) {
         bld(j)["installer"] = {"ok", "\n"};
       },
       kBld + ".installer[1]"},
      {"build_installer_number",
       [](json& j) {
         bld(j)["installer"] = {"ok", 5};
       },
       kBld + ".installer[1]"},
      {"build_installer_null", [](json& j) { bld(j)["installer"] = {nullptr}; }, kBld + ".installer[0]"},
      {"build_installer_nested",
       [](json& j) {
         bld(j)["installer"] = {"a", "b", {"c"}};
       },
       kBld + ".installer[2]"},
      {"build_steps_list", [](json& j) { bld(j)["build_steps"] = json::array(); }, kBld + ".build_steps"},
      {"build_steps_unknown", [](json& j) { bld(j)["build_steps"]["compile"] = {"make"}; },
       kBld + ".build_steps.compile"},
      {"build_steps_build_empty_cmd", [](json& j) { bld(j)["build_steps"]["build"] = {""}; },
       kBld + ".build_steps.build[0]"},
      {"build_steps_status_object", [](json& j) { bld(j)["build_steps"]["status"] = json::object(); },
       kBld + ".build_steps.status"},
      {"build_steps_post_build_bool",
       [](json& j) {
         bld(j)["build_steps"]["post_build"] = {"x", true};
       },
       kBld + ".build_steps.post_build[1]"},
      // runtime requirements
      {"runtime_missing", [](json& j) { j["lab"].erase("runtime_requirements"); }, "lab.runtime_requirements"},
      {"runtime_list", [](json& j) { j["lab"]["runtime_requirements"] = {1}; }, "lab.runtime_requirements"},
      {"runtime_platform_missing", [](json& j) { j["lab"]["runtime_requirements"].erase("platform"); }, kRt},
      {"runtime_platform_string", [](json& j) { j["lab"]["runtime_requirements"]["platform"] = "ubuntu"; }, kRt},
      {"os_missing", [](json& j) { rt(j).erase("os"); }, kRt + ".os"},
      {"os_null", [](json& j) { rt(j)["os"] = nullptr; }, kRt + ".os"},
      {"os_unknown", [](json& j) { rt(j)["os"] = "windows"; }, kRt + ".os"},
      {"os_empty", [](json& j) { rt(j)["os"] = ""; }, kRt + ".os"},
      {"os_padded", [](json& j) { rt(j)["os"] = " ubuntu"; }, kRt + ".os"},
      {"os_number", [](json& j) { rt(j)["os"] = 14; }, kRt + ".os"},
      {"os_version_missing", [](json& j) { rt(j).erase("osVersion"); }, kRt + ".osVersion"},
      {"os_version_empty", [](json& j) { rt(j)["osVersion"] = ""; }, kRt + ".osVersion"},
      {"os_version_name", [](json& j) { rt(j)["osVersion"] = "trusty"; }, kRt + ".osVersion"},
      {"os_version_shell", [](json& j) { rt(j)["osVersion"] = "14; reboot"; }, kRt + ".osVersion"},
      {"os_version_bool", [](json& j) { rt(j)["osVersion"] = true; }, kRt + ".osVersion"},
      {"os_version_list", [](json& j) { rt(j)["osVersion"] = {14}; }, kRt + ".osVersion"},
      {"os_version_negative", [](json& j) { rt(j)["osVersion"] = -14; }, kRt + ".osVersion"},
      {"os_version_dots_only", [](json& j) { rt(j)["osVersion"] = "..."; }, kRt + ".osVersion"},
      {"os_version_trailing_dot", [](json& j) { rt(j)["osVersion"] = "14."; }, kRt + ".osVersion"},
      {"os_version_leading_dot", [](json& j) { rt(j)["osVersion"] = ".04"; }, kRt + ".osVersion"},
      {"os_version_double_dot", [](json& j) { rt(j)["osVersion"] = "14..04"; }, kRt + ".osVersion"},
      // sizes
      {"memory_string", [](json& j) { rt(j)["memory"] = "512mb"; }, kRt + ".memory"},
      {"memory_words", [](json& j) { rt(j)["memory"]["min_required"] = "lots"; }, kRt + ".memory.min_required"},
      {"memory_12x3", [](json& j) { rt(j)["memory"]["min_required"] = "12x3"; }, kRt + ".memory.min_required"},
      {"memory_negative", [](json& j) { rt(j)["memory"]["min_required"] = "-5mb"; }, kRt + ".memory.min_required"},
      {"memory_negative_number", [](json& j) { rt(j)["memory"]["min_required"] = -512; }, kRt + ".memory.min_required"},
      {"memory_fraction", [](json& j) { rt(j)["memory"]["min_required"] = 1.5; }, kRt + ".memory.min_required"},
      {"memory_fraction_string", [](json& j) { rt(j)["memory"]["min_required"] = "1.5gb"; },
       kRt + ".memory.min_required"},
      {"memory_bool", [](json& j) { rt(j)["memory"]["min_required"] = true; }, kRt + ".memory.min_required"},
      {"memory_parsecs", [](json& j) { rt(j)["memory"]["min_required"] = "10 parsecs"; }, kRt + ".memory.min_required"},
      {"memory_overflow", [](json& j) { rt(j)["memory"]["min_required"] = "99999999999999999999999mb"; },
       kRt + ".memory.min_required"},
      {"memory_gb_overflow", [](json& j) { rt(j)["memory"]["min_required"] = "18014398509481984gb"; },
       kRt + ".memory.min_required"},
      {"swap_words", [](json& j) { rt(j)["memory"]["swap"] = "big"; }, kRt + ".memory.swap"},
      {"swap_list", [](json& j) { rt(j)["memory"]["swap"] = {"1gb"}; }, kRt + ".memory.swap"},
      {"storage_number_not_object", [](json& j) { rt(j)["storage"] = 10; }, kRt + ".storage"},
      {"storage_words", [](json& j) { rt(j)["storage"]["min_required"] = "huge"; }, kRt + ".storage.min_required"},
      {"storage_tb", [](json& j) { rt(j)["storage"]["min_required"] = "1tb"; }, kRt + ".storage.min_required"},
      // runtime installer
      {"installer_object", [](json& j) { rt(j)["installer"] = json::object(); }, kRt + ".installer"},
      {"installer_string", [](json& j) { rt(j)["installer"] = "apt-get update"; }, kRt + ".installer"},
      {"installer_empty_cmd", [](json& j) { rt(j)["installer"] = {""}; }, kRt + ".installer[0]"},
      {"installer_second_empty",
       [](json& j) {
         rt(j)["installer"] = {"apt-get update", "  "};
       },
       kRt + ".installer[1]"},
      {"installer_crlf_cmd",
       [](json& j) {
         rt(j)["installer"] = {"a", "b", "\r\n"};
       },
       kRt + ".installer[2]"},
      {"installer_nul", [](json& j) { rt(j)["installer"] = {std::string("echo a\0b", 8)}; }, kRt + ".installer[0]"},
      {"installer_too_long_cmd",
       [](json& j) {
         rt(j)["installer"] = {"ok", std::string(8193, 'x')};
       },
       kRt + ".installer[1]"},
      {"installer_too_many", [](json& j) { rt(j)["installer"] = std::vector<std::string>(257, "true"); },
       kRt + ".installer"},
      // actions
      {"actions_list", [](json& j) { rt(j)["lab_actions"] = {"start"}; }, kRt + ".lab_actions"},
      {"actions_unknown", [](json& j) { rt(j)["lab_actions"]["strat"] = {"x"}; }, kRt + ".lab_actions.strat"},
      {"actions_unknown_empty", [](json& j) { rt(j)["lab_actions"]["deploy"] = json::array(); },
       kRt + ".lab_actions.deploy"},
      {"actions_start_string", [](json& j) { rt(j)["lab_actions"]["start"] = "service apache2 start"; },
       kRt + ".lab_actions.start"},
      {"actions_start_empty_cmd",
       [](json& j) {
         rt(j)["lab_actions"]["start"] = {"ok", ""};
       },
       kRt + ".lab_actions.start[1]"},
      {"actions_init_number", [](json& j) { rt(j)["lab_actions"]["init"] = {1}; }, kRt + ".lab_actions.init[0]"},
      {"actions_publish_blank", [](json& j) { rt(j)["lab_actions"]["publish"] = {"\t"}; },
       kRt + ".lab_actions.publish[0]"},
  };
}

class LabSpecV1Invalid : public ::testing::TestWithParam<BadSpec> {};

TEST_P(LabSpecV1Invalid, NamesTheExactField) {
  json j = phy07();
  ASSERT_TRUE(parse_labspec_v1(j.dump()).ok());  // the base is valid
  GetParam().mutate(j);
  std::string text = j.dump();
  expect_invalid(parse_labspec_v1(text), GetParam().field, text);
  // The same mistake through the dispatcher, by the v1 path.
  expect_invalid(parse_labspec(ads::kSpecV1Path, text), GetParam().field, text);
}

INSTANTIATE_TEST_SUITE_P(Cases, LabSpecV1Invalid, ::testing::ValuesIn(v1_bad_specs()),
                         [](const auto& info) { return case_name(info.param.name); });

TEST(LabSpecV1, MalformedJsonAndNonObjectRoots) {
  for (const std::string& bad : std::vector<std::string>{
           "", " ", "{", "}", "{\"lab\":}", "{\"lab\": {}} trailing", "{'lab': 1}", "nul", "{\"lab\": {\"a\": 1,}}",
           "\xff\xfe", std::string("{\"lab\"\0:1}", 10), "1111111111111110000000000000E012643644952371772294"}) {
    auto r = parse_labspec_v1(bad);
    expect_invalid(r, "", bad);
  }
  auto r = parse_labspec_v1("{");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("malformed JSON"), std::string::npos) << r.error().message;
  for (std::string bad : {"[]", "[{\"lab\": {}}]", "42", "\"lab\"", "null", "true"}) {
    auto rr = parse_labspec_v1(bad);
    expect_invalid(rr, "", bad);
  }
}

TEST(LabSpecV1, ErrorToStringPrefixesTheField) {
  json j = phy07();
  rt(j)["memory"]["min_required"] = "lots";
  auto r = parse_labspec_v1(j.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().to_string().rfind(kRt + ".memory.min_required: must be a size", 0), 0u) << r.error().to_string();
}

// ------------------------------------------------------------------------ v2

TEST(LabSpecV2, FullSpec) {
  auto r = parse_labspec_v2(kV2Full);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const LabSpec& s = r.value();
  EXPECT_EQ(s.format, 2);
  EXPECT_EQ(s.id, "static-site");
  EXPECT_EQ(s.title, "ADS example: a static web site");
  EXPECT_EQ(s.os, "debian");
  EXPECT_EQ(s.os_version, "12");
  EXPECT_EQ(s.os_key(), "debian-12");
  EXPECT_EQ(s.memory_mb, 256u);
  EXPECT_EQ(s.swap_mb, 512u);
  EXPECT_EQ(s.storage_mb, 1024u);
  EXPECT_EQ(s.workdir, ".");
  EXPECT_EQ(s.ansible_playbook, "deploy/playbook.yml");
  EXPECT_EQ(phase_names(s), (std::vector<std::string>{"install", "init"}));
  EXPECT_EQ(phase(s, "install"), (std::vector<std::string>{"mkdir -p /srv/www", "cp -r site/. /srv/www/"}));
  EXPECT_EQ(phase(s, "init"), (std::vector<std::string>{"echo init"}));
  EXPECT_EQ(s.actions.size(), 6u);
  EXPECT_EQ(s.action("start"), (std::vector<std::string>{"busybox httpd -p 8080 -h /srv/www"}));
  EXPECT_EQ(s.action("stop"), (std::vector<std::string>{"busybox pkill -f 'busybox httpd' || true"}));
  EXPECT_EQ(s.action("backup"), (std::vector<std::string>{"cp -r /srv/www/data \"$ADS_BACKUP_DIR\"/"}));
  EXPECT_TRUE(s.action("pause").empty());
  EXPECT_EQ(s.http_port, 8080);
  EXPECT_EQ(s.http_path, "/index.html");
}

TEST(LabSpecV2, MinimalSpecGetsDefaults) {
  auto r = parse_labspec_v2(kV2Min);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->format, 2);
  EXPECT_TRUE(r->id.empty());
  EXPECT_TRUE(r->title.empty());
  EXPECT_EQ(r->os_key(), "ubuntu-22.04");
  EXPECT_EQ(r->memory_mb, 0u);
  EXPECT_EQ(r->swap_mb, 0u);
  EXPECT_EQ(r->storage_mb, 0u);
  EXPECT_TRUE(r->install.empty());
  EXPECT_TRUE(r->ansible_playbook.empty());
  EXPECT_EQ(r->actions.size(), 1u);
  EXPECT_EQ(r->http_port, 80);
  EXPECT_EQ(r->http_path, "/");
  EXPECT_EQ(r->workdir, ".");
}

TEST(LabSpecV2, OsNormalisationAndNumericVersions) {
  struct Case {
    json name, version;
    std::string key;
  };
  for (const auto& c : std::vector<Case>{{"ubuntu", "14", "ubuntu-14.04"},
                                         {"Ubuntu", 22, "ubuntu-22.04"},
                                         {"centos", 6, "centos-6.9"},
                                         {"CENTOS", "7", "centos-7"},
                                         {"debian", 12, "debian-12"}}) {
    json j = json::parse(kV2Min);
    j["os"] = {{"name", c.name}, {"version", c.version}};
    EXPECT_EQ(must_parse(parse_labspec_v2, j).os_key(), c.key) << j.dump();
  }
}

TEST(LabSpecV2, AnOsVariantNamesAnotherImageOfThatOs) {
  for (std::string v : {"build", "b", "php-7", "x2"}) {
    json j = json::parse(kV2Min);
    j["os"] = {{"name", "debian"}, {"version", "12"}, {"variant", v}};
    LabSpec s = must_parse(parse_labspec_v2, j);
    EXPECT_EQ(s.os_variant, v);
    EXPECT_EQ(s.os_key(), "debian-12-" + v);
  }
  json j = json::parse(kV2Min);
  j["os"] = {{"name", "debian"}, {"version", "12"}, {"variant", nullptr}};
  EXPECT_EQ(must_parse(parse_labspec_v2, j).os_key(), "debian-12");
}

TEST(LabSpecV2, PortsAtTheEdgesOfTheRangeAndNextToTheAgentsPort) {
  for (int port : {1, 80, 443, 8080, 9088, 9090, 65535}) {
    json j = json::parse(kV2Min);
    j["http"] = {{"port", port}};
    EXPECT_EQ(must_parse(parse_labspec_v2, j).http_port, port);
  }
}

TEST(LabSpecV2, NullOptionalFieldsAreAbsent) {
  json j = json::parse(kV2Min);
  j["name"] = nullptr;
  j["title"] = nullptr;
  j["resources"] = nullptr;
  j["install"] = nullptr;
  j["ansible"] = nullptr;
  j["http"] = nullptr;
  LabSpec s = must_parse(parse_labspec_v2, j);
  EXPECT_TRUE(s.id.empty());
  EXPECT_TRUE(s.install.empty());
  EXPECT_EQ(s.http_port, 80);
}

TEST(LabSpecV2, AnsiblePlaybookPathsInsideTheLab) {
  for (std::string ok : {"playbook.yml", "ansible/site.yml", "a-b_c.d/e.yaml"}) {
    json j = json::parse(kV2Min);
    j["ansible"] = ok;
    EXPECT_EQ(must_parse(parse_labspec_v2, j).ansible_playbook, ok);
  }
}

TEST(LabSpecV2, ALifeCycleActionMayBeAPlaybook) {
  json j = json::parse(kV2Min);
  j["actions"]["backup"] = {{"playbook", "books/backup.yml"}};
  j["actions"]["start"] = {{"playbook", "start.yml"}};
  j["ansible"] = "site.yml";
  LabSpec s = must_parse(parse_labspec_v2, j);
  EXPECT_TRUE(s.has_action("backup"));
  EXPECT_TRUE(s.has_action("start"));  // a playbook start is a start
  EXPECT_TRUE(s.action("backup").empty());
  EXPECT_EQ(s.playbook_for("backup"), "books/backup.yml");
  EXPECT_EQ(s.playbook_for("install"), "site.yml");
  EXPECT_EQ(s.playbook_for("restore"), "");
  EXPECT_FALSE(s.has_action("restore"));
}

TEST(LabSpecV2, PlaybooksRunFromTheControllerUnlessTheLabSaysLocal) {
  json j = json::parse(kV2Min);
  j["ansible"] = "site.yml";
  EXPECT_EQ(must_parse(parse_labspec_v2, j).ansible_mode, LabSpec::AnsibleMode::kController);
  j["ansible"] = {{"playbook", "books/site.yml"}, {"mode", "local"}};
  LabSpec s = must_parse(parse_labspec_v2, j);
  EXPECT_EQ(s.ansible_mode, LabSpec::AnsibleMode::kLocal);
  EXPECT_EQ(s.ansible_playbook, "books/site.yml");
  j["ansible"] = {{"playbook", "site.yml"}, {"mode", "controller"}};
  EXPECT_EQ(must_parse(parse_labspec_v2, j).ansible_mode, LabSpec::AnsibleMode::kController);
  // the mode alone: for a lab whose only playbooks are life-cycle actions
  j["ansible"] = {{"mode", "local"}};
  j["actions"]["backup"] = {{"playbook", "backup.yml"}};
  s = must_parse(parse_labspec_v2, j);
  EXPECT_EQ(s.ansible_mode, LabSpec::AnsibleMode::kLocal);
  EXPECT_EQ(s.ansible_playbook, "");
  EXPECT_EQ(s.playbook_for("backup"), "backup.yml");
}

json& v2_action(json& j, const std::string& n) { return j["actions"][n]; }

std::vector<BadSpec> v2_bad_specs() {
  return {
      // format version
      {"ads_missing", [](json& j) { j.erase("ads"); }, "ads"},
      {"ads_one", [](json& j) { j["ads"] = 1; }, "ads"},
      {"ads_three", [](json& j) { j["ads"] = 3; }, "ads"},
      {"ads_string", [](json& j) { j["ads"] = "2"; }, "ads"},
      {"ads_float", [](json& j) { j["ads"] = 2.5; }, "ads"},
      {"ads_null", [](json& j) { j["ads"] = nullptr; }, "ads"},
      // os.variant: a word of the image key
      {"variant_upper", [](json& j) { j["os"]["variant"] = "Build"; }, "os.variant"},
      {"variant_space", [](json& j) { j["os"]["variant"] = "a b"; }, "os.variant"},
      {"variant_dash_edge", [](json& j) { j["os"]["variant"] = "-x"; }, "os.variant"},
      {"variant_dash_end", [](json& j) { j["os"]["variant"] = "x-"; }, "os.variant"},
      {"variant_slash", [](json& j) { j["os"]["variant"] = "../x"; }, "os.variant"},
      {"variant_long", [](json& j) { j["os"]["variant"] = std::string(33, 'a'); }, "os.variant"},
      {"variant_number", [](json& j) { j["os"]["variant"] = 2; }, "os.variant"},
      {"variant_nul", [](json& j) { j["os"]["variant"] = std::string("a\0b", 3); }, "os.variant"},
      {"ads_huge", [](json& j) { j["ads"] = json::parse("18446744073709551618"); }, "ads"},
      // unknown keys
      {"unknown_top", [](json& j) { j["lab"] = json::object(); }, "lab"},
      {"unknown_typo", [](json& j) { j["actoins"] = json::object(); }, "actoins"},
      {"unknown_case", [](json& j) { j["Name"] = "x"; }, "Name"},
      // name and title
      {"name_number", [](json& j) { j["name"] = 5; }, "name"},
      {"name_shell", [](json& j) { j["name"] = "cse02; rm -rf /"; }, "name"},
      {"name_traversal", [](json& j) { j["name"] = "../etc"; }, "name"},
      {"name_subst", [](json& j) { j["name"] = "$(id)"; }, "name"},
      {"name_pipe", [](json& j) { j["name"] = "a|b"; }, "name"},
      {"name_dash", [](json& j) { j["name"] = "-x"; }, "name"},
      {"name_too_long", [](json& j) { j["name"] = std::string(64, 'n'); }, "name"},
      {"title_number", [](json& j) { j["title"] = 1; }, "title"},
      {"title_object", [](json& j) { j["title"] = json::object(); }, "title"},
      // os
      {"os_missing", [](json& j) { j.erase("os"); }, "os"},
      {"os_null", [](json& j) { j["os"] = nullptr; }, "os"},
      {"os_string", [](json& j) { j["os"] = "debian-12"; }, "os"},
      {"os_unknown_key", [](json& j) { j["os"]["codename"] = "bookworm"; }, "os.codename"},
      {"os_name_missing", [](json& j) { j["os"].erase("name"); }, "os.name"},
      {"os_name_unknown", [](json& j) { j["os"]["name"] = "windows"; }, "os.name"},
      {"os_name_empty", [](json& j) { j["os"]["name"] = ""; }, "os.name"},
      {"os_name_number", [](json& j) { j["os"]["name"] = 12; }, "os.name"},
      {"os_version_missing", [](json& j) { j["os"].erase("version"); }, "os.version"},
      {"os_version_codename", [](json& j) { j["os"]["version"] = "bookworm"; }, "os.version"},
      {"os_version_empty", [](json& j) { j["os"]["version"] = ""; }, "os.version"},
      {"os_version_list", [](json& j) { j["os"]["version"] = {12}; }, "os.version"},
      {"os_version_bool", [](json& j) { j["os"]["version"] = false; }, "os.version"},
      {"os_version_dots", [](json& j) { j["os"]["version"] = ".."; }, "os.version"},
      {"os_version_traversal", [](json& j) { j["os"]["version"] = "../12"; }, "os.version"},
      // resources
      {"resources_string", [](json& j) { j["resources"] = "big"; }, "resources"},
      {"resources_unknown", [](json& j) { j["resources"]["cpu"] = 2; }, "resources.cpu"},
      {"resources_old_name", [](json& j) { j["resources"]["min_required"] = "1gb"; }, "resources.min_required"},
      {"memory_words", [](json& j) { j["resources"]["memory"] = "lots"; }, "resources.memory"},
      {"memory_negative", [](json& j) { j["resources"]["memory"] = -1; }, "resources.memory"},
      {"memory_12x3", [](json& j) { j["resources"]["memory"] = "12x3"; }, "resources.memory"},
      {"memory_object",
       [](json& j) {
         j["resources"]["memory"] = {{"min", "1gb"}};
       },
       "resources.memory"},
      {"swap_tb", [](json& j) { j["resources"]["swap"] = "1tb"; }, "resources.swap"},
      {"swap_overflow", [](json& j) { j["resources"]["swap"] = "99999999999999999999mb"; }, "resources.swap"},
      {"storage_words", [](json& j) { j["resources"]["storage"] = "a lot"; }, "resources.storage"},
      {"storage_fraction", [](json& j) { j["resources"]["storage"] = 0.5; }, "resources.storage"},
      // install
      {"install_string", [](json& j) { j["install"] = "make"; }, "install"},
      {"install_object",
       [](json& j) {
         j["install"] = {{"a", "b"}};
       },
       "install"},
      {"install_empty_cmd",
       [](json& j) {
         j["install"] = {"ok", ""};
       },
       "install[1]"},
      {"install_blank_cmd", [](json& j) { j["install"] = {"   "}; }, "install[0]"},
      {"install_newline_cmd",
       [](json& j) {
         j["install"] = {"ok", "ok", " \n\t"};
       },
       "install[2]"},
      {"install_number", [](json& j) { j["install"] = {1}; }, "install[0]"},
      {"install_too_many", [](json& j) { j["install"] = std::vector<std::string>(257, "true"); }, "install"},
      {"install_too_long", [](json& j) { j["install"] = {std::string(8193, 'y')}; }, "install[0]"},
      // ansible
      {"ansible_number", [](json& j) { j["ansible"] = 5; }, "ansible"},
      {"ansible_parent", [](json& j) { j["ansible"] = "../playbook.yml"; }, "ansible"},
      {"ansible_inner_parent", [](json& j) { j["ansible"] = "a/../../etc/x.yml"; }, "ansible"},
      {"ansible_trailing_parent", [](json& j) { j["ansible"] = "roles/.."; }, "ansible"},
      {"ansible_absolute", [](json& j) { j["ansible"] = "/etc/ansible/site.yml"; }, "ansible"},
      {"ansible_quote", [](json& j) { j["ansible"] = "x.yml'; reboot; '"; }, "ansible"},
      {"ansible_space", [](json& j) { j["ansible"] = "play book.yml"; }, "ansible"},
      {"ansible_subst", [](json& j) { j["ansible"] = "$(id).yml"; }, "ansible"},
      {"ansible_option", [](json& j) { j["ansible"] = "--version"; }, "ansible"},
      {"ansible_long", [](json& j) { j["ansible"] = std::string(256, 'a'); }, "ansible"},
      // "ansible" as an object: where the playbooks run
      {"ansible_mode_unknown",
       [](json& j) {
         j["ansible"] = {{"playbook", "a.yml"}, {"mode", "remote"}};
       },
       "ansible.mode"},
      {"ansible_mode_number",
       [](json& j) {
         j["ansible"] = {{"mode", 1}};
       },
       "ansible.mode"},
      {"ansible_mode_case",
       [](json& j) {
         j["ansible"] = {{"mode", "Local"}};
       },
       "ansible.mode"},
      {"ansible_object_typo",
       [](json& j) {
         j["ansible"] = {{"playbok", "a.yml"}};
       },
       "ansible.playbok"},
      {"ansible_object_parent",
       [](json& j) {
         j["ansible"] = {{"playbook", "../a.yml"}};
       },
       "ansible.playbook"},
      {"ansible_object_empty",
       [](json& j) {
         j["ansible"] = {{"playbook", ""}};
       },
       "ansible.playbook"},
      {"ansible_list", [](json& j) { j["ansible"] = json::array({"a.yml"}); }, "ansible"},
      // an action as a playbook
      {"action_playbook_quote",
       [](json& j) {
         v2_action(j, "backup") = {{"playbook", "b.yml; reboot"}};
       },
       "actions.backup.playbook"},
      {"action_playbook_parent",
       [](json& j) {
         v2_action(j, "backup") = {{"playbook", "../b.yml"}};
       },
       "actions.backup.playbook"},
      {"action_playbook_option",
       [](json& j) {
         v2_action(j, "test") = {{"playbook", "-e@/etc/shadow"}};
       },
       "actions.test.playbook"},
      {"action_playbook_empty",
       [](json& j) {
         v2_action(j, "test") = {{"playbook", ""}};
       },
       "actions.test.playbook"},
      {"action_playbook_missing", [](json& j) { v2_action(j, "test") = json::object(); }, "actions.test.playbook"},
      {"action_playbook_number",
       [](json& j) {
         v2_action(j, "test") = {{"playbook", 3}};
       },
       "actions.test.playbook"},
      {"action_playbook_extra_key",
       [](json& j) {
         v2_action(j, "test") = {{"playbook", "t.yml"}, {"tags", "x"}};
       },
       "actions.test.tags"},
      {"action_playbook_init",
       [](json& j) {
         v2_action(j, "init") = {{"playbook", "i.yml"}};
       },
       "actions.init"},
      // actions
      {"actions_missing", [](json& j) { j.erase("actions"); }, "actions.start"},
      {"actions_empty_object", [](json& j) { j["actions"] = json::object(); }, "actions.start"},
      {"actions_list", [](json& j) { j["actions"] = {"start"}; }, "actions"},
      {"actions_unknown", [](json& j) { v2_action(j, "strat") = {"x"}; }, "actions.strat"},
      {"actions_unknown_install", [](json& j) { v2_action(j, "install") = {"x"}; }, "actions.install"},
      {"start_empty_list", [](json& j) { v2_action(j, "start") = json::array(); }, "actions.start"},
      {"start_null", [](json& j) { v2_action(j, "start") = nullptr; }, "actions.start"},
      {"start_string", [](json& j) { v2_action(j, "start") = "busybox httpd"; }, "actions.start"},
      {"start_empty_cmd", [](json& j) { v2_action(j, "start") = {""}; }, "actions.start[0]"},
      {"stop_blank_cmd",
       [](json& j) {
         v2_action(j, "stop") = {"ok", "\t"};
       },
       "actions.stop[1]"},
      {"test_number", [](json& j) { v2_action(j, "test") = {42}; }, "actions.test[0]"},
      {"backup_object", [](json& j) { v2_action(j, "backup") = json::object(); },
       "actions.backup.playbook"},  // an object is a playbook action
      // http
      {"http_number", [](json& j) { j["http"] = 80; }, "http"},
      {"http_unknown", [](json& j) { j["http"]["host"] = "0.0.0.0"; }, "http.host"},
      {"port_agent", [](json& j) { j["http"]["port"] = 9089; }, "http.port"},
      {"port_zero", [](json& j) { j["http"]["port"] = 0; }, "http.port"},
      {"port_negative", [](json& j) { j["http"]["port"] = -1; }, "http.port"},
      {"port_65536", [](json& j) { j["http"]["port"] = 65536; }, "http.port"},
      {"port_huge", [](json& j) { j["http"]["port"] = 4294967376LL; }, "http.port"},
      {"port_uint64_max", [](json& j) { j["http"]["port"] = UINT64_MAX; }, "http.port"},
      {"port_string", [](json& j) { j["http"]["port"] = "80"; }, "http.port"},
      {"port_fraction", [](json& j) { j["http"]["port"] = 80.5; }, "http.port"},
      {"port_null", [](json& j) { j["http"]["port"] = nullptr; }, "http.port"},
      {"port_bool", [](json& j) { j["http"]["port"] = true; }, "http.port"},
      {"path_relative", [](json& j) { j["http"]["path"] = "index.html"; }, "http.path"},
      {"path_number", [](json& j) { j["http"]["path"] = 1; }, "http.path"},
      {"path_url", [](json& j) { j["http"]["path"] = "http://evil.invalid/"; }, "http.path"},
      {"path_crlf", [](json& j) { j["http"]["path"] = "/\r\nHost: evil"; }, "http.path"},
      {"path_space", [](json& j) { j["http"]["path"] = "/a b"; }, "http.path"},
      // timeouts (issue 14.4)
      {"timeouts_list", [](json& j) { j["timeouts"] = {"20m"}; }, "timeouts"},
      {"timeouts_string", [](json& j) { j["timeouts"] = "20m"; }, "timeouts"},
      {"timeouts_unknown_action", [](json& j) { j["timeouts"]["deploy"] = "1m"; }, "timeouts.deploy"},
      {"timeouts_zero", [](json& j) { j["timeouts"]["install"] = 0; }, "timeouts.install"},
      {"timeouts_negative", [](json& j) { j["timeouts"]["start"] = -5; }, "timeouts.start"},
      {"timeouts_fraction", [](json& j) { j["timeouts"]["test"] = 1.5; }, "timeouts.test"},
      {"timeouts_over_a_day", [](json& j) { j["timeouts"]["install"] = 86401; }, "timeouts.install"},
      {"timeouts_25h", [](json& j) { j["timeouts"]["install"] = "25h"; }, "timeouts.install"},
      {"timeouts_huge", [](json& j) { j["timeouts"]["install"] = "99999999999999999999s"; }, "timeouts.install"},
      {"timeouts_days", [](json& j) { j["timeouts"]["install"] = "1d"; }, "timeouts.install"},
      {"timeouts_space", [](json& j) { j["timeouts"]["install"] = "20 m"; }, "timeouts.install"},
      {"timeouts_unit_only", [](json& j) { j["timeouts"]["install"] = "m"; }, "timeouts.install"},
      {"timeouts_empty", [](json& j) { j["timeouts"]["install"] = ""; }, "timeouts.install"},
      {"timeouts_signed", [](json& j) { j["timeouts"]["install"] = "+5m"; }, "timeouts.install"},
      {"timeouts_compound", [](json& j) { j["timeouts"]["install"] = "1h30m"; }, "timeouts.install"},
      {"timeouts_null", [](json& j) { j["timeouts"]["stop"] = nullptr; }, "timeouts.stop"},
      {"timeouts_bool", [](json& j) { j["timeouts"]["stop"] = true; }, "timeouts.stop"},
  };
}

class LabSpecV2Invalid : public ::testing::TestWithParam<BadSpec> {};

TEST_P(LabSpecV2Invalid, NamesTheExactField) {
  json j = v2full();
  ASSERT_TRUE(parse_labspec_v2(j.dump()).ok());  // the base is valid
  GetParam().mutate(j);
  std::string text = j.dump();
  expect_invalid(parse_labspec_v2(text), GetParam().field, text);
  expect_invalid(parse_labspec(ads::kSpecV2Path, text), GetParam().field, text);
}

INSTANTIATE_TEST_SUITE_P(Cases, LabSpecV2Invalid, ::testing::ValuesIn(v2_bad_specs()),
                         [](const auto& info) { return case_name(info.param.name); });

// Issue 14.4: a lab may set its own command timeouts, per action.
TEST(LabSpecV2, TimeoutsPerActionInSecondsOrWithAUnit) {
  json j = v2full();
  j["timeouts"] = {{"install", "20m"}, {"start", 90}, {"test", "45s"}, {"backup", "2h"}, {"stop", "1"}};
  LabSpec s = must_parse(parse_labspec_v2, j);
  EXPECT_EQ(s.timeout_for("install"), 1200);
  EXPECT_EQ(s.timeout_for("start"), 90);
  EXPECT_EQ(s.timeout_for("test"), 45);
  EXPECT_EQ(s.timeout_for("backup"), 7200);
  EXPECT_EQ(s.timeout_for("stop"), 1);
  EXPECT_EQ(s.timeout_for("restore"), 0);  // none set: the operator's maximum
  // the edges
  j["timeouts"] = {{"install", 86400}, {"start", "24h"}, {"test", "1440m"}, {"stop", "1s"}};
  s = must_parse(parse_labspec_v2, j);
  EXPECT_EQ(s.timeout_for("install"), 86400);
  EXPECT_EQ(s.timeout_for("start"), 86400);
  EXPECT_EQ(s.timeout_for("test"), 86400);
  EXPECT_EQ(s.timeout_for("stop"), 1);
  EXPECT_TRUE(must_parse(parse_labspec_v2, v2full()).timeouts_s.empty());
  EXPECT_EQ(ads::parse_timeout_s("0090m"), 5400);
  EXPECT_EQ(ads::parse_timeout_s("86401s"), std::nullopt);
  EXPECT_EQ(ads::parse_timeout_s("5M"), std::nullopt);  // units are lower case
}

TEST(LabSpecV2, MalformedJsonAndNonObjectRoots) {
  for (std::string bad : {"", "{", "{\"ads\": 2", "{\"ads\": 2,}", "{\"ads\": 2} {}", "ads: 2", "\x01", "[1, 2",
                          "1111111111111110000000000000E012643644952371772294"})
    expect_invalid(parse_labspec_v2(bad), "", bad);
  for (std::string bad : {"[]", "[{\"ads\": 2}]", "2", "\"ads\"", "null", "false"})
    expect_invalid(parse_labspec_v2(bad), "", bad);
}

TEST(LabSpecV2, AV1SpecIsNotAV2Spec) {
  // The seed format's top-level "lab" is not a v2 field.
  expect_invalid(parse_labspec_v2(kPhy07), "lab", "phy07 as v2");
  // And a v2 spec has no "lab" for the v1 parser.
  expect_invalid(parse_labspec_v1(kV2Full), "lab", "v2 as v1");
}

// ------------------------------------------------------------------ dispatch

TEST(LabSpecDispatch, PicksTheParserByPath) {
  ASSERT_STREQ(ads::kSpecV1Path, "scripts/labspec.json");
  ASSERT_STREQ(ads::kSpecV2Path, "ads-lab.json");
  auto v1 = parse_labspec("scripts/labspec.json", kPhy07);
  ASSERT_TRUE(v1.ok()) << v1.error().to_string();
  EXPECT_EQ(v1->format, 1);
  EXPECT_EQ(v1->workdir, "scripts");
  auto v2 = parse_labspec("ads-lab.json", kV2Full);
  ASSERT_TRUE(v2.ok()) << v2.error().to_string();
  EXPECT_EQ(v2->format, 2);
  EXPECT_EQ(v2->workdir, ".");
  // The path decides, not the content.
  expect_invalid(parse_labspec("ads-lab.json", kPhy07), "lab", "v1 text at the v2 path");
  expect_invalid(parse_labspec("scripts/labspec.json", kV2Full), "lab", "v2 text at the v1 path");
}

TEST(LabSpecDispatch, UnknownPathsAreRefused) {
  for (std::string path :
       {"", "labspec.json", "ads-lab.yaml", "./ads-lab.json", "/ads-lab.json", "scripts/../ads-lab.json",
        "Scripts/labspec.json", "scripts/labspec.json.bak", "src/scripts/labspec.json"}) {
    auto r = parse_labspec(path, kV2Full);
    expect_invalid(r, "spec", path);
    if (!r.ok()) {
      EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
    }
  }
}

}  // namespace
