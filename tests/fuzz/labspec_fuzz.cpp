// libFuzzer target for the lab spec parsers (core/labspec.h): no crash, no
// hang, no sanitizer report, and every accepted spec satisfies the invariants
// the rest of ADS relies on; every refusal is a proper "invalid" Error.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
//     tests/fuzz/labspec_fuzz.cpp src/core/*.cpp -o labspec_fuzz
//   ./labspec_fuzz -max_total_time=60 /tmp/new-corpus tests/fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/labspec.h"
#include "core/names.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "labspec invariant broken: %s %s\n", what, detail.c_str());
  std::abort();
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n\v\f") == std::string::npos; }

void check_commands(const std::vector<std::string>& cmds) {
  if (cmds.empty()) fail("empty command list kept");
  if (cmds.size() > 256) fail("more than 256 commands");
  for (const auto& c : cmds) {
    if (blank(c)) fail("empty command", c);
    if (c.size() > 8192) fail("command longer than 8192");
    if (c.find('\0') != std::string::npos) fail("NUL in command");
  }
}

void check(const ads::Result<ads::LabSpec>& r, int format) {
  if (!r.ok()) {
    const auto& e = r.error();
    if (e.code != "invalid") fail("error code is not invalid", e.code);
    if (e.message.empty()) fail("error without a message");
    return;
  }
  const auto& s = r.value();
  if (s.format != format) fail("wrong format");
  if (s.os != "debian" && s.os != "ubuntu" && s.os != "centos") fail("unknown os", s.os);
  if (s.os_version.empty() || s.os_version.front() == '.' || s.os_version.back() == '.' ||
      s.os_version.find("..") != std::string::npos ||
      s.os_version.find_first_not_of("0123456789.") != std::string::npos)
    fail("bad os version", s.os_version);
  if (s.os_key() != s.os + "-" + s.os_version) fail("os_key");
  if (s.workdir != (format == 1 ? "scripts" : ".")) fail("workdir", s.workdir);
  if (!s.id.empty() && !ads::validate_lab_name(s.id).ok()) fail("invalid lab id accepted", s.id);
  for (const auto& p : s.install) {
    if (p.name.empty()) fail("unnamed phase");
    check_commands(p.commands);
  }
  for (const auto& [name, cmds] : s.actions) {
    bool known = false;
    for (const auto& k : ads::known_actions()) known |= k == name;
    if (!known) fail("unknown action kept", name);
    check_commands(cmds);
  }
  if (!s.action("init").empty() && (s.install.empty() || s.install.back().name != "init"))
    fail("init is not the last install phase");
  if (format == 2 && s.action("start").empty()) fail("v2 spec without start");
  if (s.http_port < 1 || s.http_port > 65535 || s.http_port == 9089) fail("http port");
  if (s.http_path.empty() || s.http_path[0] != '/') fail("http path", s.http_path);
  for (unsigned char c : s.http_path)
    if (c <= 0x20 || c == 0x7f) fail("space or control character in http path");
  const auto& pb = s.ansible_playbook;
  if (!pb.empty() && (pb[0] == '/' || pb[0] == '-' || pb.find("..") != std::string::npos ||
                      pb.find_first_of("'\"\\ ;$`|&<>") != std::string::npos))
    fail("unsafe ansible playbook path", pb);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto v1 = ads::parse_labspec_v1(text);
  auto v2 = ads::parse_labspec_v2(text);
  check(v1, 1);
  check(v2, 2);
  // The dispatcher picks the same parser as calling it directly.
  if (ads::parse_labspec(ads::kSpecV1Path, text).ok() != v1.ok()) fail("v1 dispatch differs");
  if (ads::parse_labspec(ads::kSpecV2Path, text).ok() != v2.ok()) fail("v2 dispatch differs");
  // No text is both formats: v1 requires "lab", which v2 refuses.
  if (v1.ok() && v2.ok()) fail("accepted as both v1 and v2");
  return 0;
}
