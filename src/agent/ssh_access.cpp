#include "agent/ssh_access.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "agent/runner.h"
#include "core/ansible_run.h"
#include "core/text.h"

namespace ads::agent {

namespace fs = std::filesystem;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Written whole or not at all, readable by root alone.
Status write_private(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Error::make("internal", "cannot write " + tmp);
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error::make("internal", "cannot write " + path);
  }
  return Status::Ok();
}

// Whether process `pid` holds a socket listening on TCP `port` (any
// address, IPv4 or IPv6): our sshd, not some other program on that port.
bool listens(pid_t pid, int port) {
  std::set<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream in(read_all(table));
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string slot, local, remote, state, queues, timer, retr, uid, timeout, inode;
      f >> slot >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      auto colon = local.rfind(':');
      if (state != "0A" || colon == std::string::npos) continue;  // 0A: LISTEN
      if (std::strtol(local.c_str() + colon + 1, nullptr, 16) == port) inodes.insert("socket:[" + inode + "]");
    }
  }
  if (inodes.empty()) return false;
  std::error_code e;
  for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", e)) {
    std::error_code le;
    auto target = fs::read_symlink(fd.path(), le);
    if (!le && inodes.count(target.string())) return true;
  }
  return false;
}

// Every process below `root` (its children, theirs, ...): sshd forks a
// session leader per connection (setsid), which a signal to sshd's group
// does not reach.
std::vector<pid_t> descendants(pid_t root) {
  std::map<pid_t, std::vector<pid_t>> children;
  std::error_code e;
  for (const auto& entry : fs::directory_iterator("/proc", e)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::string stat = read_all("/proc/" + name + "/stat");
    auto close_paren = stat.rfind(')');  // the command name may hold spaces and parentheses
    if (close_paren == std::string::npos) continue;
    std::istringstream f(stat.substr(close_paren + 1));
    std::string state;
    long ppid = 0;
    f >> state >> ppid;
    children[static_cast<pid_t>(ppid)].push_back(static_cast<pid_t>(std::atol(name.c_str())));
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {root};
  while (!todo.empty() && out.size() < 4096) {
    pid_t p = todo.back();
    todo.pop_back();
    for (pid_t c : children[p]) {
      out.push_back(c);
      todo.push_back(c);
    }
  }
  return out;
}

// "ssh-ed25519 AAAA..." without the comment.
std::string key_line(const std::string& pub) {
  std::istringstream in(pub);
  std::string type, blob;
  in >> type >> blob;
  return type.empty() || blob.empty() ? "" : type + " " + blob;
}

}  // namespace

SshAccess::SshAccess(SshAccessOptions opts) : opts_(std::move(opts)) {
  watcher_ = std::thread([this] { watch(); });
}

SshAccess::~SshAccess() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
    close_locked();
  }
  changed_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

void SshAccess::reset() {
  std::lock_guard<std::mutex> lk(mu_);
  std::error_code e;
  fs::remove(opts_.dir + "/authorized_keys", e);
  // the sshd an agent before this one started (its pid file names it)
  std::string pid_text = read_all(opts_.dir + "/sshd.pid");
  pid_t old = static_cast<pid_t>(std::atol(pid_text.c_str()));
  if (old > 1) {
    // only if it is that sshd: its command line names this directory (after
    // a reboot the number may be some other program's)
    std::string cmdline = read_all("/proc/" + std::to_string(old) + "/cmdline");
    if (cmdline.find("AuthorizedKeysFile=" + opts_.dir + "/authorized_keys") != std::string::npos) {
      for (pid_t c : descendants(old)) ::kill(c, SIGKILL);
      ::kill(old, SIGTERM);
    }
  }
  fs::remove(opts_.dir + "/sshd.pid", e);
}

