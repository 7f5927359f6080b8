#include "agent/client.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "agent/identity.h"
#include "agent/protocol.h"
#include "http/client.h"

namespace ads::agent {
using nlohmann::json;

namespace {
int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Error from_status(long status, const std::string& body) {
  json j = json::parse(body, nullptr, false);
  std::string msg = "HTTP " + std::to_string(status);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) msg = j["error"].value("message", msg);
  if (status == 401) return Error::make("unauthorized", "the agent refused the request: " + msg);
  if (status == 403) return Error::make("forbidden", "the agent refused the request: " + msg);
  if (status == 404) return Error::make("not_found", msg);
  if (status == 409) {
    // "busy": another upload or action holds the agent (an older agent says "conflict" for it too)
    bool busy =
        j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].value("code", "") == "busy";
    return Error::make(busy ? "busy" : "conflict", msg);
  }
  if (status == 400 || status == 422) {
    Error e = Error::make("invalid", msg);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) e.field = j["error"].value("field", "");
    return e;
  }
  return Error::make("failed", "agent: " + msg);
}
std::string seconds(long ms) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", static_cast<double>(ms) / 1000.0);
  return b;
}

// A TLS failure means the machine at the address is not this deployment's
// agent (or not an agent at all): say so rather than "cannot reach".
Error transport_error(Error e) {
  if (e.code == "tls")
    e.message =
        "the machine did not prove it is this deployment's agent (its TLS key is not the one derived "
        "from the deployment's secret): " +
        e.message;
  return e;
}
}  // namespace

AgentClient::AgentClient(std::string base_url, std::string secret, AgentLimits limits)
    : base_url_(std::move(base_url)), secret_(std::move(secret)), limits_(limits) {
  crypto_init();
  if (base_url_.rfind("https://", 0) == 0) {
    auto pin = agent_pins(secret_);
    if (pin) pin_ = *pin;
    else pin_error_ = pin.error().message;
  }
}

