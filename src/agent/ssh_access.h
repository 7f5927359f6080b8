// Lets ADS's Ansible controller into the machine over SSH for one playbook
// run, and only then (LabSpec::AnsibleMode::kController). ADS makes a key
// pair for the run and sends the public half (POST /v1/ssh, signed with the
// agent's secret, over its TLS); the agent writes it as the only authorized
// key of an sshd it starts for the run, with its own config (no password, no
// forwarding, root only) and this machine's own host key, made here on first
// use (never one baked into the image), which it returns so that ADS trusts
// that key alone. DELETE /v1/ssh, the time to live running out, or the next
// agent start removes the key and stops that sshd and its sessions. It
// listens on port 9022 (kSshDoorPort), not a lab's 22.
//
// The agent still runs no command from a request: the request carries a key
// (checked to be one ed25519 key line), never a command.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "agent/protocol.h"  // kSshDoorPort, kMaxSshTtlSeconds
#include "core/result.h"

namespace ads::agent {

struct SshAccessOptions {
  std::string dir = "/etc/ads-agent/ssh";  // host key, authorized key, sshd's pid and log
  std::string sshd = "/usr/sbin/sshd";
  std::string keygen = "/usr/bin/ssh-keygen";
  std::string privsep_dir = "/run/sshd";  // Debian's sshd refuses to start without it
  std::string listen = "0.0.0.0";
  int port = kSshDoorPort;
};

class SshAccess {
 public:
  explicit SshAccess(SshAccessOptions opts);
  ~SshAccess();
  SshAccess(const SshAccess&) = delete;
  SshAccess& operator=(const SshAccess&) = delete;

  // Removes a key an earlier agent left and stops its sshd (the agent's start).
  void reset();
  // Starts sshd for `public_key` (replacing a run under way) for at most
  // `ttl_s` seconds; returns this machine's host key line
  // ("ssh-ed25519 AAAA..."). Errors: "invalid" (the key), "unsupported" (no
  // sshd in this machine), "internal".
  Result<std::string> open(const std::string& public_key, int ttl_s);
  // Removes the key and stops sshd and every session it started; nothing
  // open: nothing to do.
  void close();
  int port() const { return opts_.port; }

 private:
  void close_locked();
  void watch();  // ends a run whose time to live has run out

  SshAccessOptions opts_;
  std::mutex mu_;
  std::condition_variable changed_;
  pid_t pid_ = 0;  // sshd, 0: none
  std::chrono::steady_clock::time_point until_;
  bool stopping_ = false;
  std::thread watcher_;
};

}  // namespace ads::agent
