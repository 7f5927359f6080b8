// `ads shell` on a real LXD container through a real `ads serve`, typed at a
// real pseudo-terminal: the machine's shell runs on a terminal of the
// window's size and follows its changes, its exit code is the CLI's, only
// the owner and admins may, every use is audited and logged, a client that
// goes away hangs the shell up (nothing it started is left running), and
// what cannot be opened says why.
#include <gtest/gtest.h>

#include <fstream>

#include "http/tls.h"
#include "support/ads_server.h"
#include "support/build_paths.h"
#include "support/pty.h"

namespace {
using namespace ads::test;
using namespace std::chrono_literals;

class ShellTest : public LxdServerTest {
 protected:
  std::vector<std::string> cli(Server& s, const std::string& token, const std::string& id) {
    return {ADS_CLI_BIN, "--server", s.base(), "--token", token, "shell", id};
  }
  // The command lines of the machine's processes, through LXD (not ADS).
  std::string processes(const std::string& machine) {
    auto r = lxd()->exec(machine, {"sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"}, 30,
                         1 << 20);
    return r ? r->out : "(exec failed: " + r.error().message + ")";
  }
};

TEST_F(ShellTest, TheMachinesShellRunsOnTheTerminalFollowsItsSizeAndGivesItsExitCode) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s, kSource + "/examples/labs/static-site", "shell-lab");
  json d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);

  PtyChild t(cli(s, s.token(), id), 31, 101);
  ASSERT_TRUE(t.started());
  // typed as a person would: the sum is worked out in the machine
  t.type("stty size; echo sum-$((6*7)); cat /srv/www/deployed.txt\r");
  EXPECT_TRUE(t.wait_for("31 101")) << t.output();
  EXPECT_TRUE(t.wait_for("sum-42")) << t.output();
  EXPECT_TRUE(t.wait_for("deployed 20")) << t.output();
  size_t mark = t.output().size();
  t.resize(40, 120);
  // the new size reaches the machine's terminal (asked until it has: the
  // window change and the next line travel separately)
  bool resized = false;
  for (int i = 0; i < 20 && !resized; ++i) {
    t.type("stty size\r");
    resized = t.wait_for("40 120", 1s, mark);
  }
  EXPECT_TRUE(resized) << t.output().substr(mark);
  t.type("exit 7\r");
  EXPECT_EQ(t.wait_exit(), 7) << t.output();

  // the end is logged once the server has closed its side, which may be just after the CLI exits
  std::string log;
  for (int i = 0; i < 100 && log.find("shell by admin ended with exit code 7") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    log = s.log_text(id);
  }
  EXPECT_NE(log.find("shell opened by admin"), std::string::npos) << log;
  EXPECT_NE(log.find("shell by admin ended with exit code 7"), std::string::npos) << log;
  json audit = s.call("GET", "/api/v1/audit?limit=10000")["entries"];
  bool audited = false;
  for (auto& e : audit)
    audited = audited || (e.value("action", "") == "GET /api/v1/deployments/" + id + "/shell" &&
                          e.value("detail", "") == "shell" && e.value("status", 0) == 101 && e["user"] == "admin");
  EXPECT_TRUE(audited) << audit.dump();
}

// Off loopback the server speaks HTTPS: the CLI checks its certificate
// (--cacert) before anything is sent, and a certificate it was not told to
// trust stops it.
TEST_F(ShellTest, OverHttpsTheServersCertificateIsCheckedFirst) {
  const std::string config = (tmp.path / "tls.json").string();
  {
    std::ofstream out(config);
    out << R"({"tls": {"mode": "on"}})";
  }
  Server s((tmp.path / "data").string(), ADS_AGENT_BIN, {}, "2", config);
  ASSERT_EQ(s.base().rfind("https://", 0), 0u) << s.base();
  std::string id = deploy(s, kSource + "/examples/labs/static-site", "shell-tls");
  json d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  {
    PtyChild t({ADS_CLI_BIN, "--server", s.base(), "--cacert", s.ca_file, "--token", s.token(), "shell", id}, 24, 80);
    t.type("echo tls-$((2+2)); exit 4\r");
    EXPECT_TRUE(t.wait_for("tls-4")) << t.output();
    EXPECT_EQ(t.wait_exit(), 4) << t.output();
  }
  // another certificate than the server's: nothing is opened
  auto other = ads::http::tls::make_self_signed({"127.0.0.1", "localhost"});
  ASSERT_TRUE(other.ok());
  const std::string other_file = (tmp.path / "other.crt").string();
  {
    std::ofstream out(other_file);
    out << other->cert_pem;
  }
  {
    PtyChild t({ADS_CLI_BIN, "--server", s.base(), "--cacert", other_file, "--token", s.token(), "shell", id}, 24, 80);
    EXPECT_EQ(t.wait_exit(), 3) << t.output();
    EXPECT_NE(t.output().find("failed the TLS check"), std::string::npos) << t.output();
  }
  std::string log = s.log_text(id);
  EXPECT_EQ(log.find("shell opened by admin"), log.rfind("shell opened by admin")) << log;  // once
}

