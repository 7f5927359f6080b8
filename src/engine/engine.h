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
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/deployment.h"
#include "core/git_push.h"
#include "core/id.h"
#include "core/labspec.h"
#include "core/log_cap.h"
#include "engine/lease_book.h"
#include "engine/source_access.h"
#include "engine/store_health.h"
#include "providers/provider.h"
#include "router/router.h"
#include "store/store.h"

namespace ads {

namespace agent {
class AgentClient;
}
namespace router {
class Router;
struct Route;
}  // namespace router

struct DeployRequest {
  std::string source;
  std::string ref;
  std::string name;             // "" : derived from the source
  std::string provider;         // "" : the default provider
  std::string idempotency_key;  // "" : none
  std::string owner;            // the user deploying
  bool shared = false;          // any deployer may manage it
  int max_active_jobs = 0;      // refuse ("too_many") when the owner has this many jobs under way; 0: no limit
  bool admin = false;           // the caller is an admin: may deploy from any path on the server
  bool keep_failed = false;     // keep its machine if it fails (Deployment::keep_failed)
  int64_t ttl_s = 0;            // destroy it this long after it is accepted; 0: never
};

struct EngineOptions {
  std::string work_dir = "/var/lib/ads/work";       // temporary checkouts
  std::string backup_dir = "/var/lib/ads/backups";  // backup archives
  std::string agent_binary;                         // the static ads-agent to place in machines
  std::string default_provider = "lxd";
  int workers = 2;
  std::chrono::milliseconds address_timeout{60000};
  std::chrono::milliseconds agent_timeout{60000};
  std::chrono::milliseconds http_check_timeout{30000};
  // The operator's maximum for one command of a lab (install step or
  // action): the agent's command_timeout_s. A lab's spec may ask for less in
  // "timeouts"; asking for more fails the deploy at validation.
  long action_timeout_ms = 1800000;
  // The Ansible controller (labs whose playbooks run from this host):
  // ansible-playbook, the bubblewrap sandbox it runs in, and ssh-keygen for
  // the key of each run, netcat for ssh's ProxyCommand. A lab in
  // controller mode fails with a clear error
  // when one is missing; nothing runs outside the sandbox.
  std::string ansible_playbook = "/usr/bin/ansible-playbook";
  std::string sandbox = "/usr/bin/bwrap";
  std::string ssh_keygen = "/usr/bin/ssh-keygen";
  std::string netcat = "/usr/bin/nc.openbsd";  // ssh's way out of the sandbox (nc -U)
  int provider_attempts = 3;                   // tries of a provider call that found it unavailable
  // Runs of a deploy job that a stopped or killed server cut off mid-way:
  // below this many, the next start (or the server taking the job over)
  // removes what the run made and deploys again from the start; at it, the
  // deployment fails ("interrupted") and is rolled back. 1: never again.
  int deploy_attempts = 2;
  std::chrono::milliseconds retry_backoff{500};  // doubled after each try
  bool keep_failed = false;                      // keep the machine of a failed deployment for inspection
  // The cap on each job's log (core/log_cap.h): its first head_bytes, then
  // the last tail_bytes of what follows, a line saying what was cut.
  LogCapLimits log_cap;
  // Destroyed deployments whose last change is older than this many days
  // lose their logs and, when no backup of theirs is left, their records
  // (Engine::prune; run by the janitor every prune_interval). 0: never.
  int retention_days = 30;
  std::chrono::milliseconds prune_interval{3600 * 1000};
  // How often the clean-up queue is looked at (machines whose removal failed,
  // say while the provider was down): a failed removal is tried again after
  // this, then after twice as long each time, at most an hour apart.
  std::chrono::milliseconds cleanup_interval{30000};
  // After a backup, a deployment's oldest backups beyond this many are
  // deleted (as by a delete-backup job); 0 keeps every backup.
  int keep_backups = 0;
  // The largest backup archive taken from an agent (a bigger one fails the
  // backup); the agent takes back at most its max_upload_bytes (512 MiB).
  size_t max_backup_bytes = 512u << 20;
  // Several servers on one store: each claims jobs with a lease (see
  // Store::claim_job) named by its server_id, renewed while it works; a job
  // whose lease lapses (its server died) is taken over by another server,
  // which resumes or rolls it back like a restart would. With shared_store
  // false (SQLite: one server) start() also recovers every unfinished job at
  // once, as before. At start a server releases the leases its id held.
  std::string server_id = "local";
  bool shared_store = false;
  std::chrono::milliseconds lease{30000};
  std::chrono::milliseconds poll{1000};  // how often idle workers look for jobs
  // A store that cannot answer (down, locked, full): a job's store writes
  // are tried again from store_retry_first (doubling, at most
  // store_retry_max apart) for as long as its lease holds, then the job is
  // handed back (see engine/lease_book.h); claims back off up to
  // store_retry_max, and the trouble is logged once.
  std::chrono::milliseconds store_retry_first{250};
  std::chrono::milliseconds store_retry_max{10000};
  // Fair share: the most of this server's workers one owner's jobs may hold
  // at once (0: workers - 1, at least 1), so that one user's hung jobs leave
  // a worker for everybody else. Claims also prefer the owner with the
  // fewest jobs under way (see Store::claim_job).
  int jobs_per_owner = 0;
  // How often a server looks in the store for cancels of the jobs it runs.
  std::chrono::milliseconds cancel_poll{1000};
  uint16_t agent_port = 9089;  // where agents listen (agent::kAgentPort; tests use another)
  SourceSettings sources;      // which sources are accepted, fetch limits, repository credentials
  // The reverse proxy that serves each lab's stable URL (src/router); nullptr:
  // none (labs have only their machine's URL). With proxy_ports set (no
  // domain: a host port per lab), each lab is allotted a port of
  // [first, last] (Store::allocate_port); {0, 0}: routes by host name.
  std::shared_ptr<router::Router> router;
  std::pair<int, int> proxy_ports{0, 0};
  // Continuous delivery (job_release.cpp): how many earlier releases keep
  // their machine for a rollback (stopped, or running with
  // keep_releases_running: a rollback then takes about a second), and how
  // long an old machine keeps answering the requests under way after a
  // switch before it is stopped.
  int keep_releases = 1;
  bool keep_releases_running = false;
  std::chrono::milliseconds drain{2000};
  // Deploy on git push (git_watch.cpp): how often the git watch looks for
  // pending commits to release and branches due for a poll, and the shortest
  // poll interval a track may ask for (the API refuses less; tests lower it).
  std::chrono::milliseconds git_watch_interval{1000};
  int64_t min_poll_s = kMinPollSeconds;
  // Warm machines (warm_pool.cpp): per OS key, how many machines the default
  // provider keeps made and started ahead, with no lab and no secret, for a
  // deploy to claim instead of making one (empty: none; only providers that
  // can claim, see Provider::can_claim). The keeper looks every
  // warm_interval (and at once after a claim); a machine still being made
  // after warm_stale was left by a maker that stopped, and is removed.
  std::map<std::string, int> warm;
  std::chrono::milliseconds warm_interval{10000};
  std::chrono::milliseconds warm_stale{300000};
};

// Time spent in each step of each kind of job, for /metrics: a histogram
// with fixed bucket bounds (seconds).
struct StepHistogram {
  std::vector<uint64_t> buckets;  // per bound of Engine::step_bounds(), not cumulative
  uint64_t count = 0;
  double sum = 0;
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
  // params: {"backup": id} for restore. `limit`: refused ("too_many") when
  // limit.owner already has limit.max_active jobs under way on the
  // deployments it owns (checked in the store, with the insert).
  Result<Job> operate(const std::string& deployment_id, const std::string& kind, const nlohmann::json& params = {},
                      const Store::Admission& limit = {});

