// Deploy on git push through the API (api/git_hooks.h): tracking a branch
// (the secret shown once), the hook delivery that starts a release of the
// pushed commit, coalescing while a release is under way, and every refusal
// (unsigned, wrong signature, signature of another body, replay, wrong
// branch, deleted branch, bad JSON, unknown id, untracked deployment,
// oversized body), each of them audited with its reason. The engine's
// workers are not started: a release job stays queued, which is what a
// release under way looks like to the hook. The git watch's pass is run by
// hand (pending commits, the poll of a real local repository).
#include <gtest/gtest.h>

#include "api/git_hooks.h"
#include "api_fixture.h"
#include "core/git_push.h"
#include "support/process.h"

namespace {
using ads::test::ApiTest;
using nlohmann::json;

const std::string kD = "01dddddddddddddddddddddddd";
const std::string kA(40, 'a'), kB(40, 'b'), kC(40, 'c');

class GitHookTest : public ApiTest {
 protected:
  ads::EngineOptions engine_options() override {
    ads::EngineOptions o;
    o.min_poll_s = 1;  // the poll test; the API refuses less than this
    return o;
  }
  void SetUp() override {
    ApiTest::SetUp();
    ads::Deployment d;
    d.id = kD;
    d.name = "web";
    d.source = "/labs/web";
    d.ref = "main";
    d.commit = kA;
    d.provider = "lxd";
    d.owner = "admin";
    d.state = ads::State::kRunning;
    d.created_ms = d.updated_ms = 1;
    ASSERT_TRUE(store->create(d).ok());
  }
  std::string track(const std::string& branch = "main") {
    auto r = call("PUT", "/api/v1/deployments/" + kD + "/track", json{{"branch", branch}}.dump());
    EXPECT_EQ(r.status, 200) << r.body.dump();
    return r.body.value("secret", "");
  }
  static std::string push_body(const std::string& branch, const std::string& after, const std::string& before = kA) {
    // the shape of GitHub's push event (docs.github.com, "Webhook events and payloads", push)
    return json{{"ref", "refs/heads/" + branch},
                {"before", before},
                {"after", after},
                {"created", false},
                {"deleted", after == std::string(40, '0')},
                {"forced", false},
                {"compare", "https://example.invalid/compare"},
                {"commits", json::array()},
                {"head_commit", nullptr},
                {"repository", {{"full_name", "o/web"}, {"default_branch", "main"}}},
                {"pusher", {{"name", "alice"}}}}
        .dump();
  }
  Reply deliver(const std::string& id, const std::string& body, const std::string& signature,
                const std::string& delivery, const std::string& event = "push",
                const std::string& content_type = "application/json") {
    ads::http::ClientRequest r;
    r.method = "POST";
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/api/v1/hooks/git/" + id;
    r.body = body;
    r.headers.push_back({"Content-Type", content_type});
    r.headers.push_back({"User-Agent", "GitHub-Hookshot/test"});
    if (!event.empty()) r.headers.push_back({"X-GitHub-Event", event});
    if (!delivery.empty()) r.headers.push_back({"X-GitHub-Delivery", delivery});
    if (!signature.empty()) r.headers.push_back({"X-Hub-Signature-256", signature});
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok());
    if (!res) return {0, json(), {}};
    return {res->status, json::parse(res->body, nullptr, false), res->headers};
  }
  Reply signed_push(const std::string& secret, const std::string& branch, const std::string& after,
                    const std::string& delivery, const std::string& before = kA) {
    std::string body = push_body(branch, after, before);
    return deliver(kD, body, ads::hub_signature(secret, body), delivery);
  }
  // The audit entries of hook deliveries, oldest first.
  std::vector<ads::AuditEntry> hook_audit() {
    std::vector<ads::AuditEntry> out;
    auto all = store->audit(0, 10000);
    if (!all) return out;
    for (auto& e : *all)
      if (e.action.rfind("POST /api/v1/hooks/git/", 0) == 0) out.push_back(e);
    return out;
  }
  std::vector<ads::Job> unfinished_jobs() {
    std::vector<ads::Job> out;
    auto all = store->jobs_of(kD);
    if (!all) return out;
    for (auto& j : *all)
      if (j.state == "queued" || j.state == "running") out.push_back(j);
    return out;
  }
};

