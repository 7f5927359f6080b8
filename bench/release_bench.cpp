// Zero-downtime releases: a client requests a lab's stable URL (through the
// reverse proxy) 50 times a second while ADS releases v2 of the lab and then
// rolls back to v1. Prints how many requests failed (the bar is 0), how long
// the release and the rollback jobs took, and when the new version was first
// served. Not a test. Usage:
//   ads_release_bench [stopped|running] [RPS]
// stopped (default): kept releases are stopped (keep_releases_running false);
// running: they stay running, so a rollback needs no machine start.
// Needs LXD (scripts/lxd-host.sh, scripts/build-image.sh) and haproxy (the
// default proxy).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/client.h"
#include "router/caddy_process.h"
#include "router/haproxy_process.h"
#include "support/build_paths.h"
#include "support/process.h"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string g_base, g_token;

json api(const std::string& method, const std::string& path, const json* body = nullptr) {
  ads::http::ClientRequest r;
  r.method = method;
  r.url = g_base + path;
  r.headers = {{"Authorization", "Bearer " + g_token}};
  if (body) {
    r.body = body->dump();
    r.headers.push_back({"Content-Type", "application/json"});
  }
  auto res = ads::http::request(r);
  return res ? json::parse(res->body, nullptr, false) : json();
}

json wait_job(const std::string& id) {
  json j;
  for (int i = 0; i < 6000; ++i) {
    j = api("GET", "/api/v1/jobs/" + id);
    std::string s = j.value("state", "");
    if (s == "succeeded" || s == "failed" || s == "cancelled") return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return j;
}

bool git(const std::string& repo, std::vector<std::string> args) {
  std::vector<std::string> argv = {
      "git", "-C", repo, "-c", "user.name=ads-bench", "-c", "user.email=bench@ads.invalid"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  return ads::test::run(argv, &out) == 0;
}

// The load: one GET every 1/rps s on the stable URL, each on a new connection
// (as many independent users would), 5 s timeout.
struct Load {
  std::string url;
  int rps = 50;
  std::atomic<bool> stop{false};
  std::mutex mu;
  uint64_t requests = 0, failures = 0;
  std::map<std::string, Clock::time_point> first_seen;  // body -> first time served
  std::vector<std::string> errors;
  std::thread t;
  void start() {
    t = std::thread([this] {
      auto next = Clock::now();
      while (!stop) {
        ads::http::ClientRequest r;
        r.url = url;
        r.timeout_ms = 5000;
        r.connect_timeout_ms = 2000;
        auto res = ads::http::request(r);
        auto now = Clock::now();
        std::lock_guard<std::mutex> lk(mu);
        ++requests;
        if (!res || res->status != 200) {
          ++failures;
          if (errors.size() < 10) errors.push_back(res ? "HTTP " + std::to_string(res->status) : res.error().message);
        } else if (!first_seen.count(res->body)) {
          first_seen[res->body] = now;
        }
        next += std::chrono::microseconds(1000000 / rps);
        std::this_thread::sleep_until(next);
      }
    });
  }
  void finish() {
    stop = true;
    if (t.joinable()) t.join();
  }
};

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

int bench_main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "stopped";
  int rps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 50;
  if (mode != "stopped" && mode != "running") {
    std::fprintf(stderr, "usage: ads_release_bench [stopped|running] [RPS]\n");
    return 2;
  }
  ads::test::TempDir tmp;
  // the proxy outlives ads serve by design: stopped when the bench ends
  struct StopProxy {
    std::string dir;
    ~StopProxy() {
      (void)ads::router::stop_haproxy(dir);
      (void)ads::router::stop_proxy(dir);
    }
  } stop_proxy{tmp.str() + "/data/proxy"};
  // the lab: the static example, its page showing its version; tags v1 and v2
  std::string repo = tmp.str() + "/lab";
  fs::copy(std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site", repo, fs::copy_options::recursive);
  std::ofstream(repo + "/site/index.html", std::ios::trunc) << "ADS example lab version 1\n";
  if (!git(repo, {"init", "-q", "-b", "main"}) || !git(repo, {"add", "-A"}) || !git(repo, {"commit", "-qm", "v1"}) ||
      !git(repo, {"tag", "v1"})) {
    std::fprintf(stderr, "cannot make the lab's repository\n");
    return 1;
  }
  std::ofstream(repo + "/site/index.html", std::ios::trunc) << "ADS example lab version 2\n";
  if (!git(repo, {"commit", "-qam", "v2"}) || !git(repo, {"tag", "v2"})) return 1;

  json cfg = {{"proxy", {{"ports", "18100-18119"}, {"listen", "127.0.0.1:18099"}, {"public_host", "127.0.0.1"}}},
              {"keep_releases", 1},
              {"keep_releases_running", mode == "running"},
              {"drain_ms", 2000},
              {"limits", {{"requests_per_second", 10000}, {"request_burst", 10000}}}};
  std::ofstream(tmp.str() + "/bench.json") << cfg.dump();
  ads::test::Child server({ADS_CLI_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", tmp.str() + "/data",
                           "--agent-binary", ADS_AGENT_BIN, "--config", tmp.str() + "/bench.json"});
  for (int i = 0; i < 6 && g_base.empty(); ++i) {
    std::string line = server.read_line();
    auto pos = line.find("listening on ");
    if (pos != std::string::npos) g_base = line.substr(pos + 13);
    if (line.empty()) break;
  }
  if (g_base.empty()) {
    std::fprintf(stderr, "ads serve did not start\n");
    return 1;
  }
  std::ifstream(tmp.str() + "/data/admin.token") >> g_token;

  json req = {{"source", repo}, {"ref", "v1"}, {"name", "bench-release"}};
  json d = api("POST", "/api/v1/deployments", &req);
  std::string id = d.value("id", "");
  for (int i = 0; i < 3000; ++i) {
    d = api("GET", "/api/v1/deployments/" + id);
    if (d.value("state", "") == "running" || d.value("state", "") == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int rc = 0;
  std::string url = d.value("stable_url", "");
  if (d.value("state", "") != "running" || url.empty()) {
    std::fprintf(stderr, "the lab did not reach running with a stable URL: %s\n", d.dump().c_str());
    rc = 1;
  } else {
    Load load;
    load.url = url;
    load.rps = rps;
    load.start();
    std::this_thread::sleep_for(std::chrono::seconds(3));  // load before the release

    json body = {{"ref", "v2"}};
    auto t0 = Clock::now();
    json job = wait_job(api("POST", "/api/v1/deployments/" + id + "/releases", &body).value("id", ""));
    auto t1 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    json none = json::object();
    auto t2 = Clock::now();
    json back = wait_job(api("POST", "/api/v1/deployments/" + id + "/rollback", &none).value("id", ""));
    auto t3 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    load.finish();

    std::lock_guard<std::mutex> lk(load.mu);
    auto v2 = load.first_seen.count("ADS example lab version 2\n") ? load.first_seen["ADS example lab version 2\n"]
                                                                   : Clock::time_point{};
    std::printf("mode %s (kept releases %s), load %d requests/s on %s\n", mode.c_str(),
                mode == "running" ? "running" : "stopped", rps, url.c_str());
    std::printf("release_job %s\n", job.value("state", "?").c_str());
    std::printf("rollback_job %s\n", back.value("state", "?").c_str());
    std::printf("release_s %.2f\n", secs(t0, t1));
    std::printf("release_request_to_v2_served_s %.2f\n", v2 == Clock::time_point{} ? -1.0 : secs(t0, v2));
    std::printf("rollback_s %.2f\n", secs(t2, t3));
    std::printf("requests %llu\n", static_cast<unsigned long long>(load.requests));
    std::printf("failed_requests %llu\n", static_cast<unsigned long long>(load.failures));
    for (auto& e : load.errors) std::printf("  error: %s\n", e.c_str());
    if (job.value("state", "") != "succeeded" || back.value("state", "") != "succeeded") {
      std::printf("release: %s\nrollback: %s\n", job.dump().c_str(), back.dump().c_str());
      rc = 1;
    }
    if (load.failures) rc = 1;
  }
  // always clean up: the destroy removes every release's machine
  api("DELETE", "/api/v1/deployments/" + id);
  for (int i = 0; i < 1200 && api("GET", "/api/v1/deployments/" + id).value("state", "") != "destroyed"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return bench_main(argc, argv);
  } catch (const std::exception& e) {  // a message and a failure, not std::terminate
    std::fprintf(stderr, "ads_release_bench: %s\n", e.what());
    return 1;
  }
}
