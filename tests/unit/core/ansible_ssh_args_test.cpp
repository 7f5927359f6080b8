// A lab cannot weaken the ssh options of its own controller run: a real
// ansible-playbook (Debian's ansible-core) builds ssh's command line from the
// controller's inventory and extra variables, beside a lab that tries every
// way Ansible offers (ansible.cfg's ssh_args and host_key_checking,
// host_vars, group_vars, play vars). Ansible's ssh plugin runs a stand-in for
// ssh (`ansible_ssh_executable`, set by the test, not by a lab) that records
// its argv; ssh keeps the first value of each option, so the first one of each
// name is what ssh would use.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/ansible_run.h"
#include "support/process.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p);
  out << text;
  ASSERT_TRUE(out.good()) << p;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The value of each `-o Name=value` in order (names lower-cased, as ssh reads them).
std::vector<std::pair<std::string, std::string>> options(const std::vector<std::string>& argv) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] != "-o") continue;
    const std::string& o = argv[i + 1];
    size_t eq = o.find('=');
    if (eq != std::string::npos) out.emplace_back(lower(o.substr(0, eq)), o.substr(eq + 1));
  }
  return out;
}

std::string first(const std::vector<std::pair<std::string, std::string>>& opts, const std::string& name) {
  for (const auto& [n, v] : opts)
    if (n == lower(name)) return v;
  return "(absent)";
}

bool any(const std::vector<std::pair<std::string, std::string>>& opts, const std::string& name,
         const std::string& value) {
  return std::any_of(opts.begin(), opts.end(),
                     [&](const auto& o) { return o.first == lower(name) && o.second == value; });
}

TEST(AnsibleSshArgs, NothingALabSetsChangesTheOptionsTheControllerGivesSsh) {
  ads::test::TempDir tmp;
  const fs::path lab = tmp.path / "lab";
  // the lab: every place a copied-and-pasted Ansible set-up weakens host-key checking
  write(lab / "ansible.cfg",
        "[defaults]\nhost_key_checking = False\n"
        "[ssh_connection]\nssh_args = -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o ProxyCommand=/lab/evil\n");
  write(lab / "host_vars/cse02.yml",
        "ansible_ssh_args: -o stricthostkeychecking=no\n"
        "ansible_ssh_common_args: -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=no\n"
        "ansible_host_key_checking: false\n");
  write(lab / "group_vars/all.yml", "ansible_ssh_extra_args: -o UserKnownHostsFile=/lab/known_hosts\n");
  write(lab / "site.yml",
        "- hosts: all\n  gather_facts: false\n  vars:\n    ansible_ssh_args: -o BatchMode=no\n"
        "  tasks:\n    - ansible.builtin.raw: 'true'\n");
  // the stand-in for ssh: one argument a line, then "unreachable"
  const fs::path recorder = tmp.path / "ssh-recorder";
  const fs::path record = tmp.path / "argv";
  write(recorder, "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >>'" + record.string() +
                      "'\necho 'recorded' >&2\nexit 255\n");
  fs::permissions(recorder, fs::perms::owner_all);
  // the controller's inventory, plus the stand-in (the test's, not the lab's)
  json inv = json::parse(ads::controller_inventory("cse02", "10.99.0.7", 9022, "/ads/key"));
  inv["all"]["hosts"]["cse02"]["ansible_ssh_executable"] = recorder.string();
  write(tmp.path / "inventory.yml", inv.dump(1));
  const std::string ssh_args = ads::controller_ssh_args("/ads/known_hosts", "/usr/bin/nc.openbsd -U /ads/ssh.sock");

  std::vector<std::string> argv{"env", "HOME=" + tmp.str(), "ANSIBLE_HOST_KEY_CHECKING=True"};
  for (const auto& e : ads::playbook_env()) argv.push_back(e);
  for (const std::string& a :
       {std::string("ansible-playbook"), std::string("-i"), (tmp.path / "inventory.yml").string(), std::string("-e"),
        ads::controller_vars_json({"/opt/lab", "/var/b", "d-1", "cse02", ""}, ssh_args), std::string("--"),
        std::string("site.yml")})
    argv.push_back(a);
  std::string out;
  int rc = ads::test::run(argv, &out, lab.string());  // in the lab's directory: its ansible.cfg is read
  EXPECT_NE(rc, 0) << out;                            // the stand-in answers "unreachable"
  ASSERT_NE(out.find("UNREACHABLE"), std::string::npos) << out;

  std::ifstream in(record);
  std::vector<std::string> ssh_argv;
  for (std::string line; std::getline(in, line);) ssh_argv.push_back(line);
  ASSERT_FALSE(ssh_argv.empty()) << "ansible-playbook never ran ssh:\n" << out;
  auto opts = options(ssh_argv);
  // the lab's settings were read and passed on (the test sees them: it is not vacuous) ...
  EXPECT_TRUE(any(opts, "StrictHostKeyChecking", "accept-new")) << out;
  EXPECT_TRUE(any(opts, "UserKnownHostsFile", "/lab/known_hosts")) << out;
  EXPECT_TRUE(any(opts, "StrictHostKeyChecking", "no")) << "host_key_checking = False";
  // ... and every option of the controller's comes first, so ssh uses it
  EXPECT_EQ(first(opts, "StrictHostKeyChecking"), "yes");
  EXPECT_EQ(first(opts, "UserKnownHostsFile"), "/ads/known_hosts");
  EXPECT_EQ(first(opts, "GlobalKnownHostsFile"), "/dev/null");
  EXPECT_EQ(first(opts, "IdentitiesOnly"), "yes");
  EXPECT_EQ(first(opts, "BatchMode"), "yes");
  EXPECT_EQ(first(opts, "PasswordAuthentication"), "no");
  EXPECT_EQ(first(opts, "ProxyCommand"), "/usr/bin/nc.openbsd -U /ads/ssh.sock");
  // the lab's own ssh_args (ansible.cfg, host_vars, play vars) are replaced, not added
  EXPECT_FALSE(any(opts, "ProxyCommand", "/lab/evil"));
  EXPECT_FALSE(any(opts, "BatchMode", "no"));
}

}  // namespace
