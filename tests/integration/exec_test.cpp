// `ads exec` on a real LXD container through a real `ads serve`: a command
// runs in the lab's machine through LXD's exec (the agent runs none from a
// request), its output and exit code come back, a timeout kills it, only the
// owner and admins may, every use is in the audit log with its command and
// in the deployment's log, and a lab that is not running refuses.
#include <gtest/gtest.h>

#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using namespace ads::test;

class ExecTest : public LxdServerTest {};

TEST_F(ExecTest, ACommandRunsInTheLabsMachineForItsOwnerAndAdminsOnlyAndIsAudited) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s, kSource + "/examples/labs/static-site", "exec-lab");
  json d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  const std::string path = "/api/v1/deployments/" + id + "/exec";

  // output, exit code, no shell unless asked for
  json body = {{"command", {"cat", "/srv/www/deployed.txt"}}};
  long status = 0;
  json r = s.call("POST", path, &body, &status);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["exit_code"], 0);
  EXPECT_EQ(r["stdout"].get<std::string>().rfind("deployed 20", 0), 0u) << r.dump();
  body = {{"command", {"sh", "-c", "echo out; echo err >&2; exit 3"}}};
  r = s.call("POST", path, &body, &status);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["exit_code"], 3);
  EXPECT_EQ(r["stdout"], "out\n");
  EXPECT_EQ(r["stderr"], "err\n");
  EXPECT_EQ(r["timed_out"], false);
  body = {{"command", {"echo", "$(id)", ";", "reboot"}}};  // one argument list: nothing is interpreted
  r = s.call("POST", path, &body, &status);
  EXPECT_EQ(r["stdout"], "$(id) ; reboot\n") << r.dump();

  // a command past its timeout is killed
  body = {{"command", {"sleep", "60"}}, {"timeout_s", 1}};
  r = s.call("POST", path, &body, &status);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["exit_code"], 124);
  EXPECT_EQ(r["timed_out"], true);

  // another deployer may not, even with the deployment's id
  json user = {{"name", "dan"}, {"role", "deployer"}};
  s.call("POST", "/api/v1/users", &user);
  json tok_req = {{"name", "t"}, {"user", "dan"}};
  std::string dan = s.call("POST", "/api/v1/tokens", &tok_req).value("secret", "");
  ASSERT_FALSE(dan.empty());
  std::string admin = s.token();
  s.use_token(dan);
  body = {{"command", {"id"}}};
  r = s.call("POST", path, &body, &status);
  EXPECT_EQ(status, 403) << r.dump();
  s.use_token(admin);

  // the CLI: output and the command's own exit code
  std::string out;
  int rc =
      run({ADS_CLI_BIN, "--server", s.base(), "--token", admin, "exec", id, "--", "sh", "-c", "echo hi; exit 5"}, &out);
  EXPECT_EQ(rc, 5) << out;
  EXPECT_NE(out.find("hi"), std::string::npos) << out;

  // audited with the command (and the refusal), and in the deployment's log
  json audit = s.call("GET", "/api/v1/audit?limit=10000")["entries"];
  int execs = 0, refused = 0;
  for (auto& e : audit) {
    if (e.value("action", "") != "POST " + path) continue;
    ++execs;
    if (e.value("status", json()) == 403) ++refused;
    if (e.value("detail", "") == "exec sh -c echo out; echo err >&2; exit 3") {
      EXPECT_EQ(e["user"], "admin");
    }
  }
  EXPECT_EQ(execs, 6) << audit.dump();
  EXPECT_EQ(refused, 1) << audit.dump();
  bool found = false;
  for (auto& e : audit) found = found || e.value("detail", "") == "exec sh -c echo out; echo err >&2; exit 3";
  EXPECT_TRUE(found) << audit.dump();
  std::string log = s.log_text(id);
  EXPECT_NE(log.find("exec by admin: cat /srv/www/deployed.txt"), std::string::npos) << log;
  EXPECT_NE(log.find("exec by admin ended with exit code 3"), std::string::npos) << log;

  // a stopped lab refuses
  status = 0;
  json job = s.call("POST", "/api/v1/deployments/" + id + "/stop", nullptr, &status);
  ASSERT_EQ(status, 202);
  ASSERT_EQ(s.wait_job(job["id"])["state"], "succeeded");
  body = {{"command", {"true"}}};
  r = s.call("POST", path, &body, &status);
  EXPECT_EQ(status, 409) << r.dump();
  EXPECT_NE(r["error"].value("message", "").find("exec needs a running lab"), std::string::npos) << r.dump();
}

}  // namespace