  // Asks a running deployment's agent for its figures (GET /v1/health):
  // {"uptime_s", "memory":{"total_kb","available_kb"}, "disk":{"total_kb","free_kb"},
  // "load", "processes"}. `conflict` unless the deployment is running;
  // "unavailable"/"timeout" when its agent does not answer.
  Result<nlohmann::json> health(const std::string& deployment_id);

  // Cancels a job (see engine/cancel.cpp and JobRules::on_cancel): a queued
  // one ends at once; a running one is marked in the store, and the server
  // running it (this one or another) kills the agent's command, stops the
  // job at its next step and ends it "cancelled" within a few seconds.
  // "not_found", "conflict" (the job has ended). Returns the job as it is now.
  Result<Job> cancel(const std::string& job_id, const std::string& why);

  // Deals with work left unfinished by an earlier process, then starts the
  // workers: queued jobs and idempotent ones (start, stop, restart, test,
  // destroy) run again; a deploy or restore that was mid-way is rolled back
  // (machine removed, deployment failed with the reason); a backup fails.
  Status start();
  // Stops taking work and returns within seconds: a running job leaves an
  // agent's action at once (the action goes on in the machine) or stops at
  // its next step (a provider call under way is finished first), and is
  // handed back as it stands (its lease released) for the next start or
  // another server to resume, deploy again or roll back by its rules.
  void stop();

