// ads: the ADS command. `ads serve` runs the server; every other verb is a
// client of its REST API. Exit codes: 0 ok, 1 the operation failed,
// 2 bad input (usage or a 4xx), 3 the server cannot be reached.
#include <fcntl.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "api/api.h"
#include "api/auth.h"
#include "api/metrics.h"
#include "api/web.h"
#include "cli/accounts.h"
#include "cli/admin_reset.h"
#include "cli/cancel.h"
#include "cli/client.h"
#include "cli/config.h"
#include "cli/exec.h"
#include "cli/images.h"
#include "cli/lab_tools.h"
#include "cli/proxy_config.h"
#include "cli/proxy_run.h"
#include "cli/shell.h"
#include "cli/stop_policy.h"
#include "cli/table.h"
#include "cli/tls_setup.h"
#include "cli/track.h"
#include "core/env.h"
#include "engine/engine.h"
#include "http/client.h"
#include "http/server.h"
#include "http/tls_openssl.h"
#include "providers/provider.h"
#include "store/store.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace ads;

namespace {

using cli::fail_with;
using cli::kExitFailed;
using cli::kExitUnreachable;
using cli::kExitUsage;
using cli::reply_error;
std::atomic<bool> g_stop{false};

std::string self_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

// A store URL for the log: any password in it replaced by ***.
std::string redact_url(const std::string& url) {
  auto scheme = url.find("://");
  auto at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos) return url;
  auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

// Each "warm" key must be an OS key the provider serves: a typo would
// otherwise fail once every pass of the keeper, in the log only. A provider
// that cannot be asked now (LXD down) or lacks the image yet: a warning, the
// keeper tries again.
Status check_warm_keys(const std::map<std::string, int>& warm, Provider& p, const std::string& kind) {
  auto images = p.images();
  if (!images) {
    spdlog::warn("ads serve: cannot check the warm machines' OS keys against provider {}: {}", kind,
                 images.error().message);
    return Status::Ok();
  }
  std::string served;
  for (const auto& i : *images) served += (served.empty() ? "" : ", ") + i.os_key;
  for (const auto& entry : warm) {
    const std::string& key = entry.first;
    auto it = std::find_if(images->begin(), images->end(), [&](const ImageInfo& i) { return i.os_key == key; });
    if (it == images->end())
      return Error::invalid("warm", "\"" + key + "\" is no OS key of provider " + kind +
                                        " (it serves: " + (served.empty() ? "none" : served) + ")");
    if (it->state == "missing")
      spdlog::warn("ads serve: warm machines of {}: the image {} is missing ({}); none can be made until it exists",
                   key, it->image, it->note);
  }
  return Status::Ok();
}

int run_serve(cli::ServeConfig cfg, const std::string& config_file, const std::string& proxy_flag) {
  // the server's log goes to stderr; stdout carries only the "listening on" line
  spdlog::set_default_logger(spdlog::stderr_logger_mt("ads"));
  if (!config_file.empty()) {
    auto st = cli::load_config_file(config_file, cfg);
    if (!st) return fail_with(st.error(), kExitUsage);
  }
  if (!proxy_flag.empty()) {
    auto st = cli::parse_proxy_flag(proxy_flag, cfg.proxy);
    if (!st) return fail_with(st.error(), kExitUsage);
  }
  auto listen = cli::parse_listen(cfg.listen);
  if (!listen) return fail_with(listen.error(), kExitUsage);
  if (cfg.store.empty()) cfg.store = "sqlite://" + cfg.data_dir + "/ads.db";
  if (cfg.agent_binary.empty()) cfg.agent_binary = self_dir() + "/ads-agent";
  // The store holds agent secrets and token hashes: nothing ADS writes is for other users.
  ::umask(077);
  std::error_code ec;
  fs::create_directories(cfg.data_dir, ec);
  if (ec)
    return fail_with(Error::invalid("data_dir", "cannot create " + cfg.data_dir + ": " + ec.message()), kExitUsage);
  fs::permissions(cfg.data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);

  auto store = open_store(cfg.store, cfg.store_connections);
  if (!store) return fail_with(store.error(), kExitUsage);
  std::map<std::string, std::unique_ptr<Provider>> providers;
  for (auto& [kind, settings] : cfg.providers.items()) {
    auto p = make_provider(kind, settings);
    if (!p) return fail_with(p.error(), kExitUsage);
    providers[kind] = std::move(p.value());
  }
  if (!cfg.warm.empty()) {
    auto d = providers.find(cfg.default_provider);
    if (d == providers.end() || !d->second->can_claim())
      return fail_with(Error::invalid("warm", "the default provider (" + cfg.default_provider +
                                                  ") cannot keep warm machines (LXD without a static \"nic\" can)"),
                       kExitUsage);
    if (auto st = check_warm_keys(cfg.warm, *d->second, cfg.default_provider); !st)
      return fail_with(st.error(), kExitUsage);
  }
  EngineOptions eo;
  eo.warm = cfg.warm;
  eo.work_dir = cfg.data_dir + "/work";
  eo.backup_dir = cfg.data_dir + "/backups";
  eo.agent_binary = cfg.agent_binary;
  eo.default_provider = cfg.default_provider;
  eo.workers = cfg.workers;
  eo.keep_failed = cfg.keep_failed;
  eo.ansible_playbook = cfg.ansible_playbook;
  eo.sandbox = cfg.ansible_sandbox;
  eo.ssh_keygen = cfg.ssh_keygen;
  eo.netcat = cfg.netcat;
  eo.keep_backups = cfg.keep_backups;
  eo.keep_releases = cfg.keep_releases;
  eo.keep_releases_running = cfg.keep_releases_running;
  eo.drain = std::chrono::milliseconds(cfg.drain_ms);
  eo.min_poll_s = cfg.git_min_poll_s;
  eo.max_backup_bytes = static_cast<size_t>(cfg.max_backup_mb) << 20;
  eo.deploy_attempts = cfg.deploy_attempts;
  eo.log_cap.head_bytes = static_cast<size_t>(cfg.log_head_kb) << 10;
  eo.log_cap.tail_bytes = static_cast<size_t>(cfg.log_tail_kb) << 10;
  eo.retention_days = cfg.retention_days;
  eo.cleanup_interval = std::chrono::seconds(cfg.cleanup_interval_s);
  eo.action_timeout_ms = static_cast<long>(cfg.max_command_timeout_s) * 1000;
  eo.jobs_per_owner = cfg.jobs_per_owner;
  eo.sources = cfg.sources;
  eo.shared_store = cfg.store.rfind("postgres", 0) == 0;
  eo.lease = std::chrono::milliseconds(cfg.lease_ms);
  eo.server_id = cfg.server_id;
  if (eo.server_id.empty()) {
    // one server on SQLite: a fixed id, so a restart frees its leases at once;
    // on PostgreSQL each process is a different server
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    std::random_device rd;
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "%06x", static_cast<unsigned>(rd()) & 0xffffff);
    eo.server_id = eo.shared_store ? std::string(host) + "-" + std::to_string(::getpid()) + "-" + suffix : "local";
  }
  if (auto t = env_var("ADS_AGENT_TIMEOUT_MS")) eo.agent_timeout = std::chrono::milliseconds(std::atol(t->c_str()));
  if (cfg.proxy.enabled) {
    // The proxy outlives this process (labs stay reachable while ADS
    // restarts); `ads service stop` stops it.
    auto proxy = cli::start_configured_proxy(cfg.proxy, cfg.data_dir);
    if (!proxy)
      return fail_with(Error::make("failed", "the reverse proxy (" + cfg.proxy.kind +
                                                 ") could not be started: " + proxy.error().message +
                                                 " (scripts/install-deps.sh installs " + cfg.proxy.kind +
                                                 "; \"proxy\": false in the config or --proxy off "
                                                 "runs ADS without stable URLs)"),
                       kExitFailed);
    eo.router = proxy->router;
    if (cfg.proxy.domain.empty()) eo.proxy_ports = cfg.proxy.ports;
    spdlog::info("ads serve: reverse proxy {} (pid {}, control {}); stable URLs {}", proxy->kind, proxy->pid,
                 proxy->endpoint, proxy->urls);
  }
  Engine engine(**store, std::move(providers), eo);
  auto st = engine.start();
  if (!st) return fail_with(st.error(), kExitUsage);

