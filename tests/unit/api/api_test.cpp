// The REST API's input handling, against a real SQLite store and a real
// engine whose workers are not started (so nothing is provisioned).
#include "api/api.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "api/auth.h"
#include "http/client.h"
#include "support/engine_wait.h"
#include "support/process.h"
#include "unit/api/api_fixture.h"

using nlohmann::json;

namespace {
using ads::test::ApiTest;

TEST_F(ApiTest, PostCreatesAcceptedDeploymentWithGeneratedSortableIds) {
  auto a = call("POST", "/api/v1/deployments", R"({"source":"https://example.invalid/labs/cse02.git","ref":"v1.2"})");
  // a live lab's name is not taken again: it is the host of its stable URL
  auto dup =
      call("POST", "/api/v1/deployments", R"({"source":"https://example.invalid/labs/cse02.git","name":"cse02"})");
  expect_error(dup, 409, "name");
  EXPECT_NE(dup.body["error"]["message"].get<std::string>().find(a.body.value("id", "?")), std::string::npos)
      << dup.body.dump();
  auto b =
      call("POST", "/api/v1/deployments", R"({"source":"https://example.invalid/labs/cse02.git","name":"cse02-b"})");
  ASSERT_EQ(a.status, 202) << a.body.dump();
  ASSERT_EQ(b.status, 202);
  EXPECT_EQ(a.body["state"], "accepted");
  EXPECT_EQ(a.body["name"], "cse02");   // derived from the URL
  EXPECT_EQ(a.body["stable_url"], "");  // none until its route is in the proxy
  std::string ida = a.body["id"], idb = b.body["id"];
  EXPECT_TRUE(ads::is_valid_id(ida));
  EXPECT_LT(ida, idb);
  EXPECT_FALSE(a.body.contains("secret"));
  auto got = call("GET", "/api/v1/deployments/" + ida);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body["ref"], "v1.2");
  auto list = call("GET", "/api/v1/deployments");
  ASSERT_EQ(list.body["deployments"].size(), 2u);
  EXPECT_EQ(list.body["deployments"][0]["id"], ida);
  auto logs = call("GET", "/api/v1/deployments/" + ida + "/logs");
  ASSERT_EQ(logs.status, 200);
  ASSERT_GE(logs.body["lines"].size(), 1u);
  EXPECT_NE(logs.body["lines"][0]["text"].get<std::string>().find("accepted"), std::string::npos);
}

TEST_F(ApiTest, AThrowawayDeploymentIsKeptWhenItFailsAndSaysWhenItExpires) {
  // POST /api/v1/deployments with an Idempotency-Key
  auto call_with_key = [&](const std::string& key, const std::string& body) -> Reply {
    ads::http::ClientRequest r;
    r.method = "POST";
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/api/v1/deployments";
    r.body = body;
    r.headers = {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}, {"Idempotency-Key", key}};
    auto res = ads::http::request(r);
    if (!res) return {0, json(), {}};
    return {res->status, json::parse(res->body, nullptr, false), res->headers};
  };
  // what `ads lab try` asks for
  auto t =
      call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"try-1","keep_failed":true,"ttl_s":3600})");
  ASSERT_EQ(t.status, 202) << t.body.dump();
  EXPECT_EQ(t.body["keep_failed"], true);
  auto d = store->get(t.body["id"]).value();
  EXPECT_TRUE(d.keep_failed);
  EXPECT_EQ(d.expires_ms, d.created_ms + 3600 * 1000);
  EXPECT_EQ(t.body["expires_at"], ads::iso8601_utc(d.expires_ms));
  // an ordinary one has neither
  auto o = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"plain"})");
  ASSERT_EQ(o.status, 202) << o.body.dump();
  EXPECT_EQ(o.body["keep_failed"], false);
  EXPECT_FALSE(o.body.contains("expires_at"));
  EXPECT_EQ(store->get(o.body["id"])->expires_ms, 0);
  // bad values name their field and create nothing
  size_t before = store->list({})->size();
  for (auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"source":"/srv/lab","keep_failed":"yes"})", "keep_failed"},
           {R"({"source":"/srv/lab","keep_failed":1})", "keep_failed"},
           {R"({"source":"/srv/lab","keep_failed":true})", "keep_failed"},  // kept for ever: no
           {R"({"source":"/srv/lab","ttl_s":59})", "ttl_s"},
           {R"({"source":"/srv/lab","ttl_s":604801})", "ttl_s"},
           {R"({"source":"/srv/lab","ttl_s":"1h"})", "ttl_s"},
           {R"({"source":"/srv/lab","ttl_s":90.5})", "ttl_s"},
           {R"({"source":"/srv/lab","ttl_s":-60})", "ttl_s"},
           {R"({"source":"/srv/lab","ttl_s":1e400})", ""},
       }) {
    SCOPED_TRACE(body);
    expect_error(call("POST", "/api/v1/deployments", body), 400, field);
  }
  EXPECT_EQ(store->list({})->size(), before);
  // a retry with the same Idempotency-Key must ask for the same kind of deployment
  auto first = call_with_key("k-try", R"({"source":"/srv/lab","name":"try-2","keep_failed":true,"ttl_s":600})");
  ASSERT_EQ(first.status, 202) << first.body.dump();
  auto same = call_with_key("k-try", R"({"source":"/srv/lab","name":"try-2","keep_failed":true,"ttl_s":600})");
  EXPECT_EQ(same.status, 202);
  EXPECT_EQ(same.body["id"], first.body["id"]);
  expect_error(call_with_key("k-try", R"({"source":"/srv/lab","name":"try-2"})"), 409, "Idempotency-Key");
}

