// GET /metrics: the Prometheus text format checked line by line by a small
// parser of the 0.0.4 exposition format, and its values against the store.
// A real SQLite store and a real engine; the one job it runs fails at once
// (its source does not exist), which records a step duration.
#include "api/metrics.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "api/api.h"
#include "api/auth.h"
#include "api/guard.h"
#include "http/client.h"
#include "support/build_paths.h"
#include "support/process.h"

using nlohmann::json;

namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value;
};

// Parses exposition text; every line must be a HELP, a TYPE or a sample of a
// family whose TYPE came first. Failures are test failures naming the line.
std::vector<Sample> parse(const std::string& text, std::map<std::string, std::string>* types) {
  static const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  static const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? ([-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN))$)");
  static const std::regex label(R"(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)\")");
  std::vector<Sample> out;
  std::istringstream in(text);
  std::string line;
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n') << "the last line ends with a newline";
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, help)) continue;
    if (std::regex_match(line, m, type)) {
      EXPECT_FALSE(types->count(m[1])) << "second TYPE for " << m[1];
      (*types)[m[1]] = m[2];
      continue;
    }
    if (!std::regex_match(line, m, sample)) {
      ADD_FAILURE() << "not a well-formed line: \"" << line << "\"";
      continue;
    }
    Sample s;
    s.name = m[1];
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string suf = suffix;
      if (!types->count(family) && family.size() > suf.size() &&
          family.compare(family.size() - suf.size(), suf.size(), suf) == 0)
        family.resize(family.size() - suf.size());
    }
    EXPECT_TRUE(types->count(family)) << "sample before its # TYPE: " << line;
    std::string labels = m[3];
    for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it)
      s.labels[(*it)[1]] = (*it)[2];
    s.value = std::stod(m[4]);
    out.push_back(std::move(s));
  }
  return out;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(st.ok()) << st.error().message;
    store = std::move(st.value());
    std::map<std::string, std::unique_ptr<ads::Provider>> providers;
    providers["lxd"] = std::move(ads::make_provider("lxd", json::object()).value());
    ads::EngineOptions eo;
    eo.agent_binary = ADS_AGENT_BIN;
    eo.work_dir = (tmp.path / "work").string();
    eo.backup_dir = (tmp.path / "backups").string();
    eo.server_id = "test \"server\"";  // quoted in labels
    engine = std::make_unique<ads::Engine>(*store, std::move(providers), eo);
    auth = std::make_unique<ads::Auth>(*store);
    auto boot = auth->bootstrap();
    ASSERT_TRUE(boot.ok() && boot->has_value());
    admin_token = **boot;
  }
  // /metrics alone, or (with_api) beside the API's routes, as `ads serve` has it
  void serve(bool need_token, const ads::ApiLimits& limits = {}, bool with_api = false) {
    server = std::make_unique<ads::http::Server>(ads::http::ServerOptions{"127.0.0.1", 0, 4096, 8, 5});
    auto guard = with_api ? ads::register_api(*server, *store, *engine, *auth, limits)
                          : std::make_shared<ads::RequestGuard>(*store, *auth, limits);
    ads::register_metrics(*server, *store, *engine, guard, need_token);
    ASSERT_TRUE(server->start().ok());
  }
  ads::Result<ads::http::ClientResponse> get(const std::string& token, const std::string& path = "/metrics") {
    ads::http::ClientRequest r;
    r.method = "GET";
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
    if (!token.empty()) r.headers.push_back({"Authorization", "Bearer " + token});
    return ads::http::request(r);
  }
  void add(const std::string& id, ads::State s) {
    ads::Deployment d;
    d.id = id;
    d.name = "lab";
    d.source = "/srv/lab";
    d.provider = "lxd";
    d.state = s;
    ASSERT_TRUE(store->create(d).ok());
  }

  ads::test::TempDir tmp;
  std::unique_ptr<ads::Store> store;
  std::unique_ptr<ads::Engine> engine;
  std::unique_ptr<ads::http::Server> server;
  std::unique_ptr<ads::Auth> auth;
  std::string admin_token;
};

