#include "agent/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <vector>

namespace ads::agent {
namespace {
using Clock = std::chrono::steady_clock;

class LineSplitter {
 public:
  LineSplitter(std::string stream, const OutputFn& out) : stream_(std::move(stream)), out_(out) {}
  void feed(const char* p, size_t n) {
    buf_.append(p, n);
    size_t pos;
    while ((pos = buf_.find('\n')) != std::string::npos) {
      out_(stream_, buf_.substr(0, pos));
      buf_.erase(0, pos + 1);
    }
    if (buf_.size() > 64 * 1024) flush();  // very long lines come in pieces
  }
  void flush() {
    if (!buf_.empty()) out_(stream_, buf_);
    buf_.clear();
  }

 private:
  std::string stream_;
  const OutputFn& out_;
  std::string buf_;
};

void exec_shell(const std::string& command, const std::string& workdir, int out_fd, int err_fd,
                const std::vector<std::string>& env) {
  setsid();
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  if (chdir(workdir.c_str()) != 0) {
    dprintf(2, "cannot enter %s\n", workdir.c_str());
    _exit(126);
  }
  signal(SIGPIPE, SIG_DFL);
  std::vector<const char*> envp = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                                   "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"};
  for (const auto& e : env) envp.push_back(e.c_str());
  envp.push_back(nullptr);
  const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
  execve("/bin/sh", const_cast<char* const*>(argv), const_cast<char* const*>(envp.data()));
  _exit(127);
}
}  // namespace

RunResult run_command(const std::string& command, const std::string& workdir, int timeout_s, const OutputFn& out,
                      const std::vector<std::string>& env) {
  int outp[2], errp[2];
  if (pipe2(outp, O_CLOEXEC) != 0) return {126, false};
  if (pipe2(errp, O_CLOEXEC) != 0) {
    close(outp[0]);
    close(outp[1]);
    return {126, false};
  }
  pid_t pid = fork();
  if (pid == 0) exec_shell(command, workdir, outp[1], errp[1], env);
  close(outp[1]);
  close(errp[1]);
  if (pid < 0) {
    close(outp[0]);
    close(errp[0]);
    return {126, false};
  }
  LineSplitter so("stdout", out), se("stderr", out);
  RunResult res;
  auto start = Clock::now();
  auto kill_at = start + std::chrono::seconds(timeout_s);
  bool termed = false, exited = false;
  Clock::time_point exited_at, term_at;
  int status = 0;
  pollfd fds[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[8192];
  while (true) {
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      exited_at = Clock::now();
    }
    auto now = Clock::now();
    if (exited && (open_fds == 0 || now - exited_at > std::chrono::milliseconds(300))) break;
    if (!exited && !termed && now >= kill_at) {
      res.timed_out = true;
      kill(-pid, SIGTERM);
      termed = true;
      term_at = now;
    }
    if (!exited && termed && now - term_at > std::chrono::seconds(5)) kill(-pid, SIGKILL);
    int n = poll(fds, 2, 50);
    if (n <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        (i == 0 ? so : se).feed(buf, static_cast<size_t>(r));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  so.flush();
  se.flush();
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) res.exit_code = 128 + WTERMSIG(status);
  if (res.timed_out) {
    kill(-pid, SIGKILL);  // whatever of the group is left
    out("agent", "timed out after " + std::to_string(timeout_s) + " s; killed");
    if (res.exit_code == 0) res.exit_code = 124;
  }
  return res;
}

int run_argv(const std::vector<std::string>& argv, const std::string& input, std::string* output) {
  int inp[2], outp[2];
  if (pipe2(inp, O_CLOEXEC) != 0) return 126;
  if (pipe2(outp, O_CLOEXEC) != 0) {
    close(inp[0]);
    close(inp[1]);
    return 126;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(inp[0], 0);
    dup2(outp[1], 1);
    dup2(outp[1], 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const char* envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", nullptr};
    execve(args[0][0] == '/' ? args[0] : ("/bin/" + argv[0]).c_str(), args.data(), const_cast<char* const*>(envp));
    execve(("/usr/bin/" + argv[0]).c_str(), args.data(), const_cast<char* const*>(envp));
    _exit(127);
  }
  close(inp[0]);
  close(outp[1]);
  // write stdin and read output together (the child may fill its pipe first)
  size_t written = 0;
  std::string out;
  pollfd fds[2] = {{inp[1], POLLOUT, 0}, {outp[0], POLLIN, 0}};
  if (input.empty()) {
    close(inp[1]);
    fds[0].fd = -1;
  }
  char buf[8192];
  while (fds[1].fd >= 0) {
    if (poll(fds, 2, 1000) < 0) break;
    if (fds[0].fd >= 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(fds[0].fd, input.data() + written, std::min<size_t>(65536, input.size() - written));
      if (w > 0) written += static_cast<size_t>(w);
      if (w <= 0 || written == input.size()) {
        close(fds[0].fd);
        fds[0].fd = -1;
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(fds[1].fd, buf, sizeof buf);
      if (r > 0) out.append(buf, static_cast<size_t>(r));
      else {
        close(fds[1].fd);
        fds[1].fd = -1;
      }
    }
  }
  if (fds[0].fd >= 0) close(fds[0].fd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace ads::agent
