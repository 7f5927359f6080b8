#include "providers/openvz/shell_quote.h"

namespace ads::openvz {

std::string shell_quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') out += "'\\''";
    else out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

Result<std::string> shell_join(const std::vector<std::string>& argv) {
  if (argv.empty()) return Error::invalid("argv", "no command");
  std::string out;
  for (const auto& a : argv) {
    if (a.find('\0') != std::string::npos) return Error::invalid("argv", "an argument contains a NUL byte");
    if (!out.empty()) out.push_back(' ');
    out += shell_quote(a);
  }
  return out;
}

}  // namespace ads::openvz
