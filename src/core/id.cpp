#include "core/id.h"

namespace ads {
namespace {
constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
}

std::string encode_ulid(uint64_t unix_ms, const std::array<uint8_t, 10>& entropy) {
  // 128 bits: 48 time + 80 entropy, written as 26 base32 digits (130 bits,
  // the top two are zero).
  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(unix_ms >> (8 * (5 - i)));
  for (int i = 0; i < 10; ++i) b[6 + i] = entropy[i];
  std::string out(26, '0');
  for (int d = 0; d < 26; ++d) {
    // bit position of this digit's least significant bit, from the right
    int shift = 5 * (25 - d);
    unsigned v = 0;
    for (int k = 0; k < 5; ++k) {
      int bit = shift + k;  // bit index from LSB of the 128-bit number
      if (bit >= 128) continue;
      int byte = 15 - bit / 8;
      if ((b[byte] >> (bit % 8)) & 1) v |= 1u << k;
    }
    out[d] = kAlphabet[v];
  }
  return out;
}

std::string IdGenerator::next(uint64_t unix_ms, const std::array<uint8_t, 10>& entropy) {
  if (unix_ms <= last_ms_) {
    // Same (or earlier: clock went back) millisecond: keep the last time and
    // increment its entropy so the order stays strict.
    auto e = last_entropy_;
    bool carry = true;
    for (int i = 9; i >= 0 && carry; --i) carry = ++e[i] == 0;
    if (carry) {
      // The 80 bits of entropy overflowed: wrapping to zero would give a
      // smaller id, so move on to the next millisecond with fresh entropy.
      ++last_ms_;
      e = entropy;
    }
    last_entropy_ = e;
  } else {
    last_ms_ = unix_ms;
    last_entropy_ = entropy;
  }
  return encode_ulid(last_ms_, last_entropy_);
}

bool is_valid_id(const std::string& s) {
  if (s.size() != 26) return false;
  if (s[0] > '7') return false;  // top digit holds only 3 bits
  for (char c : s) {
    bool ok = false;
    for (const char* a = kAlphabet; *a; ++a) ok |= (*a == c);
    if (!ok) return false;
  }
  return true;
}

}  // namespace ads
