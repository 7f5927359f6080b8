#include "cli/lab_tools.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "cli/accounts.h"
#include "cli/client.h"
#include "core/deployment.h"
#include "core/env.h"
#include "core/labspec.h"
#include "core/text.h"
#include "engine/archive.h"
#include "engine/lab_source.h"

namespace ads::cli {
namespace fs = std::filesystem;

namespace {

struct Ran {
  int code = -1;
  std::string output;  // stdout and stderr together, at most 64 KiB
};

// Runs `argv` (argv[0] absolute) in `cwd` with a small fixed environment,
// output captured, killed after `timeout_s`.
Ran run_in(const std::vector<std::string>& argv, const std::string& cwd, int timeout_s) {
  Ran r;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return r;
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(p[1], 1);
    dup2(p[1], 2);
    if (chdir(cwd.c_str()) != 0) _exit(126);
    std::vector<const char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(a.c_str());
    args.push_back(nullptr);
    std::string home = std::string("HOME=") + env_var("HOME").value_or("/root");
    const char* env[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
                         home.c_str(),
                         "LANG=C.UTF-8",
                         "ANSIBLE_NOCOLOR=1",
                         "ANSIBLE_LOCALHOST_WARNING=0",
                         "ANSIBLE_INVENTORY_UNPARSED_WARNING=0",
                         nullptr};
    execve(args[0], const_cast<char* const*>(args.data()), const_cast<char* const*>(env));
    _exit(127);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return r;
  }
  // Reads until the program has exited and its pipe is drained, or until the
  // deadline (then its group is killed). A process that left the group and
  // still holds the pipe is not waited for: at most 2 s after the exit.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::optional<std::chrono::steady_clock::time_point> exited_at;
  char buf[4096];
  int status = 0;
  bool reaped = false, eof = false;
  while (!eof) {
    if (!reaped) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid || (w < 0 && errno != EINTR)) {
        reaped = true;
        exited_at = std::chrono::steady_clock::now();
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (exited_at && now >= *exited_at + std::chrono::seconds(2)) break;
    if (!reaped && now >= deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);  // SIGKILL: it ends
      reaped = true;
      exited_at = std::chrono::steady_clock::now();
      r.output += "\n(stopped after " + std::to_string(timeout_s) + " s)";
      continue;
    }
    pollfd f{p[0], POLLIN, 0};
    int n = poll(&f, 1, 100);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      ssize_t got = read(p[0], buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) eof = true;
      else if (r.output.size() < 65536) r.output.append(buf, static_cast<size_t>(got));
    }
  }
  close(p[0]);
  if (!reaped) waitpid(pid, &status, 0);  // its output ended: it is ending
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return r;
}

// The lines of `output` that say what is wrong (Ansible's "ERROR!" and what
// follows it), shortened.
std::string ansible_error(const std::string& output) {
  size_t at = output.find("ERROR!");
  std::string e = at == std::string::npos ? output : output.substr(at);
  std::string one;
  std::istringstream in(e);
  std::string line;
  int lines = 0;
  while (std::getline(in, line) && lines < 6) {
    if (line.empty()) continue;
    one += (one.empty() ? "" : " | ") + line;
    ++lines;
  }
  return printable(one, 600);
}

// A word of a command that names a file of the lab: "./start.sh",
// "bin/run", "setup.sh", or what follows sh/bash/python3/perl. Words with
// shell syntax in them (variables, globs, quotes) are not guessed at.
std::optional<std::string> lab_script(const std::string& command) {
  std::istringstream in(command);
  std::string word;
  if (!(in >> word)) return std::nullopt;
  static const std::vector<std::string> kRunners = {"sh", "bash", "python", "python3", "perl", "php", "ruby", "node"};
  if (std::find(kRunners.begin(), kRunners.end(), word) != kRunners.end() && !(in >> word)) return std::nullopt;
  if (word.empty() || word[0] == '/' || word[0] == '-') return std::nullopt;
  if (word.find_first_of("$`*?[]{}~'\"\\;&|<>()=") != std::string::npos) return std::nullopt;
  auto ends = [&](const char* s) {
    std::string t = s;
    return word.size() > t.size() && word.compare(word.size() - t.size(), t.size(), t) == 0;
  };
  if (word.find('/') == std::string::npos && !ends(".sh") && !ends(".py") && !ends(".pl")) return std::nullopt;
  return word;
}

std::string plural(size_t n, const std::string& what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); }

}  // namespace

