// Test support: a throw-away "OpenVZ host" reached over real SSH. It makes a
// network namespace joined to this one by a veth pair on 10.250.X.0/24 (host
// side .1, namespace side .254), runs Debian's /usr/sbin/sshd in it on port
// 2222 with a fresh host key and an authorized_keys for a fresh client key,
// and puts the vzctl/vzlist/vzdump/vzrestore stand-ins (tests/support/openvz/) first on the
// PATH of its sessions. Names carry the pid and a counter, so parallel runs
// do not collide. Everything is removed at scope exit, also after a failure.
// Needs root (network namespaces).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/build_paths.h"
#include "support/process.h"

namespace ads::test {

class SshTestHost {
 public:
  SshTestHost() {
    static std::atomic<int> counter{0};
    int n = counter++;
    std::string tag = std::to_string(getpid()) + "n" + std::to_string(n);
    ns_ = "ads-vz-" + tag;
    veth_host_ = "avz" + tag + "h";
    veth_ns_ = "avz" + tag + "c";
    if (veth_host_.size() > 15) {  // IFNAMSIZ
      veth_host_ = "avz" + tag.substr(tag.size() - 11) + "h";
      veth_ns_ = "avz" + tag.substr(tag.size() - 11) + "c";
    }
    error_ = setup(n);
  }
  ~SshTestHost() {
    sshd_.reset();  // SIGTERM, then SIGKILL
    if (netns_made_) run({"ip", "netns", "del", ns_});
    if (veth_made_) run({"ip", "link", "del", veth_host_});  // gone with the namespace normally
  }
  SshTestHost(const SshTestHost&) = delete;
  SshTestHost& operator=(const SshTestHost&) = delete;

  // "" when the host is up; otherwise what went wrong.
  const std::string& error() const { return error_; }
  std::string host() const { return ns_ip_; }
  std::string gateway() const { return host_ip_; }
  int port() const { return 2222; }
  std::string subnet() const { return subnet_; }  // 10.250.X.0/24
  std::string client_key() const { return (dir_.path / "client_key").string(); }
  std::string known_hosts() const { return (dir_.path / "known_hosts").string(); }
  std::string host_public_key() const { return host_pub_; }
  std::filesystem::path state_dir() const { return dir_.path / "vz"; }  // the stand-ins' $VZFAKE_DIR
  std::filesystem::path dir() const { return dir_.path; }
  const std::string& netns() const { return ns_; }

  // OS templates the vzctl stand-in accepts.
  void add_template(const std::string& name) {
    std::ofstream(state_dir() / "templates", std::ios::app) << name << "\n";
  }
  // Every vzctl/vzlist call since the last clear, each as its argv.
  std::vector<std::vector<std::string>> calls() const {
    std::ifstream in(state_dir() / "argv.log", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), {});
    std::vector<std::vector<std::string>> out;
    size_t pos = 0;
    auto next = [&]() -> std::string {
      size_t z = all.find('\0', pos);
      if (z == std::string::npos) z = all.size();
      std::string s = all.substr(pos, z - pos);
      pos = z + 1;
      return s;
    };
    while (pos < all.size()) {
      int argc = std::stoi(next());
      std::vector<std::string> argv;
      argv.reserve(static_cast<size_t>(argc));
      for (int i = 0; i < argc; ++i) argv.push_back(next());
      out.push_back(std::move(argv));
    }
    return out;
  }
  // The calls of one tool (vzctl, vzlist) only.
  std::vector<std::vector<std::string>> calls_of(const std::string& tool) const {
    std::vector<std::vector<std::string>> out;
    for (auto& c : calls())
      if (!c.empty() && c[0] == tool) out.push_back(c);
    return out;
  }
  void clear_calls() const { std::filesystem::remove(state_dir() / "argv.log"); }

  // The provider settings that reach this host.
  std::string settings_json(const std::string& extra = "") const {
    std::ostringstream o;
    o << "{\"host\":\"" << host() << "\",\"port\":" << port() << ",\"user\":\"root\",\"private_key\":\"" << client_key()
      << "\",\"known_hosts\":\"" << known_hosts() << "\",\"subnet\":\"" << subnet() << "\",\"root_dir\":\""
      << (state_dir() / "root").string() << "\",\"backup_dir\":\"" << (state_dir() / "dump").string()
      << "\",\"connect_timeout_s\":5" << extra << "}";
    return o.str();
  }

 private:
  static int run(const std::vector<std::string>& argv, std::string* out = nullptr) {
    std::string ignored;
    return ads::test::run(argv, out ? out : &ignored);
  }
  std::string must(const std::vector<std::string>& argv) {
    std::string out;
    if (run(argv, &out) != 0) {
      std::string cmd;
      for (auto& a : argv) cmd += a + " ";
      return "`" + cmd + "` failed: " + out;
    }
    return "";
  }

