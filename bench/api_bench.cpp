// API throughput: GET /api/v1/deployments (the first page, 100 records) on a
// store holding N deployments, against a real `ads serve`, on SQLite and on
// PostgreSQL (a server this program starts on loopback, as the tests do).
// Prints requests/s and p50/p99 latency, the binaries' sizes and the
// server's RSS. Prints figures; not a test.
// Usage: ads_api_bench [sqlite|postgres|both] [RECORDS=10000] [SECONDS=10] [CLIENTS=4]
//
// Connection limits (docs/operators/limits.md), against `ads serve` on SQLite
// with its default HTTP settings:
//   ads_api_bench concurrent [CLIENTS=200] [ROUNDS=5]
//     CLIENTS clients open a connection at the same instant and each asks
//     GET /api/v1/deployments, ROUNDS times: p50/p99/max latency, failures.
//   ads_api_bench slowloris [SLOW=300] [HONEST=8] [SECONDS=30] [BYTE_EVERY_MS=10000]
//     SLOW connections without a token, from several loopback addresses (at
//     most 64 each, the per-address share), each sending one byte of a
//     request head every BYTE_EVERY_MS and connecting again when cut; meanwhile
//     HONEST clients with a token, and as many without one (GET /, the web UI), ask
//     in a loop: their success rate and latency, and what the server cut.
// ADS_BENCH_ADS=/path/to/ads runs another `ads` binary (an older build, to compare).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/env.h"
#include "http/client.h"
#include "store/store.h"
#include "support/build_paths.h"
#include "support/postgres.h"
#include "support/process.h"

using Clock = std::chrono::steady_clock;

