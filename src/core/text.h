// Text that leaves ADS (the store, JSON answers, logs) must be valid UTF-8:
// nlohmann::json throws on invalid bytes when it serializes, and PostgreSQL
// refuses them. Text from a lab, a command, git or a request header may hold
// any bytes; it is made valid here before it is stored or sent. No I/O.
#pragma once

#include <string>
#include <string_view>

namespace ads {

// Whether `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);

// `s` with every ill-formed sequence replaced by U+FFFD (one per maximal
// ill-formed subpart, as the Unicode standard recommends). Valid text comes
// back unchanged.
std::string valid_utf8(std::string_view s);

}  // namespace ads