Result<std::string> SshAccess::open(const std::string& public_key, int ttl_s) {
  if (!valid_ssh_public_key(public_key))
    return Error::invalid("public_key", "must be one line \"ssh-ed25519 <base64> [comment]\"");
  if (ttl_s < 1 || ttl_s > kMaxSshTtlSeconds)
    return Error::invalid("ttl_s", "must be 1 to " + std::to_string(kMaxSshTtlSeconds) + " seconds");
  if (::access(opts_.sshd.c_str(), X_OK) != 0 || ::access(opts_.keygen.c_str(), X_OK) != 0)
    return Error::make("unsupported",
                       "openssh-server is not installed in this machine: a lab whose playbooks run from the ADS "
                       "host (\"ansible\" mode \"controller\") needs an image with it (v2: \"os\": {..., "
                       "\"variant\": \"build\"}), or \"ansible\": {\"mode\": \"local\"}");
  std::lock_guard<std::mutex> lk(mu_);
  close_locked();
  std::error_code e;
  fs::create_directories(opts_.dir, e);
  ::chmod(opts_.dir.c_str(), 0700);
  fs::create_directories(opts_.privsep_dir, e);
  ::chmod(opts_.privsep_dir.c_str(), 0755);
  // this machine's own host key, made once
  const std::string host_key = opts_.dir + "/host_ed25519_key";
  if (!fs::exists(host_key + ".pub") || !fs::exists(host_key)) {
    fs::remove(host_key, e);
    fs::remove(host_key + ".pub", e);
    auto r = run_argv({opts_.keygen, "-q", "-t", "ed25519", "-N", "", "-C", "ads-agent", "-f", host_key}, "");
    if (r.exit_code != 0) return Error::make("internal", "ssh-keygen could not make a host key: " + r.err);
  }
  std::string host_line = key_line(read_all(host_key + ".pub"));
  if (host_line.empty()) return Error::make("internal", "the host key " + host_key + ".pub cannot be read");
  // the run's key, and nothing else it may do but run commands (and sftp)
  if (auto st = write_private(opts_.dir + "/authorized_keys", "restrict,pty " + public_key + "\n"); !st)
    return st.error();

  const std::string log = opts_.dir + "/sshd.log";
  std::vector<std::string> args = {opts_.sshd,  "-D",
                                   "-e",        "-f",
                                   "/dev/null",  // none of the image's sshd_config
                                   "-h",        host_key,
                                   "-p",        std::to_string(opts_.port),
                                   "-o",        "ListenAddress=" + opts_.listen,
                                   "-o",        "AuthorizedKeysFile=" + opts_.dir + "/authorized_keys",
                                   "-o",        "AllowUsers=root",
                                   "-o",        "PermitRootLogin=prohibit-password",
                                   "-o",        "PasswordAuthentication=no",
                                   "-o",        "KbdInteractiveAuthentication=no",
                                   "-o",        "UsePAM=no",
                                   "-o",        "AllowTcpForwarding=no",
                                   "-o",        "AllowAgentForwarding=no",
                                   "-o",        "X11Forwarding=no",
                                   "-o",        "PermitTunnel=no",
                                   "-o",        "MaxAuthTries=3",
                                   "-o",        "LoginGraceTime=30",
                                   "-o",        "PidFile=" + opts_.dir + "/sshd.pid",
                                   "-o",        "Subsystem=sftp internal-sftp"};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);  // its own group: stopped with its sessions
  posix_spawnattr_setpgroup(&at, 0);
  char* env[] = {const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, opts_.sshd.c_str(), &fa, &at, argv.data(), env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc != 0) {
    fs::remove(opts_.dir + "/authorized_keys", e);
    return Error::make("internal", "cannot start sshd: " + errno_text(rc));
  }
  pid_ = pid;
  // up when it accepts connections; an sshd that exits says why in its log
  for (int i = 0; i < 100; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      fs::remove(opts_.dir + "/authorized_keys", e);
      std::string why = read_all(log);
      if (why.size() > 2000) why = why.substr(why.size() - 2000);
      return Error::make("internal", "sshd exited at its start: " + why);
    }
    if (listens(pid_, opts_.port)) {
      until_ = std::chrono::steady_clock::now() + std::chrono::seconds(ttl_s);
      changed_.notify_all();
      return host_line;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  close_locked();
  return Error::make("internal", "sshd did not listen on port " + std::to_string(opts_.port) +
                                     " in 5 s (is another program on that port?)");
}

void SshAccess::close() {
  std::lock_guard<std::mutex> lk(mu_);
  close_locked();
}

void SshAccess::close_locked() {
  std::error_code e;
  fs::remove(opts_.dir + "/authorized_keys", e);  // first: no new login from here on
  if (pid_ == 0) return;
  for (pid_t c : descendants(pid_)) ::kill(c, SIGKILL);  // the sessions (each its own session leader)
  ::kill(-pid_, SIGTERM);
  ::kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 100 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (::waitpid(pid_, &status, WNOHANG) == 0) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  pid_ = 0;
  fs::remove(opts_.dir + "/sshd.pid", e);
}

void SshAccess::watch() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    if (pid_ == 0) {
      changed_.wait(lk);
      continue;
    }
    if (std::chrono::steady_clock::now() >= until_) {
      close_locked();
      continue;
    }
    changed_.wait_until(lk, until_);
  }
}

}  // namespace ads::agent
