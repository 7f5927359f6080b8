// The Ansible controller: a lab whose playbooks run from the ADS host
// (LabSpec::AnsibleMode::kController, the default) has each one run here as
//
//   bwrap <sandbox> -- ansible-playbook -i inventory.yml -e <ads_* variables> -- PLAYBOOK
//
// against its machine over SSH. For each run:
// 1. a key pair is made (ssh-keygen, ed25519, no passphrase) in a private
//    directory of this run, and the lab's files are copied there;
// 2. the agent lets its public half in (POST /v1/ssh, over the agent's TLS,
//    signed with its secret) for the run's time at most, and answers the
//    machine's own host key, which is the only key known_hosts trusts;
// 3. ansible-playbook runs in a bubblewrap sandbox: user, mount, PID, IPC,
//    UTS and network namespaces of its own, no capabilities, and of the host
//    only /usr, a few files of /etc (never /etc/ssh's host keys, never ADS's
//    data or config) and this run's directory. The playbook is lab code
//    (lookups, local actions and plugins next to it run on the controller):
//    it sees none of ADS's state and no network at all; its ssh reaches the
//    machine's sshd, and nothing else, through a unix socket that ADS relays
//    (engine/socket_relay.h; `nc -U` is ssh's ProxyCommand);
// 4. the agent removes the key (DELETE /v1/ssh), the run's directory goes.
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/client.h"
#include "agent/protocol.h"
#include "agent/runner.h"
#include "core/ansible_run.h"
#include "core/text.h"
#include "engine/engine.h"
#include "engine/fetcher.h"
#include "engine/internal.h"
#include "engine/socket_relay.h"