TEST_F(ApiTest, ListPagesAndFilters) {
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(
        call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"n)" + std::to_string(i) + "\"}").status,
        202);
  auto p1 = call("GET", "/api/v1/deployments?limit=2");
  ASSERT_EQ(p1.body["deployments"].size(), 2u);
  std::string next = p1.body["next"];
  auto p2 = call("GET", "/api/v1/deployments?limit=2&after=" + next);
  ASSERT_EQ(p2.body["deployments"].size(), 2u);
  EXPECT_GT(p2.body["deployments"][0]["id"].get<std::string>(), next);
  EXPECT_EQ(call("GET", "/api/v1/deployments?name=n1").body["deployments"].size(), 1u);
  EXPECT_EQ(call("GET", "/api/v1/deployments?state=accepted").body["deployments"].size(), 5u);
  EXPECT_EQ(call("GET", "/api/v1/deployments?state=running").body["deployments"].size(), 0u);
  expect_error(call("GET", "/api/v1/deployments?state=bogus"), 400, "state");
  expect_error(call("GET", "/api/v1/deployments?limit=0"), 400, "limit");
  expect_error(call("GET", "/api/v1/deployments?limit=abc"), 400, "limit");
}

// The list is written as text (core/json_text.h), a deployment's own page as
// a json object parsed from the same writer: both must show every state the
// same, with the fields each state has, whatever bytes the fields hold.
TEST_F(ApiTest, TheListShowsEachDeploymentAsItsOwnPageDoes) {
  auto failed = ads::test::lab_record("01hzzzzzzzzzzzzzzzzzzzzzz1", ads::State::kFailed, "lxd");
  failed.error = "tab\there, a \"quote\", a \\ and \x01 and \xff";
  failed.failed_step = "installing";
  failed.expires_ms = 1700000000123;
  failed.keep_failed = true;
  failed.source = "https://user:secret@git.example.invalid/lab.git";
  auto running = ads::test::lab_record("01hzzzzzzzzzzzzzzzzzzzzzz2", ads::State::kRunning, "lxd");
  running.shared = true;
  running.url = "http://10.0.0.2/";
  running.stable_url = "http://labs.example.invalid/lab/";
  ASSERT_TRUE(store->create(failed).ok());
  ASSERT_TRUE(store->create(running).ok());
  // byte for byte what nlohmann prints (parsing sorts the keys again and
  // dump() escapes its own way: a difference in either shows here)
  for (const auto* d : {&failed, &running}) {
    std::string text;
    ads::append_deployment_json(text, *d);
    EXPECT_EQ(text, json::parse(text).dump());
  }
  ads::http::ClientRequest raw;
  raw.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/api/v1/deployments";
  raw.headers = {{"Authorization", "Bearer " + token}};
  auto raw_list = ads::http::request(raw);
  ASSERT_TRUE(raw_list.ok());
  EXPECT_EQ(raw_list->body, json::parse(raw_list->body).dump());
  auto list = call("GET", "/api/v1/deployments");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body["deployments"].size(), 2u);
  EXPECT_TRUE(list.body["next"].is_null());  // fewer than a page: no next
  for (auto& d : list.body["deployments"]) {
    auto one = call("GET", "/api/v1/deployments/" + d["id"].get<std::string>());
    ASSERT_EQ(one.status, 200);
    for (auto& [k, v] : d.items()) EXPECT_EQ(one.body[k], v) << k;
  }
  auto& f = list.body["deployments"][0];
  EXPECT_EQ(f["error"], "tab\there, a \"quote\", a \\ and \x01 and \xEF\xBF\xBD");
  EXPECT_EQ(f["failed_step"], "installing");
  EXPECT_EQ(f["expires_at"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(f["keep_failed"], true);
  EXPECT_EQ(f["source"].get<std::string>().find("secret"), std::string::npos) << f["source"];
  EXPECT_FALSE(f.contains("secret"));
  auto& r = list.body["deployments"][1];
  EXPECT_FALSE(r.contains("error"));
  EXPECT_FALSE(r.contains("failed_step"));
  EXPECT_FALSE(r.contains("expires_at"));
  EXPECT_EQ(r["shared"], true);
  EXPECT_EQ(r["stable_url"], "http://labs.example.invalid/lab/");
  EXPECT_EQ(r["step"]["name"], "running");
  EXPECT_EQ(r["step"]["index"].get<int>(), r["step"]["of"].get<int>());  // running is the pipeline's last step
  EXPECT_EQ(r["created_at"], "1970-01-01T00:00:00.001Z");
  // a full page names the last id as `next`
  auto page = call("GET", "/api/v1/deployments?limit=1");
  EXPECT_EQ(page.body["next"], failed.id);
}

TEST_F(ApiTest, BadInputGetsFourHundredsWithJsonAndLosesNothing) {
  ASSERT_EQ(call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})").status, 202);
  expect_error(call("POST", "/api/v1/deployments", "{not json"), 400);
  expect_error(call("POST", "/api/v1/deployments", "[1,2]"), 400);
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x"})", "text/plain"), 415);
  expect_error(call("POST", "/api/v1/deployments", R"({"ref":"v1"})"), 400, "source");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":42})"), 400, "source");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","sauce":"y"})"), 400, "sauce");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","name":"cse02; rm -rf /"})"), 400, "name");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","name":"../../etc/passwd"})"), 400, "name");
  expect_error(call("POST", "/api/v1/deployments", R"J({"source":"/x","name":"$(reboot)"})J"), 400, "name");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","ref":"--upload-pack=evil"})"), 400, "ref");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","ref":"a..b"})"), 400, "ref");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"-oProxyCommand=x"})"), 400, "source");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","provider":"vmware"})"), 400, "provider");
  expect_error(call("POST", "/api/v1/deployments", std::string(8192, 'x')), 413);
  expect_error(call("GET", "/api/v1/deployments/01jzzzzzzzzzzzzzzzzzzzzzzz"), 404);
  expect_error(call("GET", "/api/v1/deployments/..%2F..%2Fetc"), 404);
  expect_error(call("GET", "/api/v1/deployments/nope/logs"), 404);
  expect_error(call("GET", "/api/v1/nowhere"), 404);
  expect_error(call("PUT", "/api/v1/deployments"), 405);
  // the one good deployment is still there, alone
  EXPECT_EQ(count(), 1u);
}