  // First start: an admin and its token, shown once (and kept in a 0600 file
  // for the scripts of the machine's root).
  Auth auth(**store);
  auth.set_oidc_sign_in(cfg.oidc.has_value());
  auto boot = auth.bootstrap();
  if (!boot) return fail_with(boot.error(), kExitFailed);
  std::string token_file = cfg.data_dir + "/admin.token";
  if (boot->has_value()) {
    int fd = ::open(token_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      std::string line = **boot + "\n";
      (void)!::write(fd, line.data(), line.size());
      ::close(fd);
    }
  }

  http::ServerOptions so = cfg.http;  // connection limits and deadlines (docs/operators/limits.md)
  so.host = listen->first;
  so.port = listen->second;
  so.log = [](const std::string& m) { spdlog::error("http: {}", m); };
  auto tls = cli::resolve_tls(cfg, so.host);
  if (!tls) return fail_with(tls.error(), kExitUsage);
  std::string scheme = tls->enabled ? "https://" : "http://";
  if (tls->enabled) {
    so.tls_cert_pem = tls->id.cert_pem;
    so.tls_backend = http::openssl_tls;
    so.tls_key_pem = tls->id.key_pem;
    std::cout << "ads: TLS certificate " << tls->cert_file << (tls->generated ? " (generated now)" : "")
              << ", SHA-256 fingerprint " << tls->fingerprint << std::endl;
    spdlog::info("ads serve: TLS certificate {}, SHA-256 fingerprint {}", tls->cert_file, tls->fingerprint);
  } else if (!cli::is_loopback(so.host)) {
    spdlog::warn("ads serve: TLS is off on {}: API tokens cross the network in clear text", so.host);
  }
  http::Server server(so);
  auto guard = register_api(server, **store, engine, auth, cfg.limits);
  register_metrics(server, **store, engine, guard, cfg.metrics_need_token);
  std::unique_ptr<Oidc> oidc;
  if (cfg.oidc) {
    oidc = std::make_unique<Oidc>(*cfg.oidc, auth);
    register_oidc(server, **store, *oidc, cfg.limits);
  }
  register_web(server, WebOptions{.oidc = oidc != nullptr});
  st = server.start();
  if (!st) return fail_with(st.error(), kExitFailed);
  spdlog::info("ads serve: listening on {}{}:{} (store {}, server id {}, agent {})", scheme, so.host, server.port(),
               redact_url(cfg.store), eo.server_id, cfg.agent_binary);
  std::cout << "ads: listening on " << scheme << so.host << ":" << server.port() << std::endl;
  if (boot->has_value()) {
    // shown once on a terminal; never into a log file (`ads service` sends stdout to one)
    std::cout << "ads: first start: created the user admin; its API token is in " << token_file << " (mode 0600)";
    if (::isatty(STDOUT_FILENO)) std::cout << " and, shown once: " << **boot;
    std::cout << std::endl;
  }

  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("ads serve: stopping (running jobs are handed back for the next start)");
  // a bound on the stop whatever is under way (see cli/stop_policy.h)
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(cli::kServeStopDeadlineS));
    spdlog::error("ads serve: not stopped after {} s; exiting (the next start takes up what is left)",
                  cli::kServeStopDeadlineS);
    std::_Exit(1);
  }).detach();
  server.stop();
  engine.stop();
  spdlog::info("ads serve: stopped");
  return 0;
}

// Prints "==> [i/N] state" for a state, with its place in the pipeline.
void print_step(const std::string& state) {
  const auto& p = pipeline();
  auto st = state_from_string(state);
  auto it = st ? std::find(p.begin(), p.end(), *st) : p.end();
  if (it != p.end()) std::cout << "==> [" << (it - p.begin()) << "/" << (p.size() - 1) << "] " << state << "\n";
  else std::cout << "==> " << state << "\n";
}

