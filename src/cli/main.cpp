// ads: the ADS command. `ads serve` runs the server; every other verb is a
// client of its REST API. Exit codes: 0 ok, 1 the operation failed,
// 2 bad input (usage or a 4xx), 3 the server cannot be reached.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <thread>

#include "api/api.h"
#include "cli/client.h"
#include "cli/config.h"
#include "engine/engine.h"
#include "http/server.h"
#include "providers/provider.h"
#include "store/store.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace ads;

namespace {

constexpr int kExitFailed = 1, kExitUsage = 2, kExitUnreachable = 3;
std::atomic<bool> g_stop{false};

std::string self_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

int fail_with(const Error& e, int code) {
  std::cerr << "ads: " << e.to_string() << "\n";
  return code;
}

int reply_error(const cli::ApiReply& r) {
  std::cerr << "ads: " << cli::describe_error(r) << "\n";
  return r.status >= 400 && r.status < 500 ? kExitUsage : kExitFailed;
}

int run_serve(cli::ServeConfig cfg, const std::string& config_file) {
  // the server's log goes to stderr; stdout carries only the "listening on" line
  spdlog::set_default_logger(spdlog::stderr_logger_mt("ads"));
  if (!config_file.empty()) {
    auto st = cli::load_config_file(config_file, cfg);
    if (!st) return fail_with(st.error(), kExitUsage);
  }
  auto listen = cli::parse_listen(cfg.listen);
  if (!listen) return fail_with(listen.error(), kExitUsage);
  if (cfg.store.empty()) cfg.store = "sqlite://" + cfg.data_dir + "/ads.db";
  if (cfg.agent_binary.empty()) cfg.agent_binary = self_dir() + "/ads-agent";
  std::error_code ec;
  fs::create_directories(cfg.data_dir, ec);
  if (ec) return fail_with(Error::invalid("data_dir", "cannot create " + cfg.data_dir + ": " + ec.message()), kExitUsage);

  auto store = open_store(cfg.store);
  if (!store) return fail_with(store.error(), kExitUsage);
  std::map<std::string, std::unique_ptr<Provider>> providers;
  for (auto& [kind, settings] : cfg.providers.items()) {
    auto p = make_provider(kind, settings);
    if (!p) return fail_with(p.error(), kExitUsage);
    providers[kind] = std::move(p.value());
  }
  EngineOptions eo;
  eo.work_dir = cfg.data_dir + "/work";
  eo.agent_binary = cfg.agent_binary;
  eo.default_provider = cfg.default_provider;
  eo.workers = cfg.workers;
  eo.keep_failed = cfg.keep_failed;
  if (const char* t = std::getenv("ADS_AGENT_TIMEOUT_MS")) eo.agent_timeout = std::chrono::milliseconds(std::atol(t));
  Engine engine(**store, std::move(providers), eo);
  auto st = engine.start();
  if (!st) return fail_with(st.error(), kExitUsage);

  http::ServerOptions so;
  so.host = listen->first;
  so.port = listen->second;
  so.max_body_bytes = 64 * 1024;
  http::Server server(so);
  register_api(server, **store, engine);
  st = server.start();
  if (!st) return fail_with(st.error(), kExitFailed);
  spdlog::info("ads serve: listening on http://{}:{} (store {}, agent {})", so.host, server.port(), cfg.store,
               cfg.agent_binary);
  std::cout << "ads: listening on http://" << so.host << ":" << server.port() << std::endl;

  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("ads serve: stopping");
  server.stop();
  engine.stop();
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
  while (true) {
    auto d = api.call("GET", "/api/v1/deployments/" + id);
    if (!d) return fail_with(d.error(), kExitUnreachable);
    if (d->status != 200) return reply_error(*d);
    // read the log after the state, so that the last lines of a settled deployment are in
    auto logs = api.call("GET", "/api/v1/deployments/" + id + "/logs?after=" + std::to_string(after));
    if (!logs) return fail_with(logs.error(), kExitUnreachable);
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
            << "url:      " << d.value("url", "") << "\n"
            << "created:  " << d.value("created_at", "") << "  updated: " << d.value("updated_at", "") << "\n";
  if (d.value("state", "") == "failed")
    std::cout << "failed at " << d.value("failed_step", "") << ": " << d.value("error", "") << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ads: the Auto Deployment Service"};
  app.require_subcommand(1);
  std::string server = std::getenv("ADS_SERVER") ? std::getenv("ADS_SERVER") : "http://127.0.0.1:8089";
  app.add_option("--server", server, "ADS server URL (env ADS_SERVER)");

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

  DeployRequest dr;
  bool detach = false, quiet = false;
  auto* deploy = app.add_subcommand("deploy", "deploy a lab from a git URL or a local path");
  deploy->add_option("source", dr.source, "git URL or local path")->required();
  deploy->add_option("--ref", dr.ref, "branch, tag or commit");
  deploy->add_option("--name", dr.name, "lab name (a label; may repeat)");
  deploy->add_option("--provider", dr.provider, "provider (default: the server's)");
  deploy->add_flag("--detach", detach, "return once accepted");
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  if (serve->parsed()) return run_serve(cfg, config_file);

  cli::ApiClient api(server);
  if (deploy->parsed()) {
    std::error_code ec;
    if (dr.source.find("://") == std::string::npos && fs::exists(dr.source, ec))
      dr.source = fs::absolute(dr.source).lexically_normal().string();
    json body = {{"source", dr.source}};
    if (!dr.ref.empty()) body["ref"] = dr.ref;
    if (!dr.name.empty()) body["name"] = dr.name;
    if (!dr.provider.empty()) body["provider"] = dr.provider;
    auto r = api.call("POST", "/api/v1/deployments", &body);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 202) return reply_error(*r);
    std::string new_id = r->body.value("id", "");
    std::cout << "deployment " << new_id << " accepted (" << r->body.value("name", "") << ")\n";
    if (detach) return 0;
    json fin;
    int rc = follow(api, new_id, quiet, fin);
    if (rc) return rc;
    if (fin.value("state", "") == "running") {
      std::cout << "lab " << fin.value("name", "") << " is running at " << fin.value("url", "") << "\n";
      return 0;
    }
    std::cerr << "ads: deployment " << new_id << " failed at " << fin.value("failed_step", "") << ": "
              << fin.value("error", "") << "\n";
    return kExitFailed;
  }
  if (list->parsed()) {
    std::string q = "/api/v1/deployments?limit=1000";
    if (!state_filter.empty()) q += "&state=" + state_filter;
    if (!name_filter.empty()) q += "&name=" + name_filter;
    auto r = api.call("GET", q);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 200) return reply_error(*r);
    std::printf("%-26s  %-16s  %-14s  %-15s  %s\n", "ID", "NAME", "STATE", "ADDRESS", "CREATED");
    for (auto& d : r->body["deployments"]) {
      std::printf("%-26s  %-16s  %-14s  %-15s  %s\n", d.value("id", "").c_str(), d.value("name", "").c_str(),
                  d.value("state", "").c_str(), d.value("address", "").c_str(), d.value("created_at", "").c_str());
    }
    return 0;
  }
  if (show->parsed()) {
    auto r = api.call("GET", "/api/v1/deployments/" + id);
    if (!r) return fail_with(r.error(), kExitUnreachable);
    if (r->status != 200) return reply_error(*r);
    if (as_json) std::cout << r->body.dump(2) << "\n";
    else print_deployment(r->body);
    return 0;
  }
  if (logs->parsed()) {
    if (follow_logs) {
      json fin;
      return follow(api, id, false, fin);
    }
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
    json fin;
    int rc = follow(api, id, true, fin, seen);
    if (rc) return rc;
    if (fin.value("state", "") == "destroyed") {
      std::cout << "deployment " << id << " destroyed\n";
      return 0;
    }
    std::cerr << "ads: destroy failed: " << fin.value("error", "") << "\n";
    return kExitFailed;
  }
  return kExitUsage;
}
