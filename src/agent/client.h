// The ADS side of the agent protocol: signed requests to one lab machine's
// agent (https://<address>:9089, its key pinned: see identity.h). Used by
// the engine; thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/protocol.h"
#include "core/result.h"
#include "http/client.h"

namespace ads::agent {

// One line of an action's output: stream is "stdout", "stderr" or "agent"
// (the agent's own notes: phase and command headers, exit codes).
using LineSink = std::function<void(const std::string& stream, const std::string& line)>;

// What ADS takes from an agent at most: a lab machine's root can replace
// its agent with anything, so every answer is bounded in size and time.
struct AgentLimits {
  size_t health_bytes = 64 * 1024;   // a health answer
  size_t answer_bytes = 64 * 1024;   // other JSON answers (upload, cancel, errors)
  size_t line_bytes = 1u << 20;      // one line (event) of an action's stream
  size_t action_bytes = 256u << 20;  // all of one action's stream
  // An action's stream with nothing (no output, no heartbeat) for this long:
  // the agent is taken as gone (frozen, killed, cut off). Agents send a
  // heartbeat every few seconds (AgentConfig::heartbeat_s) and say so in a
  // header (kHeaderHeartbeat); a stream without that header (an agent from
  // before heartbeats) is bounded by the action's timeout only.
  long idle_ms = 60000;
};
inline constexpr size_t kDefaultMaxBackupBytes = 512u << 20;

class AgentClient {
 public:
  // An https:// base_url pins the key derived from `secret`; an http:// one
  // is refused by every agent (it speaks HTTPS only).
  AgentClient(std::string base_url, std::string secret, AgentLimits limits = {});
  // https://<address>:9089
  static std::string url_for(const std::string& address, uint16_t port = kAgentPort);

  // GET /v1/health: {"uptime_s", "memory":{"total_kb","available_kb"},
  // "disk":{"total_kb","free_kb"}, "load":[1,5,15], "processes", "lab":{...}}.
  Result<nlohmann::json> health(long timeout_ms = 5000) const;
  // Polls health() until it answers 200 or `total` passes: Error "timeout"
  // naming the address and the last failure. A 401 stops at once ("unauthorized").
  Status wait_ready(std::chrono::milliseconds total) const;
  // PUT /v1/lab with a .tar.gz of the lab tree; the agent replaces /opt/lab
  // and parses the lab spec in it. Returns its JSON answer.
  Result<nlohmann::json> upload_lab(const std::string& tar_gz, long timeout_ms = 300000) const;
  // POST /v1/actions/{name}: runs "install" (all install phases) or a
  // life-cycle action of the spec, streaming output to `sink` (heartbeats
  // are not passed on). Returns the exit code of the first failing command,
  // or 0. A missing action: Error "not_found". Cancelled on the agent (see
  // cancel()): "cancelled". Transport failure: "unavailable"/"timeout"; an
  // agent silent for limits.idle_ms: "timeout" ("went silent"); a stream
  // past limits.line_bytes/action_bytes: "too_large".
  // `abandon`, if set, is asked about once a second: true leaves the stream
  // at once with Error "aborted" (the action goes on in the machine).
  Result<int> run_action(const std::string& name, const LineSink& sink, long timeout_ms = 1800000,
                         std::function<bool()> abandon = {}) const;
  // POST /v1/check: the install playbook of a lab in local mode run by the
  // agent in Ansible's check mode (--check, and --diff with `diff`), streamed
  // and answered as run_action. `lab_tar_gz`: the lab to check (a .tar.gz),
  // "" for the lab as uploaded. The agent busy with another upload, action or
  // check: Error "busy"; a lab without an install playbook, or in controller
  // mode: "conflict"; an agent from before checks: "not_found".
  Result<int> run_check(const std::string& lab_tar_gz, const LineSink& sink, long timeout_ms,
                        std::function<bool()> abandon = {}, bool diff = false) const;
  // POST /v1/actions/cancel: stops the action under way (the agent signals
  // its command's process group, SIGTERM then SIGKILL) and answers once it
  // has ended; its run_action then returns "cancelled". No action under way:
  // Error "conflict".
  Status cancel(long timeout_ms = 30000) const;

  // GET /v1/lab: the .tar.gz of the lab as it was last uploaded (PUT
  // /v1/lab), at most `max_bytes` ("too_large" past it). An agent that holds
  // none (one from before it kept it, or its copy could not be written):
  // Error "not_found".
  Result<std::string> download_lab(size_t max_bytes = kDefaultMaxBackupBytes, long timeout_ms = 300000) const;

  // GET /v1/backup: the .tar.gz of what the lab's backup action wrote, at
  // most `max_bytes` ("too_large" past it).
  Result<std::string> download_backup(size_t max_bytes = kDefaultMaxBackupBytes, long timeout_ms = 600000) const;
  // PUT /v1/backup: places a backup for the lab's restore action to read.
  Status upload_backup(const std::string& tar_gz, long timeout_ms = 600000) const;

  // POST /v1/secret: the agent keeps `fresh` (secret_file.h) and takes only
  // it from then on; this client (with the old secret) is then refused.
  // An agent without a secret file: Error "not_found".
  Status replace_secret(const std::string& fresh, long timeout_ms = 10000) const;

  // POST /v1/ssh: the agent lets `public_key` in as root over SSH for
  // `ttl_s` seconds at most (ssh_access.h). Returns this machine's host key
  // line and sshd's port. No sshd in the machine: Error "conflict" saying so.
  struct SshGrant {
    std::string host_key;  // "ssh-ed25519 AAAA..."
    int port = 22;
  };
  Result<SshGrant> open_ssh(const std::string& public_key, int ttl_s, long timeout_ms = 30000) const;
  // DELETE /v1/ssh: the key is out, that sshd stopped.
  Status close_ssh(long timeout_ms = 15000) const;

  const std::string& base_url() const { return base_url_; }

 private:
  // A signed request; non-200 answers become errors (see from_status).
  Result<http::ClientResponse> send(const std::string& method, const std::string& target, const std::string& body,
                                    long timeout_ms, size_t max_bytes,
                                    const std::string& content_type = "application/gzip") const;

  // run_action and run_check: POST `target` with `body`, the events to `sink`.
  Result<int> stream_events(const std::string& what, const std::string& target, const std::string& body,
                            const LineSink& sink, long timeout_ms, std::function<bool()> abandon) const;
  // Fills in the target's URL and TLS pin; an error if the pin cannot be made.
  Status prepare(http::ClientRequest& r, const std::string& target) const;

  std::string base_url_;
  std::string secret_;
  AgentLimits limits_;
  std::string pin_;        // "sha256//...", for https
  std::string pin_error_;  // why there is no pin, if it could not be made
};

}  // namespace ads::agent