TEST_F(ShellTest, AClientThatGoesAwayHangsTheShellUpAndWhatItStartedEnds) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s, kSource + "/examples/labs/static-site", "shell-cut");
  json d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  const std::string machine = d.value("machine", "");
  {
    PtyChild t(cli(s, s.token(), id), 24, 80);
    t.type("sleep 4242 & echo started-$((40+2)); wait\r");
    ASSERT_TRUE(t.wait_for("started-42")) << t.output();
    EXPECT_NE(processes(machine).find("sleep 4242"), std::string::npos);
    t.kill(SIGKILL);  // no close, no goodbye: as a lost connection
    EXPECT_EQ(t.wait_exit(), 128 + SIGKILL);
  }
  std::string log;
  for (int i = 0; i < 100 && log.find("shell by admin was closed before its program ended") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    log = s.log_text(id);
  }
  EXPECT_NE(log.find("shell by admin was closed before its program ended"), std::string::npos) << log;
  std::string ps;
  for (int i = 0; i < 50; ++i) {
    ps = processes(machine);
    if (ps.find("sleep 4242") == std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(ps.find("sleep 4242"), std::string::npos) << ps;
  EXPECT_NE(ps.find("httpd"), std::string::npos) << ps;  // the lab itself goes on
}

TEST_F(ShellTest, WhoMayNotOrWhatCannotBeOpenedSaysWhyAndOpensNothing) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s, kSource + "/examples/labs/static-site", "shell-refused");
  json d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);

  // another deployer
  json user = {{"name", "dan"}, {"role", "deployer"}};
  s.call("POST", "/api/v1/users", &user);
  json tok_req = {{"name", "t"}, {"user", "dan"}};
  std::string dan = s.call("POST", "/api/v1/tokens", &tok_req).value("secret", "");
  ASSERT_FALSE(dan.empty());
  {
    PtyChild t(cli(s, dan, id), 24, 80);
    EXPECT_EQ(t.wait_exit(), 2) << t.output();
    EXPECT_NE(t.output().find("dan may not open a shell in deployment " + id), std::string::npos) << t.output();
  }
  // no such deployment; no token
  {
    PtyChild t(cli(s, s.token(), "01nosuchdeployment0000000000"), 24, 80);
    EXPECT_EQ(t.wait_exit(), 2) << t.output();
  }
  {
    // no token at all (not one from the environment or this machine's admin.token either)
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "ADS_TOKEN", "ADS_TOKEN_FILE=/dev/null"};
    for (auto& a : cli(s, "", id)) argv.push_back(a);
    PtyChild t(argv, 24, 80);
    EXPECT_EQ(t.wait_exit(), 2) << t.output();
    EXPECT_NE(t.output().find("authentication required"), std::string::npos) << t.output();
  }
  // input that is not a terminal
  std::string out;
  int rc = run(cli(s, s.token(), id), &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("ads shell needs a terminal"), std::string::npos) << out;
  // a plain GET of the address
  long status = 0;
  json r = s.call("GET", "/api/v1/deployments/" + id + "/shell", nullptr, &status);
  EXPECT_EQ(status, 426) << r.dump();
  // a stopped lab
  json job = op(s, id, "stop");
  ASSERT_EQ(job.value("state", ""), "succeeded") << job.dump();
  {
    PtyChild t(cli(s, s.token(), id), 24, 80);
    EXPECT_EQ(t.wait_exit(), 2) << t.output();
    EXPECT_NE(t.output().find("a shell needs a running lab"), std::string::npos) << t.output();
  }
  std::string log = s.log_text(id);
  EXPECT_EQ(log.find("shell opened"), std::string::npos) << log;
  // each refusal is in the audit log
  json audit = s.call("GET", "/api/v1/audit?limit=10000")["entries"];
  int refused = 0;
  for (auto& e : audit)
    if (e.value("action", "") == "GET /api/v1/deployments/" + id + "/shell" && e.value("status", 0) >= 400) ++refused;
  EXPECT_GE(refused, 3) << audit.dump();
}

}  // namespace