TEST_F(GitHookTest, TrackingShowsTheSecretOnceAndTheDeploymentShowsTheBranch) {
  auto r = call("PUT", "/api/v1/deployments/" + kD + "/track", R"({"branch":"main"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  std::string secret = r.body.value("secret", "");
  EXPECT_EQ(secret.size(), 64u);  // 32 random bytes
  EXPECT_EQ(r.body.value("hook_path", ""), "/api/v1/hooks/git/" + kD);
  auto shown = call("GET", "/api/v1/deployments/" + kD);
  EXPECT_EQ(shown.body["track"].value("branch", ""), "main");
  EXPECT_FALSE(shown.body["track"].contains("secret"));
  EXPECT_EQ(shown.body.dump().find(secret), std::string::npos);
  // changing the poll interval keeps the secret (not shown again)
  auto again = call("PUT", "/api/v1/deployments/" + kD + "/track", R"({"branch":"main","poll_s":60})");
  ASSERT_EQ(again.status, 200);
  EXPECT_FALSE(again.body.contains("secret"));
  EXPECT_EQ(store->get_track(kD)->secret, secret);
  // a new secret only when asked; the old one stops working
  auto renewed = call("PUT", "/api/v1/deployments/" + kD + "/track", R"({"branch":"main","new_secret":true})");
  ASSERT_EQ(renewed.status, 200);
  std::string secret2 = renewed.body.value("secret", "");
  EXPECT_EQ(secret2.size(), 64u);
  EXPECT_NE(secret2, secret);
  expect_error(signed_push(secret, "main", kB, "d-old"), 401);
  EXPECT_EQ(signed_push(secret2, "main", kB, "d-new").status, 202);
  // the secret never reaches the audit
  auto entries = store->audit(0, 10000);
  ASSERT_TRUE(entries.ok());
  for (auto& e : *entries) {
    EXPECT_EQ(e.detail.find(secret), std::string::npos);
    EXPECT_EQ(e.detail.find(secret2), std::string::npos);
  }
  // untrack: the hook answers as for a deployment that never tracked
  auto un = call("DELETE", "/api/v1/deployments/" + kD + "/track");
  EXPECT_EQ(un.status, 200);
  expect_error(call("DELETE", "/api/v1/deployments/" + kD + "/track"), 404);
  expect_error(signed_push(secret2, "main", kC, "d-after"), 404);
}

TEST_F(GitHookTest, BadTrackRequestsAreRefusedNamingTheField) {
  expect_error(call("PUT", "/api/v1/deployments/" + kD + "/track", R"({})"), 400, "branch");
  expect_error(call("PUT", "/api/v1/deployments/" + kD + "/track", R"({"branch":"refs/heads/main"})"), 400, "branch");
  expect_error(call("PUT", "/api/v1/deployments/" + kD + "/track", R"({"branch":"a b"})"), 400, "branch");
  expect_error(call("PUT", "/api/v1/deployments/" + kD + "/track", R"({"branch":"main","poll_s":"60"})"), 400,
               "poll_s");
  expect_error(call("PUT", "/api/v1/deployments/" + kD + "/track", R"({"branch":"main","poll_s":-5})"), 400, "poll_s");
  expect_error(call("PUT", "/api/v1/deployments/" + kD + "/track", R"({"branch":"main","extra":1})"), 400, "extra");
  expect_error(call("PUT", "/api/v1/deployments/01zzzzzzzzzzzzzzzzzzzzzzzz/track", R"({"branch":"main"})"), 404);
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/labs/x","poll_s":60})"), 400, "poll_s");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/labs/x","track":"a..b"})"), 400, "branch");
  EXPECT_EQ(count(), 1u);  // nothing made
  EXPECT_EQ(store->get_track(kD).error().code, "not_found");
}

