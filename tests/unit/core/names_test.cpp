// Validation of user-supplied lab names, git refs and sources.
#include "core/names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {
using ads::validate_git_ref;
using ads::validate_lab_name;
using ads::validate_source;

// Characters that mean something to a POSIX shell.
const std::string kShellMeta = ";|&$`<>\"'";

void expect_refused(const ads::Status& st, const std::string& field, const std::string& what) {
  EXPECT_FALSE(st.ok()) << "accepted: \"" << what << '"';
  if (!st.ok()) {
    EXPECT_EQ(st.error().code, "invalid") << what;
    EXPECT_EQ(st.error().field, field) << what;
    EXPECT_FALSE(st.error().message.empty()) << what;
  }
}

// ---------------------------------------------------------------- lab names

TEST(LabNameValidation, AcceptsOrdinaryNames) {
  for (std::string ok : {"cse02", "a", "A", "7", "phy07", "Lab_1.v2", "x-y", "my.lab-2_b", "CSE02"})
    EXPECT_TRUE(validate_lab_name(ok).ok()) << ok;
  EXPECT_TRUE(validate_lab_name(std::string(63, 'a')).ok());
  EXPECT_TRUE(validate_lab_name("a" + std::string(62, '-')).ok());
}

TEST(LabNameValidation, RefusesShellMetacharactersAndSpaces) {
  for (char c : kShellMeta + " \t(){}[]*?!#~^%,:=+@/\\")
    expect_refused(validate_lab_name(std::string("lab") + c + "x"), "name", std::string(1, c));
  for (std::string bad : {"cse02; rm -rf /", "$(reboot)", "`id`", "a&&b", "a|b", "a>b", "x y"})
    expect_refused(validate_lab_name(bad), "name", bad);
}

TEST(LabNameValidation, RefusesPathTraversal) {
  for (std::string bad : {"..", ".", "../etc", "a/../b", "a..b", "a/b", "/etc", ".hidden", "a\\b", "lab.."})
    expect_refused(validate_lab_name(bad), "name", bad);
}

TEST(LabNameValidation, RefusesControlAndNonAsciiCharacters) {
  for (const std::string& bad : {std::string("a\nb"), std::string("a\rb"), std::string("a\tb"), std::string("a\x7f"),
                                 std::string("a\x01"), std::string("a\0b", 3), std::string("caf\xc3\xa9")})
    expect_refused(validate_lab_name(bad), "name", bad);
}

TEST(LabNameValidation, RefusesEmptyLeadingPunctuationAndTooLong) {
  expect_refused(validate_lab_name(""), "name", "");
  for (std::string bad : {"-x", "-rf", "_x", ".x"}) expect_refused(validate_lab_name(bad), "name", bad);
  expect_refused(validate_lab_name(std::string(64, 'a')), "name", "64 chars");
  expect_refused(validate_lab_name(std::string(1000, 'a')), "name", "1000 chars");
}

TEST(LabNameValidation, ErrorsNameTheCallersField) {
  expect_refused(validate_lab_name("a b", "lab.description.id"), "lab.description.id", "a b");
  expect_refused(validate_lab_name("", "user"), "user", "");
}

// ------------------------------------------------------------------ git refs

TEST(GitRefValidation, AcceptsBranchesTagsAndCommits) {
  for (std::string ok : {"main", "master", "v1.2", "v1.2.3-rc.1", "release/2024", "feature/x_y-z", "0123abcd",
                         "0123456789abcdef0123456789abcdef01234567", "HEAD", "a.b"})
    EXPECT_TRUE(validate_git_ref(ok).ok()) << ok;
  EXPECT_TRUE(validate_git_ref(std::string(255, 'r')).ok());
}

TEST(GitRefValidation, RefusesCharactersGitForbids) {
  for (std::string bad : {"a b", "a~1", "a^", "a^{}", "a:b", "a?", "a*", "a[0]", "a\\b", "a@{1}"})
    expect_refused(validate_git_ref(bad), "ref", bad);
}

