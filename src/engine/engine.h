// The deployment engine: turns a request into a running lab, step by step,
// recording every step and log line in the Store. Workers run several
// deployments at once. Providers are reached only through their interface.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/deployment.h"
#include "core/id.h"
#include "core/labspec.h"
#include "providers/provider.h"
#include "store/store.h"

namespace ads {

struct DeployRequest {
  std::string source;
  std::string ref;
  std::string name;       // "" : derived from the source
  std::string provider;   // "" : the default provider
};

struct EngineOptions {
  std::string work_dir = "/var/lib/ads/work";  // temporary checkouts
  std::string agent_binary;                     // the static ads-agent to place in machines
  std::string default_provider = "lxd";
  int workers = 2;
  std::chrono::milliseconds address_timeout{60000};
  std::chrono::milliseconds agent_timeout{60000};
  std::chrono::milliseconds http_check_timeout{30000};
  long action_timeout_ms = 1800000;
  bool keep_failed = false;  // keep the machine of a failed deployment for inspection
};

class Engine {
 public:
  Engine(Store& store, std::map<std::string, std::unique_ptr<Provider>> providers, EngineOptions opts);
  ~Engine();

  // Validates the request (errors name the field), records a new deployment
  // in state `accepted` and queues it. Returns the record.
  Result<Deployment> submit(const DeployRequest& req);
  // Queues the destruction of a deployment's machine.
  Result<Deployment> destroy(const std::string& id);

  // Deals with deployments left unfinished by an earlier process (accepted:
  // queued again; mid-way: machine removed, marked failed), then starts the workers.
  Status start();
  // Stops taking work; running jobs stop at their next step boundary.
  void stop();

  // Name derived from a source: last path segment without ".git", sanitised.
  static std::string default_name(const std::string& source);
  static std::string machine_name(const std::string& id) { return "ads-" + id; }

 private:
  struct Job {
    std::string id;
    enum Kind { kDeploy, kDestroy } kind;
  };
  void worker();
  void run_deploy(const std::string& id);
  void run_destroy(const std::string& id);
  // Moves `d` to `s` and persists it.
  Status advance(Deployment& d, State s);
  void log(const Deployment& d, const std::string& stream, const std::string& text);
  void fail(Deployment& d, const std::string& error, Provider* p);
  Provider* provider_for(const std::string& kind);
  std::string new_id();

  Store& store_;
  std::map<std::string, std::unique_ptr<Provider>> providers_;
  EngineOptions opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  IdGenerator ids_;
  std::mutex id_mu_;
  std::string agent_bytes_;
};

}  // namespace ads
