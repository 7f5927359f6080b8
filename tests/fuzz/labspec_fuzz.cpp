// libFuzzer target for the lab spec parsers: no crash, no hang, and every
// accepted spec satisfies the invariants the rest of ADS relies on.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/labspec.h"

namespace {
void check(const ads::Result<ads::LabSpec>& r, int format) {
  if (!r.ok()) {
    if (r.error().code != "invalid" || r.error().message.empty()) std::abort();
    return;
  }
  const auto& s = r.value();
  if (s.format != format) std::abort();
  if (s.os != "debian" && s.os != "ubuntu" && s.os != "centos") std::abort();
  if (s.os_version.empty()) std::abort();
  for (const auto& p : s.install)
    for (const auto& c : p.commands)
      if (c.find_first_not_of(" \t") == std::string::npos) std::abort();
  if (s.http_port < 1 || s.http_port > 65535 || s.http_port == 9089) std::abort();
  if (s.ansible_playbook.find("..") != std::string::npos) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check(ads::parse_labspec_v1(text), 1);
  check(ads::parse_labspec_v2(text), 2);
  return 0;
}
