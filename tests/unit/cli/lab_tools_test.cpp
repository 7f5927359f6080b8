// `ads lab init` and `ads lab check`, on real directories, with the host's
// real ansible-playbook for the syntax check (Debian's ansible-core).
#include "cli/lab_tools.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/build_paths.h"
#include "support/process.h"

namespace {
namespace fs = std::filesystem;
using ads::cli::check_lab;

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

class LabToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ansible = ads::cli::find_ansible_playbook();
    if (ansible.empty())
      GTEST_FAIL() << "ansible-playbook is not installed: run scripts/install-deps.sh (ansible-core)";
  }
  // A lab made by `ads lab init` in a fresh directory.
  fs::path init_lab() {
    fs::path dir = tmp.path / ("lab" + std::to_string(++n));
    std::ostringstream out, err;
    EXPECT_EQ(ads::cli::run_lab_init(dir.string(), out, err), 0) << err.str();
    return dir;
  }
  void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::trunc) << text;
  }
  ads::test::TempDir tmp;
  std::string ansible;
  int n = 0;
};

TEST_F(LabToolsTest, InitWritesALabThatCheckPassesAndSummarises) {
  fs::path dir = init_lab();
  for (const char* f :
       {"ads-lab.json", "playbooks/site.yml", "playbooks/test.yml", "playbooks/templates/index.html.j2"})
    EXPECT_TRUE(fs::is_regular_file(dir / f)) << f;
  std::ostringstream out, err;
  EXPECT_EQ(ads::cli::run_lab_check(dir.string(), true, out, err), 0) << out.str() << err.str();
  std::string o = out.str();
  EXPECT_NE(o.find("spec: ads-lab.json (v2)"), std::string::npos) << o;
  EXPECT_NE(o.find("machine: OS key debian-12-build, memory 256 MB, storage 1024 MB"), std::string::npos) << o;
  EXPECT_NE(o.find("install: 0 commands, then the playbook playbooks/site.yml (from the ADS host, over SSH), run from "
                   "the lab's root"),
            std::string::npos)
      << o;
  EXPECT_NE(o.find("action start: 1 command"), std::string::npos) << o;
  EXPECT_NE(o.find("action test: the playbook playbooks/test.yml"), std::string::npos) << o;
  EXPECT_NE(o.find("HTTP check: GET http://MACHINE:80/"), std::string::npos) << o;
  EXPECT_NE(o.find("no problems found"), std::string::npos) << o;
}

TEST_F(LabToolsTest, InitNeverWritesIntoADirectoryThatHoldsSomething) {
  fs::path dir = tmp.path / "busy";
  write(dir / "mine.txt", "keep me");
  std::ostringstream out, err;
  EXPECT_EQ(ads::cli::run_lab_init(dir.string(), out, err), 2);
  EXPECT_NE(err.str().find("is not an empty directory"), std::string::npos) << err.str();
  EXPECT_FALSE(fs::exists(dir / "ads-lab.json"));
  write(tmp.path / "afile", "x");
  EXPECT_EQ(ads::cli::run_lab_init((tmp.path / "afile").string(), out, err), 2);
}

TEST_F(LabToolsTest, CheckNamesTheSpecFieldThatIsWrong) {
  fs::path dir = init_lab();
  write(dir / "ads-lab.json", R"({"ads": 2, "os": {"name": "debian", "version": "12"}, "actions": {"strat": ["x"]}})");
  auto rep = check_lab(dir.string(), ansible);
  ASSERT_EQ(rep.problems.size(), 1u) << joined(rep.problems);
  EXPECT_NE(rep.problems[0].find("ads-lab.json: actions.strat: is not a known field"), std::string::npos)
      << rep.problems[0];
  std::ostringstream out, err;
  EXPECT_EQ(ads::cli::run_lab_check(dir.string(), true, out, err), 1);
  EXPECT_NE(err.str().find("problem: ads-lab.json: actions.strat"), std::string::npos) << err.str();
}

TEST_F(LabToolsTest, CheckRunsAnsiblesSyntaxCheckOnEveryPlaybook) {
  fs::path dir = init_lab();
  write(dir / "playbooks/test.yml", "- hosts: all\n  tasks:\n    - name: bad\n      no_such_module_anywhere: {}\n");
  auto rep = check_lab(dir.string(), ansible);
  ASSERT_EQ(rep.problems.size(), 1u) << joined(rep.problems);
  EXPECT_NE(rep.problems[0].find("actions.test.playbook: playbooks/test.yml: ansible-playbook --syntax-check failed: "
                                 "ERROR!"),
            std::string::npos)
      << rep.problems[0];
  EXPECT_NE(rep.problems[0].find("no_such_module_anywhere"), std::string::npos) << rep.problems[0];
  // without Ansible on the host the syntax is not checked, and it says so
  auto bare = check_lab(dir.string(), "");
  EXPECT_TRUE(bare.problems.empty()) << joined(bare.problems);
  EXPECT_NE(joined(bare.notes).find("playbook syntax not checked: --ansible runs ansible-playbook --syntax-check"),
            std::string::npos);
}