// Issue 14.4: a destroy no longer waits for (or is refused by) the job under
// way; it cancels it first (here a queued deploy: at once, and the deployment
// fails before anything was made), then a second destroy is the conflict.
TEST_F(ApiTest, DestroyOfADeploymentStillInProgressCancelsItsJobFirst) {
  auto a = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})");
  std::string id = a.body["id"];
  auto r = call("DELETE", "/api/v1/deployments/" + id);
  ASSERT_EQ(r.status, 202) << r.body.dump();
  auto jobs = call("GET", "/api/v1/deployments/" + id + "/jobs").body["jobs"];
  ASSERT_EQ(jobs.size(), 2u) << jobs.dump();
  EXPECT_EQ(jobs[0]["state"], "cancelled");
  EXPECT_EQ(jobs[1]["kind"], "destroy");
  EXPECT_EQ(jobs[1]["state"], "queued");
  expect_error(call("DELETE", "/api/v1/deployments/" + id), 409);
}

TEST_F(ApiTest, DeletingABackupIsAJobAndUnknownBackupsAre404) {
  std::string a = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})").body["id"];
  std::string b = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"lab-b"})").body["id"];
  ads::Backup ba{"01kkkkkkkkkkkkkkkkkkkkkkk1", a,  1700000000000, 10, std::string(64, 'f'),
                 "/nonexistent/a.tar.gz",      "", "c",           ""};
  ads::Backup bb{"01kkkkkkkkkkkkkkkkkkkkkkk2", b,  1700000000000, 10, std::string(64, 'f'),
                 "/nonexistent/b.tar.gz",      "", "c",           ""};
  ASSERT_TRUE(store->add_backup(ba).ok());
  ASSERT_TRUE(store->add_backup(bb).ok());
  // the deploy job is still queued (the workers are not started): one job at a time
  expect_error(call("DELETE", "/api/v1/deployments/" + a + "/backups/" + ba.id), 409);
  // as if it had been deployed
  auto d = store->get(a);
  d->state = ads::State::kRunning;
  ASSERT_TRUE(store->update(*d).ok());
  auto jobs = store->jobs_of(a);
  ASSERT_TRUE(jobs.ok());
  for (auto j : *jobs) {
    j.state = "succeeded";
    ASSERT_TRUE(store->update_job(j).ok());
  }
  expect_error(call("DELETE", "/api/v1/deployments/" + a + "/backups/01kkkkkkkkkkkkkkkkkkkkkkk9"), 404);
  expect_error(call("DELETE", "/api/v1/deployments/" + a + "/backups/" + bb.id), 404);  // b's, not a's
  expect_error(call("DELETE", "/api/v1/deployments/" + a + "/backups/..%2F..%2Fetc"), 404);
  expect_error(call("DELETE", "/api/v1/deployments/01jzzzzzzzzzzzzzzzzzzzzzzz/backups/" + ba.id), 404);
  auto r = call("DELETE", "/api/v1/deployments/" + a + "/backups/" + ba.id);
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(r.body["kind"], "delete-backup");
  EXPECT_EQ(r.body["state"], "queued");
  expect_error(call("DELETE", "/api/v1/deployments/" + a + "/backups/" + ba.id), 409);  // that job is under way
  // nothing is deleted before the job runs
  EXPECT_TRUE(store->get_backup(ba.id).ok());
  EXPECT_TRUE(store->get_backup(bb.id).ok());
}

// Every route, with a request that is valid for it.
struct RouteCase {
  std::string method, path, body;
  ads::Role needs;
};