  // Deploy on git push (git_watch.cpp): a verified push to a deployment
  // that tracks a branch. Ignored (another branch, a deleted branch, the
  // serving commit), or a release of the commit queued (`job`, its `by`
  // given), or, while a job of the deployment is under way, the commit kept
  // as the track's pending one: the git watch releases the newest pending
  // commit once the deployment is idle. "not_found" when it tracks nothing;
  // the errors of operate() (a deployment that is not running: "conflict").
  struct PushOutcome {
    PushAction action = PushAction::kIgnoreBranch;
    std::optional<Job> job;
    std::string message;
  };
  Result<PushOutcome> push(const std::string& deployment_id, const GitPush& p, const std::string& by,
                           const Store::Admission& limit = {});
  int64_t min_poll_s() const { return opts_.min_poll_s; }
  // One pass of the git watch (it runs one every git_watch_interval once
  // started): pending commits of idle running deployments released, tracked
  // branches due for a poll polled. Public for tests.
  void git_watch_pass();

  // Reconciler: machines the providers have with an ADS label that the store
  // does not know or considers gone, and deployments whose machine is missing.
  struct Drift {
    std::string provider, machine, deployment_id, problem;
    std::string fix;  // the operation that fixes it on deployment_id ("destroy"), "" if none
  };
  Result<std::vector<Drift>> reconcile();

  // Warm machines as the store has them, oldest first (`ads doctor`, /metrics).
  Result<std::vector<WarmMachine>> warm_machines() const { return store_.warm_machines(); }
  // One pass of the warm keeper (a thread runs one every warm_interval once
  // started): leftovers removed, the pool refilled. Public for tests.
  void warm_pass();

  // The images each provider serves, by OS key (`ads images`). A provider
  // that cannot be asked has its error instead of images.
  struct ProviderImages {
    std::string provider;
    bool is_default = false;
    std::vector<ImageInfo> images;
    std::optional<Error> error;
  };
  std::vector<ProviderImages> images();

  // `ads exec`: runs `argv` in the machine of a running deployment through
  // its provider (never the agent), and writes a line naming `by` and the
  // command to the deployment's log. "conflict" when the deployment is not
  // running; "unsupported" when its provider cannot.
  Result<ExecResult> exec(const std::string& id, const std::vector<std::string>& argv, int timeout_s,
                          const std::string& by);
  static constexpr size_t kExecOutputMax = 1u << 20;  // per stream
  // `ads shell`: the login shell of a running deployment's machine (the
  // same rule as exec) on a terminal, through its provider. The log gets a
  // line naming `by` when it opens and one with its exit code when the
  // session ends (is destroyed).
  Result<std::unique_ptr<ShellSession>> open_shell(const std::string& id, const TerminalSize& size,
                                                   const std::string& by);

  // Retention: destroyed deployments last changed more than `days` days ago
  // lose their logs, and their records when no backup of theirs is left (see
  // Store::prune_destroyed). `days` < 0: EngineOptions::retention_days.
  // "invalid" (field older_than_days) for a retention of 0 days asked for
  // by default (retention off) or more than 100 years.
  Result<PruneResult> prune(int days = -1);