std::string find_ansible_playbook() {
  for (const char* d : {"/usr/local/bin", "/usr/bin", "/bin"}) {
    std::string p = std::string(d) + "/ansible-playbook";
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

LabCheckReport check_lab(const std::string& dir, const std::string& ansible_playbook) {
  LabCheckReport rep;
  auto specfile = read_spec(dir);
  if (!specfile) {
    rep.problems.push_back(specfile.error().message);
    return rep;
  }
  const LabSpec& spec = specfile->spec;
  const std::string where = specfile->path;

  // what a deploy packs: links that leave the lab, special files, sizes
  if (auto packed = tar_gz_directory(dir); !packed)
    rep.problems.push_back("the lab cannot be packed for its machine: " + packed.error().message);

  // playbooks: present inside the lab, and their syntax
  std::vector<std::pair<std::string, std::string>> books;  // field, path
  if (!spec.ansible_playbook.empty()) books.push_back({"ansible", spec.ansible_playbook});
  for (const auto& [name, path] : spec.action_playbooks) books.push_back({"actions." + name + ".playbook", path});
  for (const auto& [field, path] : books) {
    auto text = read_lab_file(dir, path, 16u << 20);
    if (!text) {
      rep.problems.push_back(where + ": " + field + ": " + path + " " +
                             (text.error().code == "not_found" ? "is not in the lab" : text.error().message));
      continue;
    }
    if (ansible_playbook.empty()) continue;
    Ran r = run_in({ansible_playbook, "--syntax-check", "-i", "localhost,", "--", path}, dir, 120);
    if (r.code != 0)
      rep.problems.push_back(where + ": " + field + ": " + path +
                             ": ansible-playbook --syntax-check failed: " + ansible_error(r.output));
  }
  if (!books.empty() && ansible_playbook.empty())
    rep.notes.push_back(
        "playbook syntax not checked: --ansible runs ansible-playbook --syntax-check, which runs code of the lab "
        "(its ansible.cfg, plugins and lookups) on this host: use it on labs you trust");
  if (!books.empty() && spec.os_variant.empty())
    rep.notes.push_back(where + ": os.variant: the lab has a playbook, so its image needs " +
                        (spec.ansible_mode == LabSpec::AnsibleMode::kLocal
                             ? std::string("Ansible (local mode)")
                             : std::string("Python and openssh-server (controller mode)")) +
                        ": ADS's minimal image has neither; add \"variant\": \"build\" unless the operator's image "
                        "for " +
                        spec.os_key() + " has it");

  // scripts the commands name
  const fs::path workdir = fs::path(spec.workdir);
  auto check_commands = [&](const std::string& field, const std::vector<std::string>& commands) {
    for (const auto& c : commands) {
      auto script = lab_script(c);
      if (!script) continue;
      std::string rel = (workdir / *script).lexically_normal().generic_string();
      if (rel.rfind("../", 0) == 0) continue;
      std::error_code ec;
      if (!fs::exists(fs::path(dir) / rel, ec))
        rep.problems.push_back(where + ": " + field + ": runs " + *script + ", which is not in the lab (" + rel + ")");
    }
  };
  for (const auto& ph : spec.install) check_commands("install (" + ph.name + ")", ph.commands);
  for (const auto& [name, cmds] : spec.actions) check_commands("actions." + name, cmds);

  // what a deploy would do
  rep.summary.push_back("spec: " + where + " (v" + std::to_string(spec.format) + ")" +
                        (spec.id.empty() ? "" : ", lab " + spec.id));
  std::string machine = "machine: OS key " + spec.os_key();
  if (spec.memory_mb) machine += ", memory " + std::to_string(spec.memory_mb) + " MB";
  if (spec.storage_mb) machine += ", storage " + std::to_string(spec.storage_mb) + " MB";
  rep.summary.push_back(machine);
  size_t install_commands = 0;
  for (const auto& ph : spec.install) install_commands += ph.commands.size();
  std::string install = "install: " + plural(install_commands, "command");
  if (!spec.install.empty()) {
    install += " (";
    for (size_t i = 0; i < spec.install.size(); ++i) install += (i ? ", " : "") + spec.install[i].name;
    install += ")";
  }
  const bool local = spec.ansible_mode == LabSpec::AnsibleMode::kLocal;
  if (!spec.ansible_playbook.empty())
    install += ", then the playbook " + spec.ansible_playbook +
               (local ? " (inside the machine)" : " (from the ADS host, over SSH)");
  rep.summary.push_back(install + ", run from " + (spec.workdir == "." ? "the lab's root" : spec.workdir + "/"));
  for (const auto& name : known_actions()) {
    if (!spec.has_action(name)) continue;
    std::string book = spec.playbook_for(name);
    rep.summary.push_back("action " + name + ": " +
                          (book.empty() ? plural(spec.action(name).size(), "command") : "the playbook " + book));
  }
  rep.summary.push_back("HTTP check: GET http://MACHINE:" + std::to_string(spec.http_port) + spec.http_path +
                        " must answer 2xx/3xx");
  return rep;
}

int run_lab_check(const std::string& dir, bool with_ansible, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    err << "ads: " << dir << " is not a directory\n";
    return kExitUsage;
  }
  std::string ansible;
  if (with_ansible) {
    ansible = find_ansible_playbook();
    if (ansible.empty()) {
      err << "ads: --ansible: ansible-playbook is not installed on this host (Debian: apt-get install ansible-core)\n";
      return kExitUsage;
    }
  }
  LabCheckReport rep = check_lab(dir, ansible);
  for (const auto& s : rep.summary) out << "  " << s << "\n";
  for (const auto& n : rep.notes) out << "note: " << n << "\n";
  if (rep.problems.empty()) {
    out << "lab " << dir << ": no problems found\n";
    return 0;
  }
  for (const auto& p : rep.problems) err << "problem: " << p << "\n";
  err << "ads: lab " << dir << ": " << plural(rep.problems.size(), "problem") << "\n";
  return kExitFailed;
}

namespace {

// `ads lab init`: a lab that works as written on the "build" image.
const std::vector<std::pair<std::string, std::string>> kInitFiles = {
    {"ads-lab.json", R"({
  "ads": 2,
  "name": "my-lab",
  "title": "A lab installed by an Ansible playbook",
  "os": {"name": "debian", "version": "12", "variant": "build"},
  "resources": {"memory": "256mb", "storage": "1gb"},
  "ansible": "playbooks/site.yml",
  "actions": {
    "start": ["busybox start-stop-daemon -S -b -m -p /run/my-lab.pid -o -x /bin/busybox -- httpd -f -p 80 -h /srv/my-lab"],
    "stop": ["busybox start-stop-daemon -K -o -q -p /run/my-lab.pid"],
    "test": {"playbook": "playbooks/test.yml"},
    "backup": ["cp -a /var/lib/my-lab/. \"$ADS_BACKUP_DIR/\""],
    "restore": ["cp -a \"$ADS_BACKUP_DIR/.\" /var/lib/my-lab/"]
  },
  "http": {"port": 80, "path": "/"}
}
)"},
    {"playbooks/site.yml", R"(# Installs the lab. ADS runs it from its own host against the lab's
# machine over SSH (controller mode; "ansible": {"mode": "local"} runs it
# inside the machine instead) with
#   ansible-playbook -i <the machine> -e <ads_* variables> -- playbooks/site.yml
# (docs/integrators/ansible.md).
- name: Install my-lab
  hosts: all
  gather_facts: false
  tasks:
    - name: The web root and the data directory exist
      ansible.builtin.file:
        path: "{{ item }}"
        state: directory
        mode: "0755"
      loop:
        - /srv/my-lab
        - /var/lib/my-lab

    - name: The front page is written from its template
      ansible.builtin.template:
        src: index.html.j2
        dest: /srv/my-lab/index.html
        mode: "0644"
)"},
    {"playbooks/templates/index.html.j2", R"(<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ ads_name }}</title></head>
<body>
<h1>{{ ads_name }}</h1>
<p>Deployment {{ ads_deployment_id }}, installed by Ansible {{ ansible_version.full }}.</p>
</body>
</html>
)"},
    {"playbooks/test.yml", R"(# The lab's test action: the front page answers.
- name: Test my-lab
  hosts: all
  gather_facts: false
  tasks:
    - name: The front page answers
      ansible.builtin.uri:
        url: http://127.0.0.1/
)"},
};

}  // namespace

