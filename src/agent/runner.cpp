#include "agent/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <vector>

namespace ads::agent {
namespace {
using Clock = std::chrono::steady_clock;

// What a daemon that keeps writing to the pipes after the shell exited may
// add to the drain, beyond what was pending at the exit.
constexpr size_t kDrainSlack = 1u << 20;

class LineSplitter {
 public:
  LineSplitter(std::string stream, const OutputFn& out) : stream_(std::move(stream)), out_(out) {}
  void feed(const char* p, size_t n) {
    buf_.append(p, n);
    size_t start = 0, pos;
    while ((pos = buf_.find('\n', start)) != std::string::npos) {
      out_(stream_, buf_.substr(start, pos - start));
      start = pos + 1;
    }
    buf_.erase(0, start);
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

// argv[0] is an absolute path (no PATH search).
void exec_program(const std::vector<std::string>& program, const std::string& workdir, int out_fd, int err_fd,
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
  // the defaults, unless `env` sets the same name (the first of a name wins in glibc and Python)
  std::vector<const char*> envp;
  for (const char* d : {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                        "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}) {
    std::string_view name(d, std::string_view(d).find('=') + 1);
    bool set = false;
    for (const auto& e : env) set = set || e.compare(0, name.size(), name) == 0;
    if (!set) envp.push_back(d);
  }
  for (const auto& e : env) envp.push_back(e.c_str());
  envp.push_back(nullptr);
  std::vector<const char*> argv;
  argv.reserve(program.size() + 1);
  for (const auto& a : program) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  execve(program[0].c_str(), const_cast<char* const*>(argv.data()), const_cast<char* const*>(envp.data()));
  char why[256];
  dprintf(2, "cannot run %s: %s\n", program[0].c_str(), strerror_r(errno, why, sizeof why));
  _exit(127);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 0;
}
}  // namespace

RunResult run_command(const std::string& command, const std::string& workdir, const RunOptions& opts,
                      const OutputFn& out) {
  return run_program({"/bin/sh", "-c", command}, workdir, opts, out);
}

RunResult run_program(const std::vector<std::string>& argv, const std::string& workdir, const RunOptions& opts,
                      const OutputFn& out) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') return {127, false, false};
  int outp[2], errp[2];
  if (pipe2(outp, O_CLOEXEC) != 0) return {126, false, false};
  if (pipe2(errp, O_CLOEXEC) != 0) {
    close(outp[0]);
    close(outp[1]);
    return {126, false, false};
  }
  pid_t pid = fork();
  if (pid == 0) exec_program(argv, workdir, outp[1], errp[1], opts.env);
  close(outp[1]);
  close(errp[1]);
  if (pid < 0) {
    close(outp[0]);
    close(errp[0]);
    return {126, false, false};
  }
  if (opts.on_group) opts.on_group(pid);
  LineSplitter so("stdout", out), se("stderr", out);
  LineSplitter* splitters[2] = {&so, &se};
  RunResult res;
  auto start = Clock::now();
  auto kill_at = start + std::chrono::seconds(opts.timeout_s);
  auto next_tick = start + opts.tick;
  bool ticking = opts.tick.count() > 0 && opts.on_tick;
  bool termed = false, killed = false;
  Clock::time_point term_at;
  int status = 0;
  pollfd fds[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
  char buf[8192];
  auto close_fd = [&](int i) {
    close(fds[i].fd);
    fds[i].fd = -1;
  };
  // 1. while the shell runs: read whatever comes, watch the clock and the cancel flag
  while (true) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid || (w < 0 && errno == ECHILD)) break;
    auto now = Clock::now();
    if (!termed) {
      bool cancel = opts.cancel && opts.cancel->load();
      if (cancel || now >= kill_at) {
        (cancel ? res.cancelled : res.timed_out) = true;
        // the group, or the shell alone if it has not made its session yet
        if (kill(-pid, SIGTERM) != 0) kill(pid, SIGTERM);
        termed = true;
        term_at = now;
      }
    } else if (!killed && now - term_at >= opts.kill_grace) {
      if (kill(-pid, SIGKILL) != 0) kill(pid, SIGKILL);
      killed = true;
    }
    if (ticking && now >= next_tick) {
      opts.on_tick();
      next_tick = now + opts.tick;
    }
    if (poll(fds, 2, 50) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r > 0) splitters[i]->feed(buf, static_cast<size_t>(r));
      else if (r == 0 || (errno != EINTR && errno != EAGAIN)) close_fd(i);
    }
  }
  if (opts.on_group) opts.on_group(0);
  // the cancel may have signalled the group itself before this loop saw the flag
  if (!res.timed_out && opts.cancel && opts.cancel->load()) res.cancelled = true;
  // 2. the shell has exited: everything it (and what it waited for) wrote is
  // in the pipes now. Read it all, up to "nothing more right now" rather than
  // up to an end of file, which a background daemon holding the pipe would
  // never give.
  bool cut = false;
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd < 0) continue;
    int pending = 0;
    if (ioctl(fds[i].fd, FIONREAD, &pending) != 0 || pending < 0) pending = 0;
    size_t budget = static_cast<size_t>(pending) + kDrainSlack;
    int fl = fcntl(fds[i].fd, F_GETFL);
    if (fl >= 0) fcntl(fds[i].fd, F_SETFL, fl | O_NONBLOCK);
    while (true) {
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;  // end of file, or empty for now (EAGAIN)
      splitters[i]->feed(buf, static_cast<size_t>(r));
      if (static_cast<size_t>(r) >= budget) {
        cut = true;
        break;
      }
      budget -= static_cast<size_t>(r);
    }
    close_fd(i);
  }
  so.flush();
  se.flush();
  if (cut)
    out("agent", "a background process keeps writing after the command ended; the rest of its output is not read");
  res.exit_code = exit_code_of(status);
  if (res.timed_out || res.cancelled) {
    kill(-pid, SIGKILL);  // whatever of the group is left
    if (res.timed_out) out("agent", "timed out after " + std::to_string(opts.timeout_s) + " s; killed");
    else out("agent", "cancelled; killed");
    if (res.exit_code == 0) res.exit_code = res.timed_out ? 124 : 130;
  }
  return res;
}

