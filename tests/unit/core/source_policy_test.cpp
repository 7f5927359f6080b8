// Which lab sources a server accepts (core/source_policy.h), text made
// printable for logs (core/names.h) and where links in a lab lead
// (core/lab_tree.h).
#include "core/source_policy.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/lab_tree.h"
#include "core/names.h"

namespace {
using namespace ads;

SourceRef parsed(const std::string& s) {
  auto r = parse_source(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : SourceRef{};
}

void expect_invalid(const std::string& s, const std::string& words = "") {
  auto r = parse_source(s);
  ASSERT_FALSE(r.ok()) << "accepted: " << s;
  EXPECT_EQ(r.error().code, "invalid") << s;
  EXPECT_EQ(r.error().field, "source") << s;
  if (!words.empty()) {
    EXPECT_NE(r.error().message.find(words), std::string::npos) << r.error().message;
  }
}

void expect_forbidden(const Status& st, const std::string& what) {
  ASSERT_FALSE(st.ok()) << "allowed: " << what;
  EXPECT_EQ(st.error().code, "forbidden") << what;
  EXPECT_EQ(st.error().field, "source") << what;
}

TEST(SourceParse, UrlsScpLikeAndLocalPaths) {
  auto a = parsed("https://git.example.org/labs/cse02.git");
  EXPECT_FALSE(a.local);
  EXPECT_EQ(a.scheme, "https");
  EXPECT_EQ(a.host, "git.example.org");
  EXPECT_EQ(a.path, "/labs/cse02.git");
  auto b = parsed("ssh://git@Git.Example.org:2222/labs/x.git");
  EXPECT_EQ(b.scheme, "ssh");
  EXPECT_EQ(b.user, "git");
  EXPECT_EQ(b.host, "git.example.org");
  EXPECT_EQ(b.port, "2222");
  auto c = parsed("git@github.example:labs/x.git");  // scp-like is ssh, as libgit2 reads it
  EXPECT_EQ(c.scheme, "ssh");
  EXPECT_EQ(c.user, "git");
  EXPECT_EQ(c.host, "github.example");
  EXPECT_EQ(parsed("git+ssh://h.example/x").scheme, "ssh");
  EXPECT_EQ(parsed("git://h.example/x").scheme, "git");
  auto v6 = parsed("http://[::1]:8080/r.git");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, "8080");
  auto f = parsed("file:///srv/labs/lab");
  EXPECT_TRUE(f.local);
  EXPECT_EQ(f.path, "/srv/labs/lab");
  EXPECT_EQ(parsed("file://localhost/srv/x").path, "/srv/x");
  auto p = parsed("examples/labs/static-site");
  EXPECT_TRUE(p.local);
  EXPECT_EQ(p.path, "examples/labs/static-site");
}

TEST(SourceParse, RefusesCredentialsAndSaysWhereTheyGo) {
  for (std::string s : {"https://user:token@git.example.org/r.git", "https://token@git.example.org/r.git",
                        "http://u:p@127.0.0.1:8089/r.git", "git://u@h.example/r", "ssh://git:secret@h.example/r",
                        "git:secret@h.example:r.git"})
    expect_invalid(s, "sources.git_credentials");
}

TEST(SourceParse, RefusesOddShapes) {
  for (std::string s :
       {"HTTPS://h.example/r", "ftp://h.example/r", "ext::sh -c x", "https://h.example", "https://h.example/",
        "https://h%2eexample/r", "https://[::1/r", "https://h.example:0/r", "https://h.example:99999/r", "https://-h/r",
        "file://otherhost/x", "file://%2e%2e/x", "./dir:x", "host:", "https://exa mple/r", "https://h_x.example/r"})
    expect_invalid(s);
}

TEST(SourcePolicyRules, SchemesHostsAndAddressLiterals) {
  SourcePolicy p;
  EXPECT_TRUE(check_remote(parsed("https://git.example.org/r.git"), p).ok());
  EXPECT_TRUE(check_remote(parsed("git@git.example.org:r.git"), p).ok());
  expect_forbidden(check_remote(parsed("http://git.example.org/r.git"), p), "http is off by default");
  // the server's own network, by address literal
  for (std::string s :
       {"https://127.0.0.1:8089/r", "https://[::1]/r", "https://10.1.2.3/r", "https://192.168.1.1/r",
        "https://172.16.0.1/r", "https://169.254.169.254/r", "https://[fe80::1]/r", "https://[::ffff:127.0.0.1]/r",
        "https://0.0.0.0/r", "https://100.64.0.1/r", "https://[fd00::1]/r", "https://224.0.0.1/r"})
    expect_forbidden(check_remote(parsed(s), p), s);
  EXPECT_TRUE(check_remote(parsed("https://203.0.113.7/r"), p).ok()) << "a public address";

  p.deny_hosts = {"*.internal.example", "bad.example"};
  expect_forbidden(check_remote(parsed("https://git.internal.example/r"), p), "wildcard deny");
  expect_forbidden(check_remote(parsed("https://BAD.example./r"), p), "case and trailing dot");
  EXPECT_TRUE(check_remote(parsed("https://internal.example/r"), p).ok()) << "*.x matches subdomains only";
  p.allow_hosts = {"git.example.org"};
  EXPECT_TRUE(check_remote(parsed("https://git.example.org/r"), p).ok());
  expect_forbidden(check_remote(parsed("https://other.example.org/r"), p), "not on the allow list");
}

TEST(SourcePolicyRules, AllowAddressesOpensADeniedRange) {
  SourcePolicy p;
  auto lo = parse_ip("127.0.0.1").value();
  expect_forbidden(check_address("localhost", lo, p), "loopback");
  p.allow_addresses = {parse_ip_range("127.0.0.1/32", "x").value()};
  EXPECT_TRUE(check_address("localhost", lo, p).ok());
  expect_forbidden(check_address("h", parse_ip("127.0.0.2").value(), p), "only the one address");
  auto st = check_address("secret-host.example", parse_ip("10.0.0.5").value(), p);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message.find("10.0.0.5"), std::string::npos) << "names the host, not the address";
}

