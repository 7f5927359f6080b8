#include "api/guard.h"

#include <chrono>

namespace ads {
namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

http::Response too_many(const std::string& message, int64_t retry_after_s) {
  http::Response r = http::Response::error(429, "too_many_requests", message);
  r.headers.push_back({"Retry-After", std::to_string(retry_after_s)});
  return r;
}
}  // namespace

RequestGuard::RequestGuard(Store& store, Auth& auth, const ApiLimits& limits)
    : auth_(auth),
      per_token_(limits.requests_per_second, limits.request_burst),
      per_address_(store, "authfail:", limits.auth_failures_per_minute / 60.0, limits.auth_failure_burst) {}

std::optional<http::Response> RequestGuard::check(const http::Request& req, Caller& caller) {
  int64_t wait_s = 0;
  const std::string presented = req.header("authorization");
  auto who = auth_.authenticate(presented);
  if (!who && who.error().code == "store_unavailable") {
    // no verdict: not an authentication failure, not counted against the address
    http::Response r = http::Response::error(503, who.error().code, who.error().message);
    r.headers.push_back({"Retry-After", std::to_string(kStoreRetryAfterS)});
    return r;
  }
  if (!who) {
    if (!presented.empty() && !per_address_.take(address_key(req.remote), now_ms(), &wait_s))
      return too_many("too many failed authentications from " + req.remote, wait_s);
    http::Response r = http::Response::error(401, "unauthorized", who.error().message);
    r.headers.push_back({"WWW-Authenticate", "Bearer realm=\"ads\""});
    return r;
  }
  caller = std::move(who.value());
  if (!per_token_.take(caller.token.id, now_ms(), &wait_s))
    return too_many("too many requests with this token", wait_s);
  return std::nullopt;
}

}  // namespace ads
