// Issue 16.1 and the "reads while the store is briefly down" promise, on a
// real `ads serve`: while its store cannot answer, an authenticated call is
// 503 with a Retry-After (code store_unavailable), never 401 "unknown token",
// and it is not counted as a failed authentication (no 429 lock-out however
// many calls); the CLI exits 3 saying the server's store is unavailable; the
// first call after the store is back succeeds (a pooled connection from
// before the outage is replaced before use). With the SQLite file locked by
// another process (writes impossible), reads are still served, a write is
// 503 with a Retry-After, and a client following a job is told that the
// server cannot take up jobs (server_trouble).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "http/client.h"
#include "support/ads_server.h"
#include "support/build_paths.h"
#include "support/postgres.h"

namespace {
using ads::test::json;

ads::http::ClientResponse get(const ads::test::Server& s, const std::string& path, const std::string& token) {
  ads::http::ClientRequest r;
  r.url = s.base() + path;
  r.headers = {{"Authorization", "Bearer " + token}};
  r.timeout_ms = 60000;
  auto res = ads::http::request(r);
  EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().message);
  return res.ok() ? *res : ads::http::ClientResponse{};
}

std::string error_code(const ads::http::ClientResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

TEST(StoreOutage, PostgresDownIs503WithRetryAfterNeverAnAuthFailureAndTheFirstCallAfterwardsSucceeds) {
  ads::test::PostgresServer pg;  // this test's own: stopped and started below
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string url = pg.fresh_database();
  ASSERT_FALSE(url.empty()) << pg.error();
  ads::test::TempDir tmp;
  std::string config = (tmp.path / "ads.json").string();
  std::ofstream(config) << json{{"store", {{"kind", "postgres"}, {"url", url}}}}.dump();
  ads::test::Server server((tmp.path / "data").string(), ADS_AGENT_BIN, {}, "2", config);
  ASSERT_FALSE(server.base().empty());
  // several callers at once: the server's pool holds several connections
  {
    std::vector<std::thread> ts;
    ts.reserve(6);
    for (int i = 0; i < 6; ++i)
      ts.emplace_back([&] {
        for (int k = 0; k < 5; ++k) EXPECT_EQ(get(server, "/api/v1/deployments", server.token()).status, 200);
      });
    for (auto& t : ts) t.join();
  }

  ASSERT_TRUE(pg.stop());
  // more calls than the budget of failed authentications (10 at once)
  for (int i = 0; i < 15; ++i) {
    auto r = get(server, "/api/v1/deployments", server.token());
    ASSERT_EQ(r.status, 503) << "call " << i << ": " << r.body;
    EXPECT_EQ(error_code(r), "store_unavailable") << r.body;
    EXPECT_FALSE(r.headers["retry-after"].empty()) << "no Retry-After on call " << i;
  }
  std::string out;
  int rc = ads::test::run({ADS_CLI_BIN, "--server", server.base(), "--token", server.token(), "list"}, &out);
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("store is unavailable"), std::string::npos) << out;

  ASSERT_TRUE(pg.start_again()) << pg.error();
  // the first calls after the store is back succeed, on whichever pooled connection
  for (int i = 0; i < 6; ++i) {
    auto r = get(server, "/api/v1/deployments", server.token());
    EXPECT_EQ(r.status, 200) << "call " << i << " after the store came back: " << r.body;
  }
  // and the address was never locked out: a bad token is a plain 401 again
  auto bad = get(server, "/api/v1/deployments", "ads_" + std::string(48, '0'));
  EXPECT_EQ(bad.status, 401) << bad.body;
}

// Another process holds SQLite's write lock (as `sqlite3 ads.db 'BEGIN
// EXCLUSIVE'` would) for the length of `f`.
template <typename F>
void with_store_locked(const std::string& db, F f) {
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &other), SQLITE_OK);
  sqlite3_busy_timeout(other, 10000);  // a write of the server's under way finishes first
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE;", nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(other);
  f();
  sqlite3_exec(other, "ROLLBACK;", nullptr, nullptr, nullptr);
  sqlite3_close(other);
}

