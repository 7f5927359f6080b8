// Deploy latency: seconds from POST /api/v1/deployments to the static example
// lab serving its page (warm image cache), beside the same work done by hand
// with LXD's own CLI (launch + file push + exec + wait for HTTP) in the same
// run. Prints figures; not a test. Usage: ads_bench [ROUNDS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/client.h"
#include "support/process.h"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {
bool serves(const std::string& url, const std::string& needle, int seconds) {
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < deadline) {
    ads::http::ClientRequest r;
    r.url = url;
    r.timeout_ms = 2000;
    r.connect_timeout_ms = 500;
    auto res = ads::http::request(r);
    if (res && res->status == 200 && res->body.find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string g_token;

json api(const std::string& base, const std::string& method, const std::string& path, const json* body = nullptr) {
  ads::http::ClientRequest r;
  r.method = method;
  r.url = base + path;
  r.headers = {{"Authorization", "Bearer " + g_token}};
  if (body) {
    r.body = body->dump();
    r.headers.push_back({"Content-Type", "application/json"});
  }
  auto res = ads::http::request(r);
  return res ? json::parse(res->body, nullptr, false) : json();
}

double ads_round(const std::string& base, const std::string& lab) {
  json req = {{"source", lab}, {"name", "bench"}};
  auto t0 = Clock::now();
  json d = api(base, "POST", "/api/v1/deployments", &req);
  std::string id = d.value("id", "");
  std::string url;
  while (Clock::now() - t0 < std::chrono::seconds(300)) {
    d = api(base, "GET", "/api/v1/deployments/" + id);
    if (d.value("state", "") == "running") {
      url = d.value("url", "");
      break;
    }
    if (d.value("state", "") == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  bool ok = !url.empty() && serves(url, "ADS example lab", 30);
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  api(base, "DELETE", "/api/v1/deployments/" + id);
  for (int i = 0; i < 300 && api(base, "GET", "/api/v1/deployments/" + id).value("state", "") != "destroyed"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return ok ? s : -1;
}

double manual_round(const std::string& lab) {
  const std::string name = "ads-bench-manual";
  auto t0 = Clock::now();
  if (ads::test::run({"lxc", "launch", "ads-debian-12", name}) != 0) return -1;
  std::string ip;
  while (ip.empty() && Clock::now() - t0 < std::chrono::seconds(60)) {
    std::string out;
    ads::test::run({"lxc", "list", name, "--format", "csv", "-c", "4"}, &out);
    auto sp = out.find(' ');
    if (sp != std::string::npos && out.find('.') < sp) ip = out.substr(0, sp);
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  bool ok = !ip.empty() &&
            ads::test::run({"lxc", "exec", name, "--", "mkdir", "-p", "/srv/www"}) == 0 &&
            ads::test::run({"lxc", "file", "push", lab + "/site/index.html", name + "/srv/www/index.html"}) == 0 &&
            ads::test::run({"lxc", "exec", name, "--", "busybox", "httpd", "-p", "80", "-h", "/srv/www"}) == 0 &&
            serves("http://" + ip + "/", "ADS example lab", 30);
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ads::test::run({"lxc", "delete", "-f", name});
  return ok ? s : -1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  std::string lab = std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site";
  ads::test::TempDir tmp;
  // the bench polls every 20 ms: lift the per-token rate limit so that it measures ADS, not the limit
  std::ofstream(tmp.str() + "/bench.json") << R"({"limits":{"requests_per_second":10000,"request_burst":10000}})";
  ads::test::Child server({ADS_CLI_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", tmp.str(), "--agent-binary",
                           ADS_AGENT_BIN, "--config", tmp.str() + "/bench.json"});
  std::string line = server.read_line();
  auto pos = line.find("http://");
  if (pos == std::string::npos) {
    std::fprintf(stderr, "ads serve did not start\n");
    return 1;
  }
  std::string base = line.substr(pos);
  std::ifstream tf(tmp.str() + "/admin.token");  // written at the first start
  std::getline(tf, g_token);
  std::vector<double> a, m;
  for (int i = 0; i < rounds; ++i) {
    double x = ads_round(base, lab);
    double y = manual_round(lab);
    std::printf("round %d: ads %.2f s, by hand (lxc launch+push+exec) %.2f s\n", i + 1, x, y);
    std::fflush(stdout);
    if (x > 0) a.push_back(x);
    if (y > 0) m.push_back(y);
  }
  double ma = median(a), mm = median(m);
  std::printf("deploy_latency_static_lab_ads_median_s %.2f\n", ma);
  std::printf("deploy_latency_static_lab_by_hand_median_s %.2f\n", mm);
  if (ma > 0 && mm > 0) std::printf("ratio_ads_over_by_hand %.2f\n", ma / mm);
  return a.size() == static_cast<size_t>(rounds) && m.size() == static_cast<size_t>(rounds) ? 0 : 1;
}
