// The lines below were printed by Debian 12's ansible-core 2.14 (default
// callback, no colour) for small playbooks run with -c local.
#include "core/ansible_output.h"

#include <gtest/gtest.h>

#include <sstream>

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
