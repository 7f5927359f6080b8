#include "core/text.h"

#include <algorithm>
#include <cstring>

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
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
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

size_t utf8_sequence_length(std::string_view s, size_t i) {
  size_t skip;
  return i < s.size() ? sequence_length(s, i, &skip) : 0;
}

bool is_valid_utf8(std::string_view s) {
  // most text is ASCII: one pass the compiler vectorizes (the store reads
  // every text column through here)
  unsigned char any = 0;
  for (char c : s) any |= static_cast<unsigned char>(c);
  if (any < 0x80) return true;
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

std::string printable(std::string_view s, size_t max) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  while (i < s.size() && i < max) {
    size_t n = utf8_sequence_length(s, i);
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool control = n == 1 ? (c < 0x20 || c == 0x7f || c == '\\')
                          : n == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0;  // U+0080-U+009F
    if (n == 0 || control) {
      for (size_t k = 0; k < std::max<size_t>(n, 1); ++k) {
        unsigned char b = static_cast<unsigned char>(s[i + k]);
        out += "\\x";
        out += hex[b >> 4];
        out += hex[b & 15];
      }
      i += std::max<size_t>(n, 1);
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  if (i < s.size()) out += "...";
  return out;
}

std::string errno_text(int err) {
  char buf[256];
  return strerror_r(err, buf, sizeof buf);  // GNU strerror_r: buf or a static string, never a shared buffer
}

}  // namespace ads
