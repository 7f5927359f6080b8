// The door of every route that needs a bearer token (the API's routes and
// GET /metrics): authentication, then the limits of limits.h. One guard per
// server, shared by those routes, so that a client address has one budget of
// failed authentications whichever route it tries them on.
#pragma once

#include <optional>

#include "api/auth.h"
#include "api/limits.h"
#include "http/server.h"
#include "store/store.h"

namespace ads {

class RequestGuard {
 public:
  // The Retry-After (seconds) of an answer refused because the store is unavailable.
  static constexpr int64_t kStoreRetryAfterS = 5;

  RequestGuard(Store& store, Auth& auth, const ApiLimits& limits);

  // nullopt: `caller` is who sent `req` and may go on. Otherwise the answer
  // that refuses it:
  //   401 (with WWW-Authenticate) no token, or a token that is unknown,
  //       expired or revoked;
  //   503 (with Retry-After, code "store_unavailable") the store could not
  //       look the token up: no verdict, and not counted as a failure;
  //   429 (with Retry-After) the client address has spent its budget of
  //       failed authentications (a presented token that fails counts against
  //       it; no token at all does not), or the token its request rate.
  // On a 429 for the token's rate `caller` is set (the request is the caller's).
  std::optional<http::Response> check(const http::Request& req, Caller& caller);

 private:
  Auth& auth_;
  KeyedLimiter per_token_;     // this server's request rate per token
  SharedLimiter per_address_;  // failed authentications per client address, shared through the store
};

}  // namespace ads
