// The integrator's loop without a server:
//   ads lab check DIR   validates a lab where it is written: its spec (with
//                       the field path of an error), that it can be packed
//                       (links, sizes), its playbooks (present; with
//                       --ansible also `ansible-playbook --syntax-check`),
//                       the scripts its commands name; then prints what a
//                       deploy would do. Without --ansible nothing of the lab
//                       is run: Ansible, even for a syntax check, reads the
//                       lab's ansible.cfg (a vault password script runs), loads
//                       plugins next to the playbook and evaluates lookups in
//                       `import_playbook`: code of the lab, run on this host.
//   ads lab init DIR    writes a minimal working playbook lab to start from.
//   ads lab try DIR     (main.cpp, needs a server) check_lab, then a
//                       throwaway deployment of DIR (keep_failed, ttl_s).
// Exit codes: 0 the lab is fine (init: written); 1 problems found (each
// printed); 2 DIR unusable (not a directory; init: not empty).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "core/result.h"

namespace ads::cli {

struct LabCheckReport {
  std::vector<std::string> problems;  // each a sentence naming the file or field
  std::vector<std::string> notes;     // what was not checked, and why
  std::vector<std::string> summary;   // what a deploy would do
};

// `ansible_playbook`: the program for the syntax check; empty: not checked
// (with a note).
LabCheckReport check_lab(const std::string& dir, const std::string& ansible_playbook);

// ansible-playbook in /usr/local/bin, /usr/bin or /bin, or "".
std::string find_ansible_playbook();

// `with_ansible`: run the syntax check (the lab's code, see above).
int run_lab_check(const std::string& dir, bool with_ansible, std::ostream& out, std::ostream& err);
int run_lab_init(const std::string& dir, std::ostream& out, std::ostream& err);

// `ads lab try --ttl`: "90s", "30m", "2h", "1d" or plain seconds (the
// syntax of token lifetimes, cli/accounts.h), from kMinTtlSeconds to
// kMaxTtlSeconds; else "invalid" (field ttl).
Result<int64_t> parse_lab_ttl(const std::string& text);

}  // namespace ads::cli
