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

// The length of the well-formed UTF-8 sequence (one character) that starts
// at s[i], or 0 when the bytes there do not begin one.
size_t utf8_sequence_length(std::string_view s, size_t i);

// `s` with every ill-formed sequence replaced by U+FFFD (one per maximal
// ill-formed subpart, as the Unicode standard recommends). Valid text comes
// back unchanged.
std::string valid_utf8(std::string_view s);

// Text from outside (file names in a lab, git's messages, ref names) made fit
// for a log line or an error message: valid UTF-8 with no control characters;
// each byte of invalid UTF-8, of a C0/C1 control or DEL, and '\\' itself is
// written as \xNN. At most `max` bytes of `s` are used ("..." marks a cut).
std::string printable(std::string_view s, size_t max = 512);

// The message for an errno value, as strerror gives it, without strerror's
// buffer shared by every thread (strerror_r).
std::string errno_text(int err);

}  // namespace ads
