// OpenVZ provider: legacy OpenVZ hosts (CentOS 6 + vzctl 4.x, as the original
// system used) driven over SSH. Every remote command is an argv whose
// elements are single-quoted (shell_quote.h); files reach the container over
// SFTP into its mounted root (`vzctl mount`, then <root_dir>/<CTID>/...).
// Settings (JSON), from the ADS config:
//   {"host": "10.0.0.5", "port": 22, "user": "root",
//    "private_key": "/etc/ads/openvz_ed25519", "known_hosts": "/etc/ads/openvz_known_hosts",
//    "subnet": "10.250.0.0/24", "nameserver": "10.250.0.1", "ctid_base": 1000,
//    "templates": {"centos-6": "centos-6-x86_64", "debian-12": "debian-12.0-x86_64-minimal"},
//    "config": "", "root_dir": "/vz/root", "memory_mb": 512, "swap_mb": 512, "disk_mb": 10240,
//    "start_command": "...", "backup_dir": "/vz/dump/ads",
//    "connect_timeout_s": 10, "command_timeout_s": 600}
// Machines get a static address from `subnet` (the engine allocates it in the
// store); the CTID is ctid_base + the address's offset in the subnet, so it
// is unique while the address is held. Containers carry the name ads-<id>
// (vzctl --name) and their labels in the description ("ads:k=v,k=v",
// values percent-encoded). Snapshots are vzdump archives on the host
// (<backup_dir>/<name>/<snap>/vzdump-openvz-CTID-*.tgz, `vzdump --suspend`),
// restored with `vzctl destroy` + `vzrestore` into the same CTID.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/ipnet.h"
#include "providers/openvz/ssh.h"
#include "providers/provider.h"

namespace ads {

class OpenvzProvider : public Provider {
 public:
  struct Settings {
    openvz::SshTarget ssh;
    Ipv4Subnet subnet;
    std::string subnet_text;
    std::string nameserver;  // "" : the subnet's gateway
    int64_t ctid_base = 1000;
    std::map<std::string, std::string> templates = {{"centos-6", "centos-6-x86_64"}};
    std::string config;                 // vzctl create --config (sample config name), "" : host default
    std::string root_dir = "/vz/root";  // where `vzctl mount` puts a container's root
    uint64_t memory_mb = 512, swap_mb = 512, disk_mb = 10240;  // defaults when the spec says 0
    // Run in the container (`vzctl exec2`, which hands it to the container's
    // shell) after every start. A constant from the ADS config, never input.
    std::string start_command =
        "setsid /usr/local/bin/ads-agent --config /etc/ads-agent/agent.json "
        "</dev/null >>/var/log/ads-agent.log 2>&1 &";
    int command_timeout_s = 600;
    std::string backup_dir = "/vz/dump/ads";  // vzdump archives, one directory per machine and snapshot
  };

  explicit OpenvzProvider(Settings s);
  static Result<std::unique_ptr<Provider>> create_from(const nlohmann::json& settings);

  std::string kind() const override { return "openvz"; }
  std::string address_pool() const override { return s_.subnet_text; }
  Status create(const MachineSpec& spec, const ProgressFn& progress) override;
  Status start(const std::string& name) override;
  Status stop(const std::string& name) override;
  Status destroy(const std::string& name) override;
  Result<std::string> wait_address(const std::string& name, std::chrono::milliseconds total) override;
  Result<Machine> inspect(const std::string& name) override;
  Result<std::vector<Machine>> list() override;
  Result<std::vector<ImageInfo>> images() override;
  Status snapshot(const std::string& name, const std::string& snap) override;
  Status restore_snapshot(const std::string& name, const std::string& snap) override;
  Status delete_snapshot(const std::string& name, const std::string& snap) override;
  bool snapshots_outlive_machine() const override { return true; }
  // `vzctl exec2 CTID LINE` over the SSH connection to the host; see
  // exec_line() for LINE. The timeout is coreutils' `timeout` in the
  // container, as on LXD; "conflict" when the container is not running.
  // `vzctl enter CTID` on a terminal of the host, over an SSH connection of
  // the session's own (openvz/ssh_terminal.cpp).
  Result<std::unique_ptr<ShellSession>> open_shell(const std::string& name, const TerminalSize& size) override;
  Result<ExecResult> exec(const std::string& name, const std::vector<std::string>& argv, int timeout_s,
                          size_t max_bytes) override;
  // The command line vzctl hands to the container's shell: vzctl joins its
  // arguments with spaces and runs `bash -c` on them, so every element of
  // argv is single-quoted (shell_quote.h) for that shell too.
  // "invalid" (field "command") for an empty argv or a NUL byte.
  static Result<std::string> exec_line(const std::vector<std::string>& argv, int timeout_s);

  // The CTID a machine with this address gets; "invalid" outside the subnet.
  Result<int64_t> ctid_for(const std::string& address) const;
  // Labels <-> the description vzctl stores ("ads:deployment=...,lab=...").
  static std::string encode_labels(const std::map<std::string, std::string>& labels);
  static std::optional<std::map<std::string, std::string>> decode_labels(const std::string& description);

 private:
  struct Row {
    int64_t ctid = 0;
    std::string status, name, description, ip;
  };
  Result<std::unique_ptr<openvz::SshSession>> connect();
  // Runs argv; "failed" (naming the command, its exit code and output) unless it exits 0.
  Status vz(openvz::SshSession& s, const std::vector<std::string>& argv, std::string* out = nullptr);
  Result<std::vector<Row>> rows(openvz::SshSession& s);
  Result<std::optional<Row>> find(openvz::SshSession& s, const std::string& name);
  // A session to the host and the container called `name` on it. "invalid" for a
  // bad name; "not_found" when it must exist (`must_exist`) and does not.
  struct Located {
    std::unique_ptr<openvz::SshSession> session;
    std::optional<Row> row;
  };
  Result<Located> locate(const std::string& name, bool must_exist = true);
  // Brings a container to rest before it is destroyed or replaced.
  Status halt(openvz::SshSession& s, const Row& row);
  Status place_files(openvz::SshSession& s, int64_t ctid, const std::vector<FileToPlace>& files,
                     const ProgressFn& progress);
  static Machine to_machine(const Row& r);

  Settings s_;
};

}  // namespace ads
