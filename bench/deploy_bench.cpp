// Deploy latency: seconds from POST /api/v1/deployments to the static example
// lab serving its page (warm image cache), beside the same work done by hand
// with LXD's own CLI (launch + file push + exec + wait for HTTP) in the same
// run, and the seconds from DELETE to `destroyed`. Prints figures; not a
// test. Usage: ads_bench [--warm N] [--workers W] [ROUNDS]
// `ads_bench concurrent [N...]` (default 1 5 20): N deployments posted at once
// (the server has N workers); p50/p95 of their latencies per N.
// `ads_bench footprint [N]` (default 3): N static labs deployed and left idle
// for 10 s; per container its memory (LXD's figure: the container's memory
// cgroup) and the agent's RSS (VmRSS of the ads-agent process in that
// container, read from the host's /proc), then the medians; and the disk
// per lab: the blocks that are the lab container's alone (btrfs: the
// "Exclusive" column of `btrfs filesystem du`, beside the image's blocks it
// shares; a dir pool: the container's whole directory). Then whether each
// still answers with all of them running, and the host's MemAvailable drop
// per lab. `ads_bench footprint 200`: issue 19's 200 labs at once.
// `ads_bench --warm N ...`: the server keeps N warm machines of debian-12
// (docs/operators/warm-machines.md); before each round (each level of
// `concurrent`) the bench waits until N are ready, so that the figures are
// those of deploys that find the pool full.
// `ads_bench --workers W ...`: the server runs W workers (default: the
// largest N of `concurrent`, else 2), to choose `--workers` by measurement.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "http/client.h"
#include "support/build_paths.h"
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

json api(const std::string& base, const std::string& method, const std::string& path, const json* body = nullptr,
         long* status = nullptr) {
  ads::http::ClientRequest r;
  r.method = method;
  r.url = base + path;
  r.headers = {{"Authorization", "Bearer " + g_token}};
  if (body) {
    r.body = body->dump();
    r.headers.push_back({"Content-Type", "application/json"});
  }
  auto res = ads::http::request(r);
  if (status) *status = res ? res->status : 0;
  return res ? json::parse(res->body, nullptr, false) : json();
}

// Destroys a deployment and waits until it is destroyed (issue 16.9: the
// bench always cleans up). A refused or failed destroy (the server busy, a
// limit, a destroy that failed) is asked again, with a pause, for up to 15
// minutes; false if the deployment is still not destroyed then.
bool destroy(const std::string& base, const std::string& id) {
  if (id.empty()) return true;
  auto until = Clock::now() + std::chrono::minutes(15);
  bool asked = false;
  while (Clock::now() < until) {
    std::string state = api(base, "GET", "/api/v1/deployments/" + id).value("state", "");
    if (state == "destroyed") return true;
    if (!asked || state == "failed") {
      long status = 0;
      json r = api(base, "DELETE", "/api/v1/deployments/" + id, nullptr, &status);
      asked = status == 202 || status == 409;  // 409: a destroy is under way already
      if (!asked)
        std::fprintf(stderr, "destroy of %s answered %ld: %s; asking again\n", id.c_str(), status, r.dump().c_str());
    }
    // every 20 ms once asked: the destroy figure is this poll's (it was 200 ms,
    // and every destroy then read 1.01 s)
    std::this_thread::sleep_for(std::chrono::milliseconds(asked ? 20 : 1000));
  }
  std::fprintf(stderr, "deployment %s is still not destroyed\n", id.c_str());
  return false;
}

// Every deployment the bench made that is not destroyed yet: destroyed.
bool sweep(const std::string& base) {
  bool ok = true;
  json all = api(base, "GET", "/api/v1/deployments?limit=1000");
  for (auto& d : all.value("deployments", json::array()))
    if (d.value("state", "") != "destroyed") ok = destroy(base, d.value("id", "")) && ok;
  return ok;
}

double g_destroy_s = -1;  // the last ads_round's destroy: DELETE to `destroyed`

