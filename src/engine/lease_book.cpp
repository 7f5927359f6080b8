#include "engine/lease_book.h"

namespace ads {

void LeaseBook::add(const std::string& job_id, const std::string& deployment_id, int64_t until_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  jobs_[job_id] = Entry{deployment_id, until_ms, false};
}

void LeaseBook::remove(const std::string& job_id) {
  std::lock_guard<std::mutex> lk(mu_);
  jobs_.erase(job_id);
}

bool LeaseBook::has(const std::string& job_id) const {
  std::lock_guard<std::mutex> lk(mu_);
  return jobs_.count(job_id) != 0;
}

std::vector<std::string> LeaseBook::live(int64_t now_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<std::string> out;
  for (auto& [id, e] : jobs_) {
    if (!e.lost && now_ms >= e.until_ms) e.lost = true;
    if (!e.lost) out.push_back(id);
  }
  return out;
}

void LeaseBook::renewed(const std::vector<std::string>& job_ids, int64_t until_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& id : job_ids) {
    auto it = jobs_.find(id);
    if (it != jobs_.end() && !it->second.lost && until_ms > it->second.until_ms) it->second.until_ms = until_ms;
  }
}

int64_t LeaseBook::expiry_of_deployment(const std::string& deployment_id) const {
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& [id, e] : jobs_)
    if (e.deployment_id == deployment_id) return e.lost ? 1 : e.until_ms;
  return 0;
}

bool LeaseBook::held(const std::string& deployment_id, int64_t now_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& [id, e] : jobs_) {
    if (e.deployment_id != deployment_id) continue;
    if (!e.lost && now_ms >= e.until_ms) e.lost = true;
    return !e.lost;
  }
  return true;  // no job of this process on it: not a job's write, nothing to fence
}

}  // namespace ads