TEST_F(ApiTest, EveryRouteRefusesAnonymousAndUnderPrivilegedCallers) {
  std::string id = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})").body["id"];
  std::string job = call("GET", "/api/v1/deployments/" + id + "/jobs").body["jobs"][0]["id"];
  std::string tok_id = call("GET", "/api/v1/tokens").body["tokens"][0]["id"];
  ASSERT_EQ(call("POST", "/api/v1/users", R"({"name":"vera","role":"viewer"})").status, 201);
  ASSERT_EQ(call("POST", "/api/v1/users", R"({"name":"dan","role":"deployer"})").status, 201);
  std::string viewer = call("POST", "/api/v1/tokens", R"({"name":"t","user":"vera"})").body["secret"];
  std::string deployer = call("POST", "/api/v1/tokens", R"({"name":"t","user":"dan"})").body["secret"];
  std::vector<RouteCase> routes = {
      {"GET", "/api/v1/health", "", ads::Role::kViewer},
      {"GET", "/api/v1/whoami", "", ads::Role::kViewer},
      {"GET", "/api/v1/deployments", "", ads::Role::kViewer},
      {"GET", "/api/v1/deployments/" + id, "", ads::Role::kViewer},
      {"GET", "/api/v1/deployments/" + id + "/logs", "", ads::Role::kViewer},
      {"GET", "/api/v1/deployments/" + id + "/jobs", "", ads::Role::kViewer},
      {"GET", "/api/v1/deployments/" + id + "/backups", "", ads::Role::kViewer},
      {"GET", "/api/v1/deployments/" + id + "/releases", "", ads::Role::kViewer},
      {"GET", "/api/v1/deployments/" + id + "/health", "", ads::Role::kViewer},
      {"GET", "/api/v1/deployments/" + id + "/events", "", ads::Role::kViewer},
      {"GET", "/api/v1/jobs/" + job, "", ads::Role::kViewer},
      {"POST", "/api/v1/jobs/" + job + "/cancel", "", ads::Role::kDeployer},
      {"GET", "/api/v1/tokens", "", ads::Role::kViewer},
      {"POST", "/api/v1/tokens", R"({"name":"x"})", ads::Role::kViewer},
      {"DELETE", "/api/v1/tokens/" + tok_id, "", ads::Role::kViewer},
      {"POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"lab-route"})", ads::Role::kDeployer},
      {"POST", "/api/v1/deployments/" + id + "/stop", "", ads::Role::kDeployer},
      {"POST", "/api/v1/deployments/" + id + "/start", "", ads::Role::kDeployer},
      {"POST", "/api/v1/deployments/" + id + "/restart", "", ads::Role::kDeployer},
      {"POST", "/api/v1/deployments/" + id + "/test", "", ads::Role::kDeployer},
      {"POST", "/api/v1/deployments/" + id + "/backup", "", ads::Role::kDeployer},
      {"POST", "/api/v1/deployments/" + id + "/check", "", ads::Role::kDeployer},
      {"POST", "/api/v1/deployments/" + id + "/restore", R"({"backup":"x"})", ads::Role::kDeployer},
      {"DELETE", "/api/v1/deployments/" + id + "/backups/01kkkkkkkkkkkkkkkkkkkkkkk1", "", ads::Role::kDeployer},
      {"PUT", "/api/v1/deployments/" + id + "/track", R"({"branch":"main"})", ads::Role::kDeployer},
      {"POST", "/api/v1/deployments/" + id + "/exec", R"({"command":["true"]})", ads::Role::kDeployer},
      {"GET", "/api/v1/deployments/" + id + "/shell", "", ads::Role::kDeployer},
      {"DELETE", "/api/v1/deployments/" + id + "/track", "", ads::Role::kDeployer},
      {"DELETE", "/api/v1/deployments/" + id, "", ads::Role::kDeployer},
      {"GET", "/api/v1/users", "", ads::Role::kAdmin},
      {"PATCH", "/api/v1/users/dan", R"({"role":"admin"})", ads::Role::kAdmin},
      {"POST", "/api/v1/users/dan/disable", "", ads::Role::kAdmin},
      {"POST", "/api/v1/users/dan/enable", "", ads::Role::kAdmin},
      {"POST", "/api/v1/users/dan/unbind", "", ads::Role::kAdmin},
      {"POST", "/api/v1/logout", "", ads::Role::kViewer},
      {"POST", "/api/v1/users", R"({"name":"zed","role":"viewer"})", ads::Role::kAdmin},
      {"GET", "/api/v1/audit", "", ads::Role::kAdmin},
      {"GET", "/api/v1/images", "", ads::Role::kViewer},
      {"GET", "/api/v1/doctor", "", ads::Role::kAdmin},
      {"POST", "/api/v1/prune", "", ads::Role::kAdmin},
  };
  // every route register_api made is in that list, but the sign-in itself
  // and the git hook (no token by design: its signature is checked, see
  // git_hook_test.cpp)
  for (const auto& route : server->routes()) {
    auto sp = route.find(' ');
    std::string method = route.substr(0, sp), pattern = route.substr(sp + 1);
    if (route == "POST /api/v1/login" || route == "POST /api/v1/hooks/git/{id}") continue;
    std::regex re(std::regex_replace(pattern, std::regex(R"(\{[a-z]+\})"), "[^/]+"));
    bool listed = false;
    for (auto& r : routes) listed = listed || (r.method == method && std::regex_match(r.path, re));
    EXPECT_TRUE(listed) << route << " is not checked for anonymous and under-privileged callers";
  }
  for (auto& r : routes) {
    SCOPED_TRACE(r.method + " " + r.path);
    expect_error(call_as("", r.method, r.path, r.body), 401);
    expect_error(call_as("ads_not-a-real-token", r.method, r.path, r.body), 401);
    if (r.needs > ads::Role::kViewer) expect_error(call_as(viewer, r.method, r.path, r.body), 403);
    if (r.needs > ads::Role::kDeployer) expect_error(call_as(deployer, r.method, r.path, r.body), 403);
  }
  // a deployer may not change someone else's deployment (the admin's, not shared)...
  auto other = call_as(deployer, "POST", "/api/v1/deployments/" + id + "/stop");
  expect_error(other, 403);
  // ...but may change its own, and a shared one
  std::string mine = call_as(deployer, "POST", "/api/v1/deployments",
                             R"({"source":"https://example.invalid/labs/lab.git","name":"dans"})")
                         .body["id"];
  EXPECT_EQ(call("GET", "/api/v1/deployments/" + mine).body["owner"], "dan");
  expect_error(call_as(deployer, "POST", "/api/v1/deployments/" + mine + "/stop"), 409);  // allowed, but still accepted
  std::string shared =
      call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"lab-shared","shared":true})").body["id"];
  expect_error(call_as(deployer, "POST", "/api/v1/deployments/" + shared + "/stop"), 409);
  expect_error(call_as(viewer, "POST", "/api/v1/deployments/" + shared + "/stop"), 403);
  // exec is stricter: the owner and admins only, a shared deployment too
  const std::string cmd = R"({"command":["true"]})";
  expect_error(call_as(deployer, "POST", "/api/v1/deployments/" + id + "/exec", cmd), 403);
  expect_error(call_as(deployer, "POST", "/api/v1/deployments/" + shared + "/exec", cmd), 403);
  expect_error(call_as(deployer, "POST", "/api/v1/deployments/" + mine + "/exec", cmd), 409);  // not running
  expect_error(call("POST", "/api/v1/deployments/" + shared + "/exec", cmd), 409);             // an admin: not running
  // the shell: the same rule, judged before the websocket is asked for
  expect_error(call_as(deployer, "GET", "/api/v1/deployments/" + shared + "/shell"), 403);
  expect_error(call_as(deployer, "GET", "/api/v1/deployments/" + mine + "/shell"), 426);
}

