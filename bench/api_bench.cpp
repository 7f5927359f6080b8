// API throughput: GET /api/v1/deployments (the first page, 100 records) on a
// store holding N deployments, against a real `ads serve`, on SQLite and on
// PostgreSQL (a server this program starts on loopback, as the tests do).
// Prints requests/s and p50/p99 latency, the binaries' sizes and the
// server's RSS. Prints figures; not a test.
// Usage: ads_api_bench [sqlite|postgres|both] [RECORDS=10000] [SECONDS=10] [CLIENTS=4]
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"
#include "store/store.h"
#include "support/postgres.h"
#include "support/process.h"

using Clock = std::chrono::steady_clock;

namespace {

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

long file_size(const char* path) {
  struct stat st {};
  return stat(path, &st) == 0 ? static_cast<long>(st.st_size) : -1;
}

bool fill(const std::string& url, int records) {
  auto s = ads::open_store(url);
  if (!s) {
    std::fprintf(stderr, "cannot open %s: %s\n", url.c_str(), s.error().message.c_str());
    return false;
  }
  for (int i = 0; i < records; ++i) {
    ads::Deployment d;
    char id[32];
    std::snprintf(id, sizeof id, "01bench%019d", i);
    d.id = id;
    d.name = "lab" + std::to_string(i % 50);
    d.source = "https://git.example.invalid/labs/lab" + std::to_string(i % 50) + ".git";
    d.ref = "main";
    d.commit = std::string(40, 'a');
    d.provider = "lxd";
    d.state = i % 10 == 0 ? ads::State::kFailed : ads::State::kRunning;
    d.machine = "ads-" + d.id;
    d.address = "10.0.0." + std::to_string(i % 250 + 2);
    d.url = "http://" + d.address + "/";
    d.secret = std::string(64, 'f');
    d.spec_json = R"({"ads":2,"os":{"name":"debian","version":"12"},"install":["make install"]})";
    d.owner = "admin";
    d.created_ms = d.updated_ms = 1700000000000 + i;
    if (!(*s)->create(d)) return false;
  }
  return true;
}

void run(const std::string& backend, const std::string& url, const std::string& data_dir, int records, int seconds,
         int clients) {
  auto t0 = Clock::now();
  if (!fill(url, records)) return;
  double fill_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // all clients share one token: lift the per-token rate limit so that the bench measures ADS, not the limiter
  std::filesystem::create_directories(data_dir);
  std::string config = data_dir + "/bench.json";
  std::ofstream(config) << R"({"limits":{"requests_per_second":1000000,"request_burst":1000000}})";
  ads::test::Child server({ADS_CLI_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--store", url,
                           "--agent-binary", ADS_AGENT_BIN, "--config", config});
  std::string line = server.read_line();
  auto pos = line.find("http://");
  if (pos == std::string::npos) {
    std::fprintf(stderr, "ads serve did not start on %s\n", backend.c_str());
    return;
  }
  std::string base = line.substr(pos);
  std::string token;
  std::ifstream(data_dir + "/admin.token") >> token;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<double> lat_ms;
  std::atomic<long> errors{0};
  std::vector<std::thread> ts;
  auto start = Clock::now();
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&] {
      std::vector<double> mine;
      ads::http::ClientRequest r;
      r.url = base + "/api/v1/deployments";
      r.headers = {{"Authorization", "Bearer " + token}};
      while (!stop) {
        auto a = Clock::now();
        auto res = ads::http::request(r);
        auto b = Clock::now();
        if (!res || res->status != 200) ++errors;
        else mine.push_back(std::chrono::duration<double, std::milli>(b - a).count());
      }
      std::lock_guard<std::mutex> lk(mu);
      lat_ms.insert(lat_ms.end(), mine.begin(), mine.end());
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(lat_ms.begin(), lat_ms.end());
  auto pct = [&](double p) { return lat_ms.empty() ? -1 : lat_ms[static_cast<size_t>(p * (lat_ms.size() - 1))]; };
  std::printf("%s: %d records (filled in %.1f s), %d clients, %d s\n", backend.c_str(), records, fill_s, clients,
              seconds);
  std::printf("api_get_deployments_%s_requests_per_s %.0f\n", backend.c_str(), lat_ms.size() / elapsed);
  std::printf("api_get_deployments_%s_p50_ms %.2f\n", backend.c_str(), pct(0.50));
  std::printf("api_get_deployments_%s_p99_ms %.2f\n", backend.c_str(), pct(0.99));
  std::printf("api_get_deployments_%s_errors %ld\n", backend.c_str(), errors.load());
  std::printf("ads_serve_%s_rss_kb_after_load %ld\n", backend.c_str(), rss_kb(server.pid()));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = argc > 1 ? argv[1] : "both";
  int records = argc > 2 ? std::max(1, std::atoi(argv[2])) : 10000;
  int seconds = argc > 3 ? std::max(1, std::atoi(argv[3])) : 10;
  int clients = argc > 4 ? std::max(1, std::atoi(argv[4])) : 4;
  std::printf("binary_size_ads_bytes %ld\n", file_size(ADS_CLI_BIN));
  std::printf("binary_size_ads_agent_bytes %ld (static, stripped)\n", file_size(ADS_AGENT_BIN));
  if (which == "sqlite" || which == "both") {
    ads::test::TempDir tmp;
    run("sqlite", "sqlite://" + tmp.str() + "/ads.db", tmp.str() + "/data", records, seconds, clients);
  }
  if (which == "postgres" || which == "both") {
    ads::test::PostgresServer pg;
    if (!pg.ok()) {
      std::fprintf(stderr, "cannot start PostgreSQL: %s\n", pg.error().c_str());
      return 1;
    }
    ads::test::TempDir tmp;
    run("postgres", pg.fresh_database(), tmp.str() + "/data", records, seconds, clients);
  }
  return 0;
}