TEST_F(LabToolsTest, CheckFindsAMissingPlaybookAMissingScriptAndALinkOutOfTheLab) {
  fs::path dir = init_lab();
  fs::remove(dir / "playbooks/site.yml");
  auto rep = check_lab(dir.string(), ansible);
  EXPECT_NE(joined(rep.problems).find("ansible: playbooks/site.yml is not in the lab"), std::string::npos)
      << joined(rep.problems);

  // a v1 lab (the seed example) whose start runs a script that is not there
  fs::path v1 = tmp.path / "v1";
  fs::copy(std::string(ADS_SOURCE_DIR) + "/examples/labs/seed-lab", v1, fs::copy_options::recursive);
  std::ifstream v1in(v1 / "scripts/labspec.json");
  auto seed = nlohmann::json::parse(v1in);
  auto& acts = seed["lab"]["runtime_requirements"]["platform"]["lab_actions"];
  acts["start"] = {"./start.sh"};
  acts["stop"] = {"bash stop.sh"};
  acts["stats"] = {"echo $HOME/x.sh"};
  write(v1 / "scripts/labspec.json", seed.dump());
  write(v1 / "scripts/stop.sh", "true\n");
  rep = check_lab(v1.string(), ansible);
  ASSERT_EQ(rep.problems.size(), 1u) << joined(rep.problems);  // stop.sh is there; $HOME/x.sh is not guessed at
  EXPECT_NE(rep.problems[0].find("scripts/labspec.json: actions.start: runs ./start.sh, which is not in the lab "
                                 "(scripts/start.sh)"),
            std::string::npos)
      << rep.problems[0];
  EXPECT_NE(joined(rep.summary).find("run from scripts/"), std::string::npos) << joined(rep.summary);

  fs::path linked = init_lab();
  fs::create_symlink("/etc/passwd", linked / "passwd");
  rep = check_lab(linked.string(), ansible);
  ASSERT_EQ(rep.problems.size(), 1u) << joined(rep.problems);
  EXPECT_NE(rep.problems[0].find("the lab cannot be packed for its machine"), std::string::npos) << rep.problems[0];
}

// A lab is code: Ansible, even for --syntax-check, runs a vault password
// script named by the lab's ansible.cfg and evaluates lookups in
// import_playbook. Without --ansible, `ads lab check` runs none of it.
TEST_F(LabToolsTest, WithoutAnsibleNothingOfTheLabRunsOnThisHost) {
  fs::path dir = init_lab();
  fs::path marker1 = tmp.path / "ran-vault-script", marker2 = tmp.path / "ran-lookup";
  write(dir / "ansible.cfg", "[defaults]\nvault_password_file = ./pw.sh\n");
  write(dir / "pw.sh", "#!/bin/sh\ntouch " + marker1.string() + "\necho secret\n");
  fs::permissions(dir / "pw.sh", fs::perms::owner_all);
  write(dir / "playbooks/site.yml",
        "- import_playbook: \"{{ lookup('pipe', 'touch " + marker2.string() + "') }}test.yml\"\n");
  std::ostringstream out, err;
  int rc = ads::cli::run_lab_check(dir.string(), false, out, err);
  EXPECT_EQ(rc, 0) << out.str() << err.str();
  EXPECT_FALSE(fs::exists(marker1));
  EXPECT_FALSE(fs::exists(marker2));
  EXPECT_NE(out.str().find("note: playbook syntax not checked: --ansible runs"), std::string::npos) << out.str();
  // with --ansible the lab's code runs (what the option's help says): the
  // vault script and the lookup did run
  rc = ads::cli::run_lab_check(dir.string(), true, out, err);
  EXPECT_TRUE(fs::exists(marker1) || fs::exists(marker2)) << out.str() << err.str();
}

TEST_F(LabToolsTest, APlaybookLabWithoutAVariantGetsANoteNotAFailure) {
  fs::path dir = init_lab();
  std::ifstream in(dir / "ads-lab.json");
  auto spec = nlohmann::json::parse(in);
  spec["os"].erase("variant");
  write(dir / "ads-lab.json", spec.dump());
  auto rep = check_lab(dir.string(), ansible);
  EXPECT_TRUE(rep.problems.empty()) << joined(rep.problems);
  EXPECT_NE(joined(rep.notes).find("add \"variant\": \"build\""), std::string::npos) << joined(rep.notes);
}

TEST_F(LabToolsTest, CheckOfSomethingThatIsNotADirectoryIsAUsageError) {
  std::ostringstream out, err;
  EXPECT_EQ(ads::cli::run_lab_check((tmp.path / "nothing").string(), false, out, err), 2);
  EXPECT_NE(err.str().find("is not a directory"), std::string::npos);
}

}  // namespace

namespace {

TEST(LabTry, TheTimeToLiveIsATimeWithAUnitFromAMinuteToAWeek) {
  EXPECT_EQ(ads::cli::parse_lab_ttl("90s").value(), 90);
  EXPECT_EQ(ads::cli::parse_lab_ttl("30m").value(), 1800);
  EXPECT_EQ(ads::cli::parse_lab_ttl("2h").value(), 7200);
  EXPECT_EQ(ads::cli::parse_lab_ttl("7d").value(), 604800);
  EXPECT_EQ(ads::cli::parse_lab_ttl("600").value(), 600);
  for (const std::string bad : {"", "59s", "8d", "1w", "h", "-1h", "1.5h", "1h30m", "2 h", "99999999999", "0", "1H"}) {
    auto r = ads::cli::parse_lab_ttl(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().field, "ttl") << bad;
    EXPECT_NE(r.error().message.find("90s, 30m, 2h or 1d"), std::string::npos) << r.error().message;
  }
}

}  // namespace
