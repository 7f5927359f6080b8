// Validation of user-supplied names and refs. A name is only a label: it
// never becomes a path, a hostname or part of a command, but we still refuse
// shapes that would surprise a person reading a list or a log.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace ads {

// Lab names: 1-63 chars of [A-Za-z0-9._-], starting with a letter or digit.
Status validate_lab_name(const std::string& name, const std::string& field = "name");
// Git refs: branch, tag or commit; no "..", "@{", control chars, leading '-'
// or shell metacharacters (; | & $ ` < > " ').
Status validate_git_ref(const std::string& ref, const std::string& field = "ref");
// Source: a URL (https://, http://, git://, ssh://, file://) or an absolute
// or relative local path; valid UTF-8, no control characters, no leading '-',
// no shell metacharacters. None of these reach a shell; they do reach logs
// and terminals. Which sources a server accepts is core/source_policy.h.
Status validate_source(const std::string& source, const std::string& field = "source");

// Whether `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing
// above U+10FFFF).
bool is_utf8(std::string_view s);
// Text from outside (file names in a lab, git's messages, ref names) made fit
// for a log line or an error message: valid UTF-8 with no control characters;
// each byte of invalid UTF-8, of a C0/C1 control or DEL, and '\\' itself is
// written as \xNN. At most `max` bytes of `s` are used ("..." marks a cut).
// TODO(lead): once ads::valid_utf8 (issue 15.1) is on main, let this call it
// for the UTF-8 part and keep only the control-character escaping here.
std::string printable(std::string_view s, size_t max = 512);

}  // namespace ads
