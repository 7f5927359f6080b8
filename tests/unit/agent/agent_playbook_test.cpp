// Playbooks run by a real agent (in-process, HTTPS on loopback) with the
// host's real ansible-playbook (Debian's ansible-core, -c local) for a lab in
// local mode: the install playbook and a life-cycle action's playbook, the
// variables ADS passes, output task by task, a failing task, a missing
// ansible-playbook; in controller mode the agent runs none of them. The
// check (POST /v1/check): the install playbook with --check --diff, of the
// lab as uploaded or of one sent along, changing nothing.
#include <unistd.h>

#include <atomic>
#include <future>

#include "agent_fixture.h"

namespace {
using namespace ads::test::agent_fixture;
using Lines = std::vector<std::pair<std::string, std::string>>;
using nlohmann::json;

class AgentPlaybookTest : public AgentTest {
 protected:
  void SetUp() override {
    if (access("/usr/bin/ansible-playbook", X_OK) != 0)
      GTEST_FAIL() << "ansible-playbook is not installed: run scripts/install-deps.sh (ansible-core)";
    AgentTest::SetUp();
    restart_agent([](ads::agent::AgentConfig& c) {
      c.command_timeout_s = 300;
      c.deployment_id = "d-7f3a";
      c.lab_name = "cse02";
      c.stable_url = "http://cse02.labs.example/";
    });
  }
  std::string spec(const std::string& playbook, const std::string& actions = "") {
    return R"({"ads":2,"os":{"name":"debian","version":"12"},"ansible":{"mode":"local","playbook":")" + playbook +
           R"("},"actions":{"start":["true"])" + actions + "}}";
  }
  Lines run(const std::string& action, int* code) {
    ads::agent::AgentClient c(base, kSecret);
    Lines lines;
    auto rc = c.run_action(action, [&](const std::string& s, const std::string& l) { lines.push_back({s, l}); });
    EXPECT_TRUE(rc.ok()) << (rc.ok() ? "" : rc.error().message);
    *code = rc.ok() ? *rc : -1;
    return lines;
  }
  static std::string text(const Lines& lines) {
    std::string t;
    for (auto& [s, l] : lines) t += s + ": " + l + "\n";
    return t;
  }
};

const char* kWritePlaybook = R"(- hosts: all
  gather_facts: false
  tasks:
    - name: Write the variables ADS passes
      ansible.builtin.copy:
        dest: "{{ ads_lab_dir }}/vars.txt"
        content: "{{ ads_deployment_id }} {{ ads_name }} {{ ads_stable_url }} {{ ads_backup_dir }} {{ ads_lab_dir }}\n"
    - name: A command sees the same values in its environment
      ansible.builtin.shell: echo "$ADS_DEPLOYMENT_ID $ADS_LAB_NAME" > "$ADS_LAB_DIR/env.txt"
)";

TEST_F(AgentPlaybookTest, TheInstallPlaybookRunsWithTheVariablesOfTheDeploymentTaskByTask) {
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec("play/site.yml"), {{"play/site.yml", kWritePlaybook}})).ok());
  int code = 0;
  Lines lines = run("install", &code);
  ASSERT_EQ(code, 0) << text(lines);
  fs::path lab = tmp.path / "lab";
  std::ifstream v(lab / "vars.txt"), e(lab / "env.txt");
  std::string vars((std::istreambuf_iterator<char>(v)), {}), env((std::istreambuf_iterator<char>(e)), {});
  EXPECT_EQ(vars,
            "d-7f3a cse02 http://cse02.labs.example/ " + (tmp.path / "backup").string() + " " + lab.string() + "\n");
  EXPECT_EQ(env, "d-7f3a cse02\n");
  // Ansible's own output, task by task, reaches the client
  std::string t = text(lines);
  EXPECT_NE(t.find("TASK [Write the variables ADS passes]"), std::string::npos) << t;
  EXPECT_NE(t.find("TASK [A command sees the same values in its environment]"), std::string::npos) << t;
  EXPECT_NE(t.find("changed=2"), std::string::npos) << t;
  EXPECT_EQ(t.find("\x1b["), std::string::npos) << "colour codes in the output: " << t;
}

