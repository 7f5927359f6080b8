#include "router/haproxy_process.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "router/daemon.h"
#include "router/haproxy.h"

namespace ads::router {
namespace fs = std::filesystem;

namespace {

std::string bind_address(const std::string& host, const std::string& ports) {
  if (host.find(':') != std::string::npos) return "ipv6@" + host + ":" + ports;
  return host + ":" + ports;
}

}  // namespace

std::string haproxy_config(const HaproxyProcessOptions& o) {
  bool with_domain = !o.domain.empty();
  std::string map = haproxy_map_file(o.dir, with_domain);
  std::string bind =
      with_domain ? bind_address(o.listen_host, std::to_string(o.listen_port))
                  : bind_address(o.listen_host, std::to_string(o.ports.first) + "-" + std::to_string(o.ports.second));
  // the lab of a request: "<name>/<address>:<port>" from the map, by Host
  // (port stripped, lowercased) or by the port the client connected to
  std::string lookup =
      with_domain ? "req.hdr(host),field(1,:),lower,map(" + map + ")" : "dst_port,map_int(" + map + ")";
  return "# Written by ADS at each start of the proxy (docs/operators/proxy.md). It never\n"
         "# changes while HAProxy runs: the routes are the map " +
         map +
         ",\n"
         "# which ADS changes through the runtime API (no reload).\n"
         "global\n"
         "  stats socket " +
         haproxy_socket(o.dir) +
         " mode 600 level admin\n"
         "  stats timeout 30s\n"
         // a port someone else holds is an error at start, not a port shared with them
         "  noreuseport\n"
         "defaults\n"
         "  mode http\n"
         "  option forwardfor\n"
         "  timeout connect 5s\n"
         "  timeout http-request 30s\n"
         "  timeout http-keep-alive 60s\n"
         "  timeout client 60s\n"
         "  timeout server 10m\n"
         "  timeout tunnel 1h\n"
         "frontend labs\n"
         "  bind " +
         bind +
         "\n"
         "  http-request set-var(txn.lab) " +
         lookup +
         "\n"
         "  http-request return status 404 content-type \"text/plain; charset=utf-8\" string \"no lab is served at "
         "this address\\n\" unless { var(txn.lab) -m found }\n"
         "  http-request set-header X-Forwarded-Proto http\n"
         "  http-request set-header X-Forwarded-Host %[req.hdr(host)]\n"
         "  http-request set-dst var(txn.lab),field(2,/),field(1,:)\n"
         "  http-request set-dst-port var(txn.lab),field(2,/),field(2,:)\n"
         "  default_backend labs\n"
         "backend labs\n"
         // no address of its own: it connects where set-dst said; idle
         // connections to it are kept by destination, so one to the old
         // upstream is never reused after a switch (tested)
         "  server lab 0.0.0.0:0\n";
}

int haproxy_pid(const std::string& dir) { return pid_from_file(dir + "/haproxy.pid", "haproxy"); }

Result<int> start_haproxy(const HaproxyProcessOptions& o) {
  if (auto st = check_haproxy_dir(o.dir); !st) return st.error();
  std::string config = o.dir + "/haproxy.cfg", log = o.dir + "/haproxy.log", pid_file = o.dir + "/haproxy.pid";
  std::string wanted = haproxy_config(o);
  if (int pid = haproxy_pid(o.dir)) {
    if (file_tail(config, wanted.size() + 1) == wanted) return pid;
    // started with other settings (a domain now, other ports): the static
    // config changes only with a new process
    if (auto st = stop_haproxy(o.dir); !st) return st.error();
  }
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) return Error::make("failed", "cannot create " + o.dir + ": " + ec.message());
  fs::permissions(o.dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  {
    std::ofstream out(config, std::ios::trunc);
    out << wanted;
    if (!out) return Error::make("failed", "cannot write " + config);
  }
  std::string map = haproxy_map_file(o.dir, !o.domain.empty());
  if (!fs::exists(map)) {
    std::ofstream out(map);  // no routes yet (HAProxy needs the file)
    if (!out) return Error::make("failed", "cannot write " + map);
  }
  auto child = spawn_logged({o.binary, "-f", config, "-db"},
                            {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, log, pid_file);
  if (!child) return child.error();
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.start_timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    if (!process_alive(*child)) {
      fs::remove(pid_file, ec);
      return Error::make("failed", "haproxy exited at start; the end of " + log + ":\n" + file_tail(log, 2000));
    }
    if (HaproxyRouter::command(haproxy_socket(o.dir), "show info", 1000)) return *child;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill_started(*child, pid_file);
  return Error::make("timeout", "haproxy's runtime API (" + haproxy_socket(o.dir) + ") did not answer within " +
                                    std::to_string(o.start_timeout_ms / 1000) + " s; see " + log);
}

Status stop_haproxy(const std::string& dir) { return stop_pid_file(dir + "/haproxy.pid", "haproxy"); }

}  // namespace ads::router
