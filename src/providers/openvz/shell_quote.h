// Building a remote command line from an argv. An SSH "exec" request carries
// one string that the remote user's shell parses, so every argv element is
// wrapped in single quotes (a ' inside becomes '\''): the shell then passes
// each element through unchanged as one argument, whatever it contains.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace ads::openvz {

// One element, single-quoted for a POSIX shell. "" becomes ''.
std::string shell_quote(const std::string& arg);
// The elements quoted and joined by spaces. Error "invalid" for an empty argv
// or an element with a NUL byte (a C string cannot carry it to the program).
Result<std::string> shell_join(const std::vector<std::string>& argv);

}  // namespace ads::openvz