TEST_F(MetricsTest, WellFormedAndMatchesTheStore) {
  // a real deploy through the engine: fails at fetching (no such source)
  ASSERT_TRUE(engine->start().ok());
  auto d = engine->submit({"/nonexistent/ads-metrics-test-lab", "", "lab", "", "", "admin", false, 0, true});
  ASSERT_TRUE(d.ok()) << d.error().message;
  for (int i = 0; i < 600 && store->get(d->id)->state != ads::State::kFailed; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(store->get(d->id)->state, ads::State::kFailed);
  engine->stop();
  add("01aaaaaaaaaaaaaaaaaaaaaaa1", ads::State::kRunning);
  add("01aaaaaaaaaaaaaaaaaaaaaaa2", ads::State::kRunning);
  add("01aaaaaaaaaaaaaaaaaaaaaaa3", ads::State::kStopped);
  ads::Job j;
  j.id = "01jjjjjjjjjjjjjjjjjjjjjjj1";
  j.deployment_id = "01aaaaaaaaaaaaaaaaaaaaaaa3";
  j.kind = "start";
  ASSERT_TRUE(store->create_job(j).ok());  // queued: the engine has stopped
  serve(true);

  auto r = get(admin_token);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  std::map<std::string, std::string> types;
  auto samples = parse(r->body, &types);
  EXPECT_EQ(types["ads_deployments"], "gauge");
  EXPECT_EQ(types["ads_jobs_queued"], "gauge");
  EXPECT_EQ(types["ads_step_duration_seconds"], "histogram");
  EXPECT_EQ(types["ads_http_connections"], "gauge");
  EXPECT_EQ(types["ads_http_refused_total"], "counter");
  EXPECT_EQ(types["ads_http_threads"], "gauge");
  double served = -1, accepted = -1, serving_threads = -1, idle_threads = -1;
  for (auto& s : samples) {
    if (s.name == "ads_http_connections" && s.labels["state"] == "served") served = s.value;
    if (s.name == "ads_http_connections_accepted_total") accepted = s.value;
    if (s.name == "ads_http_threads" && s.labels["state"] == "serving") serving_threads = s.value;
    if (s.name == "ads_http_threads" && s.labels["state"] == "idle") idle_threads = s.value;
  }
  EXPECT_EQ(served, 1);  // this request's connection
  EXPECT_GE(accepted, 1);
  EXPECT_EQ(serving_threads, 1);  // its thread
  EXPECT_NE(idle_threads, -1);    // the sample is there

  // deployments by state: one sample per state, equal to the store's count
  std::map<std::string, double> by_state;
  for (auto& s : samples)
    if (s.name == "ads_deployments") by_state[s.labels["state"]] = s.value;
  EXPECT_EQ(by_state.size(), ads::all_states().size());
  auto all = store->list({}).value();
  std::map<std::string, double> want;
  for (auto& st : ads::all_states()) want[ads::to_string(st)] = 0;
  for (auto& dep : all) want[ads::to_string(dep.state)] += 1;
  EXPECT_EQ(by_state, want);
  EXPECT_EQ(by_state["running"], 2);
  EXPECT_EQ(by_state["failed"], 1);

  // queue depth and running jobs, as the store has them
  double queued = -1, running = -1;
  for (auto& s : samples) {
    if (s.name == "ads_jobs_queued") queued = s.value;
    if (s.name == "ads_jobs_running") running = s.value;
  }
  double want_queued = 0, want_running = 0;
  auto jobs = store->unfinished_jobs().value();
  for (auto& job : jobs) (job.state == "queued" ? want_queued : want_running) += 1;
  EXPECT_EQ(queued, want_queued);
  EXPECT_EQ(queued, 1);
  EXPECT_EQ(running, want_running);

  // the deploy's "fetching" step: cumulative buckets, +Inf equal to _count
  std::vector<double> buckets;
  double inf = -1, count = -1, sum = -1;
  for (auto& s : samples) {
    if (s.labels["kind"] != "deploy" || s.labels["step"] != "fetching") continue;
    if (s.name == "ads_step_duration_seconds_bucket") {
      if (s.labels["le"] == "+Inf") inf = s.value;
      else buckets.push_back(s.value);
    }
    if (s.name == "ads_step_duration_seconds_count") count = s.value;
    if (s.name == "ads_step_duration_seconds_sum") sum = s.value;
  }
  ASSERT_EQ(buckets.size(), ads::Engine::step_bounds().size()) << r->body;
  for (size_t i = 1; i < buckets.size(); ++i) EXPECT_LE(buckets[i - 1], buckets[i]);
  EXPECT_EQ(count, 1);
  EXPECT_EQ(inf, count);
  EXPECT_GE(sum, 0);
  for (auto& s : samples) {
    if (s.name == "ads_server_info") {
      EXPECT_EQ(s.labels["server_id"], "test \\\"server\\\"");
    }
  }
}

// The checker itself: it rejects what the format does not allow.
TEST(MetricsFormatCheck, RejectsMalformedLines) {
  std::map<std::string, std::string> t1, t2, t3, t4;
  EXPECT_NONFATAL_FAILURE(parse("# TYPE a gauge\na{x=\"1\"} one\n", &t1), "not a well-formed line");
  EXPECT_NONFATAL_FAILURE(parse("# TYPE a gauge\na{x=1} 1\n", &t2), "not a well-formed line");
  EXPECT_NONFATAL_FAILURE(parse("b 1\n", &t3), "sample before its # TYPE");
  EXPECT_NONFATAL_FAILURE(parse("# TYPE a gauge\na 1", &t4), "ends with a newline");
  std::map<std::string, std::string> ok;
  auto s = parse("# HELP a x\n# TYPE a histogram\na_bucket{le=\"+Inf\",q=\"a\\\"b\"} 2\na_count 2\n", &ok);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].labels["le"], "+Inf");
  EXPECT_EQ(s[0].labels["q"], "a\\\"b");
}

