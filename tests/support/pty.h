// A program run on a pseudo-terminal, as a person at a terminal would run it
// (`ads shell`): the test types, reads the screen's bytes, changes the
// window's size, and waits for the exit. Every wait is bounded.
#pragma once

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace ads::test {

class PtyChild {
 public:
  PtyChild(const std::vector<std::string>& argv, int rows, int cols) {
    winsize w{};
    w.ws_row = static_cast<unsigned short>(rows);
    w.ws_col = static_cast<unsigned short>(cols);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::forkpty(&master_, nullptr, nullptr, &w);
    if (pid_ == 0) {
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~PtyChild() {
    if (pid_ > 0 && status_ < 0) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  PtyChild(const PtyChild&) = delete;
  PtyChild& operator=(const PtyChild&) = delete;

  bool started() const { return pid_ > 0 && master_ >= 0; }
  pid_t pid() const { return pid_; }
  void type(const std::string& s) { (void)!::write(master_, s.data(), s.size()); }
  // Reads until `text` is in the output after `from` (an offset in
  // output()), or `limit` passes, or the output ends. Whether it came.
  bool wait_for(const std::string& text, std::chrono::milliseconds limit = std::chrono::seconds(20), size_t from = 0) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (out_.find(text, from) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= until || !read_more(200))
        return out_.find(text, from) != std::string::npos;
    }
    return true;
  }
  // The window's new size (the terminal tells the program: SIGWINCH).
  void resize(int rows, int cols) {
    winsize w{};
    w.ws_row = static_cast<unsigned short>(rows);
    w.ws_col = static_cast<unsigned short>(cols);
    ::ioctl(master_, TIOCSWINSZ, &w);
  }
  // The exit code (128 + signal when killed); -1 when it did not end within
  // `limit` (it is then killed).
  int wait_exit(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (status_ < 0) {
      int st = 0;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() >= until) return -1;
      read_more(50);  // keep the terminal drained so that the program is not held writing
    }
    while (read_more(0)) {
    }
    return status_;
  }
  void kill(int sig) { ::kill(pid_, sig); }
  const std::string& output() const { return out_; }

 private:
  // false at the output's end (or an error)
  bool read_more(int wait_ms) {
    pollfd p{master_, POLLIN, 0};
    int r = ::poll(&p, 1, wait_ms);
    if (r == 0) return true;
    if (r < 0) return false;
    char buf[4096];
    ssize_t n = ::read(master_, buf, sizeof buf);
    if (n <= 0) return false;
    out_.append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int master_ = -1;
  int status_ = -1;
  std::string out_;
};

}  // namespace ads::test
