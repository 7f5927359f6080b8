#include "http/admission.h"

namespace ads::http {

size_t Admission::open_from(const std::string& address) const {
  auto it = open_by_address_.find(address);
  return it == open_by_address_.end() ? 0 : it->second;
}

bool Admission::address_full(const std::string& address) const {
  return limits_.per_address != 0 && open_from(address) >= limits_.per_address;
}

void Admission::count(const std::string& address, std::unordered_map<std::string, size_t>& m, int delta) {
  auto& n = m[address];
  n = delta > 0 ? n + 1 : (n > 0 ? n - 1 : 0);
  if (n == 0) m.erase(address);
}

bool Admission::take_slot(Ticket& t) {
  const size_t normal = limits_.max_connections > limits_.reserved ? limits_.max_connections - limits_.reserved : 0;
  if (open_ - reserved_open_ < normal) {
    t.reserved = false;
  } else if (reserved_open_ < limits_.reserved) {
    t.reserved = true;
    ++reserved_open_;
  } else {
    return false;
  }
  ++open_;
  count(t.address, open_by_address_, +1);
  return true;
}

Admission::Verdict Admission::arrive(Ticket& t) {
  const bool over_share = address_full(t.address);
  if (!over_share && take_slot(t)) return Verdict::kServe;
  auto q = queued_by_address_.find(t.address);
  size_t mine = q == queued_by_address_.end() ? 0 : q->second;
  if (limits_.max_queued_per_address != 0 && mine >= limits_.max_queued_per_address)
    return Verdict::kTooManyFromAddress;
  if (queue_.size() >= limits_.max_queued) return over_share ? Verdict::kTooManyFromAddress : Verdict::kBusy;
  t.reserved = false;
  queue_.push_back(t);
  count(t.address, queued_by_address_, +1);
  return Verdict::kQueued;
}

std::optional<Ticket> Admission::release(const Ticket& t) {
  if (open_ > 0) --open_;
  if (t.reserved && reserved_open_ > 0) --reserved_open_;
  count(t.address, open_by_address_, -1);
  // the waiting connection whose address has the fewest served, oldest first
  auto best = queue_.end();
  size_t best_open = 0;
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (address_full(it->address)) continue;
    size_t n = open_from(it->address);
    if (best == queue_.end() || n < best_open) {
      best = it;
      best_open = n;
      if (n == 0) break;  // no one comes before an address with nothing served
    }
  }
  if (best == queue_.end()) return std::nullopt;
  Ticket next = *best;
  if (!take_slot(next)) return std::nullopt;  // no slot of any kind: nobody can go
  queue_.erase(best);
  count(next.address, queued_by_address_, -1);
  return next;
}

std::vector<Ticket> Admission::expire(int64_t cutoff_ms) {
  std::vector<Ticket> out;
  while (!queue_.empty() && queue_.front().arrived_ms <= cutoff_ms) {
    count(queue_.front().address, queued_by_address_, -1);
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return out;
}

std::vector<Ticket> Admission::drain() {
  std::vector<Ticket> out(queue_.begin(), queue_.end());
  queue_.clear();
  queued_by_address_.clear();
  return out;
}

std::optional<int64_t> Admission::oldest_waiting() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.front().arrived_ms;
}

}  // namespace ads::http