  std::string setup(int n) {
    if (geteuid() != 0) return "needs root (network namespaces)";
    // a /24 of 10.250.0.0/16 that no interface here uses
    int x = -1;
    for (int i = 0; i < 250; ++i) {
      int cand = static_cast<int>((getpid() + n * 37 + i) % 250) + 1;
      std::string out;
      run({"ip", "-4", "-o", "addr", "show", "to", "10.250." + std::to_string(cand) + ".0/24"}, &out);
      if (out.empty()) {
        x = cand;
        break;
      }
    }
    if (x < 0) return "no free 10.250.X.0/24";
    std::string net = "10.250." + std::to_string(x) + ".";
    subnet_ = net + "0/24";
    host_ip_ = net + "1";
    ns_ip_ = net + "254";

    if (auto e = must({"ip", "netns", "add", ns_}); !e.empty()) return e;
    netns_made_ = true;
    if (auto e = must({"ip", "link", "add", veth_host_, "type", "veth", "peer", "name", veth_ns_}); !e.empty())
      return e;
    veth_made_ = true;
    for (const auto& argv :
         std::vector<std::vector<std::string>>{{"ip", "link", "set", veth_ns_, "netns", ns_},
                                               {"ip", "addr", "add", host_ip_ + "/24", "dev", veth_host_},
                                               {"ip", "link", "set", veth_host_, "up"},
                                               {"ip", "-n", ns_, "addr", "add", ns_ip_ + "/24", "dev", veth_ns_},
                                               {"ip", "-n", ns_, "link", "set", veth_ns_, "up"},
                                               {"ip", "-n", ns_, "link", "set", "lo", "up"}}) {
      if (auto e = must(argv); !e.empty()) return e;
    }

    auto d = dir_.path;
    std::filesystem::create_directories(d / "vz" / "ct");
    std::filesystem::create_directories(d / "vz" / "root");
    std::filesystem::create_directories(d / "bin");
    std::filesystem::create_directories(d / "home");
    std::filesystem::create_directories("/run/sshd");  // sshd's privilege separation directory
    for (const char* tool : {"vzctl", "vzlist", "vzdump", "vzrestore"})
      std::filesystem::create_symlink(std::filesystem::path(ADS_SOURCE_DIR) / "tests/support/openvz" / tool,
                                      d / "bin" / tool);
    for (const char* key : {"host_key", "client_key"})
      if (auto e = must({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", (d / key).string()});
          !e.empty())
        return e;
    std::filesystem::copy_file(d / "client_key.pub", d / "authorized_keys");
    {
      std::ifstream in(d / "host_key.pub");
      std::string type, b64;
      in >> type >> b64;
      host_pub_ = type + " " + b64;
      std::ofstream(d / "known_hosts") << "[" << ns_ip_ << "]:" << port() << " " << host_pub_ << "\n";
    }
    {
      std::ofstream c(d / "sshd_config");
      c << "Port " << port() << "\nListenAddress " << ns_ip_ << "\nHostKey " << (d / "host_key").string()
        << "\nPidFile " << (d / "sshd.pid").string() << "\nAuthorizedKeysFile " << (d / "authorized_keys").string()
        << "\nPubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
           "UsePAM no\nPermitRootLogin prohibit-password\nStrictModes no\nSubsystem sftp internal-sftp\n"
           "LogLevel ERROR\n"
        // HOME: an empty directory, so that the login shell (root's bash, which
        // reads ~/.bashrc when started by sshd) runs none of this machine's
        // start-up files (pyenv's took seconds per command)
        << "SetEnv HOME=" << (d / "home").string() << " PATH=" << (d / "bin").string()
        << ":/usr/sbin:/usr/bin:/sbin:/bin VZFAKE_DIR=" << (d / "vz").string() << " VZFAKE_DEV=" << veth_ns_ << "\n";
    }
    sshd_ = std::make_unique<Child>(std::vector<std::string>{"ip", "netns", "exec", ns_, "/usr/sbin/sshd", "-D", "-e",
                                                             "-f", (d / "sshd_config").string()});
    // ready when it accepts a TCP connection (a wait for readiness, not a timing assertion)
    for (int i = 0; i < 200; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port()));
      inet_pton(AF_INET, ns_ip_.c_str(), &a.sin_addr);
      bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      close(fd);
      if (ok) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "sshd did not start listening on " + ns_ip_ + ":" + std::to_string(port());
  }

  TempDir dir_;
  std::string ns_, veth_host_, veth_ns_, subnet_, host_ip_, ns_ip_, host_pub_;
  bool netns_made_ = false, veth_made_ = false;
  std::unique_ptr<Child> sshd_;
  std::string error_;
};

}  // namespace ads::test
