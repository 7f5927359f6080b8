#include "router/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace ads::router {
namespace fs = std::filesystem;

bool process_alive(int pid) {
  if (pid <= 0) return false;
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == pid) return false;  // our child, now reaped
  return ::kill(pid, 0) == 0;
}

int pid_from_file(const std::string& pid_file, const std::string& program) {
  long pid = 0;
  {
    std::ifstream in(pid_file);
    in >> pid;
  }
  if (pid <= 0 || pid > 1L << 22 || !process_alive(static_cast<int>(pid))) return 0;
  // the pid file names a process; it is ours only if that process runs `program`
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmd((std::istreambuf_iterator<char>(in)), {});
  return cmd.find(program) != std::string::npos ? static_cast<int>(pid) : 0;
}

Result<int> spawn_logged(const std::vector<std::string>& args, const std::vector<std::string>& env,
                         const std::string& log, const std::string& pid_file) {
  std::vector<std::string> a = args, e = env;  // exec wants char*, not const char*
  std::vector<char*> argv, envp;
  for (auto& x : a) argv.push_back(x.data());
  argv.push_back(nullptr);
  for (auto& x : e) envp.push_back(x.data());
  envp.push_back(nullptr);
  pid_t child = ::fork();
  if (child < 0) return Error::make("failed", "fork failed");
  if (child == 0) {
    ::setsid();
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int nul = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (nul >= 0) ::dup2(nul, 0);
    for (int i = 3; i < 1024; ++i) ::close(i);
    ::execvpe(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  std::ofstream out(pid_file, std::ios::trunc);
  out << child << "\n";
  out.close();
  if (!out) {
    kill_started(child, pid_file);
    return Error::make("failed", "cannot write " + pid_file);
  }
  return static_cast<int>(child);
}

void kill_started(int pid, const std::string& pid_file) {
  if (process_alive(pid)) {
    ::kill(pid, SIGKILL);
    for (int i = 0; i < 50 && process_alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::error_code ec;
  fs::remove(pid_file, ec);
}

Status stop_pid_file(const std::string& pid_file, const std::string& program) {
  int pid = pid_from_file(pid_file, program);
  std::error_code ec;
  if (pid == 0) {
    fs::remove(pid_file, ec);
    return Status::Ok();
  }
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100 && process_alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (process_alive(pid)) {
    ::kill(pid, SIGKILL);
    for (int i = 0; i < 50 && process_alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (process_alive(pid)) return Error::make("failed", program + " (pid " + std::to_string(pid) + ") did not stop");
  fs::remove(pid_file, ec);
  return Status::Ok();
}

std::string file_tail(const std::string& file, size_t n) {
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return text.substr(text.size() > n ? text.size() - n : 0);
}

}  // namespace ads::router