ArgvResult run_argv(const std::vector<std::string>& argv, const std::string& input) {
  ArgvResult res;
  int inp[2], outp[2], errp[2];
  if (pipe2(inp, O_CLOEXEC) != 0) return {126, "", "pipe failed"};
  if (pipe2(outp, O_CLOEXEC) != 0) {
    close(inp[0]);
    close(inp[1]);
    return {126, "", "pipe failed"};
  }
  if (pipe2(errp, O_CLOEXEC) != 0) {
    for (int fd : {inp[0], inp[1], outp[0], outp[1]}) close(fd);
    return {126, "", "pipe failed"};
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(inp[0], 0);
    dup2(outp[1], 1);
    dup2(errp[1], 2);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const char* envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", nullptr};
    execve(args[0][0] == '/' ? args[0] : ("/bin/" + argv[0]).c_str(), args.data(), const_cast<char* const*>(envp));
    execve(("/usr/bin/" + argv[0]).c_str(), args.data(), const_cast<char* const*>(envp));
    _exit(127);
  }
  close(inp[0]);
  close(outp[1]);
  close(errp[1]);
  if (pid < 0) {
    for (int fd : {inp[1], outp[0], errp[0]}) close(fd);
    return {126, "", "fork failed"};
  }
  // write stdin and read both outputs together (the child may fill a pipe first)
  size_t written = 0;
  pollfd fds[3] = {{inp[1], POLLOUT, 0}, {outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
  std::string* sinks[3] = {nullptr, &res.out, &res.err};
  if (input.empty()) {
    close(inp[1]);
    fds[0].fd = -1;
  }
  char buf[8192];
  while (fds[1].fd >= 0 || fds[2].fd >= 0) {
    if (poll(fds, 3, 1000) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].fd >= 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(fds[0].fd, input.data() + written, std::min<size_t>(65536, input.size() - written));
      if (w > 0) written += static_cast<size_t>(w);
      if (w <= 0 || written == input.size()) {
        close(fds[0].fd);
        fds[0].fd = -1;
      }
    }
    for (int i = 1; i < 3; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        sinks[i]->append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.exit_code = exit_code_of(status);
  return res;
}

}  // namespace ads::agent