TEST_F(AgentPlaybookTest, ALifeCycleActionMayBeAPlaybookAndAFailingTaskStopsIt) {
  ads::agent::AgentClient c(base, kSecret);
  const char* backup = R"(- hosts: all
  gather_facts: false
  tasks:
    - name: Save the data
      ansible.builtin.copy: {dest: "{{ ads_backup_dir }}/data.txt", content: "saved\n"}
    - name: Fail on purpose
      ansible.builtin.command: /bin/false
    - name: Never reached
      ansible.builtin.copy: {dest: "{{ ads_backup_dir }}/never.txt", content: "x"}
)";
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec("site.yml", R"(,"backup":{"playbook":"books/backup.yml"})"),
                                       {{"site.yml", "- hosts: all\n  gather_facts: false\n  tasks: []\n"},
                                        {"books/backup.yml", backup}}))
                  .ok());
  int code = 0;
  Lines lines = run("backup", &code);
  EXPECT_EQ(code, 2) << text(lines);  // ansible-playbook's code for a failed task
  EXPECT_TRUE(fs::exists(tmp.path / "backup" / "data.txt")) << text(lines);
  EXPECT_FALSE(fs::exists(tmp.path / "backup" / "never.txt"));
  std::string t = text(lines);
  EXPECT_NE(t.find("fatal: [localhost]: FAILED!"), std::string::npos) << t;
  // the command the log shows names the playbook; the variables are not spelled out
  EXPECT_NE(t.find("ansible-playbook -i localhost, -c local -e <ads_* variables> -- books/backup.yml"),
            std::string::npos)
      << t;
}

TEST_F(AgentPlaybookTest, AMissingAnsiblePlaybookIsSaidPlainlyAndRunsNothing) {
  restart_agent([&](ads::agent::AgentConfig& c) { c.ansible_dirs = {(tmp.path / "nothing-here").string()}; });
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec("site.yml"), {{"site.yml", kWritePlaybook}})).ok());
  int code = 0;
  Lines lines = run("install", &code);
  EXPECT_EQ(code, 127);
  std::string t = text(lines);
  EXPECT_NE(t.find("ansible-playbook is not installed in this machine"), std::string::npos) << t;
  EXPECT_NE(t.find("\"variant\": \"build\""), std::string::npos) << t;
  EXPECT_FALSE(fs::exists(tmp.path / "lab" / "vars.txt"));
}

TEST_F(AgentPlaybookTest, APlaybookThatIsNotThereIsAnsiblesOwnErrorWithItsPath) {
  // the path reaches ansible-playbook as one argument, as the spec gave it
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec("a-b_c.d/e.yml"))).ok());
  int code = 0;
  Lines lines = run("install", &code);
  EXPECT_NE(code, 0);
  std::string t = text(lines);
  EXPECT_NE(t.find("ERROR! the playbook: a-b_c.d/e.yml could not be found"), std::string::npos) << t;
}

TEST_F(AgentPlaybookTest, InControllerModeTheAgentRunsTheCommandsButNotThePlaybook) {
  // ADS runs the playbook from its host after the agent's part (engine/ansible_controller.cpp)
  ads::agent::AgentClient c(base, kSecret);
  std::string controller = R"({"ads":2,"os":{"name":"debian","version":"12"},"install":["echo built > built.txt"],)"
                           R"("ansible":"site.yml","actions":{"start":["true"],"backup":{"playbook":"b.yml"}}})";
  ASSERT_TRUE(c.upload_lab(lab_tarball(controller, {{"site.yml", kWritePlaybook}, {"b.yml", kWritePlaybook}})).ok());
  int code = 0;
  Lines lines = run("install", &code);
  EXPECT_EQ(code, 0) << text(lines);
  EXPECT_TRUE(fs::exists(tmp.path / "lab" / "built.txt")) << text(lines);
  EXPECT_FALSE(fs::exists(tmp.path / "lab" / "vars.txt")) << text(lines);
  EXPECT_EQ(text(lines).find("ansible-playbook"), std::string::npos) << text(lines);
  // a playbook-only action is an empty run here (the backup directory is still emptied for it)
  fs::create_directories(tmp.path / "backup");
  std::ofstream(tmp.path / "backup" / "old.txt") << "old";
  lines = run("backup", &code);
  EXPECT_EQ(code, 0) << text(lines);
  EXPECT_FALSE(fs::exists(tmp.path / "backup" / "old.txt"));
  EXPECT_EQ(text(lines).find("ansible-playbook"), std::string::npos) << text(lines);
}