TEST(StoreOutage, SqliteLockedServesReadsRefusesWritesWith503AndTellsWhoFollowsAJob) {
  ads::test::TempDir tmp;
  std::string data = (tmp.path / "data").string();
  ads::test::Server server(data);
  ASSERT_FALSE(server.base().empty());
  // a deployment and its job, before the lock (a source that does not exist:
  // it fails at once, nothing is provisioned)
  long status = 0;
  json body = {{"source", (tmp.path / "no-such-lab").string()}, {"name", "before"}};
  json accepted = server.call("POST", "/api/v1/deployments", &body, &status);
  ASSERT_EQ(status, 202) << accepted.dump();
  std::string id = accepted.value("id", "");
  server.wait_for(id, {"failed"}, 60);
  json jobs = server.call("GET", "/api/v1/deployments/" + id + "/jobs");
  ASSERT_TRUE(jobs.contains("jobs") && !jobs["jobs"].empty()) << jobs.dump();
  std::string job_id = jobs["jobs"][0].value("id", "");

  with_store_locked(data + "/ads.db", [&] {
    // reads are served
    auto list = get(server, "/api/v1/deployments", server.token());
    EXPECT_EQ(list.status, 200) << list.body;
    auto one = get(server, "/api/v1/deployments/" + id, server.token());
    EXPECT_EQ(one.status, 200) << one.body;
    // a write is 503 with a Retry-After, and the CLI says so with exit 3
    ads::http::ClientRequest r;
    r.method = "POST";
    r.url = server.base() + "/api/v1/deployments";
    r.headers = {{"Authorization", "Bearer " + server.token()}, {"Content-Type", "application/json"}};
    r.body = json{{"source", (tmp.path / "no-such-lab").string()}}.dump();
    r.timeout_ms = 60000;
    auto w = ads::http::request(r);
    ASSERT_TRUE(w.ok()) << w.error().message;
    EXPECT_EQ(w->status, 503) << w->body;
    EXPECT_FALSE(w->headers["retry-after"].empty()) << w->body;
    std::string out;
    int rc = ads::test::run({ADS_CLI_BIN, "--server", server.base(), "--token", server.token(), "deploy",
                             (tmp.path / "no-such-lab").string()},
                            &out);
    EXPECT_EQ(rc, 3) << out;
    // the server's answer names the store; it may also come too late for the
    // CLI's 30 s request timeout: every write waits out SQLite's 5 s busy
    // timeout holding the server's one connection, and several queue up
    EXPECT_TRUE(out.find("store is unavailable") != std::string::npos ||
                out.find("cannot reach the ADS server") != std::string::npos)
        << out;
    // the engine cannot claim jobs: a client following a job is told why
    json trouble;
    for (int i = 0; i < 120 && trouble.is_null(); ++i) {
      auto j = get(server, "/api/v1/jobs/" + job_id, server.token());
      json jj = json::parse(j.body, nullptr, false);
      if (j.status == 200 && jj.is_object() && jj.contains("server_trouble")) trouble = jj["server_trouble"];
      else std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ASSERT_TRUE(trouble.is_object()) << "GET /jobs/{id} never said the server cannot take up jobs";
    EXPECT_NE(trouble.value("message", "").find("store is unavailable"), std::string::npos) << trouble.dump();
    EXPECT_FALSE(trouble.value("since", "").empty()) << trouble.dump();
  });
  // the lock is gone: writes work again and the trouble clears
  json again = server.call("POST", "/api/v1/deployments", &body, &status);
  EXPECT_EQ(status, 202) << again.dump();
  bool cleared = false;
  for (int i = 0; i < 120 && !cleared; ++i) {
    json j = server.call("GET", "/api/v1/jobs/" + job_id);
    cleared = j.is_object() && !j.contains("server_trouble");
    if (!cleared) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_TRUE(cleared) << "server_trouble stayed after the store came back";
}

}  // namespace
