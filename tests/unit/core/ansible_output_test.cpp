// The lines below were printed by Debian 12's ansible-core 2.14 (default
// callback, no colour) for small playbooks run with -c local.
#include "core/ansible_output.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/ansible_run.h"
#include "support/process.h"

namespace {

std::optional<std::string> read(const std::string& output) {
  ads::AnsibleOutput a;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) a.feed(line);
  return a.failure();
}

TEST(AnsibleOutput, NamesTheFailedTaskHostAndMessage) {
  auto f = read(R"(
PLAY [Install the page] ********************************************************

TASK [Gathering Facts] *********************************************************
ok: [localhost]

TASK [Write the page] **********************************************************
fatal: [localhost]: FAILED! => {"changed": false, "checksum": "x", "msg": "Destination directory /nope does not exist"}

PLAY RECAP *********************************************************************
localhost                  : ok=1    changed=0    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0
)");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, "task 'Write the page' failed on localhost: Destination directory /nope does not exist");
}

TEST(AnsibleOutput, AResultPrintedOverSeveralLinesIsReadWhole) {
  // assert's result is printed indented (ansible-core 2.14, controller over SSH)
  auto f = read(R"(
TASK [Nothing of it is visible] ************************************************
fatal: [probe]: FAILED! => {
    "assertion": "(seen.results | selectattr('stat.exists') | list | length) == 0",
    "changed": false,
    "evaluated_to": false,
    "msg": "Assertion failed {\"quoted\": [1, 2]}"
}

PLAY RECAP *********************************************************************
probe                      : ok=3    changed=1    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0
)");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f,
            "task 'Nothing of it is visible' failed on probe: Assertion failed {\"quoted\": [1, 2]}: "
            "(seen.results | selectattr('stat.exists') | list | length) == 0");
  // output that ends inside such a result still names the task and host
  f = read("TASK [Cut] ***\nfatal: [probe]: FAILED! => {\n    \"msg\": \"half");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->rfind("task 'Cut' failed on probe: ", 0), 0u) << *f;
  // and one that is ignored after it is ignored
  f = read("TASK [Soft] ***\nfatal: [probe]: FAILED! => {\n    \"msg\": \"x\"\n}\n...ignoring\n");
  EXPECT_FALSE(f.has_value()) << *f;
}

TEST(AnsibleOutput, AnIgnoredFailureIsNoFailureAndALoopItemGivesItsCodeAndStderr) {
  auto f = read(R"(
TASK [Ignored failure] *********************************************************
fatal: [localhost]: FAILED! => {"changed": true, "cmd": ["/bin/false"], "msg": "non-zero return code", "rc": 1, "stderr": ""}
...ignoring

TASK [Loop] ********************************************************************
changed: [localhost] => (item=a)
failed: [localhost] (item=b) => {"ansible_loop_var": "item", "item": "b", "msg": "non-zero return code", "rc": 1, "stderr": "test: b: unexpected"}
)");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, "task 'Loop' failed on localhost: non-zero return code (rc 1): test: b: unexpected");
}

TEST(AnsibleOutput, OnlyAnIgnoredFailureLeavesNothingToReport) {
  EXPECT_FALSE(read("TASK [t] ***\nfatal: [h]: FAILED! => {\"msg\": \"x\"}\n...ignoring\nok: [h]\n").has_value());
}

TEST(AnsibleOutput, TheLastFailureCountsAndAHandlerIsATask) {
  // a host stops at its first failure no rescue catches: an earlier one was rescued
  auto f = read(
      "TASK [later] ***\nfatal: [web2]: FAILED! => {\"msg\": \"rescued\"}\n"
      "TASK [the rescue] ***\nok: [web2]\n"
      "RUNNING HANDLER [web : Reload the page] ***\n"
      "fatal: [web1]: UNREACHABLE! => {\"changed\": false, \"msg\": \"Failed to connect\", \"unreachable\": true}\n"
      "PLAY RECAP ***\n");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, "task 'web : Reload the page' failed on web1: Failed to connect");
}

TEST(AnsibleOutput, ALoopWithIgnoredErrorsIsIgnoredWhicheverItemFailed) {
  // ansible-core 2.14 prints "...ignoring" once, after the loop's last item
  auto f = read(R"(
TASK [Loop, errors ignored] ****************************************************
failed: [localhost] (item=a) => {"ansible_loop_var": "item", "item": "a", "msg": "non-zero return code", "rc": 1}
failed: [localhost] (item=b) => {"ansible_loop_var": "item", "item": "b", "msg": "non-zero return code", "rc": 1}
ok: [localhost] => (item=c)
fatal: [localhost]: FAILED! => {"msg": "One or more items failed"}
...ignoring

TASK [Next] ********************************************************************
ok: [localhost]
)");
  EXPECT_FALSE(f.has_value()) << *f;
}