  // Step durations so far, keyed by (job kind, step).
  std::map<std::pair<std::string, std::string>, StepHistogram> step_durations() const;
  static const std::vector<double>& step_bounds();
  const std::string& server_id() const { return opts_.server_id; }
  const std::string& default_provider() const { return opts_.default_provider; }
  const std::map<std::string, int>& warm_wanted() const { return opts_.warm; }
  // The store's trouble while this server's claims keep failing (for the
  // API to tell clients waiting on a job); nullopt while it answers.
  std::optional<StoreHealth::Trouble> store_trouble() const { return store_health_.trouble(); }

  static std::string default_name(const std::string& source);
  static std::string machine_name(const std::string& id) { return "ads-" + id; }

 private:
  void worker();
  void renew_leases();
  // Job control (cancel.cpp): the jobs this server runs, the cancels asked
  // for them, and how a cancelled job ends.
  struct Running {
    std::string job_id;
    std::atomic<bool> cancel{false};  // its cancel was asked for, and its agent's command stopped
  };
  std::shared_ptr<Running> track(const Job& job);
  void untrack(const Job& job);
  bool cancelled(const std::string& deployment_id);
  void watch_cancels();
  // Ends a job as cancelled, leaving its deployment as its rules say.
  void finish_cancelled(Deployment& d, Job& job);
  // A claimed job whose cancel was asked for before it (re)started.
  void cancel_unstarted(Job& job);
  int owner_share() const;
  // The lab's timeout for one command of `action` (its spec's, else the maximum).
  long command_timeout_ms(const LabSpec& spec, const std::string& action) const;
  // A spec asking more than the operator's maximum: "invalid", naming the field.
  Status check_timeouts(const LabSpec& spec) const;
  void run_job(Job& job);
  // A job found unfinished (after a restart, or its server's lease lapsed):
  // true if it should run (again), false once it was failed and rolled back.
  // taken_over_by: this server's id when the job's own server died ("" at a restart).
  bool recover(Job& job, const std::string& taken_over_by);
  void observe_step(const Job& job, const std::string& next_step);
  // One job of any kind (see core/job_rules.h): the function of its kind.
  Status run_kind(Deployment& d, Job& job);

  // The job kinds, one file each (job_*.cpp). Each logs as it goes and
  // returns the error that fails the job; code "interrupted" when the server
  // stopped under it (the job is left for the next start or another server).
  Status do_deploy_job(Deployment& d, Job& job);
  Status do_deploy(Deployment& d, Job& job, const std::string& restore_backup);
  Status do_start(Deployment& d, Job& job);
  Status do_stop(Deployment& d, Job& job);
  Status do_restart(Deployment& d, Job& job);
  Status do_test(Deployment& d, Job& job);
  Status do_backup(Deployment& d, Job& job);
  Status do_restore(Deployment& d, Job& job);
  Status do_destroy(Deployment& d, Job& job);
  Status do_delete_backup(Deployment& d, Job& job);
  Status do_release(Deployment& d, Job& job);
  Status do_rollback(Deployment& d, Job& job);
  Status do_check(Deployment& d, Job& job);

