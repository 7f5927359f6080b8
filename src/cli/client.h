// The CLI's client of the REST API.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ads::cli {

// clang-tidy 14 sees a throw in nlohmann::json's noexcept move constructor
// (its assert_invariant), not in ours:
// NOLINTNEXTLINE(bugprone-exception-escape)
struct ApiReply {
  long status = 0;
  nlohmann::json body;
};

class ApiClient {
 public:
  ApiClient(std::string base, std::string token) : base_(std::move(base)), token_(std::move(token)) {}
  // Transport failure: Error "unavailable" naming the server. 30 s unless the
  // call itself may take longer (exec: its command's timeout).
  Result<ApiReply> call(const std::string& method, const std::string& path, const nlohmann::json* body = nullptr,
                        long timeout_ms = 30000) const;
  const std::string& base() const { return base_; }
  // https: trust the certificates in this file (see tls_setup.h cacert_for).
  void set_ca_file(std::string f) { ca_file_ = std::move(f); }
  const std::string& ca_file() const { return ca_file_; }
  // The Authorization header, if a token is set.
  std::vector<std::pair<std::string, std::string>> auth_headers() const;

 private:
  std::string base_;
  std::string token_;
  std::string ca_file_;
};

// "error: <message> (field)" from an API error body.
std::string describe_error(const ApiReply& r);

// Exit codes of every verb: 0 ok, 1 the operation failed, 2 bad input (usage
// or a 4xx), 3 the server cannot be reached or cannot answer now (a 503: its
// store is unavailable, or it is too busy).
inline constexpr int kExitFailed = 1, kExitUsage = 2, kExitUnreachable = 3;
// Print "ads: <what is wrong>" to stderr and return the exit code.
int fail_with(const Error& e, int code);
int reply_error(const ApiReply& r);

// While following a job: how long the CLI keeps waiting, once it has said so,
// for a server that cannot answer (503) or reports it cannot take up jobs
// ("server_trouble": its store is down, locked or full) before it gives up
// with exit 3. ADS_UNAVAILABLE_WAIT_S (seconds) sets it; 30 by default.
class TroubleWait {
 public:
  TroubleWait();
  // nullopt: go on following (said once on stderr what is wrong); otherwise
  // the exit code to return now. `reply` is a reply to a follow request.
  std::optional<int> check(const ApiReply& reply);

 private:
  std::optional<std::chrono::steady_clock::time_point> since_;
  std::chrono::seconds limit_;
  bool told_ = false;
};

}  // namespace ads::cli