// Waits (at most 180 s) until the server has `n` ready warm machines.
bool wait_warm(const std::string& base, int n) {
  if (n <= 0) return true;
  auto deadline = Clock::now() + std::chrono::seconds(180);
  while (Clock::now() < deadline) {
    json d = api(base, "GET", "/api/v1/doctor");
    int ready = 0;
    for (auto& w : d.value("warm", json::array())) ready += w.value("state", "") == "ready";
    if (ready >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::fprintf(stderr, "the pool never had %d ready warm machines\n", n);
  return false;
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
  auto t1 = Clock::now();
  bool destroyed = destroy(base, id);
  g_destroy_s = ok && !id.empty() && destroyed ? std::chrono::duration<double>(Clock::now() - t1).count() : -1;
  return ok ? s : -1;
}

// The disk that is machine `name`'s alone on the pool "ads", in bytes (-1
// if unknown): btrfs's exclusive bytes of its subvolume, else du's total.
long long own_disk_bytes(const std::string& name, long long* shared) {
  const std::string dir = "/var/lib/lxd/storage-pools/ads/containers/" + name;
  std::string out;
  *shared = -1;
  if (ads::test::run({"btrfs", "filesystem", "du", "-s", "--raw", dir}, &out) == 0) {
    // "     Total   Exclusive  Set shared  Filename\n  92495872  4096  92495872  /var/..."
    auto nl = out.find('\n');
    long long total = -1, exclusive = -1;
    if (nl != std::string::npos && std::sscanf(out.c_str() + nl + 1, "%lld %lld %lld", &total, &exclusive, shared) == 3)
      return exclusive;
    return -1;
  }
  if (ads::test::run({"du", "-sb", dir}, &out) != 0) return -1;
  return std::atoll(out.c_str());
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
  bool ok = !ip.empty() && ads::test::run({"lxc", "exec", name, "--", "mkdir", "-p", "/srv/www"}) == 0 &&
            ads::test::run({"lxc", "file", "push", lab + "/site/index.html", name + "/srv/www/index.html"}) == 0 &&
            ads::test::run({"lxc", "exec", name, "--", "busybox", "httpd", "-p", "80", "-h", "/srv/www"}) == 0 &&
            serves("http://" + ip + "/", "ADS example lab", 30);
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ads::test::run({"lxc", "delete", "-f", name});
  return ok ? s : -1;
}

// N deployments at once: each one's seconds from its POST to serving its page.
std::vector<double> concurrent_round(const std::string& base, const std::string& lab, int n) {
  std::vector<double> out(n, -1);
  std::vector<std::thread> ts;
  ts.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    ts.emplace_back([&, i] {
      json req = {{"source", lab}, {"name", "bench" + std::to_string(i)}};
      auto t0 = Clock::now();
      json d = api(base, "POST", "/api/v1/deployments", &req);
      std::string id = d.value("id", "");
      std::string url;
      while (!id.empty() && Clock::now() - t0 < std::chrono::seconds(900)) {
        d = api(base, "GET", "/api/v1/deployments/" + id);
        if (d.value("state", "") == "running") {
          url = d.value("url", "");
          break;
        }
        if (d.value("state", "") == "failed") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (!url.empty() && serves(url, "ADS example lab", 30))
        out[i] = std::chrono::duration<double>(Clock::now() - t0).count();
      destroy(base, id);
    });
  }
  for (auto& t : ts) t.join();
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[v.size() / 2];
}

// The container's memory use as LXD reports it (bytes; -1 when unknown).
long container_memory(const std::string& name) {
  std::string out;
  if (ads::test::run({"lxc", "query", "/1.0/instances/" + name + "/state"}, &out) != 0) return -1;
  json j = json::parse(out, nullptr, false);
  if (!j.is_object() || !j.contains("memory")) return -1;
  return j["memory"].value("usage", -1L);
}

// One figure (bytes) of the container's memory cgroup memory.stat (cgroup v1,
// as on this machine: total_rss = anonymous memory, total_cache = page cache
// charged to it); -1 when unknown.
long cgroup_stat(const std::string& name, const std::string& key) {
  std::ifstream in("/sys/fs/cgroup/memory/lxc.payload." + name + "/memory.stat");
  std::string k;
  long v;
  while (in >> k >> v)
    if (k == key) return v;
  return -1;
}

// VmRSS (kB) of the ads-agent process that runs inside the container (the one
// whose cgroup path names the container, lxc.payload.NAME), and its private
// anonymous part (RssAnon); -1 when none.
std::pair<long, long> agent_rss_kb(const std::string& name) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string pid = e.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream comm(e.path() / "comm");
    std::string c;
    std::getline(comm, c);
    if (c != "ads-agent") continue;
    std::ifstream cg(e.path() / "cgroup");
    std::string cgs((std::istreambuf_iterator<char>(cg)), {});
    auto at = cgs.find("lxc.payload." + name);
    char after = at == std::string::npos ? 'x' : cgs[at + 12 + name.size()];  // the cgroup file ends with \n
    if (after != '/' && after != '\n') continue;
    std::ifstream st(e.path() / "status");
    std::pair<long, long> r{-1, -1};
    for (std::string line; std::getline(st, line);) {
      if (line.rfind("VmRSS:", 0) == 0) r.first = std::atol(line.c_str() + 6);
      if (line.rfind("RssAnon:", 0) == 0) r.second = std::atol(line.c_str() + 8);
    }
    return r;
  }
  return {-1, -1};
}