TEST_F(GitHookTest, ASignedPushStartsAReleaseOfThePushedCommit) {
  std::string secret = track();
  auto r = signed_push(secret, "main", kB, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
  ASSERT_EQ(r.status, 202) << r.body.dump();
  auto jobs = unfinished_jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].kind, "release");
  EXPECT_EQ(r.body.value("job", ""), jobs[0].id);
  auto params = json::parse(jobs[0].params_json);
  EXPECT_EQ(params.value("ref", ""), kB);
  EXPECT_EQ(params.value("by", ""), "git-push");
  auto audit = hook_audit();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].status, 202);
  EXPECT_EQ(audit[0].user, "git-hook");
  EXPECT_NE(audit[0].detail.find(kB), std::string::npos) << audit[0].detail;
}

TEST_F(GitHookTest, PushesDuringAReleaseAreCoalescedIntoOneReleaseOfTheNewest) {
  std::string secret = track();
  ASSERT_EQ(signed_push(secret, "main", kB, "d-1").status, 202);
  auto c = signed_push(secret, "main", kC, "d-2");
  ASSERT_EQ(c.status, 202) << c.body.dump();
  EXPECT_EQ(c.body.value("pending", ""), kC);
  std::string kE(40, 'e');
  ASSERT_EQ(signed_push(secret, "main", kE, "d-3").status, 202);
  EXPECT_EQ(unfinished_jobs().size(), 1u);  // still only the first release
  EXPECT_EQ(store->get_track(kD)->pending_commit, kE);
  // the watch does nothing while the release is under way
  engine->git_watch_pass();
  EXPECT_EQ(unfinished_jobs().size(), 1u);
  // the release ends (as the engine would leave it: B serving)
  auto job = unfinished_jobs()[0];
  job.state = "succeeded";
  ASSERT_TRUE(store->update_job(job).ok());
  auto d = *store->get(kD);
  d.commit = kB;
  ASSERT_TRUE(store->update(d).ok());
  engine->git_watch_pass();
  auto jobs = unfinished_jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_NE(jobs[0].id, job.id);
  EXPECT_EQ(json::parse(jobs[0].params_json).value("ref", ""), kE);  // the newest, once
  EXPECT_EQ(store->get_track(kD)->pending_commit, "");
  engine->git_watch_pass();
  EXPECT_EQ(unfinished_jobs().size(), 1u);
}

TEST_F(GitHookTest, APendingCommitThatIsServingAlreadyStartsNothing) {
  std::string secret = track();
  ASSERT_EQ(signed_push(secret, "main", kB, "d-1").status, 202);
  ASSERT_EQ(signed_push(secret, "main", kB, "d-2", kC).status, 202);  // the same commit again (a force-push back)
  auto job = unfinished_jobs()[0];
  job.state = "succeeded";
  ASSERT_TRUE(store->update_job(job).ok());
  auto d = *store->get(kD);
  d.commit = kB;
  ASSERT_TRUE(store->update(d).ok());
  engine->git_watch_pass();
  EXPECT_TRUE(unfinished_jobs().empty());
  EXPECT_EQ(store->get_track(kD)->pending_commit, "");
  // and a push of the serving commit is ignored
  auto same = signed_push(secret, "main", kB, "d-3", std::string(40, 'e'));
  EXPECT_EQ(same.status, 200);
  EXPECT_TRUE(same.body.contains("ignored"));
}

