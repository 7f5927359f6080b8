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

class AgentClient {
 public:
  // An https:// base_url pins the key derived from `secret`; an http:// one
  // is refused by every agent (it speaks HTTPS only).
  AgentClient(std::string base_url, std::string secret);
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
  // life-cycle action of the spec, streaming output to `sink`. Returns the
  // exit code of the first failing command, or 0. A missing action: Error
  // "not_found". Transport failure: "unavailable"/"timeout".
  Result<int> run_action(const std::string& name, const LineSink& sink, long timeout_ms = 1800000) const;

  // GET /v1/backup: the .tar.gz of what the lab's backup action wrote.
  Result<std::string> download_backup(long timeout_ms = 600000) const;
  // PUT /v1/backup: places a backup for the lab's restore action to read.
  Status upload_backup(const std::string& tar_gz, long timeout_ms = 600000) const;

  const std::string& base_url() const { return base_url_; }

 private:
  // A signed request; non-200 answers become errors (see from_status).
  Result<http::ClientResponse> send(const std::string& method, const std::string& target, const std::string& body,
                                    long timeout_ms) const;

  // Fills in the target's URL and TLS pin; an error if the pin cannot be made.
  Status prepare(http::ClientRequest& r, const std::string& target) const;

  std::string base_url_;
  std::string secret_;
  std::string pin_;        // "sha256//...", for https
  std::string pin_error_;  // why there is no pin, if it could not be made
};

}  // namespace ads::agent