  // The deploy pipeline from fetching to verifying, into `t`: the deployment
  // itself (a deploy) or a release's candidate beside it (job_deploy.cpp).
  struct BuildHooks {
    std::function<Status(State)> step;                        // records a step; an error stops the build
    std::function<Status(const Deployment&)> record_machine;  // the machine's name, before it exists
    std::string machine;                                      // the machine's name
    std::string address_owner;                                // holder of its static address (and its work dir)
    std::string ref;                                          // "" : t.ref
    std::function<Status(Deployment&)> after_start;           // data in, once the lab started (may be empty)
  };
  Status build(Deployment& t, Job& job, const BuildHooks& h);
  // build's machine when no warm one is taken: recorded as t's (h.machine),
  // its static address allocated, made, started; t.address set.
  Status make_machine(Deployment& t, MachineSpec& ms, const BuildHooks& h, Provider* p);
  // Warm machines (warm_pool.cpp). take_warm: at provisioning, a ready warm
  // machine claimed for `t` (recorded as t's machine, then given `ms`'s
  // identity; t.machine and t.address set): true; false when there is none
  // to take (t.machine untouched) or the claim failed (the machine removed).
  Result<bool> take_warm(Deployment& t, const MachineSpec& ms, const BuildHooks& h, Provider* p);
  void warm_keeper();
  // Makes one warm machine of `os_key` (at most `max` of it): false when it
  // could not (the pool is full, or the error, logged).
  bool make_warm(Provider* p, const std::string& os_key, int max);
  // Removes a warm machine the store no longer lists (queued for clean-up if
  // the provider fails).
  void remove_warm_machine(Provider* p, const std::string& name, const std::string& why);
  // Whether a deployment or a release records `machine` as its own (true
  // when the store cannot tell).
  bool named_by_a_deployment(const std::string& machine);
  // A stopped (or running) machine brought back to serving: machine started,
  // agent, the lab's start action, the HTTP check. Records nothing.
  Status bring_up(Deployment& t, Job& job);
  // The lab's stop action (its failure only logged) and the machine stopped. Records nothing.
  Status put_down(Deployment& t, Job& job);
  // Releases (job_release.cpp).
  Result<std::vector<Release>> releases_with_current(Deployment& d);
  Status switch_release(Deployment& d, Job& job, Release& next, Release& prev);
  void after_switch(Deployment& d, Job& job, Release& prev);
  Status finish_or_undo_release(Deployment& d, Job& job, bool* done);
  Status remove_release_machine(Deployment& d, Release& r, const std::string& state);
  Status put_route(Deployment& d);
  bool keep_failed_release(Deployment& d, const Release& r);
  // The data of `from` (the serving release) into `to`: from's backup action
  // (a recorded backup), then to's restore action; *carried false (nothing
  // done) when either action is missing.
  Status carry_data(Deployment& from, Deployment& to, Job& job, const std::string& from_label,
                    const std::string& to_label, bool* carried);
  // Whether `b` can be restored into `d` (a destroyed deployment needs a
  // restore action or a snapshot that outlived its machine): "conflict" if not.
  Status admit_restore(const Deployment& d, const Backup& b);
  // Snapshot, archive, record of one backup.
  Status remove_backup(Deployment& d, Job& job, const Backup& b);
  Status restore_data(Deployment& d, Job& job, const Backup& b);
  // The agent's action, waiting while the agent is busy with an earlier one.
  Result<int> agent_action(Deployment& d, agent::AgentClient& c, const std::string& action,
                           const std::function<void(const std::string&, const std::string&)>& sink);
  // At starting_agent, where the machine's files are readable by others
  // (Provider::files_readable_by_others): records a fresh secret as d's
  // (by `record`: the deployment's, or a release's record), then has the
  // agent, which booted with d's old (bootstrap) secret, take it
  // (agent/handover.h). engine/agent_secret.cpp.
  Status replace_bootstrap_secret(Deployment& d, const std::function<Status(const Deployment&)>& record);
  // Runs a named agent action, logging its output; a playbook of a lab in
  // controller mode then runs from this host (run_controller_playbook).
  // `lab_tree`: the lab's files on this host when the caller has them (a
  // deploy); "" fetches them again at the deployment's commit.
  Status run_action(Deployment& d, agent::AgentClient& c, const std::string& action, const std::string& lab_tree = "");
  // ansible-playbook on this host, in a sandbox, against d's machine over
  // SSH with a key made for this run (engine/ansible_controller.cpp); its
  // output goes to `sink`. Returns its exit code. `extra_args` go after
  // ADS's own options (the check job's "--check", "--diff").
  Result<int> run_controller_playbook(Deployment& d, agent::AgentClient& c, const LabSpec& spec,
                                      const std::string& action, const std::string& lab_tree,
                                      const std::function<void(const std::string&, const std::string&)>& sink,
                                      const std::vector<std::string>& extra_args = {});
  // GET of the lab's URL until it answers 2xx/3xx or http_check_timeout passes.
  Status http_check(Deployment& d, const LabSpec& spec, std::string* url);
  // Stable URLs (publish.cpp). publish: the lab's route to its machine is
  // put (a port allotted first without a domain) and d.stable_url recorded;
  // a proxy that cannot be reached is tried again like a provider, then the
  // error is returned. unpublish: the route is removed (logged on failure),
  // stable_url cleared; release_port also gives the port back (destroy).
  Status publish(Deployment& d, const LabSpec& spec);
  void unpublish(Deployment& d, bool release_port);
  // Every published live lab's route, at once (start()); logged on failure.
  void sync_routes();

