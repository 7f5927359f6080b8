// The agent's HTTP server (port 9089 inside each lab machine). Every request
// must be signed with the deployment's secret (see protocol.h). Endpoints:
//   GET  /v1/health              uptime, memory, disk, load, processes
//   PUT  /v1/lab                 body: .tar.gz of the lab; replaces lab_dir
//   POST /v1/actions/{name}      runs "install" or a life-cycle action of the
//                                lab's spec; NDJSON stream of events
// There is no endpoint that runs a command sent in a request.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/protocol.h"
#include "core/labspec.h"
#include "core/result.h"
#include "http/server.h"

namespace ads::agent {

struct AgentConfig {
  std::string secret;
  std::string host = "0.0.0.0";
  uint16_t port = kAgentPort;
  std::string lab_dir = "/opt/lab";
  int command_timeout_s = 1800;
  size_t max_upload_bytes = 512u << 20;
};

// Reads the agent's JSON config; errors name the field.
Result<AgentConfig> parse_agent_config(const std::string& json_text);

class AgentServer {
 public:
  explicit AgentServer(AgentConfig cfg);
  Status start();
  void stop();
  uint16_t port() const { return server_.port(); }

 private:
  std::optional<http::Response> authenticate(const http::Request& req);
  http::Response health();
  http::Response upload(const http::Request& req);
  http::Response action(const http::Request& req);

  AgentConfig cfg_;
  http::Server server_;
  NonceCache nonces_;
  std::chrono::steady_clock::time_point started_;
  std::mutex lab_mu_;                 // guards spec_
  std::optional<LabSpec> spec_;
  std::atomic<bool> busy_{false};     // one upload or action at a time
};

}  // namespace ads::agent
