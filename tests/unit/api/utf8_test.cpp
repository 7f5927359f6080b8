// Invalid UTF-8 from every place text enters ADS (a lab spec, a record an
// older ads stored, a header, a URL) never breaks an answer or the server:
// JSON answers and event streams carry it as U+FFFD. Once, one such byte in
// a spec made every list answer 500 and the event stream kill the process.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/text.h"
#include "support/build_paths.h"
#include "unit/api/api_fixture.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const std::string kR = "\xEF\xBF\xBD";  // U+FFFD

class Utf8ApiTest : public ads::test::ApiTest {
 protected:
  ads::EngineOptions engine_options() override {
    ads::EngineOptions o;
    o.agent_binary = ADS_AGENT_BIN;
    o.work_dir = (tmp.path / "work").string();
    o.backup_dir = (tmp.path / "backups").string();
    o.workers = 1;
    o.poll = std::chrono::milliseconds(50);
    return o;
  }
  // A GET whose raw body must be valid UTF-8 and, for JSON, parse.
  std::string raw_get(const std::string& path, long* status, long timeout_ms = 10000) {
    ads::http::ClientRequest r;
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
    r.headers.push_back({"Authorization", "Bearer " + token});
    r.timeout_ms = timeout_ms;
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok()) << (res ? "" : res.error().message);
    if (!res) return "";
    *status = res->status;
    EXPECT_TRUE(ads::is_valid_utf8(res->body)) << path;
    return res->body;
  }
  std::string wait_settled(const std::string& id) {
    for (int i = 0; i < 400; ++i) {
      auto d = store->get(id);
      if (d && ads::is_settled(d->state)) return ads::to_string(d->state);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "not settled";
  }
};

TEST_F(Utf8ApiTest, ASpecWithInvalidBytesFailsCleanlyAndEveryAnswerStaysValid) {
  ASSERT_TRUE(engine->start().ok());
  fs::path lab = tmp.path / "badlab";
  fs::create_directories(lab);
  std::ofstream(lab / "ads-lab.json")
      << "{\"ads\":2,\"os\":{\"name\":\"debian\",\"version\":\"12\"},\"name\":\"\xff\xfe\"}";
  auto r = call("POST", "/api/v1/deployments", json{{"source", lab.string()}, {"name", "bad"}}.dump());
  ASSERT_EQ(r.status, 202) << r.body.dump();
  std::string id = r.body["id"];
  EXPECT_EQ(wait_settled(id), "failed");

  long status = 0;
  auto list = json::parse(raw_get("/api/v1/deployments", &status));
  EXPECT_EQ(status, 200);
  ASSERT_EQ(list["deployments"].size(), 1u);
  EXPECT_EQ(list["deployments"][0]["state"], "failed");
  EXPECT_NE(list["deployments"][0]["error"].get<std::string>().find("ads-lab.json"), std::string::npos);
  EXPECT_EQ(json::parse(raw_get("/api/v1/deployments/" + id, &status))["id"], id);
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(json::parse(raw_get("/api/v1/deployments/" + id + "/logs", &status))["lines"].is_array());
  EXPECT_EQ(status, 200);
  std::string events = raw_get("/api/v1/deployments/" + id + "/events?until=settled", &status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(events.find("event: state"), std::string::npos);
  EXPECT_NE(events.find("\"failed\""), std::string::npos);
  // the server is alive and answers the next request
  EXPECT_EQ(call("GET", "/api/v1/health").status, 200);
}

TEST_F(Utf8ApiTest, RecordsAnOlderAdsStoredWithInvalidBytesAreServedAsValidText) {
  auto r = call("POST", "/api/v1/deployments", R"({"source":"https://example.invalid/lab.git","name":"old"})");
  ASSERT_EQ(r.status, 202);
  std::string id = r.body["id"];
  // written behind the store's back, as an ads without the sanitizer did
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((tmp.path / "ads.db").c_str(), &db), SQLITE_OK);
  std::string sql = "UPDATE deployments SET state='failed', error='bad \xff\xfe spec' WHERE id='" + id +
                    "'; UPDATE deployment_logs SET text='line \xc0\xaf' WHERE deployment_id='" + id +
                    "'; UPDATE jobs SET state='failed' WHERE deployment_id='" + id + "';";
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_close(db);

  long status = 0;
  auto list = json::parse(raw_get("/api/v1/deployments", &status));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(list["deployments"][0]["error"], "bad " + kR + kR + " spec");
  auto logs = json::parse(raw_get("/api/v1/deployments/" + id + "/logs", &status));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(logs["lines"][0]["text"], "line " + kR + kR);
  std::string events = raw_get("/api/v1/deployments/" + id + "/events?until=settled", &status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(events.find("bad " + kR + kR + " spec"), std::string::npos);
}

TEST_F(Utf8ApiTest, InvalidBytesInHeadersAndPathsGetClearErrors) {
  // an Idempotency-Key is stored and echoed: printable ASCII only
  ads::http::ClientRequest r;
  r.method = "POST";
  r.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/api/v1/deployments";
  r.headers = {
      {"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}, {"Idempotency-Key", "key-\xff\xfe"}};
  r.body = R"({"source":"https://example.invalid/lab.git"})";
  auto res = ads::http::request(r);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 400);
  auto body = json::parse(res->body);
  EXPECT_EQ(body["error"]["field"], "Idempotency-Key");
  EXPECT_EQ(count(), 0u);
  // a path with invalid bytes: a JSON 400 naming the path parameter
  long status = 0;
  auto nf = json::parse(raw_get("/api/v1/deployments/%ff%fe", &status));
  EXPECT_EQ(status, 400);
  EXPECT_EQ(nf["error"]["field"], "id") << nf.dump();
  // and the audit log, which records the path of every change, stays readable
  call("DELETE", "/api/v1/deployments/%ff%fe");
  auto audit = json::parse(raw_get("/api/v1/audit", &status));
  EXPECT_EQ(status, 200) << audit.dump();
}
}  // namespace
