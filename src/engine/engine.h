// The deployment engine: every piece of work on a deployment is a Job
// (deploy, start, stop, restart, test, backup, restore, destroy) persisted in
// the Store with its state and step; workers run several at once, one at a
// time per deployment. Providers are reached only through their interface.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/deployment.h"
#include "core/id.h"
#include "core/labspec.h"
#include "providers/provider.h"
#include "store/store.h"

namespace ads {

namespace agent {
class AgentClient;
}

struct DeployRequest {
  std::string source;
  std::string ref;
  std::string name;             // "" : derived from the source
  std::string provider;         // "" : the default provider
  std::string idempotency_key;  // "" : none
  std::string owner;            // the user deploying
  bool shared = false;          // any deployer may manage it
};

struct EngineOptions {
  std::string work_dir = "/var/lib/ads/work";      // temporary checkouts
  std::string backup_dir = "/var/lib/ads/backups";  // backup archives
  std::string agent_binary;                         // the static ads-agent to place in machines
  std::string default_provider = "lxd";
  int workers = 2;
  std::chrono::milliseconds address_timeout{60000};
  std::chrono::milliseconds agent_timeout{60000};
  std::chrono::milliseconds http_check_timeout{30000};
  long action_timeout_ms = 1800000;
  int provider_attempts = 3;                        // tries of a provider call that found it unavailable
  std::chrono::milliseconds retry_backoff{500};     // doubled after each try
  bool keep_failed = false;  // keep the machine of a failed deployment for inspection
  uint16_t agent_port = 9089;  // where agents listen (agent::kAgentPort; tests use another)
};

class Engine {
 public:
  Engine(Store& store, std::map<std::string, std::unique_ptr<Provider>> providers, EngineOptions opts);
  ~Engine();

  // Validates the request (errors name the field), records a new deployment
  // in state `accepted` with its deploy job and queues it. With an
  // idempotency key already used, returns that deployment instead.
  Result<Deployment> submit(const DeployRequest& req);
  // Queues a job of `kind` (not "deploy") on a deployment. `conflict` when
  // the deployment's state does not allow it or another job is unfinished.
  // params: {"backup": id} for restore.
  Result<Job> operate(const std::string& deployment_id, const std::string& kind, const nlohmann::json& params = {});

  // Asks a running deployment's agent for its figures (GET /v1/health):
  // {"uptime_s", "memory":{"total_kb","available_kb"}, "disk":{"total_kb","free_kb"},
  // "load", "processes"}. `conflict` unless the deployment is running;
  // "unavailable"/"timeout" when its agent does not answer.
  Result<nlohmann::json> health(const std::string& deployment_id);

  // Deals with work left unfinished by an earlier process, then starts the
  // workers: queued jobs and idempotent ones (start, stop, restart, test,
  // destroy) run again; a deploy or restore that was mid-way is rolled back
  // (machine removed, deployment failed with the reason); a backup fails.
  Status start();
  // Stops taking work; running jobs stop at their next step boundary.
  void stop();

  // Reconciler: machines the providers have with an ADS label that the store
  // does not know or considers gone, and deployments whose machine is missing.
  struct Drift {
    std::string provider, machine, deployment_id, problem;
  };
  Result<std::vector<Drift>> reconcile();

  static std::string default_name(const std::string& source);
  static std::string machine_name(const std::string& id) { return "ads-" + id; }

 private:
  void worker();
  void run_job(Job& job);
  // Each returns "" on success or the error; they log as they go.
  std::string do_deploy(Deployment& d, Job& job, const std::string& restore_backup);
  std::string do_start(Deployment& d, Job& job);
  std::string do_stop(Deployment& d, Job& job);
  std::string do_test(Deployment& d, Job& job);
  std::string do_backup(Deployment& d, Job& job);
  std::string do_restore(Deployment& d, Job& job);
  std::string do_destroy(Deployment& d, Job& job);
  std::string restore_data(Deployment& d, Job& job, const Backup& b);
  // Runs a named agent action, logging its output; "" or the error.
  std::string run_action(Deployment& d, agent::AgentClient& c, const std::string& action);
  std::string http_check(Deployment& d, const LabSpec& spec, std::string* url);

  Status advance(Deployment& d, State s);
  void set_step(Job& job, const std::string& step);
  void log(const Deployment& d, const std::string& stream, const std::string& text);
  // Marks `d` failed at its current state, removing its machine unless kept.
  void fail_deployment(Deployment& d, const std::string& error);
  // Gives back the static addresses `d` holds (see Provider::address_pool).
  void release_addresses(const Deployment& d);
  Provider* provider_for(const std::string& kind);
  // Calls `f` until it succeeds, fails with something other than
  // "unavailable"/"timeout", or the attempts run out (backoff in between).
  Status with_retry(const Deployment& d, const std::string& what, const std::function<Status()>& f);
  Result<LabSpec> stored_spec(const Deployment& d);
  std::string new_id();
  void enqueue(const std::string& job_id);

  Store& store_;
  std::map<std::string, std::unique_ptr<Provider>> providers_;
  EngineOptions opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;      // job ids
  std::set<std::string> busy_;         // deployments with a job being run
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  IdGenerator ids_;
  std::mutex id_mu_;
  std::mutex submit_mu_;               // check-then-create of jobs and idempotency keys
  std::string agent_bytes_;
};

}  // namespace ads