TEST_F(ApiTest, TokensExpireAreRevocableAndAreShownOnlyOnce) {
  auto made = call("POST", "/api/v1/tokens", R"({"name":"ci","ttl_s":1})");
  ASSERT_EQ(made.status, 201) << made.body.dump();
  std::string secret = made.body["secret"], tid = made.body["id"];
  EXPECT_EQ(secret.rfind("ads_", 0), 0u);
  EXPECT_EQ(call_as(secret, "GET", "/api/v1/whoami").status, 200);
  // listings never show a secret or its hash
  auto list = call("GET", "/api/v1/tokens");
  EXPECT_EQ(list.body.dump().find(secret), std::string::npos);
  EXPECT_EQ(list.body.dump().find(ads::Auth::hash_secret(secret)), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto expired = call_as(secret, "GET", "/api/v1/whoami");
  expect_error(expired, 401);
  EXPECT_NE(expired.body["error"]["message"].get<std::string>().find("expired"), std::string::npos);

  std::string other = call("POST", "/api/v1/tokens", R"({"name":"tmp"})").body["secret"];
  std::string other_id = call_as(other, "GET", "/api/v1/whoami").body["token"]["id"];
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/" + other_id).status, 200);
  auto revoked = call_as(other, "GET", "/api/v1/whoami");
  expect_error(revoked, 401);
  EXPECT_NE(revoked.body["error"]["message"].get<std::string>().find("revoked"), std::string::npos);
  expect_error(call("POST", "/api/v1/tokens", R"({"name":"x","ttl_s":-5})"), 400, "ttl_s");
  expect_error(call("POST", "/api/v1/tokens", R"({"name":"x","user":"nobody"})"), 400, "user");
  expect_error(call_as("", "GET", "/api/v1/whoami", "", ""), 401);
  ads::http::ClientRequest basic;
  basic.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/api/v1/whoami";
  basic.headers = {{"Authorization", "Basic YWRtaW46eA=="}};
  EXPECT_EQ(ads::http::request(basic)->status, 401);
}

TEST_F(ApiTest, PasswordLoginWithArgon2idAndUsersValidation) {
  expect_error(call("POST", "/api/v1/users", R"({"name":"pat","role":"deployer","password":"short"})"), 400,
               "password");
  expect_error(call("POST", "/api/v1/users", R"({"name":"pat","role":"root"})"), 400, "role");
  expect_error(call("POST", "/api/v1/users", R"({"name":"pat; rm","role":"viewer"})"), 400, "name");
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"pat","role":"deployer","password":"correct horse battery"})").status,
      201);
  expect_error(call("POST", "/api/v1/users", R"({"name":"pat","role":"viewer"})"), 409);
  auto users = call("GET", "/api/v1/users");
  EXPECT_EQ(users.body.dump().find("argon2id"), std::string::npos);  // hashes never leave the server
  auto sqlite_user = store->get_user_by_name("pat");
  ASSERT_TRUE(sqlite_user.ok());
  EXPECT_EQ(sqlite_user->password_hash.rfind("$argon2id$", 0), 0u);
  auto bad = call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"wrong horse battery"})");
  expect_error(bad, 401);
  auto nobody = call_as("", "POST", "/api/v1/login", R"({"name":"nobody","password":"wrong horse battery"})");
  EXPECT_EQ(bad.body["error"]["message"], nobody.body["error"]["message"]);  // no hint which was wrong
  auto ok = call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"correct horse battery"})");
  ASSERT_EQ(ok.status, 201) << ok.body.dump();
  EXPECT_FALSE(ok.body["expires_at"].is_null());
  auto me = call_as(ok.body["secret"], "GET", "/api/v1/whoami");
  EXPECT_EQ(me.body["name"], "pat");
  EXPECT_EQ(me.body["role"], "deployer");
}

TEST_F(ApiTest, AuditRecordsWhoDidWhatToWhichDeploymentFromWhere) {
  std::string id = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})").body["id"];
  call_as("", "DELETE", "/api/v1/deployments/" + id);
  call("POST", "/api/v1/deployments/" + id + "/stop");  // refused: the deploy is under way
  auto audit = call("GET", "/api/v1/audit").body["entries"];
  ASSERT_GE(audit.size(), 3u);
  EXPECT_EQ(audit[0]["user"], "admin");
  EXPECT_EQ(audit[0]["action"], "POST /api/v1/deployments");
  EXPECT_EQ(audit[0]["status"], 202);
  EXPECT_EQ(audit[0]["remote"], "127.0.0.1");
  EXPECT_EQ(audit[1]["user"], "anonymous");
  EXPECT_EQ(audit[1]["target"], id);
  EXPECT_EQ(audit[1]["status"], 401);
  EXPECT_EQ(audit[2]["user"], "admin");
  EXPECT_EQ(audit[2]["status"], 409);
  // GETs are not audited
  for (auto& e : audit) EXPECT_NE(e["action"].get<std::string>().rfind("GET", 0), 0u);
}

