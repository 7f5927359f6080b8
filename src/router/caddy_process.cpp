#include "router/caddy_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "router/caddy.h"

namespace ads::router {
namespace fs = std::filesystem;

namespace {

bool alive(pid_t pid) {
  if (pid <= 0) return false;
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == pid) return false;  // our child, now reaped
  return ::kill(pid, 0) == 0;
}

pid_t read_pid(const std::string& file) {
  std::ifstream in(file);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// The pid file names a process; it is our Caddy only if that process runs caddy.
bool is_caddy(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmd((std::istreambuf_iterator<char>(in)), {});
  return cmd.find("caddy") != std::string::npos;
}

std::string tail(const std::string& file, size_t n) {
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return text.substr(text.size() > n ? text.size() - n : 0);
}

}  // namespace

int proxy_pid(const std::string& dir) {
  pid_t pid = read_pid(dir + "/caddy.pid");
  return alive(pid) && is_caddy(pid) ? pid : 0;
}

Result<int> start_proxy(const ProxyProcessOptions& o) {
  if (int pid = proxy_pid(o.dir)) return pid;
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) return Error::make("failed", "cannot create " + o.dir + ": " + ec.message());
  fs::permissions(o.dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  std::string config = o.dir + "/caddy.json", log = o.dir + "/caddy.log", pid_file = o.dir + "/caddy.pid";
  {
    std::ofstream out(config, std::ios::trunc);
    out << nlohmann::json{{"admin", CaddyRouter::admin_config(o.admin)}}.dump() << "\n";
    if (!out) return Error::make("failed", "cannot write " + config);
  }
  if (o.admin.rfind("unix:", 0) == 0) fs::remove(o.admin.substr(5), ec);  // a socket left by a killed Caddy
  std::vector<std::string> args = {o.binary, "run", "--config", config, "--resume"};
  std::vector<std::string> env = {"HOME=" + o.dir, "XDG_DATA_HOME=" + o.dir + "/data",
                                  "XDG_CONFIG_HOME=" + o.dir + "/config", "PATH=/usr/local/bin:/usr/bin:/bin"};
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
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execvpe(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  {
    std::ofstream out(pid_file, std::ios::trunc);
    out << child << "\n";
  }
  CaddyOptions po;
  po.admin = o.admin;
  po.timeout_ms = 1000;
  CaddyRouter probe(po);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.start_timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    if (!alive(child)) {
      fs::remove(pid_file, ec);
      return Error::make("failed", "caddy exited at start; the end of " + log + ":\n" + tail(log, 2000));
    }
    if (probe.ping()) return static_cast<int>(child);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(child, SIGKILL);
  alive(child);
  fs::remove(pid_file, ec);
  return Error::make("timeout", "caddy's admin API (" + o.admin + ") did not answer within " +
                                    std::to_string(o.start_timeout_ms / 1000) + " s; see " + log);
}

Status stop_proxy(const std::string& dir) {
  std::string pid_file = dir + "/caddy.pid";
  pid_t pid = proxy_pid(dir);
  std::error_code ec;
  if (pid == 0) {
    fs::remove(pid_file, ec);
    return Status::Ok();
  }
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100 && alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (alive(pid)) {
    ::kill(pid, SIGKILL);
    for (int i = 0; i < 50 && alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (alive(pid)) return Error::make("failed", "caddy (pid " + std::to_string(pid) + ") did not stop");
  fs::remove(pid_file, ec);
  return Status::Ok();
}

}  // namespace ads::router
