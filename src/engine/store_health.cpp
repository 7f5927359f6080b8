#include "engine/store_health.h"

namespace ads {

StoreHealth::Failure StoreHealth::failed(const std::string& message, int64_t now_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  Failure f;
  if (!trouble_) {
    trouble_ = Trouble{message, now_ms, 0};
    backoff_.reset();
    f.began = true;
  }
  trouble_->message = message;
  trouble_->failures += 1;
  f.wait = backoff_.next();
  return f;
}

std::optional<int64_t> StoreHealth::succeeded(int64_t now_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!trouble_) return std::nullopt;
  int64_t lasted = now_ms - trouble_->since_ms;
  trouble_.reset();
  backoff_.reset();
  return lasted;
}

std::optional<StoreHealth::Trouble> StoreHealth::trouble() const {
  std::lock_guard<std::mutex> lk(mu_);
  if (!trouble_ || trouble_->failures < 2) return std::nullopt;
  return trouble_;
}

}  // namespace ads
