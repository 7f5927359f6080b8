// How the engine's store calls fare while the store is unavailable (down,
// locked, full): a doubling backoff, the trouble said once in the log when
// it begins and once when it ends (never a line per try), and what the API
// shows clients while it lasts. No I/O and no clock of its own: callers pass
// the time and log what they are told.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace ads {

// first, 2*first, 4*first, ... capped at max.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds first, std::chrono::milliseconds max) : first_(first), max_(max), next_(first) {}
  std::chrono::milliseconds next() {
    auto w = next_;
    next_ = std::min(next_ * 2, max_);
    return w;
  }
  void reset() { next_ = first_; }

 private:
  std::chrono::milliseconds first_, max_, next_;
};

// Shared by the engine's threads (thread-safe).
class StoreHealth {
 public:
  StoreHealth(std::chrono::milliseconds first_wait, std::chrono::milliseconds max_wait)
      : backoff_(first_wait, max_wait) {}

  struct Failure {
    std::chrono::milliseconds wait;  // before the next try
    bool began = false;              // the first failure of this spell: say so
  };
  // A store call failed with the store unavailable.
  Failure failed(const std::string& message, int64_t now_ms);
  // A store call succeeded: how long the spell of trouble lasted (ms) if
  // this ends one (say so once), else nullopt.
  std::optional<int64_t> succeeded(int64_t now_ms);

  struct Trouble {
    std::string message;  // the last failure's
    int64_t since_ms = 0;
    int failures = 0;
  };
  // The trouble under way, once it is more than a blip (two failures in a
  // row); nullopt while the store answers.
  std::optional<Trouble> trouble() const;

 private:
  mutable std::mutex mu_;
  Backoff backoff_;
  std::optional<Trouble> trouble_;
};

}  // namespace ads
