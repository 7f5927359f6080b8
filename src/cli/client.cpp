#include "cli/client.h"

#include <cstdlib>
#include <iostream>

#include "core/env.h"
#include "http/client.h"

namespace ads::cli {

Result<ApiReply> ApiClient::call(const std::string& method, const std::string& path, const nlohmann::json* body,
                                 long timeout_ms) const {
  http::ClientRequest req;
  req.method = method;
  req.url = base_ + path;
  req.timeout_ms = timeout_ms;
  req.headers = auth_headers();
  req.ca_file = ca_file_;
  if (body) {
    req.body = body->dump();
    req.headers.push_back({"Content-Type", "application/json"});
  }
  auto r = http::request(req);
  if (!r && r.error().code == "tls")
    return Error::make("tls", "the ADS server at " + base_ + " failed the TLS check (" + r.error().message +
                                  "); give the certificate to trust with --cacert or ADS_CACERT");
  if (!r)
    return Error::make("unavailable", "cannot reach the ADS server at " + base_ + " (" + r.error().message +
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
  if (r.status == 503) {
    std::cerr << "ads: the ADS server cannot answer now: " << describe_error(r) << "\n";
    return kExitUnreachable;
  }
  std::cerr << "ads: " << describe_error(r) << "\n";
  return r.status >= 400 && r.status < 500 ? kExitUsage : kExitFailed;
}

TroubleWait::TroubleWait() : limit_(30) {
  if (auto v = env_var("ADS_UNAVAILABLE_WAIT_S"); v && !v->empty()) {
    char* end = nullptr;
    long n = std::strtol(v->c_str(), &end, 10);
    if (end && *end == '\0' && n >= 0 && n <= 86400) limit_ = std::chrono::seconds(n);
  }
}

std::optional<int> TroubleWait::check(const ApiReply& reply) {
  std::string what;
  if (reply.status == 503) {
    what = "the ADS server cannot answer now: " + describe_error(reply);
  } else if (reply.status == 200 && reply.body.contains("server_trouble") && reply.body["server_trouble"].is_object()) {
    what = reply.body["server_trouble"].value("message", "the server cannot take up jobs") + " (since " +
           reply.body["server_trouble"].value("since", "?") + ")";
  } else {
    since_.reset();  // all well again
    return std::nullopt;
  }
  auto now = std::chrono::steady_clock::now();
  if (!since_) since_ = now;
  if (now - *since_ >= limit_) {
    std::cerr << "ads: " << what << "; gave up waiting after " << limit_.count()
              << " s (the work stays queued on the server and goes on when it can)\n";
    return kExitUnreachable;
  }
  if (!told_) {
    std::cerr << "ads: " << what << "; waiting up to " << limit_.count() << " s\n";
    told_ = true;
  }
  return std::nullopt;
}

}  // namespace ads::cli