TEST(SourcePolicyRules, RangesParse) {
  EXPECT_TRUE(parse_ip_range("10.0.0.0/8", "f").ok());
  EXPECT_TRUE(parse_ip_range("fe80::/10", "f").ok());
  EXPECT_TRUE(parse_ip_range("192.0.2.1", "f").ok());
  for (std::string bad : {"10.0.0.1/8", "10.0.0.0/33", "fe80::/129", "x/8", "10.0.0.0/", "010.0.0.0/8"}) {
    auto r = parse_ip_range(bad, "sources.deny_addresses");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().field, "sources.deny_addresses");
  }
  auto r = parse_ip_range("10.0.0.0/8", "f").value();
  EXPECT_TRUE(r.contains(parse_ip("10.255.1.2").value()));
  EXPECT_FALSE(r.contains(parse_ip("11.0.0.1").value()));
  EXPECT_FALSE(r.contains(parse_ip("::a00:1").value())) << "IPv4-compatible is not IPv4-mapped";
  EXPECT_FALSE(parse_ip("2130706433").has_value()) << "only dotted quads are literals";
}

TEST(SourcePolicyRules, LocalPathsStayInsideRoots) {
  EXPECT_TRUE(path_within("/srv/labs", "/srv/labs"));
  EXPECT_TRUE(path_within("/srv/labs/", "/srv/labs/a/b"));
  EXPECT_FALSE(path_within("/srv/labs", "/srv/labs2/a"));
  EXPECT_FALSE(path_within("/srv/labs", "/srv"));
  EXPECT_FALSE(path_within("/srv/labs", "relative/x"));
  EXPECT_TRUE(path_within("/", "/etc"));
}

TEST(SourcePolicyRules, RedactsCredentialsRecordedBefore) {
  EXPECT_EQ(redact_source("https://user:tok@h.example/r.git"), "https://***@h.example/r.git");
  EXPECT_EQ(redact_source("https://tok@h.example/r.git"), "https://***@h.example/r.git");
  EXPECT_EQ(redact_source("ssh://git@h.example/r.git"), "ssh://git@h.example/r.git");
  EXPECT_EQ(redact_source("ssh://git:pw@h.example/r.git"), "ssh://***@h.example/r.git");
  EXPECT_EQ(redact_source("https://h.example/a@b"), "https://h.example/a@b");
  EXPECT_EQ(redact_source("/srv/labs/x"), "/srv/labs/x");
}

TEST(Printable, EscapesInvalidUtf8AndControlsKeepsTheRest) {
  EXPECT_EQ(printable("plain é ✓ 😀"), "plain é ✓ 😀");
  EXPECT_EQ(printable("a\xff"
                      "b"),
            "a\\xffb");
  EXPECT_EQ(printable("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(printable("line\nbreak"), "line\\x0abreak");
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf") << "overlong '/'";
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80") << "a surrogate";
  EXPECT_EQ(printable("\xc2\x85"), "\\xc2\\x85") << "C1 control NEL";
  EXPECT_EQ(printable("back\\slash"), "back\\x5cslash");
  EXPECT_EQ(printable(std::string(600, 'a')).size(), 515u);
  EXPECT_TRUE(ads::is_valid_utf8(printable("\xf4\x90\x80\x80 \xe2\x82")));
  EXPECT_FALSE(ads::is_valid_utf8("\xe2\x82"));
  EXPECT_FALSE(validate_source("/srv/lab\xff").ok());
  EXPECT_FALSE(validate_git_ref("v1\xc3").ok());
}

// A lab tree as a map of links (everything else is a file or missing).
struct Tree {
  std::map<std::string, std::string> links;
  bool inside(const std::string& link) const {
    return link_stays_inside(link, links.at(link), [this](const std::string& rel) -> std::optional<std::string> {
      auto it = links.find(rel);
      if (it == links.end()) return std::nullopt;
      return it->second;
    });
  }
};

TEST(LabTree, LinksThatStayInsideAndLinksThatLeave) {
  Tree t;
  t.links = {{"site/alias.html", "index.html"},
             {"site/up.html", "../README"},
             {"abs", "/etc/passwd"},
             {"site/out", "../../x"},
             {"self", "."},
             {"chain", "self/../secret"},  // "." then ".." : above the root, though it reads like "secret"
             {"deep/a/b", "../../site/index.html"},
             {"loop1", "loop2"},
             {"loop2", "loop1"},
             {"via", "site/out/y"},
             {"dangling", "nothing/here"}};
  EXPECT_TRUE(t.inside("site/alias.html"));
  EXPECT_TRUE(t.inside("site/up.html"));
  EXPECT_TRUE(t.inside("deep/a/b"));
  EXPECT_TRUE(t.inside("self"));
  EXPECT_TRUE(t.inside("dangling"));
  EXPECT_FALSE(t.inside("abs"));
  EXPECT_FALSE(t.inside("site/out"));
  EXPECT_FALSE(t.inside("chain"));
  EXPECT_FALSE(t.inside("loop1"));
  EXPECT_FALSE(t.inside("via")) << "through a link that leaves";
}

}  // namespace
