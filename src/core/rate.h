// A token bucket: `burst` requests at once, then `per_second` on average.
// Pure arithmetic on a clock the caller passes in; no I/O, no locking.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ads {

class TokenBucket {
 public:
  TokenBucket(double per_second, double burst) : rate_(per_second), burst_(burst), tokens_(burst) {}
  // A bucket as saved earlier (tokens() and last_ms() of a bucket with the
  // same rate and burst): how a bucket kept in a shared store goes on.
  TokenBucket(double per_second, double burst, double tokens, int64_t last_ms)
      : rate_(per_second), burst_(burst), tokens_(std::clamp(tokens, 0.0, burst)), last_ms_(last_ms) {}

  // Takes one token at `now_ms`. When none is left, returns false and sets
  // `retry_after_ms` to the wait until the next one.
  bool take(int64_t now_ms, int64_t* retry_after_ms = nullptr) {
    refill(now_ms);
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return true;
    }
    if (retry_after_ms) {
      double missing = 1.0 - tokens_;
      *retry_after_ms = rate_ > 0 ? static_cast<int64_t>(missing / rate_ * 1000.0) + 1 : INT64_MAX;
    }
    return false;
  }
  // Whether the bucket is full at `now_ms` (it can then be forgotten).
  bool full(int64_t now_ms) {
    refill(now_ms);
    return tokens_ >= burst_;
  }
  // The state to save: tokens left at last_ms().
  double tokens() const { return tokens_; }
  int64_t last_ms() const { return last_ms_; }
  // When the bucket will be full again if nobody takes from it (it can be
  // forgotten from then on: a fresh bucket is the same).
  int64_t full_at_ms() const {
    if (tokens_ >= burst_) return last_ms_;
    if (rate_ <= 0) return INT64_MAX;
    return last_ms_ + static_cast<int64_t>((burst_ - tokens_) / rate_ * 1000.0) + 1;
  }

 private:
  void refill(int64_t now_ms) {
    if (last_ms_ == 0 || now_ms < last_ms_) last_ms_ = now_ms;  // first use, or the clock went back
    tokens_ = std::min(burst_, tokens_ + (now_ms - last_ms_) * rate_ / 1000.0);
    last_ms_ = now_ms;
  }
  double rate_;
  double burst_;
  double tokens_;
  int64_t last_ms_ = 0;
};

}  // namespace ads
