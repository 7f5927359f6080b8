#include "api/limits.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <cstring>

namespace ads {
namespace {
// A token bucket's wait (ms; INT64_MAX: never) as a Retry-After in seconds, >= 1.
int64_t retry_after_seconds(int64_t wait_ms) {
  return wait_ms == INT64_MAX ? 3600 : std::max<int64_t>(1, (wait_ms + 999) / 1000);
}
}  // namespace

std::string address_key(const std::string& remote) {
  if (remote.find(':') == std::string::npos) return remote;
  std::string a = remote;
  if (a.size() > 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
  unsigned char b[16];
  if (inet_pton(AF_INET6, a.c_str(), b) != 1) return remote;
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char out[INET6_ADDRSTRLEN];
  if (std::memcmp(b, mapped, sizeof mapped) == 0) {  // ::ffff:a.b.c.d is an IPv4 client
    inet_ntop(AF_INET, b + 12, out, sizeof out);
    return out;
  }
  std::memset(b + 8, 0, 8);
  inet_ntop(AF_INET6, b, out, sizeof out);
  return std::string(out) + "/64";
}

bool KeyedLimiter::take(const std::string& key, int64_t now_ms, int64_t* retry_after_s) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      for (auto i = buckets_.begin(); i != buckets_.end();)
        i = i->second.full(now_ms) ? buckets_.erase(i) : std::next(i);
    }
    if (buckets_.size() >= max_keys_) {
      if (retry_after_s) *retry_after_s = 1;
      return false;
    }
    it = buckets_.emplace(key, TokenBucket(rate_, burst_)).first;
  }
  int64_t wait_ms = 0;
  if (it->second.take(now_ms, &wait_ms)) return true;
  if (retry_after_s) *retry_after_s = retry_after_seconds(wait_ms);
  return false;
}

bool SharedLimiter::take(const std::string& key, int64_t now_ms, int64_t* retry_after_s) {
  if (!local_.take(key, now_ms, retry_after_s)) return false;
  auto t = store_.take_rate(prefix_ + key, rate_, burst_, now_ms);
  if (!t) {
    spdlog::warn("shared rate limit {}{}: the store did not answer ({}); this server's own limit applies alone",
                 prefix_, key, t.error().message);
    return true;
  }
  if (t->allowed) return true;
  if (retry_after_s) *retry_after_s = retry_after_seconds(t->retry_after_ms);
  return false;
}

}  // namespace ads