const char* kPagePlaybook = R"(- hosts: all
  gather_facts: false
  tasks:
    - name: Write the page
      ansible.builtin.copy: {dest: "{{ ads_lab_dir }}/page.txt", content: "{{ lookup('file', 'page.src') }}\n"}
    - name: A command is skipped in check mode
      ansible.builtin.command: touch "{{ ads_lab_dir }}/ran.txt"
)";

TEST_F(AgentPlaybookTest, ACheckRunsTheInstallPlaybookInCheckModeAndChangesNothing) {
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(
      c.upload_lab(lab_tarball(spec("site.yml"), {{"site.yml", kPagePlaybook}, {"page.src", "version one"}})).ok());
  int code = 0;
  Lines lines = run("install", &code);
  ASSERT_EQ(code, 0) << text(lines);
  const fs::path lab = tmp.path / "lab";
  ASSERT_TRUE(fs::exists(lab / "ran.txt"));
  fs::remove(lab / "ran.txt");
  auto check = [&](const std::string& tarball, bool diff = true) {
    Lines out;
    auto rc = c.run_check(
        tarball,
        [&](const std::string& s, const std::string& l) {
          out.push_back({s, l});
        },
        60000, {}, diff);
    EXPECT_TRUE(rc.ok()) << (rc.ok() ? "" : rc.error().message);
    code = rc.ok() ? *rc : -1;
    return text(out);
  };
  auto page = [&] {
    std::ifstream in(lab / "page.txt");
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  // the lab as uploaded: nothing would change
  std::string t = check("");
  EXPECT_EQ(code, 0) << t;
  EXPECT_NE(t.find("ansible-playbook -i localhost, -c local -e <ads_* variables> --check --diff -- site.yml"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("changed=0"), std::string::npos) << t;
  // without --diff: what would change, not how
  std::ofstream(lab / "page.txt", std::ios::trunc) << "edited\n";
  t = check("", false);
  EXPECT_EQ(code, 0) << t;
  EXPECT_NE(t.find("-e <ads_* variables> --check -- site.yml"), std::string::npos) << t;
  EXPECT_NE(t.find("changed=1"), std::string::npos) << t;
  EXPECT_EQ(t.find("-edited"), std::string::npos) << t;
  // drift: the page edited by hand would be put back, with its diff; it is not
  t = check("");
  EXPECT_EQ(code, 0) << t;
  EXPECT_NE(t.find("-edited"), std::string::npos) << t;
  EXPECT_NE(t.find("+version one"), std::string::npos) << t;
  EXPECT_NE(t.find("changed=1"), std::string::npos) << t;
  EXPECT_EQ(page(), "edited\n");
  EXPECT_FALSE(fs::exists(lab / "ran.txt")) << "a command ran in check mode";
  // another version sent along: checked from beside the lab, which stays as it is
  t = check(lab_tarball(spec("site.yml"), {{"site.yml", kPagePlaybook}, {"page.src", "version two"}}));
  EXPECT_EQ(code, 0) << t;
  EXPECT_NE(t.find("+version two"), std::string::npos) << t;
  EXPECT_EQ(page(), "edited\n");
  EXPECT_FALSE(fs::exists(tmp.path / "lab.check")) << "the version checked is left behind";
  {
    std::ifstream in(lab / "page.src");
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), "version one");
  }
  // a task that fails in check mode: ansible-playbook's code
  t = check(lab_tarball(spec("site.yml"), {{"site.yml",
                                            "- hosts: all\n  gather_facts: false\n  tasks:\n"
                                            "    - name: No\n      ansible.builtin.fail: {msg: no}\n"}}));
  EXPECT_EQ(code, 2) << t;
  EXPECT_NE(t.find("fatal: [localhost]: FAILED!"), std::string::npos) << t;
  EXPECT_FALSE(fs::exists(tmp.path / "lab.check"));
}