TEST_F(ApiTest, UsersChangeRoleAndPasswordAndDisablingRevokesEverything) {
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"pat","role":"deployer","password":"correct horse battery"})").status,
      201);
  std::string pat = call("POST", "/api/v1/tokens", R"({"name":"t","user":"pat"})").body["secret"];
  // anyone may change their own password, not their role, nor someone else's anything
  EXPECT_EQ(call_as(pat, "PATCH", "/api/v1/users/pat", R"({"password":"a new password, long"})").status, 200);
  expect_error(call_as(pat, "PATCH", "/api/v1/users/pat", R"({"role":"admin"})"), 403);
  expect_error(call_as(pat, "PATCH", "/api/v1/users/admin", R"({"password":"take over the admin"})"), 403);
  expect_error(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"correct horse battery"})"), 401);
  EXPECT_EQ(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"a new password, long"})").status, 201);
  // bad input names its field; nothing changes
  expect_error(call("PATCH", "/api/v1/users/pat", R"({"role":"root"})"), 400, "role");
  expect_error(call("PATCH", "/api/v1/users/pat", R"({"password":"short"})"), 400, "password");
  expect_error(call("PATCH", "/api/v1/users/pat", R"({"password":7})"), 400, "password");
  expect_error(call("PATCH", "/api/v1/users/pat", R"({"shell":"/bin/sh"})"), 400, "shell");
  expect_error(call("PATCH", "/api/v1/users/pat", R"({})"), 400);
  expect_error(call("PATCH", "/api/v1/users/nobody", R"({"role":"viewer"})"), 404);
  expect_error(call("PATCH", "/api/v1/users/pat", R"({"role":"viewer"})", "text/plain"), 415);
  EXPECT_EQ(store->get_user_by_name("pat")->role, ads::Role::kDeployer);
  // an admin changes the role
  auto demoted = call("PATCH", "/api/v1/users/pat", R"({"role":"viewer"})");
  ASSERT_EQ(demoted.status, 200) << demoted.body.dump();
  EXPECT_EQ(demoted.body["role"], "viewer");
  expect_error(call_as(pat, "POST", "/api/v1/deployments", R"({"source":"/srv/lab"})"), 403);
  // the last admin who can sign in cannot be demoted or disabled...
  expect_error(call("PATCH", "/api/v1/users/admin", R"({"role":"deployer"})"), 409, "role");
  expect_error(call("POST", "/api/v1/users/admin/disable"), 409, "name");
  // ...until there is another one
  ASSERT_EQ(call("PATCH", "/api/v1/users/pat", R"({"role":"admin"})").status, 200);
  auto off = call_as(pat, "POST", "/api/v1/users/admin/disable");
  ASSERT_EQ(off.status, 200) << off.body.dump();
  EXPECT_EQ(off.body["revoked_tokens"], 1);
  expect_error(call("GET", "/api/v1/whoami"), 401);  // the first-start token is revoked
  // disabling pat: its tokens and its password stop working
  token = pat;
  ASSERT_EQ(call("POST", "/api/v1/users", R"({"name":"ops","role":"admin","password":"another long password"})").status,
            201);
  token = call_as("", "POST", "/api/v1/login", R"({"name":"ops","password":"another long password"})").body["secret"];
  auto pat_off = call("POST", "/api/v1/users/pat/disable");
  ASSERT_EQ(pat_off.status, 200) << pat_off.body.dump();
  EXPECT_GE(pat_off.body["revoked_tokens"].get<int>(), 2);  // its own and its login token
  expect_error(call_as(pat, "GET", "/api/v1/whoami"), 401);
  expect_error(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"a new password, long"})"), 401);
  expect_error(call("POST", "/api/v1/users/nobody/disable"), 404);
  // every change is in the audit, naming its target
  bool seen = false;
  json audit = call("GET", "/api/v1/audit").body;
  for (auto& e : audit["entries"])
    seen |= e["action"] == "POST /api/v1/users/pat/disable" && e["target"] == "pat" && e["user"] == "ops";
  EXPECT_TRUE(seen) << audit.dump();
}

// Strict limits, to see each one refuse with 429, Retry-After and JSON.
class LimitsTest : public ApiTest {
 protected:
  ads::ApiLimits limits() override {
    ads::ApiLimits l;
    l.requests_per_second = 0.001;  // no refill within a test
    l.request_burst = 6;
    l.auth_failures_per_minute = 0.001;
    l.auth_failure_burst = 3;
    l.active_jobs_per_user = 2;
    return l;
  }
};

TEST_F(LimitsTest, RequestsPerTokenAreLimitedAndOtherTokensAreNot) {
  std::string other = call("POST", "/api/v1/tokens", R"({"name":"other"})").body["secret"];  // 1
  for (int i = 0; i < 5; ++i) EXPECT_EQ(call("GET", "/api/v1/whoami").status, 200);          // 2..6
  auto over = call("GET", "/api/v1/whoami");
  expect_error(over, 429);
  EXPECT_GE(std::stoi(over.headers["retry-after"]), 1);
  EXPECT_EQ(call_as(other, "GET", "/api/v1/whoami").status, 200);
}

