#include "core/lab_tree.h"

#include <deque>
#include <vector>

namespace ads {
namespace {
std::deque<std::string> split(const std::string& p) {
  std::deque<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}
}  // namespace

bool link_stays_inside(const std::string& link_rel, const std::string& target, const ReadLinkAt& read_link) {
  constexpr int kMaxHops = 40;  // the kernel's limit (MAXSYMLINKS)
  std::vector<std::string> at;  // where we are, from the root
  {
    auto parts = split(link_rel);
    parts.pop_back();  // the link's own name: its target is read from its directory
    for (auto& p : parts) {
      if (p.empty() || p == ".") continue;
      if (p == "..") return false;  // a link's own path never climbs
      at.push_back(p);
    }
  }
  if (target.empty() || target[0] == '/') return false;
  std::deque<std::string> pending = split(target);
  int hops = 0;
  while (!pending.empty()) {
    std::string c = pending.front();
    pending.pop_front();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (at.empty()) return false;  // above the root
      at.pop_back();
      continue;
    }
    at.push_back(c);
    auto next = read_link(join(at));
    if (!next) continue;  // a file, a directory, or nothing: go on from here
    if (++hops > kMaxHops || next->empty() || (*next)[0] == '/') return false;
    at.pop_back();
    auto more = split(*next);
    pending.insert(pending.begin(), more.begin(), more.end());
  }
  return true;
}

}  // namespace ads