TEST_F(AgentPlaybookTest, ACheckRefusesWhatItCannotCheckAndAHostileArchive) {
  ads::agent::AgentClient c(base, kSecret);
  auto none = [](const std::string&, const std::string&) {};
  // nothing uploaded yet
  auto rc = c.run_check("", none, 30000);
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.error().code, "conflict") << rc.error().message;
  // a lab in controller mode: ADS checks it from its host
  std::string controller = R"({"ads":2,"os":{"name":"debian","version":"12"},"ansible":"site.yml",)"
                           R"("actions":{"start":["true"]}})";
  ASSERT_TRUE(c.upload_lab(lab_tarball(controller, {{"site.yml", kWritePlaybook}})).ok());
  rc = c.run_check("", none, 30000);
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.error().code, "conflict");
  EXPECT_NE(rc.error().message.find("controller mode"), std::string::npos) << rc.error().message;
  // a lab of commands
  std::string commands = R"({"ads":2,"os":{"name":"debian","version":"12"},"install":["true"],)"
                         R"("actions":{"start":["true"]}})";
  rc = c.run_check(lab_tarball(commands), none, 30000);
  ASSERT_FALSE(rc.ok());
  EXPECT_NE(rc.error().message.find("installs with commands"), std::string::npos) << rc.error().message;
  // not an archive; an archive without a spec
  rc = c.run_check("not a tarball", none, 30000);
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.error().code, "invalid") << rc.error().message;
  EXPECT_FALSE(fs::exists(tmp.path / "lab.check"));
  // a link out of the lab sent along refuses it, and nothing ran
  fs::path src = tmp.path / "hostile";
  fs::create_directories(src);
  std::ofstream(src / "ads-lab.json") << spec("site.yml");
  std::ofstream(src / "site.yml") << kWritePlaybook;
  fs::create_symlink("/etc", src / "out");
  ASSERT_EQ(ads::test::run({"tar", "-czf", (tmp.path / "h.tgz").string(), "-C", src.string(), "."}), 0);
  std::ifstream in(tmp.path / "h.tgz", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  rc = c.run_check(bytes, none, 30000);
  ASSERT_FALSE(rc.ok());
  EXPECT_NE(rc.error().message.find("leads outside"), std::string::npos) << rc.error().message;
  EXPECT_FALSE(fs::exists(tmp.path / "lab.check"));
}

// A check holds the agent like an action: another upload, action or check
// is answered "busy" meanwhile (ADS waits for it), and a cancel ends it,
// its copy of the lab removed before the agent takes the next request.
TEST_F(AgentPlaybookTest, ACheckHoldsTheAgentAsAnActionDoesAndACancelEndsIt) {
  restart_agent([](ads::agent::AgentConfig& c) {
    c.command_timeout_s = 600;
    c.kill_grace_s = 1;
  });
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec("site.yml"), {{"site.yml", kWritePlaybook}})).ok());
  // a task that runs for real in check mode, and long
  const std::string slow =
      "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: Slow\n"
      "      ansible.builtin.command: sleep 300\n      check_mode: false\n";
  std::promise<void> started;
  std::atomic<bool> once{false};
  auto run = std::async(std::launch::async, [&] {
    return c.run_check(
        lab_tarball(spec("site.yml"), {{"site.yml", slow}}),
        [&](const std::string&, const std::string& l) {
          if (l.find("TASK [Slow]") != std::string::npos && !once.exchange(true)) started.set_value();
        },
        120000);
  });
  ASSERT_EQ(started.get_future().wait_for(std::chrono::seconds(120)), std::future_status::ready);
  EXPECT_TRUE(fs::exists(tmp.path / "lab.check" / "site.yml"));
  // busy meanwhile, for a check, an action and an upload alike
  auto none = [](const std::string&, const std::string&) {};
  auto other = c.run_check("", none, 30000);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, "busy") << other.error().message;
  auto action = c.run_action("start", none, 30000);
  ASSERT_FALSE(action.ok());
  EXPECT_EQ(action.error().code, "busy") << action.error().message;
  auto upload = c.upload_lab(lab_tarball(spec("site.yml"), {{"site.yml", kWritePlaybook}}));
  ASSERT_FALSE(upload.ok());
  EXPECT_EQ(upload.error().code, "busy") << upload.error().message;
  // a cancel ends it
  auto st = c.cancel();
  EXPECT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(run.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  auto rc = run.get();
  ASSERT_FALSE(rc.ok()) << "exit " << *rc;
  EXPECT_EQ(rc.error().code, "cancelled") << rc.error().message;
  EXPECT_FALSE(fs::exists(tmp.path / "lab.check"));
  auto next = c.run_action("start", none, 30000);
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(*next, 0);
}

}  // namespace
