#include "core/text.h"

namespace ads {
namespace {
// Length of the well-formed sequence starting at s[i], or 0 when the bytes
// there do not begin one. With `subpart`, the length of the maximal
// ill-formed subpart to replace (at least 1) is stored.
size_t sequence_length(std::string_view s, size_t i, size_t* subpart) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  *subpart = 1;
  if (b0 < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;       // no overlong forms
    if (b0 == 0xED) hi = 0x9F;       // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;       // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;       // nothing above U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) return 0;
    unsigned char b = byte(i + k);
    bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return 0;
    *subpart = k + 1;
  }
  return n;
}
}  // namespace

bool is_valid_utf8(std::string_view s) {
  size_t skip;
  for (size_t i = 0; i < s.size();) {
    size_t n = sequence_length(s, i, &skip);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string valid_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t skip;
  for (size_t i = 0; i < s.size();) {
    size_t n = sequence_length(s, i, &skip);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += skip;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace ads
