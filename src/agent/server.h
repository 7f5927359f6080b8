// The agent's HTTP server (port 9089 inside each lab machine). Every request
// must be signed with the deployment's secret (see protocol.h). Endpoints:
//   GET  /v1/health              uptime, memory, disk, load, processes
//   PUT  /v1/lab                 body: .tar.gz of the lab; replaces lab_dir
//   POST /v1/actions/{name}      runs "install" or a life-cycle action of the
//                                lab's spec; NDJSON stream of events
//   GET  /v1/backup              .tar.gz of the backup directory (what the
//                                lab's backup action wrote to $ADS_BACKUP_DIR)
//   PUT  /v1/backup              body: .tar.gz; replaces the backup directory
//                                (then the lab's restore action reads it)
//   POST /v1/actions/cancel      stops the action under way (its command's
//                                process group: SIGTERM, SIGKILL after
//                                kill_grace_s); 409 when none runs
//   POST /v1/secret              body {"secret": "<hex>"}: the agent keeps it
//                                in secret_file (0600) and takes only it from
//                                then on, also after a restart (secret_file.h);
//                                404 when the config names no secret_file.
//                                Until then (a bootstrap secret) only this
//                                and GET /v1/health are served (403 else).
//   POST /v1/ssh                 body {"public_key": "ssh-ed25519 ...",
//                                "ttl_s": N}: starts an sshd that lets that
//                                key in as root until DELETE /v1/ssh or N
//                                seconds (ssh_access.h); answers this
//                                machine's host key; 409 without sshd
//   DELETE /v1/ssh               removes the key, stops that sshd
// Commands see ADS_LAB_DIR, ADS_BACKUP_DIR, ADS_DEPLOYMENT_ID, ADS_LAB_NAME
// and ADS_STABLE_URL in their environment; the backup directory is emptied
// before the backup action runs. A playbook (the spec's "ansible", or an
// action's {"playbook": ...}) runs as `ansible-playbook -i localhost, -c local`
// from the lab directory, as one argument list (no shell), with the same
// values as extra variables (ads_lab_dir, ads_backup_dir, ads_deployment_id,
// ads_name, ads_stable_url).
// There is no endpoint that runs a command sent in a request.
// The agent speaks HTTPS only, with a key derived from the secret (identity.h).
// The signature is checked from a request's head, before its body is read
// (protocol.h). docs/agent.md describes the protocol in full.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/protocol.h"
#include "agent/ssh_access.h"
#include "core/labspec.h"
#include "core/result.h"
#include "http/server.h"

namespace ads::agent {

struct AgentConfig {
  std::string secret;
  // Set (an absolute path): `secret` is a bootstrap secret that ADS replaces
  // on first contact (POST /v1/secret); the replacement is kept in this file,
  // which, once there, the agent takes instead of `secret`.
  std::string secret_file;
  std::string host = "0.0.0.0";
  uint16_t port = kAgentPort;
  std::string lab_dir = "/opt/lab";
  std::string backup_dir = "/var/lib/ads-agent/backup";
  // The longest one command may run: the operator's maximum (the engine
  // sets it from its action timeout); a lab's spec may ask for less
  // ("timeouts"), never more.
  int command_timeout_s = 1800;
  size_t max_upload_bytes = 512u << 20;
  // How often an action's stream carries a heartbeat while a command runs.
  int heartbeat_s = 5;
  // After SIGTERM (timeout or cancel), how long before SIGKILL.
  int kill_grace_s = 5;
  // Who the machine serves, for the lab's commands and playbooks
  // (ADS_DEPLOYMENT_ID, ADS_LAB_NAME, ADS_STABLE_URL; ads_deployment_id,
  // ads_name, ads_stable_url): set by ADS, may be empty.
  std::string deployment_id;
  std::string lab_name;
  std::string stable_url;
  // Where the agent looks for ansible-playbook, in order (not in the JSON
  // config; tests point it elsewhere).
  std::vector<std::string> ansible_dirs = {"/usr/local/bin", "/usr/bin", "/bin"};
  // The sshd the controller mode's playbooks come in through (not in the
  // JSON config; tests point it elsewhere).
  SshAccessOptions ssh;
};

// Reads the agent's JSON config; errors name the field.
Result<AgentConfig> parse_agent_config(const std::string& json_text);

// Seconds since the machine's init (PID 1) started: /proc/uptime less the
// start time of PID 1 (field 22 of /proc/1/stat, in clock ticks since boot).
// In a container that is the container's uptime (its /proc/uptime is the
// host's unless lxcfs serves it); on a VM, about the boot. The host's uptime
// when the stat cannot be read.
double machine_uptime(const std::string& proc_uptime, const std::string& init_stat, long ticks_per_s);

class ActionGuard;  // one action's hold on the agent (server.cpp)

// The action under way, shared by its stream and the cancel endpoint.
struct RunningAction {
  std::mutex mu;
  std::condition_variable ended;  // notified when an action ends
  std::string name;               // "" when no action runs
  uint64_t generation = 0;        // counts actions started
  pid_t group = 0;                // its command's process group; 0 between commands
  std::atomic<bool> cancel{false};
};

class AgentServer {
 public:
  explicit AgentServer(AgentConfig cfg);
  Status start();
  void stop();
  uint16_t port() const { return server_.port(); }
  // Every route it serves ("METHOD pattern"), for the test that pins them.
  std::vector<std::string> routes() const { return server_.routes(); }