TEST(AnsibleOutput, AnIncludeFailureGivesItsReason) {
  auto f = read(
      "TASK [include_tasks] ***\n"
      "fatal: [localhost]: FAILED! => {\"reason\": \"Could not find or access '/opt/lab/missing.yml'\"}\n");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, "task 'include_tasks' failed on localhost: Could not find or access '/opt/lab/missing.yml'");
}

TEST(AnsibleOutput, TheAgentsLineAboutAMissingAnsibleIsTheReason) {
  auto f = read("ansible-playbook is not installed in this machine: the lab names a playbook, so ...\n");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->rfind("ansible-playbook is not installed in this machine", 0), 0u) << *f;
}

TEST(AnsibleOutput, AnErrorBeforeAnyTaskIsTheReason) {
  auto f = read("ERROR! the playbook: nothere.yml could not be found\n");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, "ERROR! the playbook: nothere.yml could not be found");
}

TEST(AnsibleOutput, ALongOrMultiLineMessageIsShortenedToOneLine) {
  std::string big(1000, 'x');
  auto f = read("TASK [t] ***\nfatal: [h]: FAILED! => {\"msg\": \"a\\nb" + big + "\"}\n");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->find('\n'), std::string::npos);
  EXPECT_LT(f->size(), 400u);
  EXPECT_EQ(f->rfind("task 't' failed on h: a b", 0), 0u);
}

TEST(AnsibleOutput, ResultThatIsNotJsonIsQuotedAsItIs) {
  auto f = read("TASK [t] ***\nfatal: [h]: FAILED! => not json at all\n");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, "task 't' failed on h: not json at all");
}

TEST(AnsibleOutput, OutputWithoutFailureHasNone) {
  EXPECT_FALSE(read("PLAY [x] ***\nTASK [t] ***\nok: [localhost]\nfailed=0\n").has_value());
}

}  // namespace

namespace {

// By stream: stdout is read; of stderr only "ERROR! ..." (a warning with a
// stray brace there would open a multi-line result that never closes).
TEST(AnsibleOutput, OfStderrOnlyErrorLinesAreRead) {
  ads::AnsibleOutput a;
  a.feed("stdout", "TASK [Write the page] ***");
  a.feed("stderr", "[WARNING]: a warning with a stray { brace");
  a.feed("stdout", R"(fatal: [cse02]: FAILED! => {"changed": false, "msg": "no such file"})");
  ASSERT_TRUE(a.failure().has_value());
  EXPECT_EQ(*a.failure(), "task 'Write the page' failed on cse02: no such file");

  ads::AnsibleOutput early;
  early.feed("stderr", "TASK [Seen on stderr] ***");
  early.feed("stderr", R"(fatal: [cse02]: FAILED! => {"changed": false, "msg": "not read from stderr"})");
  EXPECT_FALSE(early.failure().has_value()) << *early.failure();
  early.feed("stderr", "ERROR! the playbook: site.yml could not be found");
  ASSERT_TRUE(early.failure().has_value());
  EXPECT_EQ(early.failure()->rfind("ERROR! the playbook", 0), 0u) << *early.failure();
}

}  // namespace