TEST_F(LimitsTest, SignInAttemptsAndBadTokensPerAddressAreLimited) {
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"pat","role":"viewer","password":"correct horse battery"})").status,
      201);
  expect_error(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"guess number one"})"), 401);
  expect_error(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"guess number two"})"), 401);
  EXPECT_EQ(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"correct horse battery"})").status, 201);
  // the budget is spent: even the right password is not checked now
  auto over = call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"correct horse battery"})");
  expect_error(over, 429);
  EXPECT_FALSE(over.headers["retry-after"].empty());
  // guessing tokens spends a budget of its own; a request without a token spends nothing
  for (int i = 0; i < 5; ++i) expect_error(call_as("", "GET", "/api/v1/whoami"), 401);
  for (int i = 0; i < 3; ++i) expect_error(call_as("ads_guess" + std::to_string(i), "GET", "/api/v1/whoami"), 401);
  expect_error(call_as("ads_guess4", "GET", "/api/v1/whoami"), 429);
  EXPECT_EQ(call("GET", "/api/v1/whoami").status, 200);  // a good token still works
}

// A second server on the same database (its own Store, Engine, Auth and HTTP
// server, as another `ads serve` would have): sign-in attempts and bad tokens
// from one address count once across both, so more servers guess no faster.
TEST_F(LimitsTest, SignInAndBadTokenBudgetsAreSharedByTheServersOnOneStore) {
  auto st2 = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
  ASSERT_TRUE(st2.ok()) << st2.error().message;
  std::map<std::string, std::unique_ptr<ads::Provider>> providers;
  providers["lxd"] = std::move(ads::make_provider("lxd", json::object()).value());
  ads::Engine engine2(**st2, std::move(providers), ads::EngineOptions{});
  ads::Auth auth2(**st2);
  ads::http::Server server2(ads::http::ServerOptions{"127.0.0.1", 0, 4096, 8, 5});
  ads::register_api(server2, **st2, engine2, auth2, limits());
  ASSERT_TRUE(server2.start().ok());
  const uint16_t one = server->port(), two = server2.port();

  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"pat","role":"viewer","password":"correct horse battery"})").status,
      201);
  expect_error(call_on(one, "", "POST", "/api/v1/login", R"({"name":"pat","password":"guess number one"})"), 401);
  expect_error(call_on(two, "", "POST", "/api/v1/login", R"({"name":"pat","password":"guess number two"})"), 401);
  expect_error(call_on(one, "", "POST", "/api/v1/login", R"({"name":"pat","password":"guess number three"})"), 401);
  // three attempts in all: the second server refuses its second one
  auto over = call_on(two, "", "POST", "/api/v1/login", R"({"name":"pat","password":"correct horse battery"})");
  expect_error(over, 429);
  EXPECT_FALSE(over.headers["retry-after"].empty());

  for (int i = 0; i < 3; ++i)
    expect_error(call_on(i % 2 ? one : two, "ads_guess" + std::to_string(i), "GET", "/api/v1/whoami"), 401);
  expect_error(call_on(one, "ads_guess3", "GET", "/api/v1/whoami"), 429);
  expect_error(call_on(two, "ads_guess4", "GET", "/api/v1/whoami"), 429);
  EXPECT_EQ(call_on(two, token, "GET", "/api/v1/whoami").status, 200);  // a good token still works
  server2.stop();
}

// A store that cannot keep the shared buckets (here its table is gone) leaves
// each server's own limit in force: sign-ins are still checked, not refused
// wholesale, and the fourth attempt is still refused.
TEST_F(LimitsTest, WhenTheStoreCannotCountEachServersOwnLimitHolds) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((tmp.path / "ads.db").string().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP TABLE rate_buckets", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"pat","role":"viewer","password":"correct horse battery"})").status,
      201);
  expect_error(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"guess number one"})"), 401);
  expect_error(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"guess number two"})"), 401);
  EXPECT_EQ(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"correct horse battery"})").status, 201);
  expect_error(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"correct horse battery"})"), 429);
}