namespace {

std::string ads_binary() {
  auto other = ads::env_var("ADS_BENCH_ADS");
  return other && !other->empty() ? *other : ADS_CLI_BIN;
}

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
  ads::test::Child server({ads_binary(), "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--store", url,
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
  ts.reserve(static_cast<size_t>(clients));
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

struct Serve {
  std::unique_ptr<ads::test::Child> child;
  std::string base;  // http://127.0.0.1:PORT
  std::string port;
  std::string token;
};

// `ads serve` on SQLite in `data_dir` with `config` (JSON text); base empty if it did not start.
Serve start_serve(const std::string& data_dir, const std::string& config) {
  Serve s;
  std::filesystem::create_directories(data_dir);
  std::string file = data_dir + "/bench.json";
  std::ofstream(file) << config;
  s.child = std::make_unique<ads::test::Child>(
      std::vector<std::string>{ads_binary(), "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--store",
                               "sqlite://" + data_dir + "/ads.db", "--agent-binary", ADS_AGENT_BIN, "--config", file});
  std::string line = s.child->read_line();
  auto pos = line.find("http://");
  if (pos == std::string::npos) {
    std::fprintf(stderr, "ads serve did not start: %s\n", line.c_str());
    return s;
  }
  s.base = line.substr(pos);
  s.port = s.base.substr(s.base.rfind(':') + 1);
  std::ifstream(data_dir + "/admin.token") >> s.token;
  return s;
}

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

std::string today() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::tm utc{};
  gmtime_r(&t, &utc);
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &utc);
  return buf;
}

// CLIENTS clients at once, ROUNDS times: everyone must get the list.
int run_concurrent(int clients, int rounds) {
  ads::test::TempDir tmp;
  int records = 1000;
  std::filesystem::create_directories(tmp.str() + "/data");
  if (!fill("sqlite://" + tmp.str() + "/data/ads.db", records)) return 1;
  // one token for every client: lift its request rate, so that the figures are the server's connections
  Serve srv = start_serve(tmp.str() + "/data", R"({"limits":{"requests_per_second":1000000,"request_burst":1000000}})");
  if (srv.base.empty()) return 1;
  std::vector<double> lat_ms;
  std::map<std::string, long> failures;
  std::mutex mu;
  for (int round = 0; round < rounds; ++round) {
    std::latch go(clients);
    std::vector<std::thread> ts;
    ts.reserve(static_cast<size_t>(clients));
    for (int c = 0; c < clients; ++c) {
      ts.emplace_back([&] {
        ads::http::ClientRequest r;
        r.url = srv.base + "/api/v1/deployments";
        r.headers = {{"Authorization", "Bearer " + srv.token}};
        r.timeout_ms = 60000;
        go.arrive_and_wait();
        auto a = Clock::now();
        auto res = ads::http::request(r);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
        std::lock_guard<std::mutex> lk(mu);
        if (!res) ++failures[res.error().code];
        else if (res->status != 200) ++failures["http " + std::to_string(res->status)];
        else lat_ms.push_back(ms);
      });
    }
    for (auto& t : ts) t.join();
  }
  long failed = 0;
  for (auto& [k, n] : failures) failed += n;
  std::printf(
      "concurrent: %s, ads serve (SQLite, %d records, default http settings), %d clients at once x %d rounds, "
      "GET /api/v1/deployments, a new connection each\n",
      today().c_str(), records, clients, rounds);
  std::printf("concurrent_requests %d\n", clients * rounds);
  std::printf("concurrent_ok %zu\n", lat_ms.size());
  std::printf("concurrent_failures %ld\n", failed);
  for (auto& [k, n] : failures) std::printf("concurrent_failures{%s} %ld\n", k.c_str(), n);
  std::printf("concurrent_p50_ms %.1f\n", pct(lat_ms, 0.50));
  std::printf("concurrent_p99_ms %.1f\n", pct(lat_ms, 0.99));
  std::printf("concurrent_max_ms %.1f\n", pct(lat_ms, 1.0));
  std::printf("ads_serve_rss_kb_after %ld\n", rss_kb(srv.child->pid()));
  std::fflush(stdout);
  return failed == 0 ? 0 : 2;
}

// The slow-client attack: SLOW connections trickling heads, HONEST clients asking.
int run_slowloris(int slow, int honest, int seconds, int byte_every_ms) {
  ads::test::TempDir tmp;
  std::filesystem::create_directories(tmp.str() + "/data");
  if (!fill("sqlite://" + tmp.str() + "/data/ads.db", 200)) return 1;
  Serve srv = start_serve(tmp.str() + "/data", R"({"limits":{"requests_per_second":1000000,"request_burst":1000000}})");
  if (srv.base.empty()) return 1;
  const uint16_t port = static_cast<uint16_t>(std::stoi(srv.port));
  std::atomic<bool> stop{false};

  // the attacker: one thread, `slow` sockets from 127.0.2.1, .2, ... (64 each)
  std::atomic<long> attacker_connects{0}, attacker_cut{0}, attacker_refused{0};
  std::thread attacker([&] {
    const std::string head = "GET /api/v1/deployments HTTP/1.1\r\nHost: ads\r\nX-Slow: " + std::string(4000, 'a');
    struct Sock {
      int fd = -1;
      size_t sent = 0;
      Clock::time_point next;
      std::string source;
    };
    std::vector<Sock> socks(static_cast<size_t>(slow));
    for (size_t i = 0; i < socks.size(); ++i) socks[i].source = "127.0.2." + std::to_string(1 + i / 64);
    auto connect = [&](Sock& s) {
      s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in src{}, dst{};
      src.sin_family = dst.sin_family = AF_INET;
      ::inet_pton(AF_INET, s.source.c_str(), &src.sin_addr);
      dst.sin_port = htons(port);
      dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(s.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
          ::connect(s.fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
        ::close(s.fd);
        s.fd = -1;
        s.next = Clock::now() + std::chrono::milliseconds(100);
        return;
      }
      ++attacker_connects;
      s.sent = 0;
      s.next = Clock::now();
    };
    while (!stop) {
      std::vector<pollfd> fds;
      for (auto& s : socks) {
        if (s.fd < 0 && Clock::now() >= s.next) connect(s);
        fds.push_back({s.fd, POLLIN, 0});
      }
      ::poll(fds.data(), fds.size(), 50);
      auto now = Clock::now();
      for (size_t i = 0; i < socks.size(); ++i) {
        auto& s = socks[i];
        if (s.fd < 0) continue;
        if (fds[i].revents) {  // the server answered (408, 429, 503) or closed: count it, come again
          char buf[512];
          ssize_t n = ::recv(s.fd, buf, sizeof buf, MSG_DONTWAIT);
          // cut: a 408 (too slow) or closed without an answer; refused: any other answer (429, 503)
          bool timed_out = n > 0 && std::string(buf, static_cast<size_t>(std::min<ssize_t>(n, 12))).find(" 408") !=
                                        std::string::npos;
          if (n > 0 && !timed_out) ++attacker_refused;
          else ++attacker_cut;
          ::close(s.fd);
          s.fd = -1;
          s.next = now;
          continue;
        }
        if (now >= s.next && s.sent < head.size()) {
          (void)!::send(s.fd, head.data() + s.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
          ++s.sent;
          s.next = now + std::chrono::milliseconds(byte_every_ms);
        }
      }
    }
    for (auto& s : socks)
      if (s.fd >= 0) ::close(s.fd);
  });

  // let the attacker take its connections first
  std::this_thread::sleep_for(std::chrono::seconds(3));
  struct Tally {
    std::vector<double> lat_ms;
    std::map<std::string, long> failures;
    long ok = 0;
  };
  Tally with_token, without;
  std::mutex mu;
  std::vector<std::thread> ts;
  for (int h = 0; h < 2 * honest; ++h) {
    bool token = h < honest;
    ts.emplace_back([&, token] {
      ads::http::ClientRequest r;
      r.url = srv.base + (token ? "/api/v1/deployments" : "/");
      if (token) r.headers = {{"Authorization", "Bearer " + srv.token}};
      r.timeout_ms = 30000;
      while (!stop) {
        auto a = Clock::now();
        auto res = ads::http::request(r);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
        std::lock_guard<std::mutex> lk(mu);
        Tally& t = token ? with_token : without;
        if (!res) ++t.failures[res.error().code];
        else if (res->status != 200) ++t.failures["http " + std::to_string(res->status)];
        else {
          ++t.ok;
          t.lat_ms.push_back(ms);
        }
        if (res && res->status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  attacker.join();
  std::printf(
      "slowloris: %s, ads serve (SQLite, default http settings), %d slow connections without a token "
      "(one byte every %d ms, from %d addresses), %d clients with a token (GET /api/v1/deployments) and %d "
      "without (GET /), %d s\n",
      today().c_str(), slow, byte_every_ms, (slow + 63) / 64, honest, honest, seconds);
  for (auto* t : {&with_token, &without}) {
    const char* name = t == &with_token ? "with_token" : "without_token";
    long failed = 0;
    for (auto& [k, n] : t->failures) failed += n;
    long all = t->ok + failed;
    std::printf("slowloris_%s_requests %ld\n", name, all);
    std::printf("slowloris_%s_success_rate %.3f\n", name, all ? static_cast<double>(t->ok) / all : 0.0);
    for (auto& [k, n] : t->failures) std::printf("slowloris_%s_failures{%s} %ld\n", name, k.c_str(), n);
    std::printf("slowloris_%s_p50_ms %.1f\n", name, pct(t->lat_ms, 0.50));
    std::printf("slowloris_%s_p99_ms %.1f\n", name, pct(t->lat_ms, 0.99));
  }
  std::printf("slowloris_attacker_connections %ld\n", attacker_connects.load());
  std::printf("slowloris_attacker_cut %ld\n", attacker_cut.load());
  std::printf("slowloris_attacker_refused %ld\n", attacker_refused.load());
  std::printf("ads_serve_rss_kb_after %ld\n", rss_kb(srv.child->pid()));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = argc > 1 ? argv[1] : "both";
  if (which == "concurrent")
    return run_concurrent(argc > 2 ? std::max(1, std::atoi(argv[2])) : 200,
                          argc > 3 ? std::max(1, std::atoi(argv[3])) : 5);
  if (which == "slowloris")
    return run_slowloris(
        argc > 2 ? std::max(1, std::atoi(argv[2])) : 300, argc > 3 ? std::max(1, std::atoi(argv[3])) : 8,
        argc > 4 ? std::max(1, std::atoi(argv[4])) : 30, argc > 5 ? std::max(1, std::atoi(argv[5])) : 10000);
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