namespace ads {

namespace fs = std::filesystem;
using namespace engine_detail;

namespace {

// The sandbox's command line: no network, the host's /usr read-only, only
// these files of /etc, and `run_dir` (the lab's copy, the key, the
// inventory, a home, the relay's socket) at /ads; it starts in `chdir`.
std::vector<std::string> sandbox_argv(const std::string& bwrap, const std::string& run_dir,
                                      const std::string& chdir = "/ads/lab") {
  std::vector<std::string> a = {bwrap,           "--die-with-parent",
                                "--new-session", "--unshare-all",  // user, mount, PID, IPC, UTS, cgroup, network
                                "--uid",         "65534",
                                "--gid",         "65534",
                                "--ro-bind",     "/usr",
                                "/usr",          "--symlink",
                                "usr/bin",       "/bin",
                                "--symlink",     "usr/sbin",
                                "/sbin",         "--symlink",
                                "usr/lib",       "/lib",
                                "--symlink",     "usr/lib64",
                                "/lib64",        "--proc",
                                "/proc",         "--dev",
                                "/dev",          "--tmpfs",
                                "/tmp",          "--dir",
                                "/run",          "--bind",
                                run_dir,         "/ads",
                                "--chdir",       chdir};
  for (const char* f : {"/etc/passwd", "/etc/group", "/etc/hosts", "/etc/nsswitch.conf", "/etc/localtime",
                        "/etc/ld.so.cache", "/etc/alternatives", "/etc/ssl/certs", "/etc/ssh/ssh_config"}) {
    a.insert(a.end(), {"--ro-bind-try", f, f});
  }
  return a;
}

std::string first_line(const std::string& s) {
  auto n = s.find('\n');
  return n == std::string::npos ? s : s.substr(0, n);
}

}  // namespace

Result<int> Engine::run_controller_playbook(Deployment& d, agent::AgentClient& c, const LabSpec& spec,
                                            const std::string& action, const std::string& lab_tree,
                                            const std::function<void(const std::string&, const std::string&)>& sink,
                                            const std::vector<std::string>& extra_args) {
  const std::string playbook = spec.playbook_for(action);
  for (const auto& [tool, what] : {std::pair{opts_.ansible_playbook, "ansible-playbook (Debian: ansible-core)"},
                                   std::pair{opts_.sandbox, "bwrap (Debian: bubblewrap)"},
                                   std::pair{opts_.ssh_keygen, "ssh-keygen (Debian: openssh-client)"},
                                   std::pair{opts_.netcat, "nc.openbsd (Debian: netcat-openbsd)"}}) {
    if (::access(tool.c_str(), X_OK) != 0)
      return failed(action +
                    ": the lab's playbooks run from the ADS host (\"ansible\" mode \"controller\"), which "
                    "has no " +
                    std::string(what) + " at " + tool +
                    "; the operator installs it, or the lab sets \"ansible\": {\"mode\": \"local\"}");
  }
  // this run's directory: the lab's files, the key, the inventory; root's alone
  std::error_code ec;
  fs::create_directories(opts_.work_dir, ec);
  const fs::path run = fs::path(opts_.work_dir) / ("ansible-" + d.id + "-" + agent::random_hex(6));
  fs::create_directory(run, ec);
  if (ec) return failed(action + ": cannot make " + run.string() + ": " + ec.message());
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{run};
  // held while the run lasts (taken first thing): a start after a crash
  // removes what no one holds (Engine::sweep_ansible_runs), the private key with it
  const DirHold hold(run);
  if (!hold.held())
    return failed(action + ": cannot hold " + run.string() + " for the run: " + errno_text(hold.error()));
  fs::permissions(run, fs::perms::owner_all, ec);
  fs::create_directories(run / "home", ec);
  if (ec) return failed(action + ": cannot make " + (run / "home").string() + ": " + ec.message());

  // a copy of the lab's files (never the source itself: the sandbox may
  // write to it): those of the deploy under way; for a later action, the
  // archive the machine's agent kept of the deploy's upload, unpacked by tar
  // in a sandbox that sees only the lab's directory (whatever the archive
  // holds, and the lab could have changed it, lands there at worst: never on
  // the run's key or inventory); from an agent that kept none, the deployment's
  // commit fetched again (a git source is checked out straight into the
  // run's directory; a plain directory source is answered with that
  // directory, which is copied)
  std::string lab_dir = lab_tree;
  if (lab_dir.empty()) {
    auto kept = c.download_lab();
    if (kept) {
      std::ofstream(run / "lab.tar.gz", std::ios::binary | std::ios::trunc) << *kept;
      fs::create_directory(run / "lab", ec);
      if (ec || fs::file_size(run / "lab.tar.gz", ec) != kept->size())
        return failed(action + ": cannot write the lab's archive to " + run.string());
      // tar sees only the (empty) lab directory, writable, and the archive
      std::vector<std::string> tar = sandbox_argv(opts_.sandbox, (run / "lab").string(), "/ads");
      for (const std::string& a : {std::string("--ro-bind"), (run / "lab.tar.gz").string(), std::string("/lab.tar.gz"),
                                   std::string("--"), std::string("/usr/bin/tar"), std::string("-xzf"),
                                   std::string("/lab.tar.gz"), std::string("--no-same-owner")})
        tar.push_back(a);
      auto x = agent::run_argv(tar, "");
      if (x.exit_code != 0) {
        // tar's errors, without its warnings about names it made relative
        std::string why;
        std::istringstream lines(x.err);
        for (std::string l; std::getline(lines, l);)
          if (l.find(": Removing leading `") == std::string::npos) why += (why.empty() ? "" : "; ") + l;
        return failed(action + ": cannot unpack the lab's files the machine kept: " + printable(why, 400));
      }
      fs::remove(run / "lab.tar.gz", ec);
      lab_dir = (run / "lab").string();
      log(d, "ads", "the lab's files: as deployed, from the machine's copy");
    } else if (kept.error().code != "not_found") {
      return failed(action + ": cannot get the lab's files from the machine: " + kept.error().message);
    } else {
      log(d, "ads",
          "the machine's agent kept no copy of the lab (one from before it did, or it could not write it): fetching " +
              (d.commit.empty() ? "the source" : "commit " + d.commit) + " again");
    }
  }
  if (lab_dir.empty()) {
    auto fetched =
        fetch_lab(d.source, d.commit.empty() ? d.ref : d.commit, (run / "lab").string(), opts_.sources,
                  owner_may_use_any_path(store_, d.owner), [&](const std::string& line) { log(d, "ads", line); });
    if (!fetched) return failed(action + ": cannot fetch the lab for ansible-playbook: " + fetched.error().message);
    lab_dir = fetched->dir;
  }
  if (fs::path(lab_dir) != run / "lab") {
    fs::copy(lab_dir, run / "lab", fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
    if (ec) return failed(action + ": cannot copy the lab for ansible-playbook: " + ec.message());
  }

  auto keygen = agent::run_argv(
      {opts_.ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", "ads-" + d.id, "-f", (run / "key").string()}, "");
  if (keygen.exit_code != 0) return failed(action + ": ssh-keygen failed: " + first_line(keygen.err));
  std::ifstream pub_in(run / "key.pub");
  std::string pub;
  std::getline(pub_in, pub);

  // the machine lets this key in for the run (and not longer), and says which host key it has
  const long per_command_ms = command_timeout_ms(spec, action);
  const int ttl_s = static_cast<int>(std::min<long>(agent::kMaxSshTtlSeconds, per_command_ms / 1000 + 120));
  // taken back whatever happens from here on, also when the answer to the
  // open is lost after the agent acted on it
  struct Revoke {
    agent::AgentClient& c;
    Deployment& d;
    Engine* e;
    bool old_agent = false;
    ~Revoke() {
      if (old_agent) return;
      if (auto st = c.close_ssh(); !st) e->log(d, "ads", "could not remove the run's SSH key: " + st.error().message);
    }
  } revoke{c, d, this};
  auto grant = c.open_ssh(pub, ttl_s);
  if (!grant && grant.error().code == "not_found") {
    // an agent from before the controller mode (a machine deployed by an
    // older ADS) has no door, and ran the playbook itself, in the machine
    revoke.old_agent = true;
    if (!extra_args.empty())  // a check: nothing ran here, and it must not pass as "nothing would change"
      return failed(action +
                    ": this machine's agent predates the controller mode and lets no ansible-playbook in; "
                    "a redeploy or a release brings the new agent");
    log(d, "ads",
        "this machine's agent predates the controller mode: it ran " + playbook +
            " itself, inside the machine (local mode); a redeploy or a release brings the new agent");
    return 0;
  }
  if (!grant) return failed(action + ": the machine does not let ansible-playbook in: " + grant.error().message);
  // the sandbox's only way out: its ssh, relayed to the machine's sshd
  auto relay = SocketRelay::start((run / "ssh.sock").string(), d.address, grant->port);
  if (!relay) return failed(action + ": " + relay.error().message);

  const std::string host = d.name.empty() ? "lab" : d.name;
  {
    std::ofstream kh(run / "known_hosts");
    kh << (grant->port == 22 ? d.address : "[" + d.address + "]:" + std::to_string(grant->port)) << " "
       << grant->host_key << "\n";
    std::ofstream inv(run / "inventory.yml");
    inv << controller_inventory(host, d.address, grant->port, "/ads/key");
    if (!kh || !inv) return failed(action + ": cannot write the inventory of " + run.string());
  }
  // the ssh options travel as an extra variable: nothing of the lab's can change them
  std::string vars = controller_vars_json({"/opt/lab", "/var/lib/ads-agent/backup", d.id, d.name, d.stable_url},
                                          controller_ssh_args("/ads/known_hosts", opts_.netcat + " -U /ads/ssh.sock"));

  std::vector<std::string> argv = sandbox_argv(opts_.sandbox, run.string());
  for (const std::string& a : {std::string("--"), opts_.ansible_playbook, std::string("-i"),
                               std::string("/ads/inventory.yml"), std::string("-e"), vars})
    argv.push_back(a);
  std::string shown_extra;
  for (const auto& a : extra_args) {
    argv.push_back(a);
    shown_extra += a + " ";
  }
  argv.insert(argv.end(), {"--", playbook});
  log(d, "ads",
      "$ ansible-playbook -i <inventory: root@" + d.address + " over SSH> -e <ads_* variables> " + shown_extra + "-- " +
          playbook + "  (from the ADS host, in a sandbox)");

  agent::RunOptions ro;
  ro.timeout_s = static_cast<int>(std::max<long>(1, per_command_ms / 1000));
  ro.env = playbook_env();
  ro.env.insert(ro.env.end(), {"HOME=/ads/home", "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "LANG=C.UTF-8",
                               "ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_SSH_RETRIES=2"});
  std::atomic<bool> stop{false};
  ro.cancel = &stop;
  ro.tick = std::chrono::milliseconds(500);
  ro.on_tick = [&] {
    if (stopping_ || cancelled(d.id)) stop = true;
  };
  auto res = agent::run_program(argv, run.string(), ro, sink);
  if (stopping_) return Error::make("interrupted", action + ": left unfinished, the server is stopping");
  if (res.cancelled || cancelled(d.id)) return Error::make("cancelled", action + ": cancelled");
  if (res.timed_out)
    return failed(action + ": ansible-playbook ran past " + std::to_string(ro.timeout_s) + " s and was stopped");
  return res.exit_code;
}

}  // namespace ads