int run_lab_init(const std::string& dir, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && fs::is_empty(dir, ec))) {
    err << "ads: " << dir << " exists and is not an empty directory; nothing written\n";
    return kExitUsage;
  }
  for (const auto& [rel, text] : kInitFiles) {
    fs::path p = fs::path(dir) / rel;
    fs::create_directories(p.parent_path(), ec);
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (!f || ec) {
      err << "ads: cannot write " << p.string() << (ec ? ": " + ec.message() : "") << "\n";
      return kExitFailed;
    }
  }
  out << "wrote a playbook lab in " << dir << ":\n";
  for (const auto& [rel, text] : kInitFiles) out << "  " << rel << "\n";
  out << "next: ads lab check --ansible " << dir << ", then ads lab try " << dir
      << " (a throwaway deploy; the server must be allowed to read the directory: sources.local_roots)\n";
  return 0;
}

Result<int64_t> parse_lab_ttl(const std::string& text) {
  auto seconds = parse_ttl(text);  // the tokens' syntax (cli/accounts.h)
  if (!seconds || *seconds < kMinTtlSeconds || *seconds > kMaxTtlSeconds)
    return Error::invalid("ttl", "must be a time such as 90s, 30m, 2h or 1d, from " + std::to_string(kMinTtlSeconds) +
                                     " s to 7 days: not \"" + text.substr(0, 32) + "\"");
  return *seconds;
}

}  // namespace ads::cli
