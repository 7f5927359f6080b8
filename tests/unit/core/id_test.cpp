// Deployment ids: ULIDs (https://github.com/ulid/spec) in lower case.
#include "core/id.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {
using ads::encode_ulid;
using ads::IdGenerator;
using ads::is_valid_id;
using Entropy = std::array<uint8_t, 10>;

// The ULID spec's Crockford base32 alphabet, lower-cased.
const std::string kCrockford = [] {
  std::string a = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  for (auto& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return a;
}();

constexpr uint64_t kMaxTime = (uint64_t{1} << 48) - 1;

Entropy filled(uint8_t b) {
  Entropy e;
  e.fill(b);
  return e;
}

// An independent encoder: the 128-bit number as 26 base32 digits, most
// significant first, computed by repeated division.
std::string reference_ulid(uint64_t ms, const Entropy& e) {
  unsigned __int128 n = ms & kMaxTime;
  for (uint8_t b : e) n = (n << 8) | b;
  std::string out(26, '0');
  for (int i = 25; i >= 0; --i) {
    out[i] = kCrockford[static_cast<size_t>(n & 31)];
    n >>= 5;
  }
  return out;
}

Entropy random_entropy(std::mt19937_64& rng) {
  Entropy e;
  for (auto& b : e) b = static_cast<uint8_t>(rng());
  return e;
}

TEST(UlidEncoding, AlphabetIsCrockfordLowerCase) {
  ASSERT_EQ(kCrockford, "0123456789abcdefghjkmnpqrstvwxyz");
  // Each 5-bit value in the last digit maps to its letter of the alphabet.
  for (uint8_t v = 0; v < 32; ++v) {
    Entropy e{};
    e[9] = v;
    EXPECT_EQ(encode_ulid(0, e), std::string(25, '0') + kCrockford[v]) << int(v);
  }
}

TEST(UlidEncoding, KnownVectors) {
  EXPECT_EQ(encode_ulid(0, Entropy{}), std::string(26, '0'));
  // Maximum 48-bit time: its top digit carries only 3 bits, so '7'.
  EXPECT_EQ(encode_ulid(kMaxTime, Entropy{}), "7zzzzzzzzz" + std::string(16, '0'));
  EXPECT_EQ(encode_ulid(kMaxTime, filled(0xff)), "7" + std::string(25, 'z'));
  EXPECT_EQ(encode_ulid(0, filled(0xff)), std::string(10, '0') + std::string(16, 'z'));
  // The ULID reference implementation's README: ulid(1469918176385) starts "01ARYZ6S41".
  EXPECT_EQ(encode_ulid(1469918176385, Entropy{}).substr(0, 10), "01aryz6s41");
  EXPECT_EQ(encode_ulid(1, Entropy{}), "0000000001" + std::string(16, '0'));
  EXPECT_EQ(encode_ulid(32, Entropy{}), "0000000010" + std::string(16, '0'));
  // The lowest entropy bit is the last digit's lowest bit; the highest
  // entropy bit is bit 79, i.e. bit 4 of digit 10 (the 16 entropy digits
  // hold exactly 80 bits).
  Entropy hi{};
  hi[0] = 0x80;
  EXPECT_EQ(encode_ulid(0, hi), std::string(10, '0') + "g" + std::string(15, '0'));
  // Bit 0 of the time is the last time digit's lowest bit, just before the entropy.
  EXPECT_EQ(encode_ulid(1, filled(0)).substr(9, 2), "10");
}

TEST(UlidEncoding, MatchesAnIndependentEncoderOnRandomInputs) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    uint64_t ms = rng() & kMaxTime;
    Entropy e = random_entropy(rng);
    auto id = encode_ulid(ms, e);
    ASSERT_EQ(id, reference_ulid(ms, e)) << ms;
    ASSERT_EQ(id.size(), 26u);
    ASSERT_TRUE(is_valid_id(id)) << id;
  }
}

TEST(UlidEncoding, StringOrderIsNumericOrder) {
  std::mt19937_64 rng(777);
  for (int i = 0; i < 2000; ++i) {
    // Times close together so that equal times happen too.
    uint64_t t1 = 1700000000000 + rng() % 4, t2 = 1700000000000 + rng() % 4;
    Entropy e1 = random_entropy(rng), e2 = random_entropy(rng);
    if (i % 3 == 0) e2 = e1;
    auto a = encode_ulid(t1, e1), b = encode_ulid(t2, e2);
    EXPECT_EQ(std::tie(t1, e1) < std::tie(t2, e2), a < b) << a << " " << b;
    EXPECT_EQ(std::tie(t1, e1) == std::tie(t2, e2), a == b) << a << " " << b;
  }
}

TEST(IdGeneratorTest, IncreasingTimesGiveIdsOfThoseTimesInOrder) {
  IdGenerator g;
  std::mt19937_64 rng(1);
  std::string prev;
  uint64_t t = 1700000000000;
  for (int i = 0; i < 500; ++i) {
    t += 1 + rng() % 1000;
    Entropy e = random_entropy(rng);
    auto id = g.next(t, e);
    EXPECT_EQ(id, encode_ulid(t, e));  // a new millisecond takes the fresh entropy as is
    EXPECT_GT(id, prev);
    EXPECT_TRUE(is_valid_id(id)) << id;
    prev = id;
  }
}