TEST(GitRefValidation, RefusesShellMetacharacters) {
  for (char c : kShellMeta) expect_refused(validate_git_ref(std::string("v1") + c + "x"), "ref", std::string(1, c));
  for (std::string bad : {"main; rm -rf /", "$(reboot)", "`id`", "v1&&true", "v1|sh", "v1>x", "'v1'"})
    expect_refused(validate_git_ref(bad), "ref", bad);
}

TEST(GitRefValidation, RefusesTraversalControlLeadingDashAndTooLong) {
  for (std::string bad : {"..", "a..b", "../../etc/passwd", "refs/../x"})
    expect_refused(validate_git_ref(bad), "ref", bad);
  for (const std::string& bad :
       {std::string("a\nb"), std::string("a\x01"), std::string("a\x7f"), std::string("a\0", 2), std::string("\tmain")})
    expect_refused(validate_git_ref(bad), "ref", bad);
  for (std::string bad : {"-x", "--upload-pack=evil", "-"}) expect_refused(validate_git_ref(bad), "ref", bad);
  expect_refused(validate_git_ref(""), "ref", "");
  expect_refused(validate_git_ref(std::string(256, 'r')), "ref", "256 chars");
  expect_refused(validate_git_ref("main\n", "params.ref"), "params.ref", "custom field");
}

// ------------------------------------------------------------------- sources

TEST(SourceValidation, AcceptsUrlsAndLocalPaths) {
  for (std::string ok : {"https://example.invalid/labs/cse02.git", "http://host:8080/x.git", "git://host/x",
                         "ssh://git@host/x.git", "file:///srv/labs/x", "/srv/labs/x", "labs/x", "./x", "../x",
                         "/home/me/My Labs/x", "git@github.com:org/repo.git", "https://host/~user/x.git"})
    EXPECT_TRUE(validate_source(ok).ok()) << ok;
  EXPECT_TRUE(validate_source("/" + std::string(2047, 'a')).ok());
}

TEST(SourceValidation, RefusesShellMetacharacters) {
  for (char c : kShellMeta)
    expect_refused(validate_source(std::string("https://h/x") + c + "y"), "source", std::string(1, c));
  for (std::string bad : {"https://h/x.git; rm -rf /", "/srv/$(reboot)", "/srv/`id`", "x|sh", "x && y"})
    expect_refused(validate_source(bad), "source", bad);
}

TEST(SourceValidation, RefusesControlCharactersLeadingDashEmptyAndTooLong) {
  for (const std::string& bad : {std::string("/x\ny"), std::string("/x\ry"), std::string("/x\x7f"),
                                 std::string("/x\0y", 4), std::string("https://h/x\x1b[2J"), std::string("\t/x")})
    expect_refused(validate_source(bad), "source", bad);
  for (std::string bad : {"-x", "--upload-pack=touch /tmp/pwned", "-oProxyCommand=sh"})
    expect_refused(validate_source(bad), "source", bad);
  expect_refused(validate_source(""), "source", "");
  expect_refused(validate_source("/" + std::string(2048, 'a')), "source", "2049 chars");
  expect_refused(validate_source("", "repo"), "repo", "custom field");
}

}  // namespace

// ------------------------------------------------------- DNS labels (issue 17)

namespace {
TEST(DnsLabelValidation, AcceptsLowerCaseLabels) {
  for (std::string ok : {"a", "7", "cse02", "x-y", "a--b", "notes-v2", "0lab"})
    EXPECT_TRUE(ads::validate_dns_label(ok).ok()) << ok;
  EXPECT_TRUE(ads::validate_dns_label(std::string(63, 'a')).ok());
}

TEST(DnsLabelValidation, RefusesWhatCannotBeAHostName) {
  for (const std::string& bad :
       std::vector<std::string>{"", "A", "Lab", "a_b", "a.b", "-a", "a-", "-", "a b", "a;b", "caf\xc3\xa9",
                                std::string("a\0b", 3), "a\n", std::string(64, 'a'), "\xff", "xn--80ak6aa92e.x"})
    expect_refused(ads::validate_dns_label(bad), "name", bad);
  expect_refused(ads::validate_dns_label("a_b", "lab"), "lab", "a_b");
}
}  // namespace