// Follows a deployment until it settles, printing every step it goes through
// (from the log, so that no quick step is missed) and, unless quiet, the log.
int follow(const cli::ApiClient& api, const std::string& id, bool quiet_logs, json& final_state, int64_t after = 0) {
  std::string last_step;
  auto print_lines = [&](const json& lines) {
    for (auto& l : lines) {
      std::string step = l.value("step", "");
      if (step != last_step) {
        print_step(step);
        last_step = step;
      }
      if (!quiet_logs) std::cout << "  " << l.value("stream", "") << " | " << l.value("text", "") << "\n";
    }
  };
  cli::TroubleWait trouble;
  while (true) {
    auto d = api.call("GET", "/api/v1/deployments/" + id);
    if (!d) return fail_with(d.error(), kExitUnreachable);
    if (auto rc = trouble.check(*d)) return *rc;
    if (d->status == 503) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (d->status != 200) return reply_error(*d);
    // read the log after the state, so that the last lines of a settled deployment are in
    auto logs = api.call("GET", "/api/v1/deployments/" + id + "/logs?after=" + std::to_string(after));
    if (!logs) return fail_with(logs.error(), kExitUnreachable);
    if (logs->status == 503) {
      if (auto rc = trouble.check(*logs)) return *rc;
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (logs->status != 200) return reply_error(*logs);
    print_lines(logs->body["lines"]);
    after = logs->body.value("next", after);
    std::cout.flush();
    std::string state = d->body.value("state", "");
    if (state == "running" || state == "failed" || state == "destroyed") {
      if (state != last_step) print_step(state);
      final_state = d->body;
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

// The seq of the last log line so far (0 if none or unreadable).
int64_t last_seq(const cli::ApiClient& api, const std::string& id) {
  int64_t after = 0;
  while (true) {
    auto r = api.call("GET", "/api/v1/deployments/" + id + "/logs?limit=10000&after=" + std::to_string(after));
    if (!r || r->status != 200 || r->body["lines"].empty()) return after;
    after = r->body.value("next", after);
  }
}

void print_deployment(const json& d) {
  std::cout << "id:       " << d.value("id", "") << "\n"
            << "name:     " << d.value("name", "") << "\n"
            << "state:    " << d.value("state", "") << "\n"
            << "source:   " << d.value("source", "") << (d.value("ref", "").empty() ? "" : " @ " + d.value("ref", ""))
            << "\n"
            << "commit:   " << d.value("commit", "") << "\n"
            << "provider: " << d.value("provider", "") << "  machine: " << d.value("machine", "") << "\n"
            << "address:  " << d.value("address", "") << "\n"
            << "url:      " << d.value("url", "") << "  (the machine)\n"
            << "stable:   " << (d.value("stable_url", "").empty() ? "-" : d.value("stable_url", ""))
            << "  (through the reverse proxy)\n"
            << "created:  " << d.value("created_at", "") << "  updated: " << d.value("updated_at", "") << "\n";
  if (d.value("state", "") == "failed")
    std::cout << "failed at " << d.value("failed_step", "") << ": " << d.value("error", "") << "\n";
}

// Follows a job until it ends, printing the deployment's new log lines.
int follow_job(const cli::ApiClient& api, const json& job, int64_t after) {
  std::string jid = job.value("id", ""), did = job.value("deployment", "");
  std::cout << job.value("kind", "") << " job " << jid << " accepted\n";
  cli::TroubleWait trouble;
  while (true) {
    auto j = api.call("GET", "/api/v1/jobs/" + jid);
    if (!j) return fail_with(j.error(), kExitUnreachable);
    if (auto rc = trouble.check(*j)) return *rc;
    if (j->status == 503) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (j->status != 200) return reply_error(*j);
    auto logs = api.call("GET", "/api/v1/deployments/" + did + "/logs?after=" + std::to_string(after));
    if (logs && logs->status == 200) {
      for (auto& l : logs->body["lines"])
        std::cout << "  " << l.value("stream", "") << " | " << l.value("text", "") << "\n";
      after = logs->body.value("next", after);
    }
    std::cout.flush();
    std::string state = j->body.value("state", "");
    if (state == "cancelled") {
      std::cerr << "ads: " << j->body.value("kind", "") << " job " << jid << " was cancelled\n";
      return kExitFailed;
    }
    if (state == "succeeded" || state == "failed") {
      const json& result = j->body["result"];
      if (result.is_object() && !result.empty() && result.contains("passed"))
        std::cout << "test " << (result["passed"].get<bool>() ? "passed" : "FAILED") << "\n";
      if (result.is_object() && result.contains("backup"))
        std::cout << "backup " << result["backup"].get<std::string>() << " (" << result.value("size_bytes", 0)
                  << " bytes, sha256 " << result.value("sha256", "") << ")\n";
      if (result.is_object() && result.contains("changed_tasks") && result["changed_tasks"].is_array()) {
        // a check: what the playbook would change (the diffs are in the log above)
        const json& changed = result["changed_tasks"];
        if (changed.empty()) {
          if (state == "succeeded") std::cout << "check: nothing would change\n";
        } else {
          std::cout << "check: " << changed.size() << (result.value("changed_tasks_cut", false) ? " or more" : "")
                    << " task(s) would change:\n";
          for (const auto& t : changed)
            if (t.is_string()) std::cout << "  - " << t.get<std::string>() << "\n";
        }
      }
      if (state == "failed") {
        std::cerr << "ads: " << j->body.value("kind", "") << " failed: " << j->body.value("error", "") << "\n";
        return kExitFailed;
      }
      std::cout << j->body.value("kind", "") << " done\n";
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

// A request answered by 202 and a job of deployment `id`: follows that job
// (its log from now on) to its end, or returns at once with `detach`.
int submit_and_follow(const cli::ApiClient& api, const std::string& id, const std::string& method,
                      const std::string& path, const json* body, bool detach) {
  int64_t seen = last_seq(api, id);
  auto r = api.call(method, path, body);
  if (!r) return fail_with(r.error(), kExitUnreachable);
  if (r->status != 202) return reply_error(*r);
  if (detach) return 0;
  return follow_job(api, r->body, seen);
}

// `ads logs -f`: the Server-Sent Events stream, until the deployment settles.
int stream_events(const cli::ApiClient& api, const std::string& id) {
  http::ClientRequest r;
  r.url = api.base() + "/api/v1/deployments/" + id + "/events?until=settled";
  r.headers = api.auth_headers();
  r.ca_file = api.ca_file();
  r.timeout_ms = 0;
  r.max_body_bytes = 0;  // a log followed to its end; only an unfinished event is kept
  std::string pending, event;
  r.on_data = [&](const std::string& chunk) {
    pending += chunk;
    size_t pos;
    while ((pos = pending.find("\n\n")) != std::string::npos) {
      std::string block = pending.substr(0, pos);
      pending.erase(0, pos + 2);
      std::string type, data;
      std::istringstream in(block);
      std::string line;
      while (std::getline(in, line)) {
        if (line.rfind("event: ", 0) == 0) type = line.substr(7);
        if (line.rfind("data: ", 0) == 0) data = line.substr(6);
      }
      json j = json::parse(data, nullptr, false);
      if (type == "log" && j.is_object())
        std::cout << j.value("time", "") << " " << j.value("step", "") << " " << j.value("stream", "") << " | "
                  << j.value("text", "") << std::endl;
      else if (type == "state" && j.is_object()) std::cout << "==> " << j.value("state", "") << std::endl;
    }
    return true;
  };
  auto res = http::request(r);
  if (!res) return fail_with(res.error(), kExitUnreachable);
  if (res->status != 200) {
    cli::ApiReply rep{res->status, json::parse(pending, nullptr, false)};
    return reply_error(rep);
  }
  return 0;
}

bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

pid_t read_pid(const std::string& file) {
  std::ifstream in(file);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// `ads service start|stop|status`: one command runs and manages `ads serve`
// in the background (pid file and log file in the data directory).
// Exit codes: 0 done / running, 1 failed, 3 not running (status).
int run_service(const std::string& action, const std::string& server, const std::vector<std::string>& serve_args,
                const std::string& data_dir, const std::string& token, const std::string& cacert) {
  std::string pid_file = data_dir + "/ads.pid", log_file = data_dir + "/ads.log";
  pid_t pid = read_pid(pid_file);
  cli::ApiClient api(server, token);
  api.set_ca_file(cli::cacert_for(server, cacert, data_dir));
  if (action == "status") {
    auto proxies = cli::running_proxies(data_dir);
    for (auto& p : proxies)
      std::cout << "the reverse proxy (" << p.kind << ") is running (pid " << p.pid << ", log " << p.log << ")\n";
    if (proxies.empty()) std::cout << "the reverse proxy is not running\n";
    if (!alive(pid)) {
      std::cout << "ads serve is not running\n";
      return 3;
    }
    auto h = api.call("GET", "/api/v1/health");
    std::cout << "ads serve is running (pid " << pid << ", log " << log_file << "), "
              << (h ? "answering on " + server : "not answering on " + server) << "\n";
    return h ? 0 : kExitFailed;
  }
  // the proxy goes after ads serve (it serves the labs until then)
  auto stop_proxy = [&]() -> int {
    auto stopped = cli::stop_proxies(data_dir);
    if (!stopped) return fail_with(stopped.error(), kExitFailed);
    for (auto& p : *stopped) std::cout << "the reverse proxy (" << p.kind << ") stopped (pid " << p.pid << ")\n";
    return 0;
  };
  if (action == "stop") {
    if (!alive(pid)) {
      std::cout << "ads serve is not running\n";
      std::filesystem::remove(pid_file);
      return stop_proxy();
    }
    // as systemd does (packaging/ads.service): SIGTERM, then SIGKILL after
    // kStopWaitS; ads serve itself exits well before (cli/stop_policy.h)
    ::kill(pid, SIGTERM);
    for (int i = 0; i < cli::kStopWaitS * 10 && alive(pid); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (alive(pid)) {
      ::kill(pid, SIGKILL);
      std::cerr << "ads: ads serve (pid " << pid << ") did not stop within " << cli::kStopWaitS
                << " s; killed it (the next start takes up its jobs)\n";
      return kExitFailed;
    }
    std::filesystem::remove(pid_file);
    std::cout << "ads serve stopped (pid " << pid << ")\n";
    return stop_proxy();
  }
  // start
  if (alive(pid)) {
    std::cout << "ads serve is already running (pid " << pid << ")\n";
    return 0;
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  pid_t child = fork();
  if (child < 0) return fail_with(Error::make("failed", "fork failed"), kExitFailed);
  if (child == 0) {
    setsid();
    int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
    int nul = ::open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (nul >= 0) dup2(nul, 0);
    std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    std::vector<std::string> args = {self, "serve"};
    args.insert(args.end(), serve_args.begin(), serve_args.end());
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(self.c_str(), argv.data());
    _exit(127);
  }
  {
    std::ofstream out(pid_file);
    out << child << "\n";
  }
  for (int i = 0; i < 100; ++i) {
    int status = 0;
    if (waitpid(child, &status, WNOHANG) == child) {
      std::filesystem::remove(pid_file);
      std::ifstream in(log_file);
      std::string text((std::istreambuf_iterator<char>(in)), {});
      std::cerr << "ads: ads serve exited at start; the end of " << log_file << ":\n"
                << text.substr(text.size() > 2000 ? text.size() - 2000 : 0);
      return kExitFailed;
    }
    api.set_ca_file(cli::cacert_for(server, cacert, data_dir));  // a first start makes the certificate now
    auto h = api.call("GET", "/api/v1/health");
    if (h && (h->status == 200 || h->status == 401)) {  // ads answers health, or asks for a token
      std::cout << "ads serve started (pid " << child << ") on " << server << ", log " << log_file << "\n";
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::cerr << "ads: ads serve (pid " << child << ") does not answer on " << server << " after 10 s; see " << log_file
            << "\n";
  return kExitFailed;
}

}  // namespace

namespace {
int run_cli(int argc, char** argv) {
  CLI::App app{"ads: the Auto Deployment Service"};
  app.require_subcommand(1);
  std::string server = env_var("ADS_SERVER").value_or("http://127.0.0.1:8089");
  app.add_option("--server", server, "ADS server URL (env ADS_SERVER)");
  std::string token = env_var("ADS_TOKEN").value_or("");
  app.add_option("--token", token,
                 "API token (env ADS_TOKEN; else the file in ADS_TOKEN_FILE or /var/lib/ads/admin.token)");
  std::string cacert = env_var("ADS_CACERT").value_or("");
  app.add_option("--cacert", cacert,
                 "for https: the certificate(s) to trust (env ADS_CACERT; default for a loopback server: "
                 "DATA_DIR/tls/server.crt, DATA_DIR from ADS_DATA_DIR or /var/lib/ads)");

  cli::ServeConfig cfg;
  std::string config_file;
  auto* serve = app.add_subcommand("serve", "run the ADS server (API + deployment engine)");
  serve->add_option("--config", config_file, "JSON config file");
  serve->add_option("--listen", cfg.listen, "HOST:PORT to listen on");
  serve->add_option("--data-dir", cfg.data_dir, "where ADS keeps its state");
  serve->add_option("--store", cfg.store, "store URL (default sqlite://DATA_DIR/ads.db)");
  serve->add_option("--agent-binary", cfg.agent_binary, "the static ads-agent to place in machines");
  serve->add_option("--workers", cfg.workers, "deployments run at once")->check(CLI::Range(1, 64));
  serve->add_flag("--keep-failed", cfg.keep_failed, "keep machines of failed deployments");
  serve->add_option("--tls", cfg.tls.mode, "HTTPS: auto (on unless listening on loopback), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  std::string proxy_flag;
  serve
      ->add_option("--proxy", proxy_flag,
                   "the reverse proxy of stable URLs (haproxy, or caddy by the config's proxy.kind): on, off (default: "
                   "the config's \"proxy\")")
      ->check(CLI::IsMember({"on", "off"}));

  DeployRequest dr;
  bool detach = false, quiet = false;
  auto* deploy = app.add_subcommand("deploy", "deploy a lab from a git URL or a local path");
  deploy->add_option("source", dr.source, "git URL or local path")->required();
  deploy->add_option("--ref", dr.ref, "branch, tag or commit");
  deploy->add_option("--name", dr.name, "lab name (a label; may repeat)");
  deploy->add_option("--provider", dr.provider, "provider (default: the server's)");
  deploy->add_flag("--detach", detach, "return once accepted");
  std::string track_branch;
  std::optional<long long> track_poll;
  bool new_secret = false;
  deploy->add_option("--track", track_branch, "release on every push to this branch (a signed webhook; `ads track`)");
  deploy->add_option("--poll", track_poll,
                     "with --track: also poll the branch every S seconds (hosts without webhooks)");
  deploy->add_flag("--quiet", quiet, "show steps only, not the log");

  std::string state_filter, name_filter;
  auto* list = app.add_subcommand("list", "list deployments");
  list->add_option("--state", state_filter, "only this state");
  list->add_option("--name", name_filter, "only this lab name");

  std::string id;
  bool as_json = false, follow_logs = false;
  auto* show = app.add_subcommand("show", "show one deployment");
  show->add_option("id", id)->required();
  show->add_flag("--json", as_json, "print the JSON record");
  auto* logs = app.add_subcommand("logs", "print a deployment's log");
  logs->add_option("id", id)->required();
  logs->add_flag("-f,--follow", follow_logs, "follow until the deployment settles");
  auto* destroy = app.add_subcommand("destroy", "destroy a deployment's machine");
  destroy->add_option("id", id)->required();
  destroy->add_flag("--detach", detach, "return once accepted");

  std::map<std::string, CLI::App*> ops;
  for (auto [op, what] : std::vector<std::pair<std::string, std::string>>{
           {"start", "start a stopped lab"},
           {"stop", "stop a lab and its machine"},
           {"restart", "stop then start a lab"},
           {"test", "run the lab's test and an HTTP check"},
           {"backup", "back up the lab's data (and snapshot its machine)"}}) {
    auto* sc = app.add_subcommand(op, what);
    sc->add_option("id", id)->required();
    sc->add_flag("--detach", detach, "return once accepted");
    ops[op] = sc;
  }
  std::string backup_id;
  auto* restore = app.add_subcommand("restore", "restore a deployment from one of its backups (also a destroyed one)");
  restore->add_option("id", id)->required();
  restore->add_option("backup", backup_id, "backup id (see `ads backups ID`)")->required();
  restore->add_flag("--detach", detach, "return once accepted");
  auto* delete_backup =
      app.add_subcommand("delete-backup", "delete one of a deployment's backups (its archive and snapshot)");
  delete_backup->add_option("id", id)->required();
  delete_backup->add_option("backup", backup_id, "backup id (see `ads backups ID`)")->required();
  delete_backup->add_flag("--detach", detach, "return once accepted");
  auto* backups = app.add_subcommand("backups", "list a deployment's backups");
  backups->add_option("id", id)->required();
  auto* jobs = app.add_subcommand("jobs", "list a deployment's jobs");
  jobs->add_option("id", id)->required();
  std::string cancel_job;
  auto* cancel = app.add_subcommand("cancel", "cancel a job (its command is killed in the machine)");
  cancel->add_option("job", cancel_job, "job id (see `ads jobs ID`)")->required();
  cancel->add_flag("--detach", detach, "return once the cancel is asked for");
  std::string check_ref;
  bool check_deployed = false, check_diff = false;
  auto* check = app.add_subcommand(
      "check",
      "dry-run the lab's install playbook on its running machine in Ansible's check mode (ansible-playbook "
      "--check): which tasks would change something");
  check->add_option("id", id)->required();
  auto* check_ref_opt =
      check->add_option("--ref", check_ref,
                        "tag, branch or commit of the lab's source to check (default: its ref as it is now; a plain "
                        "directory as it is now)");
  check->add_flag("--deployed", check_deployed, "check the lab as deployed: what changed on the machine since")
      ->excludes(check_ref_opt);
  check->add_flag("--diff", check_diff,
                  "also show how (ansible-playbook --diff: the lines of the files; they go into the lab's log, "
                  "which viewers can read)");
  check->add_flag("--detach", detach, "return once accepted");
  std::string release_ref, release_id;
  auto* release = app.add_subcommand("release",
                                     "release another version of a running lab: built on a new machine, "
                                     "tested, then switched to (the old one is kept for a rollback)");
  release->add_option("id", id)->required();
  release->add_option("--ref", release_ref, "tag, branch or commit to release (default: the deployment's ref again)");
  release->add_flag("--detach", detach, "return once accepted");
  auto* releases = app.add_subcommand("releases", "list a deployment's releases");
  releases->add_option("id", id)->required();
  auto* rollback = app.add_subcommand("rollback", "switch a lab back to a kept release");
  rollback->add_option("id", id)->required();
  rollback->add_option("release", release_id, "release id (see `ads releases ID`; default: the newest kept one)");
  rollback->add_flag("--detach", detach, "return once accepted");
  auto* track =
      app.add_subcommand("track", "release a lab on every push to a branch (prints the webhook URL and secret)");
  track->add_option("id", id)->required();
  track->add_option("branch", track_branch, "the branch to track")->required();
  track->add_option("--poll", track_poll, "also poll the branch every S seconds (0: webhooks only)");
  track->add_flag("--new-secret", new_secret, "make a new webhook secret (the old one stops working) and show it");
  auto* untrack = app.add_subcommand("untrack", "stop releasing a lab on push");
  untrack->add_option("id", id)->required();
  auto* doctor = app.add_subcommand("doctor", "report machines and records that disagree");
  bool doctor_fix = false;
  auto* prune =
      app.add_subcommand("prune", "forget destroyed deployments' logs and records past the retention (admin)");
  int prune_days = 0;
  prune->add_option("--older-than-days", prune_days, "instead of the server's retention_days")
      ->check(CLI::Range(1, 36500));
  doctor->add_flag("--fix", doctor_fix, "queue the operation that fixes each problem that has one (a destroy)");
  cli::AccountArgs accounts;
  cli::add_account_commands(app, accounts);

  cli::AdminResetOptions reset;
  auto* admin = app.add_subcommand("admin", "recovery for the machine's root (no server, no token needed)");
  admin->require_subcommand(1);
  auto* admin_reset = admin->add_subcommand(
      "reset", "make USER an enabled admin with a new token in DATA_DIR/admin.token (root only; audited)");
  admin_reset->add_option("--user", reset.user, "the admin to reset or make (default admin)");
  admin_reset->add_option("--config", reset.config_file, "the JSON config file of ads serve (data_dir, store)");
  admin_reset->add_option("--data-dir", reset.cfg.data_dir, "where ADS keeps its state (default /var/lib/ads)");
  admin_reset->add_option("--store", reset.cfg.store, "store URL (default sqlite://DATA_DIR/ads.db)");

  auto* images = app.add_subcommand("images", "list the images each provider can put a lab on, by OS key");
  auto* exec = app.add_subcommand(
      "exec",
      "run a command in a running lab's machine and print its output (owner and admins; audited): ID -- CMD...");
  std::vector<std::string> exec_command;
  int exec_timeout = 60;
  exec->add_option("id", id, "deployment id")->required();
  exec->add_option("command", exec_command, "the program and its arguments, after --")->required();
  exec->add_option("--timeout", exec_timeout, "seconds before the command is killed (default 60)")
      ->check(CLI::Range(1, 600));
  auto* shell = app.add_subcommand(
      "shell", "open the login shell of a running lab's machine on this terminal (owner and admins; audited): ID");
  shell->add_option("id", id, "deployment id")->required();
  std::string lab_dir;
  auto* lab = app.add_subcommand("lab", "tools for writing a lab (check and init need no server)");
  lab->require_subcommand(1);
  auto* lab_check = lab->add_subcommand(
      "check", "validate a lab directory: spec, packing, playbooks (syntax), scripts; print what a deploy would do");
  lab_check->add_option("dir", lab_dir, "the lab's directory")->required();
  bool lab_check_ansible = false;
  lab_check->add_flag("--ansible", lab_check_ansible,
                      "also run ansible-playbook --syntax-check on its playbooks: runs the lab's Ansible config, "
                      "plugins and lookups on this host (labs you trust)");
  auto* lab_init = lab->add_subcommand("init", "write a minimal working playbook lab into an empty or new directory");
  lab_init->add_option("dir", lab_dir, "where to write it")->required();
  std::string try_name, try_provider, try_ttl = "1h";
  auto* lab_try = lab->add_subcommand(
      "try",
      "check a lab directory, then deploy it as a throwaway lab: the log as it goes; a failed one keeps its machine "
      "for inspection; destroyed when its time to live ends (the directory must be readable by the server)");
  lab_try->add_option("dir", lab_dir, "the lab's directory")->required();
  lab_try->add_option("--name", try_name, "lab name (default: from the directory)");
  lab_try->add_option("--provider", try_provider, "provider (default: the server's)");
  lab_try->add_option("--ttl", try_ttl, "how long it lives: 90s, 30m, 2h, 1d (1m to 7d; default 1h)");
  lab_try->add_flag("--quiet", quiet, "show steps only, not the log");

  std::string service_action;
  std::vector<std::string> service_serve_args;
  auto* service = app.add_subcommand("service", "run and manage `ads serve` in the background");
  service->add_option("action", service_action, "start, stop or status")
      ->required()
      ->check(CLI::IsMember({"start", "stop", "status"}));
  service->add_option("--data-dir", cfg.data_dir, "where ADS keeps its state, pid file and log");
  service->add_option("--listen", cfg.listen, "HOST:PORT for ads serve");
  service->add_option("--config", config_file, "JSON config file for ads serve");
  std::string service_proxy = "on";
  service
      ->add_option("--proxy", service_proxy,
                   "the reverse proxy of stable URLs (haproxy, or caddy by the config's proxy.kind): on (default), off")
      ->check(CLI::IsMember({"on", "off"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  if (serve->parsed()) return run_serve(cfg, config_file, proxy_flag);
  if (admin_reset->parsed()) return cli::run_admin_reset(reset, std::cout, std::cerr);
  if (lab_check->parsed()) return cli::run_lab_check(lab_dir, lab_check_ansible, std::cout, std::cerr);
  if (lab_init->parsed()) return cli::run_lab_init(lab_dir, std::cout, std::cerr);

  if (token.empty()) {
    std::ifstream in(env_var("ADS_TOKEN_FILE").value_or("/var/lib/ads/admin.token"));
    std::getline(in, token);
  }
  cli::ApiClient api(server, token);
  api.set_ca_file(cli::cacert_for(server, cacert, env_var("ADS_DATA_DIR").value_or("/var/lib/ads")));
  if (deploy->parsed()) {
    std::error_code ec;
    if (dr.source.find("://") == std::string::npos && fs::exists(dr.source, ec))
      dr.source = fs::absolute(dr.source).lexically_normal().string();
    json body = {{"source", dr.source}};
    if (!dr.ref.empty()) body["ref"] = dr.ref;
    if (!dr.name.empty()) body["name"] = dr.name;
    if (!dr.provider.empty()) body["provider"] = dr.provider;
    if (!track_branch.empty()) body["track"] = track_branch;
    if (track_poll) body["poll_s"] = *track_poll;
    auto r = api.call("POST", "/api/v1/deployments", &body);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 202) return reply_error(*r);
    std::string new_id = r->body.value("id", "");
    std::cout << "deployment " << new_id << " accepted (" << r->body.value("name", "") << ")\n";
    if (r->body.contains("track")) cli::print_track(r->body["track"], server, std::cout);
    if (detach) return 0;
    json fin;
    int rc = follow(api, new_id, quiet, fin);
    if (rc) return rc;
    if (fin.value("state", "") == "running") {
      std::cout << "lab " << fin.value("name", "") << " is running at " << fin.value("url", "") << "\n";
      if (!fin.value("stable_url", "").empty()) std::cout << "stable URL: " << fin.value("stable_url", "") << "\n";
      return 0;
    }
    std::cerr << "ads: deployment " << new_id << " failed at " << fin.value("failed_step", "") << ": "
              << fin.value("error", "") << "\n";
    return kExitFailed;
  }
  if (lab_try->parsed()) {
    auto ttl = cli::parse_lab_ttl(try_ttl);
    if (!ttl) return fail_with(ttl.error(), kExitUsage);
    // the lab is checked here first: a spec error costs no machine
    std::error_code ec;
    if (!fs::is_directory(lab_dir, ec)) {
      std::cerr << "ads: " << lab_dir << " is not a directory\n";
      return kExitUsage;
    }
    auto report = cli::check_lab(lab_dir, "");
    if (!report.problems.empty()) {
      for (const auto& p : report.problems) std::cerr << "ads: " << p << "\n";
      std::cerr << "ads: not deployed: " << report.problems.size() << " problem(s) (ads lab check " << lab_dir << ")\n";
      return kExitFailed;
    }
    json body = {{"source", fs::absolute(lab_dir).lexically_normal().string()}, {"keep_failed", true}, {"ttl_s", *ttl}};
    if (!try_name.empty()) body["name"] = try_name;
    if (!try_provider.empty()) body["provider"] = try_provider;
    auto r = api.call("POST", "/api/v1/deployments", &body);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 202) return reply_error(*r);
    std::string new_id = r->body.value("id", "");
    std::cout << "trying " << body["source"].get<std::string>() << " as deployment " << new_id << " ("
              << r->body.value("name", "") << "), destroyed at " << r->body.value("expires_at", "") << "\n";
    json fin;
    if (int rc = follow(api, new_id, quiet, fin)) return rc;
    if (fin.value("state", "") == "running") {
      std::cout << "lab " << fin.value("name", "") << " is running at " << fin.value("url", "") << "\n"
                << "a throwaway: destroyed at " << fin.value("expires_at", "") << " (ads destroy " << new_id
                << " sooner)\n";
      return 0;
    }
    if (fin.value("state", "") == "destroyed") {  // its time ran out (it counts from the request), or a destroy
      std::cerr << "ads: deployment " << new_id << " was destroyed before it ran (its time to live ends at "
                << fin.value("expires_at", "") << "; see ads logs " << new_id << ")\n";
      return kExitFailed;
    }
    std::cerr << "ads: deployment " << new_id << " failed at " << fin.value("failed_step", "") << ": "
              << fin.value("error", "") << "\n";
    if (!fin.value("machine", "").empty()) {
      std::cerr << "its machine " << fin.value("machine", "") << " is kept for inspection until "
                << fin.value("expires_at", "") << ":\n"
                << "  ads exec " << new_id << " -- sh -c 'ls -l /opt/lab'   a command in it (LXD, OpenVZ)\n"
                << "  ads shell " << new_id << "                            its shell on this terminal (LXD, OpenVZ)\n"
                << "  ads logs " << new_id << "                             the whole log\n"
                << "  ads destroy " << new_id << "                          remove it now\n";
    }
    return kExitFailed;
  }
  if (cancel->parsed()) return cli::run_cancel(api, cancel_job, detach, std::cout);
  if (list->parsed()) {
    std::string q = "/api/v1/deployments?limit=1000";
    if (!state_filter.empty()) q += "&state=" + state_filter;
    if (!name_filter.empty()) q += "&name=" + name_filter;
    auto r = api.call("GET", q);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 200) return reply_error(*r);
    cli::Table t({"ID", "NAME", "STATE", "ADDRESS", "CREATED"});
    for (auto& d : r->body["deployments"])
      t.add({d.value("id", ""), d.value("name", ""), d.value("state", ""), d.value("address", ""),
             d.value("created_at", "")});
    std::cout << t.str();
    return 0;
  }
  if (show->parsed()) {
    auto r = api.call("GET", "/api/v1/deployments/" + id);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 200) return reply_error(*r);
    if (as_json) std::cout << r->body.dump(2) << "\n";
    else print_deployment(r->body);
    if (!as_json && r->body.contains("track")) cli::print_track(r->body["track"], server, std::cout);
    return 0;
  }
  if (track->parsed()) return cli::run_track(api, server, id, track_branch, track_poll, new_secret, std::cout);
  if (untrack->parsed()) return cli::run_untrack(api, id, std::cout);
  if (logs->parsed()) {
    if (follow_logs) return stream_events(api, id);
    int64_t after = 0;
    while (true) {
      auto r = api.call("GET", "/api/v1/deployments/" + id + "/logs?after=" + std::to_string(after));
      if (!r) return fail_with(r.error(), kExitUnreachable);
      if (r->status != 200) return reply_error(*r);
      if (r->body["lines"].empty()) return 0;
      for (auto& l : r->body["lines"])
        std::cout << l.value("time", "") << " " << l.value("step", "") << " " << l.value("stream", "") << " | "
                  << l.value("text", "") << "\n";
      after = r->body.value("next", after);
    }
  }
  if (destroy->parsed()) {
    int64_t seen = last_seq(api, id);
    auto r = api.call("DELETE", "/api/v1/deployments/" + id);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 202) return reply_error(*r);
    if (detach) return 0;
    // the destroy job, not the state: right after the 202 the state may still
    // read "running" (the job has not started), which is no answer yet
    int rc = follow_job(api, r->body.value("job", json::object()), seen);
    if (rc) return rc;
    std::cout << "deployment " << id << " destroyed\n";
    return 0;
  }
  for (auto& [op, sc] : ops) {
    if (!sc->parsed()) continue;
    int64_t seen = last_seq(api, id);
    auto r = api.call("POST", "/api/v1/deployments/" + id + "/" + op);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 202) return reply_error(*r);
    if (detach) {
      std::cout << op << " job " << r->body.value("id", "") << " accepted\n";
      return 0;
    }
    return follow_job(api, r->body, seen);
  }
  if (restore->parsed()) {
    json body = {{"backup", backup_id}};
    return submit_and_follow(api, id, "POST", "/api/v1/deployments/" + id + "/restore", &body, detach);
  }
  if (check->parsed()) {
    json body = json::object();
    if (!check_ref.empty()) body["ref"] = check_ref;
    if (check_deployed) body["as_deployed"] = true;
    if (check_diff) body["diff"] = true;
    return submit_and_follow(api, id, "POST", "/api/v1/deployments/" + id + "/check", &body, detach);
  }
  if (release->parsed()) {
    json body = json::object();
    if (!release_ref.empty()) body["ref"] = release_ref;
    return submit_and_follow(api, id, "POST", "/api/v1/deployments/" + id + "/releases", &body, detach);
  }
  if (rollback->parsed()) {
    json body = json::object();
    if (!release_id.empty()) body["release"] = release_id;
    return submit_and_follow(api, id, "POST", "/api/v1/deployments/" + id + "/rollback", &body, detach);
  }
  if (releases->parsed()) {
    auto r = api.call("GET", "/api/v1/deployments/" + id + "/releases");
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 200) return reply_error(*r);
    std::printf("%-4s  %-26s  %-8s  %-16s  %-12s  %-24s  %-10s  %s\n", "#", "RELEASE", "STATE", "REF", "COMMIT",
                "CREATED", "BY", "MACHINE");
    for (auto& x : r->body["releases"])
      std::printf("%-4lld  %-26s  %-8s  %-16s  %-12s  %-24s  %-10s  %s%s\n",
                  static_cast<long long>(x.value("seq", 0LL)), x.value("id", "").c_str(), x.value("state", "").c_str(),
                  x.value("ref", "").c_str(), x.value("commit", "").substr(0, 12).c_str(),
                  x.value("created_at", "").c_str(), x.value("by", "").c_str(), x.value("machine", "").c_str(),
                  x.value("error", "").empty() ? "" : ("  " + x.value("error", "")).c_str());
    return 0;
  }
  if (delete_backup->parsed())
    return submit_and_follow(api, id, "DELETE", "/api/v1/deployments/" + id + "/backups/" + backup_id, nullptr, detach);
  if (backups->parsed() || jobs->parsed()) {
    std::string what = backups->parsed() ? "backups" : "jobs";
    auto r = api.call("GET", "/api/v1/deployments/" + id + "/" + what);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 200) return reply_error(*r);
    if (what == "backups") {
      std::printf("%-26s  %-24s  %10s  %-16s  %s\n", "BACKUP", "CREATED", "BYTES", "SHA256", "SNAPSHOT");
      for (auto& b : r->body["backups"])
        std::printf("%-26s  %-24s  %10lld  %-16s  %s\n", b.value("id", "").c_str(), b.value("created_at", "").c_str(),
                    static_cast<long long>(b.value("size_bytes", 0LL)), b.value("sha256", "").substr(0, 16).c_str(),
                    b.value("snapshot", "").c_str());
    } else {
      std::printf("%-26s  %-13s  %-10s  %-24s  %s\n", "JOB", "KIND", "STATE", "CREATED", "ERROR");
      for (auto& j : r->body["jobs"])
        std::printf("%-26s  %-13s  %-10s  %-24s  %s\n", j.value("id", "").c_str(), j.value("kind", "").c_str(),
                    j.value("state", "").c_str(), j.value("created_at", "").c_str(), j.value("error", "").c_str());
    }
    return 0;
  }
  if (prune->parsed()) {
    json body = json::object();
    if (prune_days > 0) body["older_than_days"] = prune_days;
    auto r = api.call("POST", "/api/v1/prune", &body);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 200) return reply_error(*r);
    std::cout << "pruned " << r->body.value("log_lines", 0) << " log lines, " << r->body.value("jobs", 0)
              << " jobs and " << r->body.value("deployments", 0) << " destroyed deployments\n";
    return 0;
  }
  if (images->parsed()) return cli::run_images(api, std::cout);
  if (exec->parsed()) return cli::run_exec(api, id, exec_command, exec_timeout, std::cout, std::cerr);
  if (shell->parsed()) return cli::run_shell(api, id, STDIN_FILENO, STDOUT_FILENO, std::cerr);
  if (doctor->parsed()) {
    auto r = api.call("GET", "/api/v1/doctor");
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 200) return reply_error(*r);
    if (r->body.contains("warm") && r->body["warm"].is_array() && !r->body["warm"].empty()) {
      std::cout << "warm machines (made ahead for deploys to claim):\n";
      for (auto& w : r->body["warm"])
        std::cout << "  " << w.value("provider", "") << " " << w.value("machine", "") << ": " << w.value("os", "")
                  << ", " << w.value("state", "") << (w.value("address", "").empty() ? "" : " at ")
                  << w.value("address", "") << ", made " << w.value("age_s", 0) << " s ago\n";
    }
    if (r->body["problems"].empty()) {
      std::cout << "no problems: every machine has its record and every record its machine\n";
      return 0;
    }
    int rc = kExitFailed;
    bool fixed_all = doctor_fix;
    for (auto& p : r->body["problems"]) {
      std::cout << p.value("provider", "") << " " << p.value("machine", "") << ": " << p.value("problem", "") << "\n";
      std::string fix = p.value("fix", ""), dep = p.value("deployment", "");
      if (fix != "destroy" || !is_valid_id(dep)) {
        fixed_all = false;
        continue;
      }
      if (!doctor_fix) {
        std::cout << "  fix: ads destroy " << dep << "   (or: ads doctor --fix)\n";
        continue;
      }
      auto f = api.call("DELETE", "/api/v1/deployments/" + dep);
      if (f && f->status == 202) {
        std::cout << "  fixing: destroy of " << dep << " queued (job "
                  << f->body.value("job", json::object()).value("id", "") << ")\n";
      } else {
        fixed_all = false;
        std::cout << "  could not queue the destroy of " << dep << ": "
                  << (f ? f->body.value("error", json::object()).value("message", "HTTP " + std::to_string(f->status))
                        : f.error().message)
                  << "\n";
      }
    }
    if (fixed_all) rc = 0;  // every problem has its fix under way
    return rc;
  }
  if (int rc = cli::run_account_commands(api, accounts, std::cin); rc >= 0) return rc;
  if (service->parsed()) {
    std::vector<std::string> args = {"--data-dir", cfg.data_dir, "--listen", cfg.listen};
    if (!config_file.empty()) args.insert(args.end(), {"--config", config_file});
    args.insert(args.end(), {"--proxy", service_proxy});  // stable URLs come with the service
    if (server == "http://127.0.0.1:8089") {              // not given: where the managed server listens
      cli::ServeConfig probe = cfg;
      if (!config_file.empty()) (void)cli::load_config_file(config_file, probe);
      server = cli::local_url(probe);
    }
    return run_service(service_action, server, args, cfg.data_dir, token, cacert);
  }
  return kExitUsage;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    return run_cli(argc, argv);
  } catch (const std::exception& e) {  // a bug's last stop: a message, not std::terminate
    std::cerr << "ads: internal error: " << e.what() << "\n";
    return 1;
  }
}
