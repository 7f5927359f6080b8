// Abuse limits of the API: a request rate per token (per server), a rate of
// sign-in attempts (and failed authentications) per client address (shared
// by every server on one store), and a bound on the jobs one user may have
// under way (in the store). Over a limit the API answers 429.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/rate.h"
#include "store/store.h"

namespace ads {

struct ApiLimits {
  double requests_per_second = 20;       // per token, on average
  double request_burst = 100;            // per token, at once
  double auth_failures_per_minute = 10;  // per client address: logins and bad tokens
  double auth_failure_burst = 10;
  // Password sign-ins per user name, from all addresses together: a spread
  // of addresses guesses one account's password no faster than this.
  double user_sign_ins_per_hour = 30;
  double user_sign_in_burst = 10;
  // OpenID Connect: sign-ins started (/oidc/login) and callbacks that are no
  // sign-in of this browser, per client address.
  double oidc_sign_ins_per_minute = 20;
  double oidc_sign_in_burst = 20;
  int active_jobs_per_user = 8;  // queued or running, on the user's deployments
  // `ads shell`: open at once on this server, and by one user of them (one
  // user cannot take every shell: 429 past it, 503 past the server's).
  int shells = 32;
  int shells_per_user = 4;
  // The longest a token made with a sign-in session token may last (a
  // browser session cannot turn itself into a token that never expires).
  int64_t max_token_ttl_from_session_s = 30 * 86400;
};

// The key of a client address for per-address limits: an IPv4 address as it
// is, an IPv6 address by its /64 (one host usually holds a whole /64).
std::string address_key(const std::string& remote);

// Token buckets by key, safe to share between the server's threads. Holds at
// most `max_keys` buckets: when full, it forgets the buckets that are full
// again (their keys have been quiet); if none is, it refuses new keys.
class KeyedLimiter {
 public:
  KeyedLimiter(double per_second, double burst, size_t max_keys = 10000)
      : rate_(per_second), burst_(burst), max_keys_(max_keys) {}

  // false: over the limit; `retry_after_s` is the wait (seconds, >= 1).
  bool take(const std::string& key, int64_t now_ms, int64_t* retry_after_s);

 private:
  std::mutex mu_;
  double rate_, burst_;
  size_t max_keys_;
  std::unordered_map<std::string, TokenBucket> buckets_;
};

// A limit shared by every server on one store: this server's own bucket for
// the key first (no I/O; it bounds how often one client can make this server
// write), then the store's bucket of the same key, so that N servers do not
// allow N times the rate. When the store cannot answer, the local limit alone
// holds (logged as a warning), so a store outage never opens the door wider
// than one server's limit, nor shuts it.
class SharedLimiter {
 public:
  // `prefix` names the limit in the store ("signin:", "authfail:").
  SharedLimiter(Store& store, std::string prefix, double per_second, double burst, size_t max_keys = 10000)
      : store_(store),
        prefix_(std::move(prefix)),
        rate_(per_second),
        burst_(burst),
        local_(per_second, burst, max_keys) {}

  // false: over the limit; `retry_after_s` is the wait (seconds, >= 1).
  bool take(const std::string& key, int64_t now_ms, int64_t* retry_after_s);

 private:
  Store& store_;
  std::string prefix_;
  double rate_, burst_;
  KeyedLimiter local_;
};

}  // namespace ads
