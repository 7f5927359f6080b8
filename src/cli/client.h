// The CLI's client of the REST API.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ads::cli {

struct ApiReply {
  long status = 0;
  nlohmann::json body;
};

class ApiClient {
 public:
  ApiClient(std::string base, std::string token) : base_(std::move(base)), token_(std::move(token)) {}
  // Transport failure: Error "unavailable" naming the server.
  Result<ApiReply> call(const std::string& method, const std::string& path, const nlohmann::json* body = nullptr) const;
  const std::string& base() const { return base_; }
  // The Authorization header, if a token is set.
  std::vector<std::pair<std::string, std::string>> auth_headers() const;

 private:
  std::string base_;
  std::string token_;
};

// "error: <message> (field)" from an API error body.
std::string describe_error(const ApiReply& r);

// Exit codes of every verb: 0 ok, 1 the operation failed, 2 bad input (usage
// or a 4xx), 3 the server cannot be reached.
inline constexpr int kExitFailed = 1, kExitUsage = 2, kExitUnreachable = 3;
// Print "ads: <what is wrong>" to stderr and return the exit code.
int fail_with(const Error& e, int code);
int reply_error(const ApiReply& r);

}  // namespace ads::cli