  Status advance(Deployment& d, State s);
  // A store write of the job running on `deployment_id` (engine/store_write.cpp):
  // tried again with backoff while the store is unavailable and the job's
  // lease holds; "interrupted" once the lease lapsed (the job is handed back
  // and nothing more of it is written).
  Status store_write(const std::string& deployment_id, const std::string& what, const std::function<Status()>& f);
  void set_step(Job& job, const std::string& step);
  void log(const Deployment& d, const std::string& stream, const std::string& text);
  void append_log(const std::string& deployment_id, const LogLine& line);
  // Marks `d` failed at its current state, removing its machine unless kept.
  void fail_deployment(Deployment& d, const std::string& error);
  // Removes d's machine (with retries) and clears machine, address and url;
  // true when there is no machine left. Logs what it did.
  bool remove_machine(Deployment& d);
  // The clean-up queue (cleanup.cpp): a machine that could not be removed is
  // recorded in the store and tried again by the janitor until it is gone.
  void queue_cleanup(const Deployment& d, const std::string& error);
  // One pass over the queue: every entry due is tried once.
  void run_cleanups();
  // Archives in backup_dir that no backup record lists (a crash between the
  // write and the record, or a temporary file) are removed, except for
  // deployments with a job under way.
  void sweep_backup_archives();
  // Removes the directories of Ansible controller runs that no process holds
  // any longer (a kill -9 mid-run): they hold the run's private key. At start.
  void sweep_ansible_runs();
  void janitor();
  // Throwaway deployments past their expiry get a destroy job (one pass, at
  // most 100; another server may have queued it already).
  void destroy_expired();
  std::chrono::steady_clock::time_point last_prune_{};
  // The git watch (git_watch.cpp): a thread that releases pending pushed
  // commits of idle deployments and polls tracked branches that ask for it
  // (one ls-remote at a time).
  void git_watch();
  void poll_branch(const GitTrack& t, const Deployment& d);
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
  std::condition_variable cv_;  // workers only: a job queued here wakes one of them
  uint64_t wakeups_ = 0;        // jobs queued here that workers have not looked for yet
  // the lease renewer's own: on cv_ it took the wake-up meant for a worker,
  // which then waited for its poll interval (up to `poll` on every job)
  std::condition_variable renew_cv_;
  std::vector<std::thread> threads_;
  std::thread renewer_;
  std::thread janitor_;
  std::condition_variable janitor_cv_;  // wakes the janitor at stop (cv_ is the workers')
  std::thread cancel_watcher_;
  std::thread git_watcher_;
  std::condition_variable git_cv_;  // wakes the git watch at stop
  std::thread warm_keeper_;
  std::condition_variable warm_cv_;  // wakes the keeper at stop and after a claim
  bool warm_wake_ = false;           // (under mu_) a claim took a warm machine
  std::mutex warm_mu_;               // one warm pass at a time
  // machines labelled warm that the store does not list, since when (ms)
  // the keeper's passes found them so (removed after warm_stale); under warm_mu_
  std::map<std::string, int64_t> warm_suspects_;
  std::string warm_last_error_;  // the last failure to make one (logged when it changes); under warm_mu_
  // OS keys whose image cannot make warm machines, until when (ms) they are
  // not tried again; under warm_mu_
  std::map<std::string, int64_t> warm_unsupported_until_;
  std::mutex running_mu_;
  std::map<std::string, std::shared_ptr<Running>> running_;  // by deployment id (one job at a time each)
  mutable std::mutex metrics_mu_;
  // job id -> (step, when it began)
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> step_began_;
  std::map<std::pair<std::string, std::string>, StepHistogram> step_hist_;
  std::atomic<bool> stopping_{false};
  IdGenerator ids_;
  std::mutex id_mu_;
  std::mutex submit_mu_;  // check-then-create of jobs and idempotency keys
  std::string agent_bytes_;
  std::string agent_sha256_;  // of agent_bytes_: an image that carries this agent is not sent it again
  LeaseBook leases_;          // the jobs this process runs
  StoreHealth store_health_{opts_.poll, opts_.store_retry_max};  // claims and renewals while the store is away
};

}  // namespace ads