namespace {

// What a check run (--check --diff) reports: the tasks that would change,
// each once and in order (a loop's items and a handler too), and the recap.
TEST(AnsibleOutput, ATaskThatWouldChangeIsNamedOnceAndTheRecapIsCounted) {
  ads::AnsibleOutput a;
  std::istringstream in(R"(
PLAY [all] *********************************************************************

TASK [Write the page] **********************************************************
--- before: /tmp/chk/out.txt
+++ after: /root/.ansible/tmp/ansible-local-29676mjqcewtw/tmpuw0l3opn
@@ -1 +1 @@
-hello old
+hello new

changed: [cse02]

TASK [Same file] ***************************************************************
ok: [cse02]

TASK [Loop] ********************************************************************
changed: [cse02] => (item=a)
changed: [cse02] => (item=b)

TASK [Restart web] *************************************************************
ok: [cse02] => {
    "msg": "changed: [not a line of its own]"
}

RUNNING HANDLER [Reload] *******************************************************
changed: [cse02]

PLAY RECAP *********************************************************************
cse02                      : ok=4    changed=2    unreachable=0    failed=0    skipped=1    rescued=0    ignored=0
web2                       : ok=1    changed=1    unreachable=1    failed=1    skipped=0    rescued=0    ignored=0
)");
  for (std::string line; std::getline(in, line);) a.feed("stdout", line);
  EXPECT_EQ(a.changed_tasks(), (std::vector<std::string>{"Write the page", "Loop", "Reload"}));
  EXPECT_FALSE(a.changed_tasks_cut());
  ASSERT_TRUE(a.recap().has_value());
  EXPECT_EQ(a.recap()->ok, 5);
  EXPECT_EQ(a.recap()->changed, 3);
  EXPECT_EQ(a.recap()->unreachable, 1);
  EXPECT_EQ(a.recap()->failed, 1);
  EXPECT_EQ(a.recap()->skipped, 1);
  EXPECT_FALSE(a.failure().has_value());
}

TEST(AnsibleOutput, NoRecapBeforeOneAndAtMostSoManyChangedTasksAreKept) {
  ads::AnsibleOutput a;
  // a name is cut, and counted once however long it was
  const std::string long_name(5000, 'n');
  for (int i = 0; i < 2; ++i) {
    a.feed("stdout", "TASK [" + long_name + "] ***");
    a.feed("stdout", "changed: [h]");
  }
  ASSERT_EQ(a.changed_tasks().size(), 1u);
  EXPECT_EQ(a.changed_tasks()[0], long_name.substr(0, ads::AnsibleOutput::kMaxTaskName));
  a.feed("stdout", "TASK [t] ***");
  a.feed("stdout", "changed: [h]");
  a.feed("stdout", "h : ok=1 changed=1");  // not under a PLAY RECAP
  EXPECT_FALSE(a.recap().has_value());
  for (size_t i = 0; i < ads::AnsibleOutput::kMaxChanged + 20; ++i) {
    a.feed("stdout", "TASK [task " + std::to_string(i) + "] ***");
    a.feed("stdout", "changed: [h]");
  }
  EXPECT_EQ(a.changed_tasks().size(), ads::AnsibleOutput::kMaxChanged);
  EXPECT_EQ(a.changed_tasks()[1], "t");
  EXPECT_TRUE(a.changed_tasks_cut());
  a.feed("stdout", "PLAY RECAP ***");
  a.feed("stdout", "h : ok=x changed=2 failed=-");  // what is not a number is not counted
  ASSERT_TRUE(a.recap().has_value());
  EXPECT_EQ(a.recap()->changed, 2);
  EXPECT_EQ(a.recap()->ok, 0);
}

// The same read of a real ansible-playbook (Debian's ansible-core) in check
// and diff mode, with the environment ADS gives it: the format it relies on
// is the one Ansible prints, and check mode changed nothing.
TEST(AnsibleOutput, ARealCheckRunSaysWhatWouldChangeAndChangesNothing) {
  ads::test::TempDir tmp;
  const std::string dir = tmp.str();
  std::ofstream(tmp.path / "old.txt") << "hello old\n";
  // a lab's ansible.cfg asking for "[CHECK MODE]" after task names: the environment wins
  std::ofstream(tmp.path / "ansible.cfg") << "[defaults]\ncheck_mode_markers = true\n";
  std::ofstream(tmp.path / "same.txt") << "same\n";
  std::ofstream(tmp.path / "site.yml") << "- hosts: all\n  gather_facts: false\n  tasks:\n"
                                          "    - name: Write the page\n"
                                          "      ansible.builtin.copy: {dest: '"
                                       << dir << "/old.txt', content: \"hello new\\n\"}\n"
                                       << "    - name: Leave the same file\n"
                                          "      ansible.builtin.copy: {dest: '"
                                       << dir << "/same.txt', content: \"same\\n\"}\n"
                                       << "    - name: Make a directory\n"
                                          "      ansible.builtin.file: {path: '"
                                       << dir << "/made', state: directory}\n"
                                       << "    - name: Never in check mode\n"
                                          "      ansible.builtin.command: 'true'\n";
  std::vector<std::string> argv{"env", "HOME=" + dir};
  for (const auto& e : ads::playbook_env()) argv.push_back(e);
  for (const char* a : {"ansible-playbook", "-i", "cse02,", "-c", "local", "--check", "--diff", "--", "site.yml"})
    argv.emplace_back(a);
  std::string out;
  ASSERT_EQ(ads::test::run(argv, &out, dir), 0) << out;
  ads::AnsibleOutput a;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) a.feed("stdout", line);
  EXPECT_EQ(a.changed_tasks(), (std::vector<std::string>{"Write the page", "Make a directory"})) << out;
  ASSERT_TRUE(a.recap().has_value()) << out;
  EXPECT_EQ(a.recap()->changed, 2) << out;
  EXPECT_EQ(a.recap()->skipped, 1) << out;  // a command is skipped in check mode
  EXPECT_EQ(a.recap()->failed, 0) << out;
  EXPECT_NE(out.find("-hello old"), std::string::npos) << out;  // the diff
  EXPECT_NE(out.find("+hello new"), std::string::npos) << out;
  std::ifstream old(tmp.path / "old.txt");
  std::string kept((std::istreambuf_iterator<char>(old)), {});
  EXPECT_EQ(kept, "hello old\n");
  EXPECT_FALSE(std::filesystem::exists(tmp.path / "made"));
}

}  // namespace