TEST_F(LimitsTest, JobsUnderWayPerUserAreBounded) {
  // the engine's workers are not started: every job stays queued
  auto first = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})", "application/json");
  ASSERT_EQ(first.status, 202);
  ASSERT_EQ(call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"lab-2"})").status, 202);
  auto third = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"lab-3"})");
  expect_error(third, 429);
  EXPECT_NE(third.body["error"]["message"].get<std::string>().find("admin has 2 jobs under way (limit 2)"),
            std::string::npos)
      << third.body.dump();
  EXPECT_EQ(third.headers["retry-after"], "5");
  // an operation on a deployment with no job under way counts too
  ads::Deployment idle;
  idle.id = "01m88rqkev9cbfs1eqysk664kz";
  idle.name = "idle";
  idle.source = "/srv/lab";
  idle.provider = "lxd";
  idle.state = ads::State::kStopped;
  idle.owner = "admin";
  idle.created_ms = idle.updated_ms = 1;
  ASSERT_TRUE(store->create(idle).ok());
  expect_error(call("POST", "/api/v1/deployments/" + idle.id + "/start"), 429);
  EXPECT_TRUE(store->jobs_of(idle.id)->empty());
  EXPECT_EQ(count(), 3u);  // the first two and the idle one: the refused requests made nothing
  // another user has a budget of its own
  ASSERT_EQ(call("POST", "/api/v1/users", R"({"name":"dan","role":"deployer"})").status, 201);
  std::string dan = call("POST", "/api/v1/tokens", R"({"name":"t","user":"dan"})").body["secret"];
  EXPECT_EQ(
      call_as(dan, "POST", "/api/v1/deployments", R"({"source":"https://example.invalid/labs/lab.git","name":"dans"})")
          .status,
      202);
  // clean-up is never refused by that limit (issue 16.9): dan, at his limit, still destroys
  EXPECT_EQ(
      call_as(dan, "POST", "/api/v1/deployments", R"({"source":"https://example.invalid/labs/lab.git","name":"dans2"})")
          .status,
      202);
  expect_error(call_as(dan, "POST", "/api/v1/deployments",
                       R"({"source":"https://example.invalid/labs/lab.git","name":"dans3"})"),
               429);
  ads::Deployment his = idle;
  his.id = "01m88rqkev9cbfs1eqysk664ky";
  his.owner = "dan";
  ASSERT_TRUE(store->create(his).ok());
  EXPECT_EQ(call_as(dan, "DELETE", "/api/v1/deployments/" + his.id).status, 202);
  EXPECT_EQ(store->jobs_of(his.id)->size(), 1u);
}

}  // namespace

namespace {
// Issue 14.9: POST /api/v1/prune (admin) forgets old destroyed deployments;
// bad input is a 400 naming the field and prunes nothing.
TEST_F(ApiTest, PruneForgetsOldDestroyedDeploymentsAndRefusesBadInput) {
  ads::Deployment old;
  old.id = "01m88rqkev9cbfs1eqysk66q00";
  old.name = "lab";
  old.source = "/srv/lab";
  old.provider = "lxd";
  old.state = ads::State::kDestroyed;
  old.owner = "admin";
  old.created_ms = old.updated_ms = 1;  // 1970: older than any retention
  ASSERT_TRUE(store->create(old).ok());
  ads::LogLine l;
  l.ts_ms = 1;
  l.stream = "ads";
  l.text = "destroyed";
  ASSERT_TRUE(store->append_log(old.id, l).ok());
  expect_error(call("POST", "/api/v1/prune", R"({"older_than_days":"7"})"), 400, "older_than_days");
  expect_error(call("POST", "/api/v1/prune", R"({"older_than_days":0})"), 400, "older_than_days");
  expect_error(call("POST", "/api/v1/prune", R"({"older_than_days":36501})"), 400, "older_than_days");
  expect_error(call("POST", "/api/v1/prune", R"({"older_than_days":1.5})"), 400, "older_than_days");
  expect_error(call("POST", "/api/v1/prune", R"({"days":7})"), 400, "days");
  expect_error(call("POST", "/api/v1/prune", "[7]"), 400);
  ASSERT_TRUE(store->get(old.id).ok()) << "a refused prune removed something";
  auto r = call("POST", "/api/v1/prune", R"({"older_than_days":7})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["deployments"], 1);
  EXPECT_EQ(r.body["log_lines"], 1);
  EXPECT_EQ(store->get(old.id).error().code, "not_found");
  r = call("POST", "/api/v1/prune");  // the configured retention (30 days by default): nothing left
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["deployments"], 0);
}
}  // namespace

namespace {
using ads::test::ApiTest;

// POST .../check (the check job, engine/job_check.cpp): {"ref"} or
// {"as_deployed": true}, nothing else; a ref only for a git source; only of
// a running lab. A refused request queues nothing.
TEST_F(ApiTest, ACheckTakesARefOrTheLabAsDeployedOfARunningLabAndNothingElse) {
  auto git = ads::test::lab_record("01m88rqkev9cbfs1eqysk66400", ads::State::kRunning, "lxd");
  git.source = "https://example.invalid/labs/lab.git";
  git.ref = "main";
  git.commit = std::string(40, 'a');
  auto dir = ads::test::lab_record("01m88rqkev9cbfs1eqysk66401", ads::State::kRunning, "lxd");
  dir.name = "dirlab";
  auto stopped = ads::test::lab_record("01m88rqkev9cbfs1eqysk66402", ads::State::kStopped, "lxd");
  stopped.name = "stopped";
  for (auto* d : {&git, &dir, &stopped}) ASSERT_TRUE(store->create(*d).ok());
  const std::string g = "/api/v1/deployments/" + git.id + "/check";
  expect_error(call("POST", g, R"({"sauce":1})"), 400, "sauce");
  expect_error(call("POST", g, R"({"as_deployed":"yes"})"), 400, "as_deployed");
  expect_error(call("POST", g, R"({"diff":1})"), 400, "diff");
  expect_error(call("POST", g, R"({"as_deployed":true,"ref":"main"})"), 400, "ref");
  expect_error(call("POST", g, R"({"ref":42})"), 400, "ref");
  expect_error(call("POST", g, R"({"ref":"--upload-pack=evil"})"), 400, "ref");
  expect_error(call("POST", g, R"({"ref":"a..b"})"), 400, "ref");
  expect_error(call("POST", g, "[1]"), 400);
  // a plain directory has no refs
  auto r = call("POST", "/api/v1/deployments/" + dir.id + "/check", R"({"ref":"main"})");
  expect_error(r, 400, "ref");
  EXPECT_NE(r.body["error"].value("message", "").find("plain directory"), std::string::npos) << r.body.dump();
  // a stopped lab: 409
  r = call("POST", "/api/v1/deployments/" + stopped.id + "/check", "");
  expect_error(r, 409);
  EXPECT_NE(r.body["error"].value("message", "").find("it must be running"), std::string::npos) << r.body.dump();
  for (auto* d : {&git, &dir, &stopped}) EXPECT_TRUE(store->jobs_of(d->id)->empty()) << d->name;

  // accepted: a check job with the parameters as given
  r = call("POST", g, R"({"ref":"v2"})");
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(r.body["kind"], "check");
  EXPECT_EQ(r.body["params"], json({{"ref", "v2"}}));
  // one job at a time: a second is refused while the first is under way
  r = call("POST", g, R"({"as_deployed":false})");
  expect_error(r, 409);
  EXPECT_NE(r.body["error"].value("message", "").find("already has a check job"), std::string::npos) << r.body.dump();
  r = call("POST", "/api/v1/deployments/" + dir.id + "/check", R"({"as_deployed":true,"diff":true})");
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(r.body["params"], json({{"as_deployed", true}, {"diff", true}}));
}

}  // namespace
