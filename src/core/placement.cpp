#include "core/placement.h"

#include <algorithm>
#include <cctype>
#include <limits>

namespace ads {

uint64_t available_mb(const MemberLoad& m) { return m.free_mb > m.reserved_mb ? m.free_mb - m.reserved_mb : 0; }

void add_pending(std::vector<MemberLoad>& members, const std::map<std::string, uint64_t>& pending) {
  for (auto& m : members) {
    auto it = pending.find(m.name);
    if (it != pending.end()) m.reserved_mb += it->second;
  }
}

Result<std::string> pick_member(const std::vector<MemberLoad>& members, uint64_t need_mb) {
  if (members.empty()) return Error::make("unavailable", "the cluster has no members");
  const MemberLoad* best = nullptr;
  bool any_online = false;
  std::string offline, short_of;
  for (const auto& m : members) {
    if (m.status != "Online") {
      offline +=
          (offline.empty() ? "" : ", ") + m.name + " is " + (m.status.empty() ? "in an unknown state" : m.status);
      continue;
    }
    any_online = true;
    uint64_t avail = available_mb(m);
    if (avail < need_mb || avail == 0) {
      short_of += (short_of.empty() ? "" : ", ") + m.name + " has " + std::to_string(avail) + " MB";
      continue;
    }
    if (!best || avail > available_mb(*best) || (avail == available_mb(*best) && m.name < best->name)) best = &m;
  }
  if (best) return best->name;
  if (!any_online) return Error::make("unavailable", "no cluster member is online (" + offline + ")");
  std::string msg =
      "no online cluster member has " + std::to_string(need_mb) + " MB of memory available (" + short_of + ")";
  if (!offline.empty()) msg += "; offline: " + offline;
  return Error::make("unavailable", msg);
}

std::optional<uint64_t> parse_lxd_memory_mb(std::string_view limit, uint64_t total_mb) {
  size_t i = 0;
  while (i < limit.size() && std::isdigit(static_cast<unsigned char>(limit[i]))) ++i;
  if (i == 0 || i > 19) return std::nullopt;
  uint64_t n = 0;
  for (size_t k = 0; k < i; ++k) n = n * 10 + static_cast<uint64_t>(limit[k] - '0');
  std::string_view unit = limit.substr(i);
  if (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  constexpr uint64_t kMiB = 1024 * 1024;
  constexpr uint64_t kMaxMb = std::numeric_limits<uint64_t>::max() / 2;
  auto to_mb = [&](long double bytes) -> std::optional<uint64_t> {
    long double mb = bytes / kMiB;
    if (mb > static_cast<long double>(kMaxMb)) return std::nullopt;
    auto whole = static_cast<uint64_t>(mb);
    return whole + (static_cast<long double>(whole) < mb ? 1 : 0);
  };
  if (unit == "%") {
    if (n > 100) return std::nullopt;
    return (total_mb * n + 99) / 100;
  }
  if (unit.empty() || unit == "B") return to_mb(static_cast<long double>(n));
  static constexpr std::string_view kUnits[] = {"k", "M", "G", "T", "P", "E"};
  for (size_t p = 0; p < std::size(kUnits); ++p) {
    long double dec = 1, bin = 1;
    for (size_t q = 0; q <= p; ++q) {
      dec *= 1000;
      bin *= 1024;
    }
    std::string d = std::string(kUnits[p]) + "B";
    std::string b = std::string(p == 0 ? "K" : kUnits[p]) + "iB";
    if (unit == d || (p == 0 && unit == "KB")) return to_mb(n * dec);
    if (unit == b) return to_mb(n * bin);
  }
  return std::nullopt;
}

}  // namespace ads