TEST_F(GitHookTest, EveryRefusalIsAnsweredAndAudited) {
  std::string secret = track();
  std::string body = push_body("main", kB);
  struct Case {
    std::string what;
    Reply reply;
    long status;
  };
  std::vector<Case> cases;
  cases.push_back({"unsigned", deliver(kD, body, "", "r-1"), 401});
  cases.push_back({"wrong signature", deliver(kD, body, ads::hub_signature("not the secret", body), "r-2"), 401});
  cases.push_back(
      {"signature of another body", deliver(kD, body, ads::hub_signature(secret, push_body("main", kC)), "r-3"), 401});
  cases.push_back(
      {"sha1 signature only", deliver(kD, body, "sha1=0123456789abcdef0123456789abcdef01234567", "r-4"), 401});
  cases.push_back(
      {"unknown id", deliver("01zzzzzzzzzzzzzzzzzzzzzzzz", body, ads::hub_signature(secret, body), "r-5"), 404});
  cases.push_back({"not an id", deliver("not-an-id", body, ads::hub_signature(secret, body), "r-6"), 404});
  std::string bad_json = "{\"ref\": \"refs/heads/main\", \"after\": ";
  cases.push_back({"bad JSON", deliver(kD, bad_json, ads::hub_signature(secret, bad_json), "r-7"), 400});
  std::string no_after = R"({"ref":"refs/heads/main"})";
  cases.push_back({"no commit", deliver(kD, no_after, ads::hub_signature(secret, no_after), "r-8"), 400});
  cases.push_back({"no delivery id", deliver(kD, body, ads::hub_signature(secret, body), ""), 400});
  cases.push_back({"bad delivery id", deliver(kD, body, ads::hub_signature(secret, body), "a b"), 400});
  cases.push_back(
      {"form-encoded",
       deliver(kD, body, ads::hub_signature(secret, body), "r-9", "push", "application/x-www-form-urlencoded"), 415});
  std::string big = push_body("main", kB) + std::string(5000, ' ');  // the test server takes 4096 bytes
  cases.push_back({"oversized", deliver(kD, big, ads::hub_signature(secret, big), "r-10"), 413});
  for (auto& c : cases) {
    EXPECT_EQ(c.reply.status, c.status) << c.what << ": " << c.reply.body.dump();
    ASSERT_TRUE(c.reply.body.contains("error")) << c.what << ": " << c.reply.body.dump();
  }
  // ignored pushes: 200, nothing started
  auto dev = signed_push(secret, "dev", kB, "i-1");
  EXPECT_EQ(dev.status, 200);
  EXPECT_NE(dev.body.value("ignored", "").find("dev"), std::string::npos);
  auto deleted = signed_push(secret, "main", std::string(40, '0'), "i-2");
  EXPECT_EQ(deleted.status, 200);
  EXPECT_NE(deleted.body.value("ignored", "").find("deleted"), std::string::npos);
  std::string tag_body = json{{"ref", "refs/tags/v2"}, {"after", kB}}.dump();
  EXPECT_EQ(deliver(kD, tag_body, ads::hub_signature(secret, tag_body), "i-3").status, 200);
  auto ping = deliver(kD, "{\"zen\":\"x\"}", ads::hub_signature(secret, "{\"zen\":\"x\"}"), "i-4", "ping");
  EXPECT_EQ(ping.status, 200);
  EXPECT_TRUE(unfinished_jobs().empty());
  // a good one, then its replay
  ASSERT_EQ(signed_push(secret, "main", kB, "g-1").status, 202);
  auto replay = signed_push(secret, "main", kB, "g-1");
  expect_error(replay, 409);
  // the same signed body under a new delivery id (the id is outside the signature)
  auto renamed = signed_push(secret, "main", kB, "g-2");
  expect_error(renamed, 409);
  EXPECT_EQ(unfinished_jobs().size(), 1u);
  // each one audited with its status and reason
  auto audit = hook_audit();
  std::string listing;
  for (auto& e : audit) listing += std::to_string(e.status) + " " + e.detail + "\n";
  ASSERT_EQ(audit.size(), cases.size() + 4 + 3) << listing;
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(audit[i].status, cases[i].status) << cases[i].what;
    EXPECT_FALSE(audit[i].detail.empty()) << cases[i].what;
    EXPECT_EQ(audit[i].remote, "127.0.0.1");
  }
  EXPECT_NE(audit[0].detail.find("no signature"), std::string::npos) << audit[0].detail;
  EXPECT_NE(audit[1].detail.find("bad signature"), std::string::npos) << audit[1].detail;
  EXPECT_NE(audit[2].detail.find("bad signature"), std::string::npos) << audit[2].detail;
  EXPECT_NE(audit[11].detail.find("over the limit"), std::string::npos) << audit[11].detail;
  EXPECT_NE(audit[cases.size()].detail.find("ignored"), std::string::npos);
  EXPECT_NE(audit[audit.size() - 2].detail.find("replay of delivery g-1"), std::string::npos) << listing;
  EXPECT_NE(audit.back().detail.find("replay of an earlier delivery's body"), std::string::npos) << listing;
  EXPECT_EQ(audit.back().status, 409);
}

