// How ADS runs ansible-playbook, in either mode (LabSpec::AnsibleMode): the
// variables it passes, the environment that makes the output readable by
// AnsibleOutput, and, for the controller mode, the inventory of the one
// machine and the SSH key line the agent accepts. Pure logic: no process is
// started here (the agent does it for the local mode, the engine for the
// controller mode).
#pragma once

#include <string>
#include <vector>

namespace ads {

// What a playbook knows about the lab it installs (docs/integrators/ansible.md):
// ads_lab_dir, ads_backup_dir, ads_deployment_id, ads_name, ads_stable_url.
struct PlaybookVars {
  std::string lab_dir;  // in the machine
  std::string backup_dir;
  std::string deployment_id;
  std::string name;
  std::string stable_url;
};

// The variables as one JSON object: the value of a single `-e` argument
// (never part of a shell string).
std::string playbook_vars_json(const PlaybookVars& v);

// NAME=value pairs for ansible-playbook's environment: output as it comes,
// no colour, no retry files, the default callback with JSON results (the
// environment wins over an ansible.cfg of the lab, so the lab cannot change
// the format AnsibleOutput reads).
std::vector<std::string> playbook_env();

// The ssh options of a controller run: Ansible's defaults (-C, ControlMaster,
// ControlPersist), trust only the host key in `known_hosts` (no prompt, no
// other key file, no password), and `proxy_command` (ssh's ProxyCommand, e.g.
// "nc -U /ads/ssh.sock": how ssh reaches the machine from a sandbox without a
// network; "": directly).
std::string controller_ssh_args(const std::string& known_hosts, const std::string& proxy_command = "");

// playbook_vars_json plus `ansible_ssh_args` = `ssh_args`: one `-e` argument.
// As an extra variable it outranks every other source of that setting (the
// lab's ansible.cfg `ssh_args`, its host_vars, group_vars, play and task
// vars), and Ansible puts ssh_args first on ssh's command line, where ssh
// keeps the first value of each option: what a lab adds (`host_key_checking =
// False`, ssh_common_args, ssh_extra_args) comes after and cannot change
// these options (tests/unit/core/ansible_ssh_args_test.cpp, with a real
// ansible-playbook).
std::string controller_vars_json(const PlaybookVars& v, const std::string& ssh_args);

// Where the controller reaches the machine: `address`:`port` over SSH as root
// with `key_file` (the ssh options: controller_vars_json). A YAML inventory
// (JSON is YAML; the file must end in .yml) with the one host `host` (a lab
// name: the name failures are reported under).
std::string controller_inventory(const std::string& host, const std::string& address, int port,
                                 const std::string& key_file);

// An OpenSSH public key line the agent puts in its authorized keys: exactly
// "ssh-ed25519 <base64>" and an optional comment of [A-Za-z0-9@._-], at
// most 1 KiB; nothing else (no options, no second line).
bool valid_ssh_public_key(const std::string& line);

}  // namespace ads
