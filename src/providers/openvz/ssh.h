// A small SSH client on libssh: public-key authentication, strict host-key
// checking against one known_hosts file, commands run from an argv (every
// element quoted, see shell_quote.h), files written over SFTP, and a program
// on a terminal (`ads shell`).
// One SshSession is one connection; it is not shared between threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "providers/provider.h"

struct ssh_session_struct;
struct sftp_session_struct;

namespace ads::openvz {

struct SshTarget {
  std::string host;
  int port = 22;
  std::string user = "root";
  std::string private_key;  // path to an unencrypted private key (OpenSSH format)
  std::string known_hosts;  // path; the host's key must be in it
  int connect_timeout_s = 10;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  bool truncated = false;  // a stream was longer than max_output and was cut
};

class SshSession {
 public:
  // Connects and authenticates. Errors: "unavailable" when the host cannot be
  // reached; "failed" with a message saying what is wrong when its key is
  // unknown or changed, or the key is refused.
  static Result<std::unique_ptr<SshSession>> connect(const SshTarget& t);
  ~SshSession();
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  // Runs argv on the host with `input` on its stdin; the exit code and output.
  // Keeps at most `max_output` bytes of each stream (the rest is read and
  // dropped, so the command is never blocked on a full channel).
  // Error "timeout" when it runs longer than `timeout`.
  Result<CommandResult> run(const std::vector<std::string>& argv, const std::string& input,
                            std::chrono::milliseconds timeout, size_t max_output = SIZE_MAX);
  // Writes `content` to the absolute `path` (mode `mode`) over SFTP, creating
  // missing parent directories (0755). `path` must not contain "..".
  Status put_file(const std::string& path, const std::string& content, int mode);
  // Names in a directory (without . and ..); "not_found" when it is missing.
  Result<std::vector<std::string>> list_dir(const std::string& path);

  // Runs argv on a terminal of the host (a pty sshd allocates, of `size`,
  // TERM size.term) and gives the connection to the shell session returned:
  // a thread of its own relays the channel to the session's socket
  // (ssh_terminal.cpp). The session's end closes the channel: sshd hangs the
  // terminal up (SIGHUP).
  static Result<std::unique_ptr<ShellSession>> open_terminal(std::unique_ptr<SshSession> s,
                                                             const std::vector<std::string>& argv,
                                                             const TerminalSize& size);

  const std::string& where() const { return where_; }

 private:
  SshSession(ssh_session_struct* s, std::string where) : s_(s), where_(std::move(where)) {}
  Status open_sftp();

  ssh_session_struct* s_;
  sftp_session_struct* sftp_ = nullptr;
  std::string where_;  // user@host:port, for messages
};

}  // namespace ads::openvz
