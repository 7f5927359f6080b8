// Validation of user-supplied names and refs. A name is only a label: it
// never becomes a path, a hostname or part of a command, but we still refuse
// shapes that would surprise a person reading a list or a log.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "core/text.h"

namespace ads {

// Lab names: 1-63 chars of [A-Za-z0-9._-], starting with a letter or digit.
Status validate_lab_name(const std::string& name, const std::string& field = "name");
// Names of new deployments: a DNS label (RFC 1123), because the lab's
// stable URL is http://<name>.<domain>/: 1-63 of [a-z0-9-], starting and
// ending with a letter or digit. Lower case only, so that two names that
// DNS takes for one are one name here too.
Status validate_dns_label(const std::string& name, const std::string& field = "name");
// Git refs: branch, tag or commit; no "..", "@{", control chars, leading '-'
// or shell metacharacters (; | & $ ` < > " ').
Status validate_git_ref(const std::string& ref, const std::string& field = "ref");
// Source: a URL (https://, http://, git://, ssh://, file://) or an absolute
// or relative local path; valid UTF-8, no control characters, no leading '-',
// no shell metacharacters. None of these reach a shell; they do reach logs
// and terminals. Which sources a server accepts is core/source_policy.h.
Status validate_source(const std::string& source, const std::string& field = "source");

// printable() and the UTF-8 checks are in core/text.h.

}  // namespace ads
