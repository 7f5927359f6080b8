// The lab spec: what a lab needs and how to install and run it. Two formats
// are read into one LabSpec:
//   v1: the seed system's `scripts/labspec.json` (see
//       shared/reference/seed-labspec.md); commands run from `scripts/`.
//   v2: ADS's own `ads-lab.json` at the repository root; commands run from
//       the root. Documented in docs/integrators/labspec.md.
// Parsing is pure: text in, LabSpec or an Error naming the field out.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ads {

inline constexpr const char* kSpecV2Path = "ads-lab.json";
inline constexpr const char* kSpecV1Path = "scripts/labspec.json";

// One named group of shell commands, run in order; the first failure stops.
struct Phase {
  std::string name;
  std::vector<std::string> commands;
};

struct LabSpec {
  int format = 0;  // 1 or 2
  std::string id;  // lab id in the spec (may be empty)
  std::string title;
  std::string os;          // "debian", "ubuntu", "centos" (lower case)
  std::string os_version;  // normalised: ubuntu 14 -> 14.04, centos 6 -> 6.9
  // v2 "os.variant": which image of that OS ("build": with Python 3, Ansible
  // and build tools); empty: the provider's minimal image.
  std::string os_variant;
  uint64_t memory_mb = 0;  // 0: provider default
  uint64_t swap_mb = 0;
  uint64_t storage_mb = 0;
  std::string workdir;           // relative to the lab root: "scripts" (v1) or "."
  std::string ansible_playbook;  // relative to the lab root; empty: none
  // v2 "ansible": {"mode": ...}: where the lab's playbooks run.
  // kController (the default): ansible-playbook on the ADS host, in a
  // sandbox, reaching the machine over SSH with a key made for that run;
  // kLocal: inside the machine (-c local), started by the agent.
  enum class AnsibleMode { kController, kLocal };
  AnsibleMode ansible_mode = AnsibleMode::kController;
  std::vector<Phase> install;  // build installer, build steps, runtime installer, init
  // Life-cycle actions by name (start, stop, test, backup, restore, ...).
  std::map<std::string, std::vector<std::string>> actions;
  // v2: life-cycle actions that are a playbook ({"playbook": "backup.yml"}),
  // by name; an action is either commands or a playbook, never both.
  std::map<std::string, std::string> action_playbooks;
  int http_port = 80;  // where the lab serves, for the HTTP check
  std::string http_path = "/";
  // v2 "timeouts": per action ("install" or a life-cycle action), the longest
  // each of its commands may run, in seconds. The agent holds it to the
  // operator's maximum. Absent: the operator's maximum.
  std::map<std::string, int> timeouts_s;

  // Commands for an action; empty when the spec has none (or it is a playbook).
  const std::vector<std::string>& action(const std::string& name) const;
  // Whether the lab defines the action, as commands or as a playbook.
  bool has_action(const std::string& name) const;
  // The playbook of an action ("install": `ansible`); empty when none.
  std::string playbook_for(const std::string& name) const;
  // Seconds from `timeouts` for an action; 0 when the spec sets none.
  int timeout_for(const std::string& name) const;
  // "debian-12" or, with a variant, "debian-12-build": the key a provider
  // maps to an image/template/AMI.
  std::string os_key() const { return os + "-" + os_version + (os_variant.empty() ? "" : "-" + os_variant); }
};

// The life-cycle action names ADS knows (both formats).
const std::vector<std::string>& known_actions();

Result<LabSpec> parse_labspec_v1(std::string_view json_text);
Result<LabSpec> parse_labspec_v2(std::string_view json_text);
// Picks the parser from the file's path inside the lab (kSpecV1Path/kSpecV2Path).
Result<LabSpec> parse_labspec(const std::string& path, std::string_view text);

// A command timeout of the spec: whole seconds (a JSON integer) or a string
// of digits with a unit, "90s", "20m", "2h"; from 1 s to kMaxSpecTimeoutS.
// nullopt for anything else.
inline constexpr int kMaxSpecTimeoutS = 24 * 3600;
std::optional<int> parse_timeout_s(const std::string& text);

// Normalises an OS version the way the seed system did.
std::string normalise_os_version(const std::string& os, const std::string& version);

}  // namespace ads
