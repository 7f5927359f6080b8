#include "cli/proxy_run.h"

#include "router/caddy.h"
#include "router/caddy_process.h"
#include "router/haproxy.h"
#include "router/haproxy_process.h"

namespace ads::cli {

std::vector<RunningProxy> running_proxies(const std::string& data_dir) {
  std::string dir = proxy_dir(data_dir);
  std::vector<RunningProxy> out;
  if (int pid = router::haproxy_pid(dir)) out.push_back({"haproxy", pid, dir + "/haproxy.log"});
  if (int pid = router::proxy_pid(dir)) out.push_back({"caddy", pid, dir + "/caddy.log"});
  return out;
}

Result<std::vector<RunningProxy>> stop_proxies(const std::string& data_dir) {
  std::string dir = proxy_dir(data_dir);
  auto running = running_proxies(data_dir);
  for (auto& r : running) {
    auto st = r.kind == "haproxy" ? router::stop_haproxy(dir) : router::stop_proxy(dir);
    if (!st) return st.error();
  }
  return running;
}

Result<StartedProxy> start_configured_proxy(const ProxyConfig& p, const std::string& data_dir) {
  std::string dir = proxy_dir(data_dir);
  for (auto& r : running_proxies(data_dir)) {
    if (r.kind == p.kind) continue;
    auto st = r.kind == "haproxy" ? router::stop_haproxy(dir) : router::stop_proxy(dir);
    if (!st)
      return Error::make("failed", "the " + r.kind + " proxy of " + dir + " (pid " + std::to_string(r.pid) +
                                       ") runs and did not stop for " + p.kind + ": " + st.error().message);
  }
  StartedProxy out;
  out.kind = p.kind;
  std::string public_host;
  if (p.kind == "haproxy") {
    auto pid = router::start_haproxy(haproxy_process_options(p, data_dir));
    if (!pid) return pid.error();
    auto ho = haproxy_options(p, data_dir);
    out.pid = *pid;
    out.router = std::make_shared<router::HaproxyRouter>(ho);
    out.endpoint = router::haproxy_socket(ho.dir);
    public_host = ho.public_host;
  } else {
    auto pid = router::start_proxy(proxy_process_options(p, data_dir));
    if (!pid) return pid.error();
    auto co = caddy_options(p, data_dir);
    out.pid = *pid;
    out.router = std::make_shared<router::CaddyRouter>(co);
    out.endpoint = co.admin;
    public_host = co.public_host;
  }
  out.urls = p.domain.empty() ? "http://" + public_host + ":<port>/ (ports " + std::to_string(p.ports.first) + "-" +
                                    std::to_string(p.ports.second) + ")"
                              : "http://<name>." + p.domain + "/";
  return out;
}

}  // namespace ads::cli
