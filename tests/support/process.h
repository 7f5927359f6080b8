// Test support: runs a program with an argv (never a shell string), and a
// temporary directory removed at scope exit.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ads::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ads-test-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

// In a forked child: stdout to the pipe's write end, `env` added, then argv.
[[noreturn]] inline void exec_child(const std::vector<std::string>& argv, const int pipefd[2],
                                    const std::vector<std::string>& env) {
  dup2(pipefd[1], 1);
  close(pipefd[0]);
  close(pipefd[1]);
  // The child's environment: this process's, each NAME=VALUE of `env` in place
  // of a variable of that name (an array for execvpe rather than putenv, which
  // would change the environment in place).
  std::vector<char*> envp;
  for (char** p = environ; *p; ++p) {
    std::string_view entry(*p);
    auto name = entry.substr(0, entry.find('=') + 1);  // "NAME="
    if (std::none_of(env.begin(), env.end(), [&](const std::string& e) { return e.starts_with(name); }))
      envp.push_back(*p);
  }
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvpe(args[0], args.data(), envp.data());
  _exit(127);
}

// Runs argv to completion; returns the exit code and captured stdout+stderr.
// `input` (small: it must fit a pipe) is the child's standard input.
inline int run(const std::vector<std::string>& argv, std::string* output = nullptr, const std::string& cwd = "",
               const std::string& input = "") {
  int pipefd[2], infd[2];
  if (pipe(pipefd) != 0) return -1;
  if (pipe(infd) != 0) return -1;
  if (!input.empty() && write(infd[1], input.data(), input.size()) != static_cast<ssize_t>(input.size())) return -1;
  close(infd[1]);
  pid_t pid = fork();
  if (pid == 0) {
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    dup2(infd[0], 0);
    close(infd[0]);
    dup2(pipefd[1], 2);
    exec_child(argv, pipefd, {});
  }
  close(infd[0]);
  close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A long-running child (e.g. `ads serve`) whose stdout is readable line by
// line; killed (SIGTERM, then SIGKILL) at scope exit.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    int pipefd[2];
    if (pipe(pipefd) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      exec_child(argv, pipefd, env);
    }
    close(pipefd[1]);
    out_fd_ = pipefd[0];
  }
  ~Child() { kill_now(SIGTERM); }
  // Reads one line of stdout (blocking, up to `timeout`); "" at EOF/timeout.
  std::string read_line(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string line;
    fcntl(out_fd_, F_SETFL, O_NONBLOCK);
    while (std::chrono::steady_clock::now() < deadline) {
      char c;
      ssize_t n = read(out_fd_, &c, 1);
      if (n == 1) {
        if (c == '\n') return line;
        line.push_back(c);
      } else if (n == 0) {
        return line;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    return line;
  }
  // Sends `sig` and waits for the exit; returns the wait status code.
  int kill_now(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    for (int i = 0; i < 500; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        if (out_fd_ >= 0) close(out_fd_);
        out_fd_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return 128 + SIGKILL;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
};

}  // namespace ads::test
