#include "core/ansible_run.h"

#include <cctype>
#include <nlohmann/json.hpp>

namespace ads {

using json = nlohmann::json;

std::string playbook_vars_json(const PlaybookVars& v) {
  json vars = {{"ads_lab_dir", v.lab_dir},
               {"ads_backup_dir", v.backup_dir},
               {"ads_deployment_id", v.deployment_id},
               {"ads_name", v.name},
               {"ads_stable_url", v.stable_url}};
  return vars.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<std::string> playbook_env() {
  return {"PYTHONUNBUFFERED=1",
          "ANSIBLE_NOCOLOR=1",
          "ANSIBLE_FORCE_COLOR=0",
          "ANSIBLE_RETRY_FILES_ENABLED=0",
          "ANSIBLE_LOCALHOST_WARNING=0",
          "ANSIBLE_PYTHON_INTERPRETER=auto_silent",
          "ANSIBLE_STDOUT_CALLBACK=default",
          "ANSIBLE_CALLBACK_RESULT_FORMAT=json",
          "ANSIBLE_CHECK_MODE_MARKERS=False"};  // task names as written, also in check mode
}

std::string controller_ssh_args(const std::string& known_hosts, const std::string& proxy_command) {
  // Ansible's own defaults first (one connection per run, reused by each task)
  std::string args = "-C -o ControlMaster=auto -o ControlPersist=60s";
  // every option ssh takes from this run, none from ~/.ssh or /etc/ssh
  args += " -o UserKnownHostsFile=" + known_hosts +
          " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
          " -o BatchMode=yes -o PasswordAuthentication=no -o ConnectTimeout=15";
  // one argument to ssh (Ansible splits these with shlex): quoted
  if (!proxy_command.empty()) args += " -o 'ProxyCommand=" + proxy_command + "'";
  return args;
}

std::string controller_vars_json(const PlaybookVars& v, const std::string& ssh_args) {
  json vars = json::parse(playbook_vars_json(v));
  vars["ansible_ssh_args"] = ssh_args;
  return vars.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string controller_inventory(const std::string& host, const std::string& address, int port,
                                 const std::string& key_file) {
  json h = {{"ansible_host", address},
            {"ansible_port", port},
            {"ansible_user", "root"},
            {"ansible_connection", "ssh"},
            {"ansible_ssh_private_key_file", key_file}};
  json inv = {{"all", {{"hosts", {{host, h}}}}}};
  return inv.dump(1) + "\n";
}

bool valid_ssh_public_key(const std::string& line) {
  static const std::string kType = "ssh-ed25519 ";
  if (line.size() > 1024 || line.rfind(kType, 0) != 0) return false;
  size_t i = kType.size();
  size_t start = i;
  while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '+' || line[i] == '/'))
    ++i;
  while (i < line.size() && line[i] == '=') ++i;
  if (i - start < 60) return false;  // an ed25519 key is 68 base64 characters
  if (i == line.size()) return true;
  if (line[i] != ' ' || i + 1 == line.size()) return false;
  for (size_t k = i + 1; k < line.size(); ++k) {
    unsigned char c = static_cast<unsigned char>(line[k]);
    if (!(std::isalnum(c) || c == '@' || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace ads
