#include "core/size.h"

#include <cctype>

namespace ads {

std::optional<uint64_t> parse_size_mb(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  if (i == s.size()) return 0;
  uint64_t n = 0;
  size_t digits = 0;
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, ++digits) {
    uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (n > (UINT64_MAX - d) / 10) return std::nullopt;  // n * 10 + d would overflow
    n = n * 10 + d;
  }
  if (digits == 0) return std::nullopt;
  while (i < s.size() && s[i] == ' ') ++i;
  bool g = false, k = false, m = false;
  for (; i < s.size(); ++i) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(s[i])));
    if (!std::isalpha(static_cast<unsigned char>(c))) return std::nullopt;
    g |= c == 'G';
    k |= c == 'K';
    m |= c == 'M';
  }
  if (g) {
    if (n > UINT64_MAX / 1024) return std::nullopt;
    return n * 1024;
  }
  if (k) return n / 1024;
  bool had_unit = false;
  for (char c : s) had_unit |= std::isalpha(static_cast<unsigned char>(c)) != 0;
  if (had_unit && !m) return std::nullopt;  // letters, but no G, K or M: not a size
  return n;
}

}  // namespace ads
