// IPv4 addresses and subnets (CIDR): parsing, formatting and the pool rule
// used for static addresses. Pure logic, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace ads {

// Dotted quad, exactly four decimal parts 0-255 without leading zeros
// ("010.0.0.1" is refused: some tools read it as octal).
Result<uint32_t> parse_ipv4(const std::string& text);
std::string format_ipv4(uint32_t addr);

struct Ipv4Subnet {
  uint32_t network = 0;  // host bits zero
  int prefix = 0;        // 0..32

  uint32_t mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
  uint32_t broadcast() const { return network | ~mask(); }
  bool contains(uint32_t addr) const { return (addr & mask()) == network; }
  // The first host address (network + 1): the gateway, never allocated.
  uint32_t gateway() const { return network + 1; }
  // Addresses a pool hands out: network + 2 .. broadcast - 1. None for /31, /32.
  bool has_allocatable() const { return prefix <= 30; }
  uint32_t first_allocatable() const { return network + 2; }
  uint32_t last_allocatable() const { return broadcast() - 1; }
  // Canonical text, "10.1.2.0/24".
  std::string to_string() const;
};

// "a.b.c.d/n". Error "invalid" (field `field`) for a bad address or prefix,
// or when host bits are set ("10.0.0.5/24": the message names 10.0.0.0/24).
Result<Ipv4Subnet> parse_ipv4_subnet(const std::string& cidr, const std::string& field = "subnet");

// The lowest allocatable address of `net` not in `taken` (any order; entries
// outside the allocatable range are ignored); nullopt when every one is taken.
std::optional<uint32_t> lowest_free(const Ipv4Subnet& net, std::vector<uint32_t> taken);

}  // namespace ads
