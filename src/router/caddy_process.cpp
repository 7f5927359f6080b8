#include "router/caddy_process.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "router/caddy.h"
#include "router/daemon.h"

namespace ads::router {
namespace fs = std::filesystem;

int proxy_pid(const std::string& dir) { return pid_from_file(dir + "/caddy.pid", "caddy"); }

Result<int> start_proxy(const ProxyProcessOptions& o) {
  if (int pid = proxy_pid(o.dir)) return pid;
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) return Error::make("failed", "cannot create " + o.dir + ": " + ec.message());
  fs::permissions(o.dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  std::string config = o.dir + "/caddy.json", log = o.dir + "/caddy.log", pid_file = o.dir + "/caddy.pid";
  {
    std::ofstream out(config, std::ios::trunc);
    out << nlohmann::json{{"admin", CaddyRouter::admin_config(o.admin)}}.dump() << "\n";
    if (!out) return Error::make("failed", "cannot write " + config);
  }
  if (o.admin.rfind("unix:", 0) == 0) fs::remove(o.admin.substr(5), ec);  // a socket left by a killed Caddy
  auto child = spawn_logged({o.binary, "run", "--config", config, "--resume"},
                            {"HOME=" + o.dir, "XDG_DATA_HOME=" + o.dir + "/data",
                             "XDG_CONFIG_HOME=" + o.dir + "/config", "PATH=/usr/local/bin:/usr/bin:/bin"},
                            log, pid_file);
  if (!child) return child.error();
  CaddyOptions po;
  po.admin = o.admin;
  po.timeout_ms = 1000;
  CaddyRouter probe(po);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.start_timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    if (!process_alive(*child)) {
      fs::remove(pid_file, ec);
      return Error::make("failed", "caddy exited at start; the end of " + log + ":\n" + file_tail(log, 2000));
    }
    if (probe.ping()) return *child;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill_started(*child, pid_file);
  return Error::make("timeout", "caddy's admin API (" + o.admin + ") did not answer within " +
                                    std::to_string(o.start_timeout_ms / 1000) + " s; see " + log);
}

Status stop_proxy(const std::string& dir) { return stop_pid_file(dir + "/caddy.pid", "caddy"); }

}  // namespace ads::router
