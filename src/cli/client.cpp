#include "cli/client.h"

#include <iostream>

#include "http/client.h"

namespace ads::cli {

Result<ApiReply> ApiClient::call(const std::string& method, const std::string& path, const nlohmann::json* body) const {
  http::ClientRequest req;
  req.method = method;
  req.url = base_ + path;
  req.timeout_ms = 30000;
  req.headers = auth_headers();
  if (body) {
    req.body = body->dump();
    req.headers.push_back({"Content-Type", "application/json"});
  }
  auto r = http::request(req);
  if (!r) return Error::make("unavailable", "cannot reach the ADS server at " + base_ + " (" + r.error().message +
                                                "); is `ads serve` running?");
  ApiReply out;
  out.status = r->status;
  out.body = nlohmann::json::parse(r->body, nullptr, false);
  if (out.body.is_discarded()) out.body = nlohmann::json::object();
  return out;
}

std::vector<std::pair<std::string, std::string>> ApiClient::auth_headers() const {
  if (token_.empty()) return {};
  return {{"Authorization", "Bearer " + token_}};
}

std::string describe_error(const ApiReply& r) {
  if (r.body.contains("error") && r.body["error"].is_object()) {
    const auto& e = r.body["error"];
    std::string msg = e.value("message", "");
    std::string field = e.value("field", "");
    return field.empty() ? msg : field + ": " + msg;
  }
  return "HTTP " + std::to_string(r.status);
}

int fail_with(const Error& e, int code) {
  std::cerr << "ads: " << e.to_string() << "\n";
  return code;
}

int reply_error(const ApiReply& r) {
  std::cerr << "ads: " << describe_error(r) << "\n";
  return r.status >= 400 && r.status < 500 ? kExitUsage : kExitFailed;
}

}  // namespace ads::cli
