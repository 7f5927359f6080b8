// Deploy on git push on real LXD (issue 17.3, api/git_hooks.h): a real git
// server on loopback (`git daemon`, started by the test and killed at its
// end), a deployment that tracks its branch `main`, a real `git push` of
// version 2, then a delivery built exactly as GitHub sends a push (headers
// X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256, Content-Type
// application/json; the push payload) -> one release -> the stable URL
// (through the proxy, HAProxy by default) serves version 2. A badly signed delivery before it
// changes nothing, and its replays after (same id, or same body under a new
// id) are refused; all are audited.
// Then polling: the branch polled every 2 s, a push of version 3 without a
// delivery is found and released. One deploy and two releases: under a minute.
#include "core/git_push.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <thread>

#include "router/caddy_process.h"
#include "router/haproxy_process.h"
#include "support/ads_server.h"
#include "support/build_paths.h"
#include "support/ports.h"

namespace {
using namespace ads::test;

// Removes the release machines a test made (ads-ID-rN), even when it fails.
struct ReleaseMachinesGuard {
  std::set<std::string> ids;
  ~ReleaseMachinesGuard() {
    auto p = lxd();
    for (auto& id : ids)
      for (int n = 1; n <= 3; ++n) (void)p->destroy("ads-" + id + "-r" + std::to_string(n));
  }
};

struct Reply {
  long status = 0;
  json body;
};

class GitPushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ads::LxdProvider p({});
    if (!p.ping()) GTEST_FAIL() << "LXD is not running: run scripts/lxd-host.sh first";
    data = (tmp.path / "data").string();
    fs::path src = tmp.path / "src";
    fs::copy(kSource + "/examples/labs/static-site", src, fs::copy_options::recursive);
    write(src / "site/index.html", "ADS example lab, version 1\n");
    work = make_repo(tmp, src.string(), "work");
    fs::create_directories(tmp.path / "srv");
    std::string out;
    ASSERT_EQ(run({"git", "clone", "-q", "--bare", work, (tmp.path / "srv/lab.git").string()}, &out), 0) << out;
    git_port = ads::test::free_loopback_port();
    daemon = std::make_unique<Child>(
        std::vector<std::string>{"git", "daemon", "--export-all", "--enable=receive-pack", "--reuseaddr",
                                 "--base-path=" + (tmp.path / "srv").string(), "--listen=127.0.0.1",
                                 "--port=" + std::to_string(git_port), (tmp.path / "srv").string()});
    remote = "git://127.0.0.1:" + std::to_string(git_port) + "/lab.git";
    bool up = false;
    for (int i = 0; i < 50 && !up; ++i) {  // at most 10 s
      up = run({"git", "ls-remote", remote, "main"}, &out) == 0;
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_TRUE(up) << "git daemon did not answer on " << remote;
  }
  void TearDown() override {
    (void)ads::router::stop_haproxy(data + "/proxy");
    (void)ads::router::stop_proxy(data + "/proxy");
    daemon.reset();  // git daemon killed
  }
  static void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::trunc) << text; }
  std::string git(std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "git", "-C", work, "-c", "user.name=ads-test", "-c", "user.email=ads@test.invalid"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    EXPECT_EQ(run(argv, &out), 0) << out;
    return out;
  }
  // A delivery as GitHub makes it (docs.github.com: "Webhook events and
  // payloads" push; "Validating webhook deliveries").
  Reply deliver(Server& s, const std::string& id, const std::string& body, const std::string& signature,
                const std::string& delivery) {
    ads::http::ClientRequest r;
    r.method = "POST";
    r.url = s.base() + "/api/v1/hooks/git/" + id;
    r.body = body;
    r.headers = {{"Content-Type", "application/json"}, {"User-Agent", "GitHub-Hookshot/044aadd"},
                 {"X-GitHub-Event", "push"},           {"X-GitHub-Delivery", delivery},
                 {"X-GitHub-Hook-ID", "292430182"},    {"X-Hub-Signature-256", signature}};
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok());
    if (!res) return {};
    return {res->status, json::parse(res->body, nullptr, false)};
  }
  std::string push_payload(const std::string& before, const std::string& after) {
    return json{{"ref", "refs/heads/main"},
                {"before", before},
                {"after", after},
                {"created", false},
                {"deleted", false},
                {"forced", false},
                {"base_ref", nullptr},
                {"compare", "https://github.com/o/lab/compare/" + before.substr(0, 12) + "..." + after.substr(0, 12)},
                {"commits", json::array({{{"id", after}, {"message", "v2"}, {"distinct", true}}})},
                {"head_commit", {{"id", after}, {"message", "v2"}}},
                {"repository", {{"name", "lab"}, {"full_name", "o/lab"}, {"default_branch", "main"}}},
                {"pusher", {{"name", "ads-test"}, {"email", "ads@test.invalid"}}},
                {"sender", {{"login", "ads-test"}}}}
        .dump();
  }
  static std::string get(const std::string& url) { return http_get(url); }

  TempDir tmp;
  std::string data, work, remote;
  int git_port = 0;
  std::unique_ptr<Child> daemon;
  ContainerGuard guard;
  ReleaseMachinesGuard releases_guard;
};

