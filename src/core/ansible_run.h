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

// Where the controller reaches the machine: `address` over SSH as root with
// `key_file`, trusting only the host key in `known_hosts` (no prompt, no
// other key file, no password). A YAML inventory (JSON is YAML; the file
// must end in .yml) with the one host `host` (a lab name: the name failures
// are reported under).
// `proxy_command` (ssh's ProxyCommand, e.g. "nc -U /ads/ssh.sock"): how ssh
// reaches the machine from a sandbox without a network; "": directly.
std::string controller_inventory(const std::string& host, const std::string& address, int port,
                                 const std::string& key_file, const std::string& known_hosts,
                                 const std::string& proxy_command = "");

// An OpenSSH public key line the agent puts in its authorized keys: exactly
// "ssh-ed25519 <base64>" and an optional comment of [A-Za-z0-9@._-], at
// most 1 KiB; nothing else (no options, no second line).
bool valid_ssh_public_key(const std::string& line);

}  // namespace ads
