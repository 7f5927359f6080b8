#include "providers/openvz/ssh.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <sys/stat.h>

#include <thread>

#include "providers/openvz/shell_quote.h"

namespace ads::openvz {

namespace {
std::string sftp_error_text(sftp_session sftp) {
  switch (sftp_get_error(sftp)) {
    case SSH_FX_NO_SUCH_FILE:
      return "no such file or directory";
    case SSH_FX_PERMISSION_DENIED:
      return "permission denied";
    case SSH_FX_FAILURE:
      return "failure";
    case SSH_FX_FILE_ALREADY_EXISTS:
      return "file exists";
    default:
      return "SFTP error " + std::to_string(sftp_get_error(sftp));
  }
}
}  // namespace

Result<std::unique_ptr<SshSession>> SshSession::connect(const SshTarget& t) {
  std::string where = t.user + "@" + t.host + ":" + std::to_string(t.port);
  ssh_session s = ssh_new();
  if (!s) return Error::make("internal", "libssh: cannot allocate a session");
  std::unique_ptr<SshSession> out(new SshSession(s, where));
  long timeout = t.connect_timeout_s;
  int port = t.port;
  int no = 0;
  int strict = 1;
  // No ~/.ssh/config, no system known_hosts: only what the settings name.
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no);
  ssh_options_set(s, SSH_OPTIONS_HOST, t.host.c_str());
  ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  ssh_options_set(s, SSH_OPTIONS_USER, t.user.c_str());
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout);
  ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, t.known_hosts.c_str());
  ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  ssh_options_set(s, SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict);
  if (ssh_connect(s) != SSH_OK)
    return Error::make("unavailable", "cannot connect to " + where + ": " + ssh_get_error(s));

  switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK:
      break;
    case SSH_KNOWN_HOSTS_CHANGED:
      return Error::make("failed", "the host key of " + where + " has CHANGED from the one in " + t.known_hosts +
                                       "; refusing to connect (if the host was reinstalled, replace its line)");
    case SSH_KNOWN_HOSTS_OTHER:
      return Error::make("failed", "the host key of " + where + " is of another type than the one in " + t.known_hosts +
                                       "; refusing to connect");
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      return Error::make("failed", "the host key of " + where + " is not in " + t.known_hosts +
                                       "; add it (ssh-keyscan, checked out of band) before using this host");
    default:
      return Error::make(
          "failed", "cannot check the host key of " + where + " against " + t.known_hosts + ": " + ssh_get_error(s));
  }

  ssh_key key = nullptr;
  if (ssh_pki_import_privkey_file(t.private_key.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK)
    return Error::make("failed", "cannot read the private key " + t.private_key +
                                     " (it must exist, be readable and have no passphrase)");
  int rc = ssh_userauth_publickey(s, nullptr, key);
  ssh_key_free(key);
  if (rc != SSH_AUTH_SUCCESS)
    return Error::make("failed", where + " refused the key " + t.private_key +
                                     (rc == SSH_AUTH_ERROR ? std::string(": ") + ssh_get_error(s) : ""));
  return out;
}

SshSession::~SshSession() {
  if (sftp_) sftp_free(sftp_);
  ssh_disconnect(s_);
  ssh_free(s_);
}

Result<CommandResult> SshSession::run(const std::vector<std::string>& argv, const std::string& input,
                                      std::chrono::milliseconds timeout, size_t max_output) {
  auto cmd = shell_join(argv);
  if (!cmd) return cmd.error();
  ssh_channel ch = ssh_channel_new(s_);
  if (!ch) return Error::make("unavailable", "cannot open a channel to " + where_ + ": " + ssh_get_error(s_));
  struct Guard {
    ssh_channel c;
    ~Guard() {
      ssh_channel_close(c);
      ssh_channel_free(c);
    }
  } guard{ch};
  if (ssh_channel_open_session(ch) != SSH_OK || ssh_channel_request_exec(ch, cmd->c_str()) != SSH_OK)
    return Error::make("unavailable", "cannot run " + argv[0] + " on " + where_ + ": " + ssh_get_error(s_));
  size_t sent = 0;
  while (sent < input.size()) {
    int n =
        ssh_channel_write(ch, input.data() + sent, static_cast<uint32_t>(std::min<size_t>(input.size() - sent, 32768)));
    if (n < 0) return Error::make("failed", "writing to " + argv[0] + " on " + where_ + ": " + ssh_get_error(s_));
    sent += static_cast<size_t>(n);
  }
  ssh_channel_send_eof(ch);
  CommandResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  while (true) {
    bool got = false;
    for (int is_err = 0; is_err < 2; ++is_err) {
      int n = ssh_channel_read_nonblocking(ch, buf, sizeof buf, is_err);
      if (n == SSH_ERROR) return Error::make("failed", "reading from " + where_ + ": " + ssh_get_error(s_));
      if (n > 0) {
        std::string& to = is_err ? r.err : r.out;
        size_t keep = std::min(static_cast<size_t>(n), max_output - std::min(max_output, to.size()));
        to.append(buf, keep);
        if (keep < static_cast<size_t>(n)) r.truncated = true;
        got = true;
      }
    }
    if (!got && ssh_channel_is_eof(ch)) break;
    if (std::chrono::steady_clock::now() >= deadline)
      return Error::make(
          "timeout", argv[0] + " on " + where_ + " ran longer than " + std::to_string(timeout.count() / 1000) + " s");
    if (!got) ssh_channel_poll_timeout(ch, 100, 0);
  }
  // the exit status arrives with (or just after) the EOF
  r.exit_code = ssh_channel_get_exit_status(ch);
  return r;
}

