// The CLI's client of the REST API.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/result.h"

namespace ads::cli {

struct ApiReply {
  long status = 0;
  nlohmann::json body;
};

class ApiClient {
 public:
  explicit ApiClient(std::string base) : base_(std::move(base)) {}
  // Transport failure: Error "unavailable" naming the server.
  Result<ApiReply> call(const std::string& method, const std::string& path, const nlohmann::json* body = nullptr) const;
  const std::string& base() const { return base_; }

 private:
  std::string base_;
};

// "error: <message> (field)" from an API error body.
std::string describe_error(const ApiReply& r);

}  // namespace ads::cli