TEST_F(MetricsTest, NeedsATokenOfAnyRoleUnlessConfiguredOpen) {
  serve(true);
  auto anon = get("");
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon->status, 401);
  EXPECT_NE(json::parse(anon->body, nullptr, false)["error"].value("code", ""), "");
  auto bad = get("not-a-token");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 401);
  auto viewer = auth->create_user("watcher", ads::Role::kViewer, "a long enough password");
  ASSERT_TRUE(viewer.ok()) << viewer.error().message;
  auto tok = auth->issue_token(*viewer, "prometheus", 0);
  ASSERT_TRUE(tok.ok());
  auto v = get(tok->second);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->status, 200);
  EXPECT_NE(v->body.find("# TYPE ads_deployments gauge"), std::string::npos);

  serve(false);
  auto open = get("");
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->status, 200);
  EXPECT_NE(open->body.find("ads_jobs_queued 0"), std::string::npos) << open->body;
}

// Guessing tokens on /metrics spends the client address's budget of failed
// authentications, the same one as every API route (issue 15.11: /metrics
// used to answer every bad token with a 401, for ever).
TEST_F(MetricsTest, BadTokensSpendTheAddressBudgetSharedWithTheApi) {
  ads::ApiLimits strict;
  strict.auth_failures_per_minute = 0.001;  // no refill within the test
  strict.auth_failure_burst = 3;
  serve(true, strict, /*with_api=*/true);
  for (int i = 0; i < 3; ++i) {
    auto bad = get("ads_guess" + std::to_string(i));
    ASSERT_TRUE(bad.ok());
    EXPECT_EQ(bad->status, 401) << i;
  }
  auto over = get("ads_guess3");
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(over->status, 429) << over->body;
  EXPECT_GE(std::stoi(over->headers["retry-after"]), 1);
  auto body = json::parse(over->body, nullptr, false);
  EXPECT_EQ(body["error"].value("code", ""), "too_many_requests") << over->body;
  // one budget: the API's routes refuse the next guess from this address too
  auto api = get("ads_guess4", "/api/v1/whoami");
  ASSERT_TRUE(api.ok());
  EXPECT_EQ(api->status, 429) << api->body;
  // no token at all spends nothing and is still a 401; a good token still reads
  auto anon = get("");
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon->status, 401);
  auto good = get(admin_token);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->status, 200);
  EXPECT_NE(good->body.find("# TYPE ads_deployments gauge"), std::string::npos);
}

}  // namespace
