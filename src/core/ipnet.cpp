#include "core/ipnet.h"

#include <algorithm>

namespace ads {

Result<uint32_t> parse_ipv4(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error::invalid("address", "\"" + text + "\" is not an IPv4 address (" + why + ")");
  };
  uint32_t out = 0;
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    uint32_t v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      v = v * 10 + static_cast<uint32_t>(text[i] - '0');
      if (i - start >= 3 || v > 255) return bad("a part is over 255");
      ++i;
    }
    if (i == start) return bad("expected a number");
    if (i - start > 1 && text[start] == '0') return bad("leading zero");
    out = (out << 8) | v;
    ++parts;
    if (i == text.size()) break;
    if (text[i] != '.' || parts == 4) return bad("expected four parts separated by dots");
    ++i;
  }
  if (parts != 4) return bad("expected four parts separated by dots");
  return out;
}

std::string format_ipv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255) + "." +
         std::to_string(a & 255);
}

std::string Ipv4Subnet::to_string() const { return format_ipv4(network) + "/" + std::to_string(prefix); }

Result<Ipv4Subnet> parse_ipv4_subnet(const std::string& cidr, const std::string& field) {
  auto slash = cidr.find('/');
  if (slash == std::string::npos)
    return Error::invalid(field, "\"" + cidr + "\" is not a subnet: expected address/prefix, e.g. 10.250.0.0/24");
  auto addr = parse_ipv4(cidr.substr(0, slash));
  if (!addr) return Error::invalid(field, addr.error().message);
  std::string p = cidr.substr(slash + 1);
  if (p.empty() || p.size() > 2 || !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (p.size() == 2 && p[0] == '0') || std::stoi(p) > 32)
    return Error::invalid(field, "\"" + cidr + "\": the prefix length must be 0-32");
  Ipv4Subnet net;
  net.prefix = std::stoi(p);
  net.network = *addr & net.mask();
  if (net.network != *addr)
    return Error::invalid(field, "\"" + cidr + "\" has host bits set; did you mean " + net.to_string() + "?");
  return net;
}

std::optional<uint32_t> lowest_free(const Ipv4Subnet& net, std::vector<uint32_t> taken) {
  if (!net.has_allocatable()) return std::nullopt;
  std::sort(taken.begin(), taken.end());
  uint64_t candidate = net.first_allocatable();
  for (uint32_t t : taken) {
    if (t < candidate) continue;
    if (t > candidate) break;
    ++candidate;  // t == candidate: taken, try the next
  }
  if (candidate > net.last_allocatable()) return std::nullopt;
  return static_cast<uint32_t>(candidate);
}

}  // namespace ads