std::string AgentClient::url_for(const std::string& address, uint16_t port) {
  bool v6 = address.find(':') != std::string::npos;
  return "https://" + (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

Status AgentClient::prepare(http::ClientRequest& r, const std::string& target) const {
  if (!pin_error_.empty()) return Error::make("internal", "cannot compute the agent's key pin: " + pin_error_);
  r.url = base_url_ + target;
  r.pinned_key = pin_;
  return Status::Ok();
}

Result<http::ClientResponse> AgentClient::send(const std::string& method, const std::string& target,
                                               const std::string& body, long timeout_ms, size_t max_bytes,
                                               const std::string& content_type) const {
  http::ClientRequest r;
  r.method = method;
  if (auto st = prepare(r, target); !st) return st.error();
  r.body = body;
  r.headers = signed_headers(secret_, method, target, body, unix_now());
  if (!body.empty()) r.headers.push_back({"Content-Type", content_type});
  r.timeout_ms = timeout_ms;
  r.connect_timeout_ms = std::min(timeout_ms, 2000L);
  r.max_body_bytes = max_bytes;
  auto res = http::request(r);
  if (!res) return transport_error(res.error());
  if (res->status != 200) return from_status(res->status, res->body);
  return res;
}

Result<json> AgentClient::health(long timeout_ms) const {
  auto res = send("GET", "/v1/health", "", timeout_ms, limits_.health_bytes);
  if (!res) return res.error();
  json j = json::parse(res->body, nullptr, false);
  if (j.is_discarded()) return Error::make("failed", "the agent's health answer is not JSON");
  return j;
}

Status AgentClient::wait_ready(std::chrono::milliseconds total) const {
  auto deadline = std::chrono::steady_clock::now() + total;
  std::string last;
  // asked often at first (a machine's agent starts within tens of ms of the
  // machine's address), then every 200 ms
  auto pause = std::chrono::milliseconds(20);
  while (true) {
    auto h = health(2000);
    if (h) return Status::Ok();
    // final answers: a wrong secret, or a machine without the expected key
    if (h.error().code == "unauthorized" || h.error().code == "tls") return h.error();
    last = h.error().message;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
  return Error::make("timeout", "the agent at " + base_url_ + " did not answer within " +
                                    std::to_string(total.count() / 1000.0).substr(0, 4) + " s (last: " + last + ")");
}

Result<json> AgentClient::upload_lab(const std::string& tar_gz, long timeout_ms) const {
  auto res = send("PUT", "/v1/lab", tar_gz, timeout_ms, limits_.answer_bytes);
  if (!res) return res.error();
  return json::parse(res->body, nullptr, false);
}

Result<std::string> AgentClient::download_lab(size_t max_bytes, long timeout_ms) const {
  auto res = send("GET", "/v1/lab", "", timeout_ms, max_bytes);
  if (!res) return res.error();
  return std::move(res->body);
}

Result<std::string> AgentClient::download_backup(size_t max_bytes, long timeout_ms) const {
  auto res = send("GET", "/v1/backup", "", timeout_ms, max_bytes);
  if (!res) return res.error();
  return std::move(res->body);
}

Status AgentClient::upload_backup(const std::string& tar_gz, long timeout_ms) const {
  auto res = send("PUT", "/v1/backup", tar_gz, timeout_ms, limits_.answer_bytes);
  if (!res) return res.error();
  return Status::Ok();
}

Status AgentClient::replace_secret(const std::string& fresh, long timeout_ms) const {
  auto res =
      send("POST", "/v1/secret", json{{"secret", fresh}}.dump(), timeout_ms, limits_.answer_bytes, "application/json");
  if (!res) return res.error();
  return Status::Ok();
}

Result<AgentClient::SshGrant> AgentClient::open_ssh(const std::string& public_key, int ttl_s, long timeout_ms) const {
  auto res = send("POST", "/v1/ssh", json{{"public_key", public_key}, {"ttl_s", ttl_s}}.dump(), timeout_ms,
                  limits_.answer_bytes, "application/json");
  if (!res) return res.error();
  json j = json::parse(res->body, nullptr, false);
  if (!j.is_object() || !j.contains("host_key") || !j["host_key"].is_string() || !j.contains("port") ||
      !j["port"].is_number_integer())
    return Error::make("failed", "the agent's answer to POST /v1/ssh has no host_key and port");
  SshGrant g;
  g.host_key = j["host_key"].get<std::string>();
  g.port = j["port"].get<int>();
  if (g.host_key.rfind("ssh-ed25519 ", 0) != 0 || g.host_key.find_first_of("\r\n") != std::string::npos ||
      g.host_key.size() > 1024 || g.port < 1 || g.port > 65535)
    return Error::make("failed", "the agent answered a host key or port that is not one");
  return g;
}

Status AgentClient::close_ssh(long timeout_ms) const {
  auto res = send("DELETE", "/v1/ssh", "", timeout_ms, limits_.answer_bytes, "application/json");
  if (!res) return res.error();
  return Status::Ok();
}

Status AgentClient::cancel(long timeout_ms) const {
  auto res = send("POST", "/v1/actions/cancel", "", timeout_ms, limits_.answer_bytes);
  if (!res) return res.error();
  return Status::Ok();
}

Result<int> AgentClient::run_action(const std::string& name, const LineSink& sink, long timeout_ms,
                                    std::function<bool()> abandon) const {
  return stream_events("action " + name, "/v1/actions/" + name, "", sink, timeout_ms, std::move(abandon));
}

Result<int> AgentClient::run_check(const std::string& lab_tar_gz, const LineSink& sink, long timeout_ms,
                                   std::function<bool()> abandon, bool diff) const {
  return stream_events("the check", diff ? "/v1/check?diff=1" : "/v1/check", lab_tar_gz, sink, timeout_ms,
                       std::move(abandon));
}

Result<int> AgentClient::stream_events(const std::string& what, const std::string& target, const std::string& body,
                                       const LineSink& sink, long timeout_ms, std::function<bool()> abandon) const {
  http::ClientRequest r;
  r.method = "POST";
  if (auto st = prepare(r, target); !st) return st.error();
  r.body = body;
  r.headers = signed_headers(secret_, "POST", target, body, unix_now());
  if (!body.empty()) r.headers.push_back({"Content-Type", "application/gzip"});
  r.timeout_ms = timeout_ms;
  r.idle_timeout_ms = limits_.idle_ms;
  r.idle_needs_header = "x-ads-heartbeat";  // an agent from before heartbeats is not held to it
  r.max_body_bytes = limits_.action_bytes;
  r.should_abort = std::move(abandon);
  std::string pending, error_body;
  std::optional<int> done;
  bool is_error = false, cancelled = false;
  std::optional<Error> stream_error;
  r.on_data = [&](const std::string& chunk) {
    pending += chunk;
    size_t start = 0, pos;
    while ((pos = pending.find('\n', start)) != std::string::npos) {
      std::string line = pending.substr(start, pos - start);
      start = pos + 1;
      json ev = json::parse(line, nullptr, false);
      if (!ev.is_object()) {
        // an error answer (JSON object on one line) or garbage
        if (error_body.size() < limits_.answer_bytes) error_body += line;
        is_error = true;
        continue;
      }
      std::string type = ev.value("event", "");
      if (type == "output") sink(ev.value("stream", "stdout"), ev.value("line", ""));
      else if (type == "heartbeat") continue;  // the agent is alive; nothing for the log
      else if (type == "phase") sink("agent", "== " + ev.value("phase", ""));
      else if (type == "command") sink("agent", "$ " + ev.value("command", ""));
      else if (type == "exit") {
        int code = ev.value("code", 0);
        if (code != 0) sink("agent", "exit " + std::to_string(code) + ": " + ev.value("command", ""));
      } else if (type == "done") done = ev.value("code", 0);
      else if (type == "cancelled") cancelled = true;
      else if (ev.contains("error")) {
        error_body = line.substr(0, limits_.answer_bytes);
        is_error = true;
      }
    }
    pending.erase(0, start);
    if (pending.size() > limits_.line_bytes) {
      stream_error =
          Error::make("too_large", "the agent sent a line longer than " + std::to_string(limits_.line_bytes) +
                                       " bytes in " + what + "; stopped reading it");
      return false;
    }
    return true;
  };
  auto res = http::request(r);
  if (stream_error) return *stream_error;
  if (!res) {
    Error e = transport_error(res.error());
    if (e.code == "too_large")
      e.message =
          what + ": the agent sent more than " + std::to_string(limits_.action_bytes) + " bytes; stopped reading it";
    else if (e.code == "timeout" && e.message.find("went silent") != std::string::npos)
      e.message = what + ": the agent at " + base_url_ + " went silent for " + seconds(limits_.idle_ms) +
                  " s (no output, no heartbeat): it is frozen, gone or cut off";
    return e;
  }
  long status = res->status;
  if (status != 200) return from_status(status, error_body.empty() ? pending : error_body);
  if (cancelled) return Error::make("cancelled", what + " was cancelled on the agent");
  if (is_error && !done) return from_status(500, error_body);
  if (!done) return Error::make("failed", "the agent closed the stream before the action finished");
  return *done;
}

}  // namespace ads::agent
