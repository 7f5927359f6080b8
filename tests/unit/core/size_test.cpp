// parse_size_mb: the seed system's size grammar (vm_utils.convert_to_megs):
// an integer, optional spaces, then letters; G multiplies by 1024, K divides
// by 1024, M or no unit is taken as is; "" means "default" (0).
#include "core/size.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {
using ads::parse_size_mb;

TEST(SizeParse, MegabytesInEveryCaseAndWithoutAUnit) {
  EXPECT_EQ(parse_size_mb("256mb"), std::optional<uint64_t>(256));
  EXPECT_EQ(parse_size_mb("256MB"), std::optional<uint64_t>(256));
  EXPECT_EQ(parse_size_mb("256M"), std::optional<uint64_t>(256));
  EXPECT_EQ(parse_size_mb("256m"), std::optional<uint64_t>(256));
  EXPECT_EQ(parse_size_mb("512"), std::optional<uint64_t>(512));
  EXPECT_EQ(parse_size_mb("0"), std::optional<uint64_t>(0));
  EXPECT_EQ(parse_size_mb("0512"), std::optional<uint64_t>(512));
}

TEST(SizeParse, GigabytesMultiplyBy1024) {
  EXPECT_EQ(parse_size_mb("2gb"), std::optional<uint64_t>(2048));
  EXPECT_EQ(parse_size_mb("2GB"), std::optional<uint64_t>(2048));
  EXPECT_EQ(parse_size_mb("2Gb"), std::optional<uint64_t>(2048));
  EXPECT_EQ(parse_size_mb("2G"), std::optional<uint64_t>(2048));
  EXPECT_EQ(parse_size_mb("10gb"), std::optional<uint64_t>(10240));
  EXPECT_EQ(parse_size_mb("0gb"), std::optional<uint64_t>(0));
}

TEST(SizeParse, SpacesBetweenNumberAndUnitAndBeforeTheNumber) {
  EXPECT_EQ(parse_size_mb("2 GB"), std::optional<uint64_t>(2048));
  EXPECT_EQ(parse_size_mb("10 GB"), std::optional<uint64_t>(10240));
  EXPECT_EQ(parse_size_mb("512   mb"), std::optional<uint64_t>(512));
  EXPECT_EQ(parse_size_mb("  512mb"), std::optional<uint64_t>(512));
}

TEST(SizeParse, KilobytesDivideBy1024RoundingDown) {
  EXPECT_EQ(parse_size_mb("1024kb"), std::optional<uint64_t>(1));
  EXPECT_EQ(parse_size_mb("1024KB"), std::optional<uint64_t>(1));
  EXPECT_EQ(parse_size_mb("2048 K"), std::optional<uint64_t>(2));
  EXPECT_EQ(parse_size_mb("1023kb"), std::optional<uint64_t>(0));
  EXPECT_EQ(parse_size_mb("1048576kb"), std::optional<uint64_t>(1024));
}

TEST(SizeParse, EmptyMeansDefaultZero) {
  EXPECT_EQ(parse_size_mb(""), std::optional<uint64_t>(0));
  EXPECT_EQ(parse_size_mb("   "), std::optional<uint64_t>(0));
}

TEST(SizeParse, MalformedSizesAreRefused) {
  const std::vector<std::string> bad = {"abc",  "12x3",  "-5mb",       "+5mb",  "-5",  "5.5gb", "1,024mb",
                                        "mb",   "gb",    "10 parsecs", "5 tb",  "5b",  "5mb5",  "5 mb x",
                                        "0x10", "5\tmb", "5mb\n",      "1e3mb", "\xff"};
  for (const auto& s : bad) EXPECT_EQ(parse_size_mb(s), std::nullopt) << '"' << s << '"';
}

TEST(SizeParse, TheLargestNumberThatFitsIsAcceptedAndOneMoreOverflows) {
  EXPECT_EQ(parse_size_mb("18446744073709551615"), std::optional<uint64_t>(UINT64_MAX));
  EXPECT_EQ(parse_size_mb("18446744073709551615mb"), std::optional<uint64_t>(UINT64_MAX));
  EXPECT_EQ(parse_size_mb("18446744073709551610"), std::optional<uint64_t>(18446744073709551610ull));
  EXPECT_EQ(parse_size_mb("18446744073709551616"), std::nullopt);
  EXPECT_EQ(parse_size_mb("99999999999999999999mb"), std::nullopt);
  EXPECT_EQ(parse_size_mb(std::string(400, '9') + "gb"), std::nullopt);
}

TEST(SizeParse, GigabyteMultiplicationOverflowIsRefused) {
  // 2^54 - 1 GB is the largest number of gigabytes that fits in 64 bits of MB.
  EXPECT_EQ(parse_size_mb("18014398509481983gb"), std::optional<uint64_t>(18014398509481983ull * 1024));
  EXPECT_EQ(parse_size_mb("18014398509481984gb"), std::nullopt);
  EXPECT_EQ(parse_size_mb("18446744073709551615gb"), std::nullopt);
  // Dividing cannot overflow.
  EXPECT_EQ(parse_size_mb("18446744073709551615kb"), std::optional<uint64_t>(UINT64_MAX / 1024));
}

TEST(SizeParse, StringViewIsNotReadPastItsEnd) {
  // "512gb" seen through a view of its first three characters is "512".
  std::string backing = "512gb";
  EXPECT_EQ(parse_size_mb(std::string_view(backing).substr(0, 3)), std::optional<uint64_t>(512));
  EXPECT_EQ(parse_size_mb(std::string_view(backing).substr(0, 4)), std::optional<uint64_t>(512 * 1024));
}

}  // namespace