Status SshSession::open_sftp() {
  if (sftp_) return Status::Ok();
  sftp_ = sftp_new(s_);
  if (!sftp_) return Error::make("unavailable", "cannot open SFTP to " + where_ + ": " + ssh_get_error(s_));
  if (sftp_init(sftp_) != SSH_OK) {
    sftp_free(sftp_);
    sftp_ = nullptr;
    return Error::make("unavailable", "the SFTP subsystem of " + where_ + " did not start: " + ssh_get_error(s_));
  }
  return Status::Ok();
}

Status SshSession::put_file(const std::string& path, const std::string& content, int mode) {
  if (path.empty() || path[0] != '/' || path.find("..") != std::string::npos)
    return Error::invalid("path", "file path must be absolute without '..': " + path);
  auto st = open_sftp();
  if (!st) return st;
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    std::string dir = path.substr(0, pos);
    if (sftp_mkdir(sftp_, dir.c_str(), 0755) != SSH_OK && sftp_get_error(sftp_) != SSH_FX_FILE_ALREADY_EXISTS) {
      sftp_attributes a = sftp_stat(sftp_, dir.c_str());
      bool is_dir = a && a->type == SSH_FILEXFER_TYPE_DIRECTORY;
      if (a) sftp_attributes_free(a);
      if (!is_dir)
        return Error::make("failed", "cannot create " + dir + " on " + where_ + ": " + sftp_error_text(sftp_));
    }
  }
  sftp_file f = sftp_open(sftp_, path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, static_cast<mode_t>(mode));
  if (!f) return Error::make("failed", "cannot write " + path + " on " + where_ + ": " + sftp_error_text(sftp_));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = sftp_write(f, content.data() + done, std::min<size_t>(content.size() - done, 32768));
    if (n <= 0) {
      sftp_close(f);
      return Error::make("failed", "writing " + path + " on " + where_ + ": " + sftp_error_text(sftp_));
    }
    done += static_cast<size_t>(n);
  }
  if (sftp_close(f) != SSH_OK)
    return Error::make("failed", "closing " + path + " on " + where_ + ": " + sftp_error_text(sftp_));
  // the server's umask applied to open(); set the mode we asked for
  if (sftp_chmod(sftp_, path.c_str(), static_cast<mode_t>(mode)) != SSH_OK)
    return Error::make("failed", "chmod " + path + " on " + where_ + ": " + sftp_error_text(sftp_));
  return Status::Ok();
}

Result<std::vector<std::string>> SshSession::list_dir(const std::string& path) {
  auto st = open_sftp();
  if (!st) return st.error();
  sftp_dir d = sftp_opendir(sftp_, path.c_str());
  if (!d) {
    if (sftp_get_error(sftp_) == SSH_FX_NO_SUCH_FILE)
      return Error::make("not_found", path + " does not exist on " + where_);
    return Error::make("failed", "cannot list " + path + " on " + where_ + ": " + sftp_error_text(sftp_));
  }
  std::vector<std::string> out;
  while (sftp_attributes a = sftp_readdir(sftp_, d)) {
    std::string n = a->name ? a->name : "";
    sftp_attributes_free(a);
    if (n != "." && n != "..") out.push_back(n);
  }
  sftp_closedir(d);
  return out;
}

}  // namespace ads::openvz
