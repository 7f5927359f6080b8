// Rules both stores apply the same way (header-only, no I/O).
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace ads::store_detail {

// The lowest port of [lo, hi] not in `taken`.
inline std::optional<int> lowest_free_port(int lo, int hi, std::vector<int> taken) {
  std::sort(taken.begin(), taken.end());
  int want = lo;
  for (int p : taken) {
    if (p < want) continue;
    if (p > want) break;
    ++want;
  }
  if (want > hi) return std::nullopt;
  return want;
}

inline Error port_exhausted(int lo, int hi) {
  return Error{"exhausted",
               "every port of " + std::to_string(lo) + "-" + std::to_string(hi) +
                   " is held by a lab; destroy one or widen proxy.ports",
               "proxy.ports"};
}

inline Error name_taken(const std::string& name, const std::string& holder) {
  return Error{"conflict",
               "a live lab is already named \"" + name + "\" (deployment " + holder +
                   "); choose another name or destroy that one",
               "name"};
}

}  // namespace ads::store_detail
