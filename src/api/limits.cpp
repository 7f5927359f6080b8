#include "api/limits.h"

namespace ads {

bool KeyedLimiter::take(const std::string& key, int64_t now_ms, int64_t* retry_after_s) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      for (auto i = buckets_.begin(); i != buckets_.end();) i = i->second.full(now_ms) ? buckets_.erase(i) : std::next(i);
    }
    if (buckets_.size() >= max_keys_) {
      if (retry_after_s) *retry_after_s = 1;
      return false;
    }
    it = buckets_.emplace(key, TokenBucket(rate_, burst_)).first;
  }
  int64_t wait_ms = 0;
  if (it->second.take(now_ms, &wait_ms)) return true;
  if (retry_after_s) *retry_after_s = wait_ms == INT64_MAX ? 3600 : std::max<int64_t>(1, (wait_ms + 999) / 1000);
  return false;
}

}  // namespace ads