TEST_F(GitHookTest, AGiteaDeliveryWithItsOwnHeadersIsTaken) {
  std::string secret = track();
  std::string body = push_body("main", kB);
  std::string hex = ads::hub_signature(secret, body).substr(7);
  ads::http::ClientRequest r;
  r.method = "POST";
  r.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/api/v1/hooks/git/" + kD;
  r.body = body;
  r.headers = {{"Content-Type", "application/json"},
               {"X-Gitea-Event", "push"},
               {"X-Gitea-Delivery", "g-1"},
               {"X-Gitea-Signature", hex}};
  auto res = ads::http::request(r);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 202) << res->body;
  // the bare hex of another key is refused like any bad signature
  r.headers = {{"Content-Type", "application/json"},
               {"X-Gitea-Event", "push"},
               {"X-Gitea-Delivery", "g-2"},
               {"X-Gitea-Signature", ads::hub_signature("x", body).substr(7)}};
  res = ads::http::request(r);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 401) << res->body;
}

TEST_F(GitHookTest, AnUnknownIdAndAnUntrackedDeploymentGetTheSameAnswer) {
  std::string body = push_body("main", kB);
  auto untracked = deliver(kD, body, ads::hub_signature("x", body), "u-1");
  auto unknown = deliver("01zzzzzzzzzzzzzzzzzzzzzzzz", body, ads::hub_signature("x", body), "u-2");
  expect_error(untracked, 404);
  expect_error(unknown, 404);
  auto msg = [](const Reply& r, const std::string& id) {
    std::string m = r.body["error"].value("message", "");
    auto at = m.find(id);
    return at == std::string::npos ? m : m.replace(at, id.size(), "ID");
  };
  EXPECT_EQ(msg(untracked, kD), msg(unknown, "01zzzzzzzzzzzzzzzzzzzzzzzz"));
  EXPECT_EQ(untracked.body["error"].value("code", ""), unknown.body["error"].value("code", ""));
}

TEST_F(GitHookTest, ThePollFindsANewCommitOnTheBranchOfARealRepository) {
  ads::test::TempDir repo;
  auto git = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", repo.str()});
    std::string out;
    EXPECT_EQ(ads::test::run(args, &out), 0) << out;
    return out;
  };
  git({"init", "-q", "-b", "main"});
  git({"commit", "-q", "--allow-empty", "-m", "one"});
  std::string head = git({"rev-parse", "HEAD"});
  head.resize(40);
  auto d = *store->get(kD);
  d.source = repo.str();
  ASSERT_TRUE(store->update(d).ok());
  auto r = call("PUT", "/api/v1/deployments/" + kD + "/track", R"({"branch":"main","poll_s":1})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  engine->git_watch_pass();
  auto jobs = unfinished_jobs();
  ASSERT_EQ(jobs.size(), 1u);
  auto params = json::parse(jobs[0].params_json);
  EXPECT_EQ(params.value("ref", ""), head);
  EXPECT_EQ(params.value("by", ""), "git-poll");
  EXPECT_GT(store->get_track(kD)->polled_ms, 0);
}

class GitHookLimitTest : public GitHookTest {
 protected:
  ads::ApiLimits limits() override {
    auto l = GitHookTest::limits();
    l.auth_failure_burst = 3;
    l.auth_failures_per_minute = 0.001;
    return l;
  }
};

TEST_F(GitHookLimitTest, BadDeliveriesFromOneAddressRunIntoItsBudget) {
  std::string secret = track();
  std::string body = push_body("main", kB);
  for (int i = 0; i < 3; ++i)
    expect_error(deliver(kD, body, ads::hub_signature("guess", body), "b-" + std::to_string(i)), 401);
  auto over = deliver(kD, body, ads::hub_signature("guess", body), "b-4");
  expect_error(over, 429);
  EXPECT_FALSE(over.headers["retry-after"].empty() && over.headers["Retry-After"].empty());
  // a delivery signed with the secret still gets through
  EXPECT_EQ(signed_push(secret, "main", kB, "b-ok").status, 202);
}

}  // namespace