// The host's MemAvailable (/proc/meminfo), in KiB.
long mem_available_kb() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  long kb = -1;
  while (in >> key) {
    if (key == "MemAvailable:") {
      in >> kb;
      break;
    }
    in.ignore(1 << 10, '\n');
  }
  return kb;
}

// N static labs deployed one after the other and left idle; their footprint.
int footprint(const std::string& base, const std::string& lab, int n) {
  std::vector<std::string> ids, machines, urls;
  const long avail_before = mem_available_kb();
  auto started = Clock::now();
  for (int i = 0; i < n; ++i) {
    json req = {{"source", lab}, {"name", "idle" + std::to_string(i)}};
    json d = api(base, "POST", "/api/v1/deployments", &req);
    std::string id = d.value("id", "");
    for (int k = 0; !id.empty() && k < 3000; ++k) {
      d = api(base, "GET", "/api/v1/deployments/" + id);
      if (d.value("state", "") == "running" || d.value("state", "") == "failed") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (d.value("state", "") != "running") {
      std::fprintf(stderr, "deployment %d did not reach running: %s\n", i, d.dump().c_str());
      if (!id.empty()) ids.push_back(id);  // destroyed with the others below; the run fails
      break;
    }
    ids.push_back(id);
    machines.push_back(d.value("machine", ""));
    urls.push_back(d.value("url", ""));
    if ((i + 1) % 25 == 0)
      std::fprintf(stderr, "%d labs running (%.0f s)\n", i + 1,
                   std::chrono::duration<double>(Clock::now() - started).count());
  }
  std::this_thread::sleep_for(std::chrono::seconds(10));  // idle: the install's page cache settles
  // all of them at once: each must still answer
  int answering = 0;
  for (const auto& url : urls) answering += !url.empty() && serves(url, "ADS example lab", 5);
  const long avail_after = mem_available_kb();
  ads::test::run({"sync"});
  std::vector<double> disk;
  for (const auto& m : machines) {
    long long shared = -1, own = own_disk_bytes(m, &shared);
    std::printf("container %s: data blocks of its own %.1f KiB (beside %.1f MiB shared with the image)\n", m.c_str(),
                own / 1024.0, shared / 1048576.0);
    if (own >= 0) disk.push_back(own / 1024.0);
  }
  std::vector<double> mem, anon, cache, rss, rss_anon;
  for (const auto& m : machines) {
    long bytes = container_memory(m);
    long a = cgroup_stat(m, "total_rss"), c = cgroup_stat(m, "total_cache");
    auto [kb, kb_anon] = agent_rss_kb(m);
    std::printf(
        "container %s: LXD memory usage %.1f MiB (cgroup anon %.1f MiB, page cache %.1f MiB), "
        "agent VmRSS %ld kB (RssAnon %ld kB)\n",
        m.c_str(), bytes / 1048576.0, a / 1048576.0, c / 1048576.0, kb, kb_anon);
    if (bytes > 0) mem.push_back(bytes / 1048576.0);
    if (a > 0) anon.push_back(a / 1048576.0);
    if (c >= 0) cache.push_back(c / 1048576.0);
    if (kb > 0) rss.push_back(kb);
    if (kb_anon > 0) rss_anon.push_back(kb_anon);
  }
  for (const auto& id : ids) destroy(base, id);
  std::fflush(stdout);
  std::printf("labs_running_at_once %zu of %d\n", machines.size(), n);
  std::printf("labs_answering_at_once %d\n", answering);
  if (!ids.empty() && avail_before > 0 && avail_after > 0)
    std::printf("host_memory_available_drop_per_lab_mib %.1f\n",
                (avail_before - avail_after) / 1024.0 / static_cast<double>(ids.size()));
  std::printf("idle_lab_container_memory_lxd_median_mib %.1f\n", median(mem));
  std::printf("idle_lab_container_cgroup_anon_median_mib %.1f\n", median(anon));
  std::printf("idle_lab_container_cgroup_page_cache_median_mib %.1f\n", median(cache));
  std::printf("agent_vmrss_in_container_median_kb %.0f\n", median(rss));
  std::printf("agent_rss_anon_in_container_median_kb %.0f\n", median(rss_anon));
  // (btrfs keeps files under ~2 KiB inline in its metadata: not counted)
  std::printf("disk_per_lab_own_data_median_kib %.1f\n", median(disk));
  // every lab asked for came up, answered, and was measured
  bool ok = n > 0 && machines.size() == static_cast<size_t>(n) && mem.size() == machines.size() &&
            rss.size() == machines.size() && answering == n;
  return ok ? 0 : 1;
}

int bench_main(int argc, char** argv) {
  int warm = 0;
  int workers_asked = 0;  // --workers W: the server's workers (default: N for `concurrent`, else 2)
  while (argc > 2 && (std::string(argv[1]) == "--warm" || std::string(argv[1]) == "--workers")) {
    (std::string(argv[1]) == "--warm" ? warm : workers_asked) = std::max(0, std::atoi(argv[2]));
    argv[2] = argv[0];  // the rest as if the option were not there
    argv += 2;
    argc -= 2;
  }
  bool concurrent = argc > 1 && std::string(argv[1]) == "concurrent";
  bool foot = argc > 1 && std::string(argv[1]) == "footprint";
  int foot_n = foot && argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  std::vector<int> levels;
  for (int i = 2; concurrent && i < argc; ++i) levels.push_back(std::max(1, std::atoi(argv[i])));
  if (concurrent && levels.empty()) levels = {1, 5, 20};
  int rounds = !concurrent && !foot && argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  std::string lab = std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site";
  ads::test::TempDir tmp;
  int workers = workers_asked > 0 ? workers_asked : concurrent ? *std::max_element(levels.begin(), levels.end()) : 2;
  // the bench polls every 20 ms and posts up to N deployments at once as one user: lift the per-token rate
  // limit and the jobs-per-user limit so that it measures ADS, not the limiter
  std::ofstream(tmp.str() + "/bench.json")
      << R"({"limits":{"requests_per_second":10000,"request_burst":10000,)"
      << R"("active_jobs_per_user":1000},"jobs_per_owner":)" << std::min(workers, 64)
      << (warm > 0 ? R"(,"warm":{"debian-12":)" + std::to_string(warm) + "}" : std::string()) << "}";
  if (warm > 0) std::printf("warm_machines %d (debian-12; each round starts with the pool full)\n", warm);
  if (workers_asked > 0) std::printf("workers %d\n", std::min(workers, 64));
  // A server keeps its warm machines when it stops, for its next start; the
  // bench's server has none (its data dir goes), so the warm machines that
  // appeared while it ran are removed after it (declared before it: gone after).
  struct WarmSweep {
    bool on;
    std::set<std::string> before;
    static std::set<std::string> warm_names() {
      std::string out;
      std::set<std::string> names;
      if (ads::test::run({"lxc", "list", "--format", "csv", "-c", "n"}, &out) != 0) return names;
      std::istringstream in(out);
      for (std::string n; std::getline(in, n);)
        if (n.rfind("ads-w-", 0) == 0) names.insert(n);
      return names;
    }
    ~WarmSweep() {
      if (!on) return;
      for (const auto& n : warm_names())
        if (!before.count(n) && ads::test::run({"lxc", "delete", "-f", n}) != 0)
          std::fprintf(stderr, "could not remove warm machine %s\n", n.c_str());
    }
  } warm_sweep{warm > 0, warm > 0 ? WarmSweep::warm_names() : std::set<std::string>{}};
  ads::test::Child server({ADS_CLI_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", tmp.str(), "--agent-binary",
                           ADS_AGENT_BIN, "--workers", std::to_string(std::min(workers, 64)), "--config",
                           tmp.str() + "/bench.json"});
  std::string line = server.read_line();
  auto pos = line.find("http://");
  if (pos == std::string::npos) {
    std::fprintf(stderr, "ads serve did not start\n");
    return 1;
  }
  std::string base = line.substr(pos);
  std::ifstream tf(tmp.str() + "/admin.token");  // written at the first start
  std::getline(tf, g_token);
  // whatever happens below, nothing the bench made is left behind when the
  // server it started goes (sweep: every deployment destroyed, retried)
  struct Sweep {
    const std::string& base;
    ~Sweep() {
      try {
        if (!sweep(base)) std::fprintf(stderr, "the bench could not destroy everything it made\n");
      } catch (const std::exception& e) {
        std::fprintf(stderr, "the bench could not destroy everything it made: %s\n", e.what());
      }
    }
  } sweep_at_end{base};
  if (foot) return footprint(base, lab, foot_n);
  if (concurrent) {
    bool all_ok = true;
    for (int n : levels) {
      if (!wait_warm(base, warm)) return 1;
      auto lat = concurrent_round(base, lab, n);
      std::vector<double> ok;
      for (double x : lat)
        if (x > 0) ok.push_back(x);
      std::sort(ok.begin(), ok.end());
      auto pct = [&](double p) {
        return ok.empty() ? -1 : ok[static_cast<size_t>(std::lround(p * static_cast<double>(ok.size() - 1)))];
      };
      std::printf("deploy_latency_concurrent_%d_p50_s %.2f\n", n, pct(0.5));
      std::printf("deploy_latency_concurrent_%d_p95_s %.2f\n", n, pct(0.95));
      std::printf("deploy_latency_concurrent_%d_succeeded %zu of %d\n", n, ok.size(), n);
      std::fflush(stdout);
      all_ok = all_ok && ok.size() == static_cast<size_t>(n);
    }
    return all_ok ? 0 : 1;
  }
  std::vector<double> a, m, del;
  for (int i = 0; i < rounds; ++i) {
    if (!wait_warm(base, warm)) return 1;
    double x = ads_round(base, lab);
    double z = g_destroy_s;
    double y = manual_round(lab);
    std::printf("round %d: ads %.2f s (destroy %.2f s), by hand (lxc launch+push+exec) %.2f s\n", i + 1, x, z, y);
    std::fflush(stdout);
    if (x > 0) a.push_back(x);
    if (z > 0) del.push_back(z);
    if (y > 0) m.push_back(y);
  }
  std::printf("destroy_static_lab_ads_median_s %.2f\n", median(del));
  double ma = median(a), mm = median(m);
  std::printf("deploy_latency_static_lab_ads_median_s %.2f\n", ma);
  std::printf("deploy_latency_static_lab_by_hand_median_s %.2f\n", mm);
  if (ma > 0 && mm > 0) std::printf("ratio_ads_over_by_hand %.2f\n", ma / mm);
  return a.size() == static_cast<size_t>(rounds) && m.size() == static_cast<size_t>(rounds) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return bench_main(argc, argv);
  } catch (const std::exception& e) {  // a message and a failure, not std::terminate
    std::fprintf(stderr, "ads_deploy_bench: %s\n", e.what());
    return 1;
  }
}