 private:
  // One command of an action: a shell command of the spec, or a playbook run.
  struct Step {
    std::string shown;              // as the log shows it
    std::vector<std::string> argv;  // argv[0] absolute
    std::string workdir;
    std::vector<std::string> env;  // added to the action's environment
    std::string missing;           // set: cannot run, this says why (exit 127)
  };
  struct StepPhase {
    std::string name;
    std::vector<Step> steps;
  };
  // ansible-playbook on a playbook of the lab, against this machine.
  Step playbook_step(const std::string& playbook) const;

  // Before the body: the signature of the head (and the body's declared
  // hash); sets the request's body limit. After it: the body against that hash.
  std::optional<http::Response> check_head(http::Request& req, size_t* body_limit);
  std::optional<http::Response> authenticate(const http::Request& req);
  // The secret requests must be signed with now.
  std::string secret() const;
  // 403 for what a bootstrap secret may not do (all but health and the switch).
  std::optional<http::Response> bootstrap_limit(const http::Request& req) const;
  http::Response replace_secret(const http::Request& req);
  http::Response health();
  http::Response upload(const http::Request& req);
  http::Response action(const http::Request& req);
  // POST /v1/check[?diff=1]: the install playbook of a local-mode lab in
  // Ansible's check mode (--check, --diff), streamed as an action is. The body: a
  // .tar.gz of the lab to check (unpacked beside the lab, removed after), or
  // empty for the lab as uploaded. 409 for a lab without an install playbook
  // or in controller mode (ADS checks those from its host).
  http::Response check(const http::Request& req);
  // Streams `phases` as the action `name` (held by `guard`, for cancel):
  // the events ADS reads (agent/client.h), the lab's timeout `asked` (0:
  // none) held to the operator's maximum.
  http::Response stream_phases(const std::string& name, std::vector<StepPhase> phases, int asked,
                               const std::shared_ptr<ActionGuard>& guard);
  http::Response get_backup();
  http::Response put_backup(const http::Request& req);
  http::Response cancel();
  http::Response open_ssh(const http::Request& req);
  http::Response close_ssh();
  // Checks every member of `tar_gz` and unpacks it into an emptied `dir`.
  std::optional<http::Response> unpack(const std::string& tar_gz, const std::string& dir);

  AgentConfig cfg_;
  http::Server server_;
  mutable std::mutex secret_mu_;  // guards secret_ and bootstrap_
  std::string secret_;            // cfg_.secret, or the one in cfg_.secret_file
  bool bootstrap_ = false;        // secret_file set and not written yet
  std::mutex replace_mu_;         // one replacement at a time
  NonceCache nonces_;
  std::chrono::steady_clock::time_point started_;
  std::mutex lab_mu_;  // guards spec_
  std::optional<LabSpec> spec_;
  std::atomic<bool> busy_{false};  // one upload or action at a time

  std::shared_ptr<RunningAction> running_ = std::make_shared<RunningAction>();
  SshAccess ssh_;
};

}  // namespace ads::agent