TEST_F(GitPushTest, ASignedPushDeliveryReleasesThePushedCommitAndABadOneChangesNothing) {
  int port = ads::test::free_loopback_port();
  std::string cfg = (tmp.path / "ads.json").string();
  // the git server is on loopback, refused by default: allowed here, as an operator would
  std::ofstream(cfg) << json{
      {"drain_ms", 100},
      {"git_min_poll_s", 1},  // the poll below, every 2 s
      {"keep_releases", 1},
      {"sources", {{"allow_addresses", {"127.0.0.0/8"}}}},
      {"proxy",
       {{"listen", "127.0.0.1:80"},
        {"ports", std::to_string(port) + "-" + std::to_string(port)},
        {"public_host",
         "127.0.0.1"}}}}.dump();
  Server s(data, ADS_AGENT_BIN, {}, "2", cfg);
  ASSERT_FALSE(s.base().empty());
  json req = {{"source", remote}, {"track", "main"}, {"name", "gitpush"}};
  long status = 0;
  json d = s.call("POST", "/api/v1/deployments", &req, &status);
  ASSERT_EQ(status, 202) << d.dump();
  std::string id = d["id"];
  guard.ids.insert(id);
  releases_guard.ids.insert(id);
  std::string secret = d["track"].value("secret", "");
  ASSERT_EQ(secret.size(), 64u) << d.dump();
  EXPECT_EQ(d["track"].value("hook_path", ""), "/api/v1/hooks/git/" + id);
  d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  const std::string stable = "http://127.0.0.1:" + std::to_string(port) + "/";
  EXPECT_EQ(get(stable), "ADS example lab, version 1\n");
  std::string v1 = d["commit"];
  EXPECT_EQ(d["track"].value("branch", ""), "main");

  // a real push of version 2 to the tracked branch
  write(fs::path(work) / "site/index.html", "ADS example lab, version 2\n");
  git({"commit", "-q", "-am", "v2"});
  std::string v2 = git({"rev-parse", "HEAD"}).substr(0, 40);
  git({"push", "-q", remote, "HEAD:main"});
  std::string payload = push_payload(v1, v2);

  // badly signed: refused, nothing starts
  Reply bad =
      deliver(s, id, payload, ads::hub_signature("not the secret", payload), "aaaaaaaa-0000-11ef-8000-000000000001");
  EXPECT_EQ(bad.status, 401) << bad.body.dump();
  json jobs = s.call("GET", "/api/v1/deployments/" + id + "/jobs")["jobs"];
  ASSERT_EQ(jobs.size(), 1u) << jobs.dump();  // the deploy only

  // signed with the deployment's secret: a release of v2
  const std::string delivery = "bbbbbbbb-0000-11ef-8000-000000000002";
  Reply good = deliver(s, id, payload, ads::hub_signature(secret, payload), delivery);
  ASSERT_EQ(good.status, 202) << good.body.dump();
  json job = s.wait_job(good.body.value("job", ""));
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  d = s.call("GET", "/api/v1/deployments/" + id);
  EXPECT_EQ(d["commit"], v2);
  EXPECT_EQ(get(stable), "ADS example lab, version 2\n");
  json rs = s.call("GET", "/api/v1/deployments/" + id + "/releases")["releases"];
  ASSERT_EQ(rs.size(), 2u) << rs.dump();
  EXPECT_EQ(rs[1]["state"], "serving");
  EXPECT_EQ(rs[1]["by"], "git-push");
  EXPECT_EQ(rs[1]["commit"], v2);

  // the same delivery again: a replay, refused
  Reply replay = deliver(s, id, payload, ads::hub_signature(secret, payload), delivery);
  EXPECT_EQ(replay.status, 409) << replay.body.dump();
  // and the same body under a new id (the id is not signed): refused too
  Reply renamed = deliver(s, id, payload, ads::hub_signature(secret, payload), "cccccccc-0000-11ef-8000-000000000003");
  EXPECT_EQ(renamed.status, 409) << renamed.body.dump();
  EXPECT_EQ(s.call("GET", "/api/v1/deployments/" + id + "/jobs")["jobs"].size(), 2u);

  // all three in the audit, with their answers
  std::vector<int> statuses;
  json audit = s.call("GET", "/api/v1/audit?limit=1000");
  for (auto& e : audit["entries"])
    if (e.value("action", "").rfind("POST /api/v1/hooks/git/", 0) == 0) statuses.push_back(e.value("status", 0));
  EXPECT_EQ(statuses, (std::vector<int>{401, 202, 409, 409}));

  // polling, for hosts that cannot send webhooks: a push of version 3 and no
  // delivery; the git watch finds the new commit and releases it
  long st = 0;
  json poll = {{"branch", "main"}, {"poll_s", 2}};
  json t = s.call("PUT", "/api/v1/deployments/" + id + "/track", &poll, &st);
  ASSERT_EQ(st, 200) << t.dump();
  EXPECT_FALSE(t.contains("secret"));  // kept, not shown again
  write(fs::path(work) / "site/index.html", "ADS example lab, version 3\n");
  git({"commit", "-q", "-am", "v3"});
  std::string v3 = git({"rev-parse", "HEAD"}).substr(0, 40);
  git({"push", "-q", remote, "HEAD:main"});
  for (int i = 0; i < 240 && d["commit"] != v3; ++i) {  // at most 2 minutes
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    d = s.call("GET", "/api/v1/deployments/" + id);
  }
  ASSERT_EQ(d["commit"], v3) << d.dump() << s.log_text(id);
  EXPECT_EQ(get(stable), "ADS example lab, version 3\n");
  rs = s.call("GET", "/api/v1/deployments/" + id + "/releases")["releases"];
  ASSERT_EQ(rs.size(), 3u) << rs.dump();
  EXPECT_EQ(rs[2]["by"], "git-poll");
  EXPECT_EQ(rs[2]["commit"], v3);
}

}  // namespace