TEST(IdGeneratorTest, SameMillisecondIncrementsTheEntropy) {
  IdGenerator g;
  const uint64_t t = 1700000000123;
  Entropy e{};
  e[9] = 0xfe;
  auto a = g.next(t, e);
  // The fresh entropy passed with a repeated millisecond is ignored: the
  // previous entropy plus one is used, carrying across bytes.
  auto b = g.next(t, filled(0x00));
  auto c = g.next(t, filled(0xff));
  Entropy e1 = e;
  e1[9] = 0xff;
  Entropy e2{};
  e2[8] = 0x01;
  EXPECT_EQ(b, encode_ulid(t, e1));
  EXPECT_EQ(c, encode_ulid(t, e2));
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(a.substr(0, 10), c.substr(0, 10));  // same time prefix
}

TEST(IdGeneratorTest, ManyIdsInOneMillisecondStrictlyIncrease) {
  IdGenerator g;
  std::mt19937_64 rng(2);
  std::vector<std::string> ids;
  ids.reserve(5000);
  for (int i = 0; i < 5000; ++i) ids.push_back(g.next(1700000000000, random_entropy(rng)));
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_LT(ids[i - 1], ids[i]) << i;
}

TEST(IdGeneratorTest, ClockGoingBackwardsStillGivesIncreasingIds) {
  IdGenerator g;
  std::mt19937_64 rng(3);
  auto a = g.next(1700000005000, random_entropy(rng));
  auto b = g.next(1700000001000, random_entropy(rng));  // 4 s back
  auto c = g.next(1700000004999, random_entropy(rng));  // still behind
  auto d = g.next(1700000005001, random_entropy(rng));  // past the last time again
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_LT(c, d);
  // While the clock is behind, ids keep the latest time seen.
  EXPECT_EQ(b.substr(0, 10), a.substr(0, 10));
  EXPECT_EQ(c.substr(0, 10), a.substr(0, 10));
  EXPECT_EQ(d.substr(0, 10), encode_ulid(1700000005001, Entropy{}).substr(0, 10));
}

TEST(IdGeneratorTest, EntropyOverflowInOneMillisecondDoesNotWrapAround) {
  IdGenerator g;
  const uint64_t t = 1700000000000;
  auto a = g.next(t, filled(0xff));  // the largest id of this millisecond
  auto b = g.next(t, filled(0x00));
  auto c = g.next(t, filled(0x00));
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_TRUE(is_valid_id(b));
}

TEST(IdGeneratorTest, IdsSortByCreationTime) {
  // Ids made at shuffled times by different generators sort by time, whatever
  // their entropy.
  std::mt19937_64 rng(4);
  std::vector<std::pair<uint64_t, std::string>> made;
  for (int i = 0; i < 300; ++i) {
    uint64_t t = 1600000000000 + (rng() % 100000) * 7 + static_cast<uint64_t>(i) * 1000000;  // distinct
    IdGenerator g;
    made.emplace_back(t, g.next(t, random_entropy(rng)));
  }
  std::shuffle(made.begin(), made.end(), rng);
  auto by_id = made;
  std::sort(by_id.begin(), by_id.end(), [](auto& x, auto& y) { return x.second < y.second; });
  for (size_t i = 1; i < by_id.size(); ++i) EXPECT_LT(by_id[i - 1].first, by_id[i].first) << i;
  // One generator over a run of times, some repeated: generation order is sort order.
  IdGenerator g;
  std::vector<std::string> seq;
  for (uint64_t t : {10ull, 10ull, 11ull, 15ull, 15ull, 15ull, 16ull, 100ull})
    seq.push_back(g.next(1700000000000 + t, random_entropy(rng)));
  EXPECT_TRUE(std::is_sorted(seq.begin(), seq.end()));
  EXPECT_EQ(std::adjacent_find(seq.begin(), seq.end()), seq.end());  // no duplicates
}

TEST(IdValidity, AcceptsIdsMadeHere) {
  IdGenerator g;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(is_valid_id(g.next(1700000000000 + i / 3, random_entropy(rng))));
  EXPECT_TRUE(is_valid_id(std::string(26, '0')));
  EXPECT_TRUE(is_valid_id("7" + std::string(25, 'z')));
  EXPECT_TRUE(is_valid_id("01aryz6s41tsv4rrffq69g5fav"));  // the spec's example, lower case
}

TEST(IdValidity, RefusesWrongLengthAlphabetAndRange) {
  const std::string good = "01aryz6s41tsv4rrffq69g5fav";
  EXPECT_FALSE(is_valid_id(""));
  EXPECT_FALSE(is_valid_id(good.substr(0, 25)));
  EXPECT_FALSE(is_valid_id(good + "0"));
  EXPECT_FALSE(is_valid_id(std::string(27, '0')));
  EXPECT_FALSE(is_valid_id("01ARYZ6S41TSV4RRFFQ69G5FAV"));  // upper case is not made here
  // i, l, o and u are not in the alphabet (nor their capitals), nor punctuation.
  for (char c : std::string("ilouILOUA/.-_ \n\0", 16)) {
    std::string s = good;
    s[20] = c;
    EXPECT_FALSE(is_valid_id(s)) << int(c);
  }
  // Every alphabet character is accepted in every position but the first.
  for (char c : kCrockford) {
    std::string s = good;
    s[25] = c;
    EXPECT_TRUE(is_valid_id(s)) << c;
  }
  // The first digit holds the top 3 bits of 128 (130 bits written): above '7' is out of range.
  for (char c : std::string("01234567")) EXPECT_TRUE(is_valid_id(c + good.substr(1))) << c;
  for (char c : std::string("89abz")) EXPECT_FALSE(is_valid_id(c + good.substr(1))) << c;
}

}  // namespace
