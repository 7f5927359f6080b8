// Deployment ids: ULIDs (26 chars, Crockford base32, lower case): 48 bits of
// milliseconds then 80 bits of entropy. They sort by creation time and are
// valid hostnames once prefixed. Pure: the caller supplies time and entropy.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace ads {

class IdGenerator {
 public:
  // Returns a new id for time `unix_ms`. `entropy` is fresh random bytes.
  // Ids from one generator strictly increase, even within one millisecond
  // (the entropy of the previous id is incremented, as the ULID spec says).
  std::string next(uint64_t unix_ms, const std::array<uint8_t, 10>& entropy);

 private:
  uint64_t last_ms_ = 0;
  std::array<uint8_t, 10> last_entropy_{};
};

// Encodes a ULID from its parts.
std::string encode_ulid(uint64_t unix_ms, const std::array<uint8_t, 10>& entropy);
// True when `s` has the shape of an id made here.
bool is_valid_id(const std::string& s);

}  // namespace ads
