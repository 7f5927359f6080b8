// `ads shell` on OpenVZ: a program on a pty of the host (`vzctl enter`),
// over an SSH connection of its own. libssh is not safe to share between
// threads, so one thread does everything with the connection: it relays the
// channel to a socket pair (the session's end is fd()), and applies window
// sizes handed to it through an eventfd.
#include <libssh/libssh.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "core/terminal.h"
#include "core/text.h"
#include "providers/openvz/shell_quote.h"
#include "providers/openvz/ssh.h"

namespace ads::openvz {
namespace {

class SshTerminal final : public ShellSession {
 public:
  SshTerminal(std::unique_ptr<SshSession> s, ssh_channel ch, int ssh_fd, int mine, int theirs, int wake)
      : s_(std::move(s)), ch_(ch), ssh_fd_(ssh_fd), mine_(mine), theirs_(theirs), wake_(wake) {
    thread_ = std::thread([this] { relay(); });
  }
  SshTerminal(const SshTerminal&) = delete;
  SshTerminal& operator=(const SshTerminal&) = delete;
  ~SshTerminal() override {
    stop_ = true;
    uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof one);
    try {
      thread_.join();
    } catch (...) {  // cannot happen for a joinable thread of ours; a destructor does not throw
    }
    ssh_channel_close(ch_);
    ssh_channel_free(ch_);
    ::close(mine_);
    ::close(theirs_);
    ::close(wake_);
    // s_ disconnects last: sshd hangs the terminal up
  }

  int fd() const override { return mine_; }

  Status resize(const TerminalSize& size) override {
    if (auto st = check_terminal_size(size.cols, size.rows); !st) return st;
    {
      std::lock_guard<std::mutex> lk(mu_);
      next_size_ = size;  // only the latest counts
    }
    uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof one);
    return Status::Ok();
  }

  Result<int> exit_code(std::chrono::milliseconds wait) override {
    std::unique_lock<std::mutex> lk(mu_);
    if (!cv_.wait_for(lk, wait, [&] { return ended_; }))
      return Error::make("timeout", "the shell's program did not end within " + std::to_string(wait.count()) + " ms");
    if (exit_ < 0) return Error::make("failed", "the OpenVZ host gave no exit status for the shell");
    return exit_;
  }

 private:
  void relay() {
    char buf[16384];
    std::string typed;  // read from the pair, not yet taken by the channel
    for (;;) {
      if (stop_) break;
      // the program's output, to the pair (a pty merges its stderr into it)
      int n = ssh_channel_read_nonblocking(ch_, buf, sizeof buf, 0);
      if (n == SSH_ERROR) break;
      if (n > 0) {
        if (!write_all(buf, static_cast<size_t>(n))) break;
        continue;
      }
      if (ssh_channel_is_eof(ch_) || ssh_channel_is_closed(ch_)) break;
      // a new window size
      std::optional<TerminalSize> size;
      {
        std::lock_guard<std::mutex> lk(mu_);
        size.swap(next_size_);
      }
      if (size) ssh_channel_change_pty_size(ch_, size->cols, size->rows);
      // what was typed, as far as the channel's window takes it (a write
      // beyond it would block this thread until the program reads)
      if (!typed.empty()) {
        uint32_t room = ssh_channel_window_size(ch_);
        if (room > 0) {
          int w = ssh_channel_write(ch_, typed.data(), static_cast<uint32_t>(std::min<size_t>(typed.size(), room)));
          if (w == SSH_ERROR) break;
          typed.erase(0, static_cast<size_t>(w));
        }
      }
      // wait for any of: the pair (while nothing typed waits), the connection, a wake-up
      pollfd p[3] = {{typed.empty() ? theirs_ : -1, POLLIN, 0}, {ssh_fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
      if (::poll(p, 3, 200) < 0 && errno != EINTR) break;
      if (p[2].revents & POLLIN) {
        uint64_t v = 0;
        (void)!::read(wake_, &v, sizeof v);
      }
      if (typed.empty() && (p[0].revents & (POLLIN | POLLHUP))) {
        ssize_t got = ::read(theirs_, buf, sizeof buf);
        if (got <= 0) break;  // the session's reader is gone: hang up
        typed.assign(buf, static_cast<size_t>(got));
      }
    }
    // the program's end: its exit status comes with (or just after) the EOF
    int code = -1;
    if (!stop_ && ssh_channel_is_eof(ch_)) code = ssh_channel_get_exit_status(ch_);
    ::shutdown(theirs_, SHUT_WR);
    {
      std::lock_guard<std::mutex> lk(mu_);
      exit_ = code;
      ended_ = true;
    }
    cv_.notify_all();
  }

  // Writes to the pair, waiting while its reader is behind (and giving up
  // when the session is being destroyed).
  bool write_all(const char* data, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(theirs_, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (stop_) return false;
        pollfd p{theirs_, POLLOUT, 0};
        (void)::poll(&p, 1, 200);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      data += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  std::unique_ptr<SshSession> s_;
  ssh_channel ch_;
  int ssh_fd_, mine_, theirs_, wake_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<TerminalSize> next_size_;
  bool ended_ = false;
  int exit_ = -1;
  std::thread thread_;
};
}  // namespace

Result<std::unique_ptr<ShellSession>> SshSession::open_terminal(std::unique_ptr<SshSession> s,
                                                                const std::vector<std::string>& argv,
                                                                const TerminalSize& size) {
  auto cmd = shell_join(argv);
  if (!cmd) return cmd.error();
  ssh_channel ch = ssh_channel_new(s->s_);
  if (!ch) return Error::make("unavailable", "cannot open a channel to " + s->where_ + ": " + ssh_get_error(s->s_));
  auto fail = [&](const std::string& what) {
    Error e = Error::make("unavailable", what + " on " + s->where_ + ": " + ssh_get_error(s->s_));
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    return e;
  };
  if (ssh_channel_open_session(ch) != SSH_OK) return fail("cannot open a session");
  if (ssh_channel_request_pty_size(ch, size.term.c_str(), size.cols, size.rows) != SSH_OK)
    return fail("cannot have a terminal");
  if (ssh_channel_request_exec(ch, cmd->c_str()) != SSH_OK) return fail("cannot run " + argv[0]);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    Error e = Error::make("failed", "a shell's socket pair: " + errno_text(errno));
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    return e;
  }
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    Error e = Error::make("failed", "a shell's eventfd: " + errno_text(errno));
    ::close(sv[0]);
    ::close(sv[1]);
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    return e;
  }
  int ssh_fd = ssh_get_fd(s->s_);
  return std::unique_ptr<ShellSession>(std::make_unique<SshTerminal>(std::move(s), ch, ssh_fd, sv[0], sv[1], wake));
}

}  // namespace ads::openvz
