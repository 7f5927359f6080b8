#include "providers/openvz/openvz_provider.h"

#include <set>
#include <sstream>
#include <thread>

#include "core/terminal.h"
#include "providers/openvz/shell_quote.h"

namespace ads {
using nlohmann::json;
using openvz::SshSession;

namespace {
constexpr const char* kDescPrefix = "ads:";

bool valid_machine_name(const std::string& n) {
  if (n.empty() || n.size() > 63 || !std::isalpha(static_cast<unsigned char>(n[0]))) return false;
  for (unsigned char c : n)
    if (!(std::islower(c) || std::isdigit(c) || c == '-')) return false;
  return n.back() != '-';
}

std::string pct_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::optional<std::string> pct_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
      return std::nullopt;
    out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
    i += 2;
  }
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

Result<std::string> str_field(const json& j, const char* key, const std::string& field) {
  if (!j[key].is_string()) return Error::invalid(field, "must be a string");
  return j[key].get<std::string>();
}
}  // namespace

OpenvzProvider::OpenvzProvider(Settings s) : s_(std::move(s)) {}

Result<std::unique_ptr<Provider>> OpenvzProvider::create_from(const json& settings) {
  const std::string f = "providers.openvz.";
  if (!settings.is_object())
    return Error::invalid("providers.openvz", "must be an object with host, private_key, known_hosts and subnet");
  Settings s;
  for (const char* req : {"host", "private_key", "known_hosts", "subnet"})
    if (!settings.contains(req)) return Error::invalid(f + req, "is required");
  for (auto& [k, v] : settings.items()) {
    static const std::set<std::string> known = {"host",
                                                "port",
                                                "user",
                                                "private_key",
                                                "known_hosts",
                                                "subnet",
                                                "nameserver",
                                                "ctid_base",
                                                "templates",
                                                "config",
                                                "root_dir",
                                                "memory_mb",
                                                "swap_mb",
                                                "disk_mb",
                                                "start_command",
                                                "connect_timeout_s",
                                                "command_timeout_s",
                                                "backup_dir"};
    if (!known.count(k)) return Error::invalid(f + k, "unknown setting");
  }
  auto get_str = [&](const char* key, std::string& out) -> Status {
    if (!settings.contains(key)) return Status::Ok();
    auto v = str_field(settings, key, f + key);
    if (!v) return v.error();
    out = *v;
    return Status::Ok();
  };
  auto get_int = [&](const char* key, auto& out, int64_t lo, int64_t hi) -> Status {
    if (!settings.contains(key)) return Status::Ok();
    if (!settings[key].is_number_integer() || settings[key].get<int64_t>() < lo || settings[key].get<int64_t>() > hi)
      return Error::invalid(f + key, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    out = static_cast<std::remove_reference_t<decltype(out)>>(settings[key].get<int64_t>());
    return Status::Ok();
  };
  std::string subnet;
  for (const auto& st :
       {get_str("host", s.ssh.host), get_str("user", s.ssh.user), get_str("private_key", s.ssh.private_key),
        get_str("known_hosts", s.ssh.known_hosts), get_str("subnet", subnet), get_str("nameserver", s.nameserver),
        get_str("config", s.config), get_str("root_dir", s.root_dir), get_str("start_command", s.start_command),
        get_str("backup_dir", s.backup_dir), get_int("port", s.ssh.port, 1, 65535),
        get_int("connect_timeout_s", s.ssh.connect_timeout_s, 1, 600),
        get_int("command_timeout_s", s.command_timeout_s, 1, 86400), get_int("ctid_base", s.ctid_base, 101, 2000000000),
        get_int("memory_mb", s.memory_mb, 64, 1 << 24), get_int("swap_mb", s.swap_mb, 0, 1 << 24),
        get_int("disk_mb", s.disk_mb, 256, 1 << 30)}) {
    if (!st) return st.error();
  }
  if (s.ssh.host.empty()) return Error::invalid(f + "host", "must not be empty");
  if (s.ssh.user.empty()) return Error::invalid(f + "user", "must not be empty");
  if (s.ssh.private_key.empty() || s.ssh.private_key[0] != '/')
    return Error::invalid(f + "private_key", "must be an absolute path");
  if (s.ssh.known_hosts.empty() || s.ssh.known_hosts[0] != '/')
    return Error::invalid(f + "known_hosts", "must be an absolute path (strict host-key checking needs one)");
  if (s.root_dir.empty() || s.root_dir[0] != '/' || s.root_dir.find("..") != std::string::npos)
    return Error::invalid(f + "root_dir", "must be an absolute path without '..'");
  if (s.backup_dir.empty() || s.backup_dir[0] != '/' || s.backup_dir.find("..") != std::string::npos)
    return Error::invalid(f + "backup_dir", "must be an absolute path without '..'");
  auto net = parse_ipv4_subnet(subnet, f + "subnet");
  if (!net) return net.error();
  if (!net->has_allocatable())
    return Error::invalid(f + "subnet", subnet + " has no address to hand out (/30 or larger)");
  s.subnet = *net;
  s.subnet_text = net->to_string();
  if (s.nameserver.empty()) s.nameserver = format_ipv4(net->gateway());
  else if (auto ns = parse_ipv4(s.nameserver); !ns) return Error::invalid(f + "nameserver", ns.error().message);
  if (s.ctid_base + static_cast<int64_t>(net->broadcast() - net->network) > 2147483647)
    return Error::invalid(f + "ctid_base", "ctid_base plus the subnet's size is beyond the largest CTID");
  if (settings.contains("templates")) {
    if (!settings["templates"].is_object() || settings["templates"].empty())
      return Error::invalid(f + "templates", "must be an object of os key -> OS template name");
    s.templates.clear();
    for (auto& [k, v] : settings["templates"].items()) {
      if (!v.is_string() || v.get<std::string>().empty())
        return Error::invalid(f + "templates." + k, "must be a non-empty string");
      s.templates[k] = v;
    }
  }
  return std::unique_ptr<Provider>(new OpenvzProvider(std::move(s)));
}

Result<int64_t> OpenvzProvider::ctid_for(const std::string& address) const {
  auto a = parse_ipv4(address);
  if (!a) return a.error();
  if (!s_.subnet.contains(*a) || *a < s_.subnet.first_allocatable() || *a > s_.subnet.last_allocatable())
    return Error::invalid("address", address + " is not an allocatable address of " + s_.subnet_text);
  return s_.ctid_base + static_cast<int64_t>(*a - s_.subnet.network);
}

std::string OpenvzProvider::encode_labels(const std::map<std::string, std::string>& labels) {
  std::string out = kDescPrefix;
  bool first = true;
  for (auto& [k, v] : labels) {
    if (!first) out.push_back(',');
    first = false;
    out += pct_encode(k) + "=" + pct_encode(v);
  }
  return out;
}

std::optional<std::map<std::string, std::string>> OpenvzProvider::decode_labels(const std::string& d) {
  if (d.rfind(kDescPrefix, 0) != 0) return std::nullopt;
  std::map<std::string, std::string> out;
  std::stringstream ss(d.substr(std::string(kDescPrefix).size()));
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto eq = item.find('=');
    if (eq == std::string::npos) return std::nullopt;
    auto k = pct_decode(item.substr(0, eq));
    auto v = pct_decode(item.substr(eq + 1));
    if (!k || !v) return std::nullopt;
    out[*k] = *v;
  }
  return out;
}

Result<std::unique_ptr<SshSession>> OpenvzProvider::connect() { return SshSession::connect(s_.ssh); }

Status OpenvzProvider::vz(SshSession& s, const std::vector<std::string>& argv, std::string* out) {
  auto r = s.run(argv, "", std::chrono::seconds(s_.command_timeout_s));
  if (!r) return r.error();
  if (out) *out = r->out;
  if (r->exit_code != 0) {
    std::string said = trim(r->err.empty() ? r->out : r->err + (r->out.empty() ? "" : "\n" + trim(r->out)));
    std::string cmd = argv[0] + (argv.size() > 1 ? " " + argv[1] : "");
    return Error::make("failed", cmd + " on " + s.where() + " exited with " + std::to_string(r->exit_code) +
                                     (said.empty() ? "" : ": " + said));
  }
  return Status::Ok();
}

// vzlist prints one line per container; the ip column goes last because it
// holds several addresses separated by spaces when a container has several.
Result<std::vector<OpenvzProvider::Row>> OpenvzProvider::rows(SshSession& s) {
  auto r = s.run({"vzlist", "-a", "-H", "-o", "ctid,status,name,description,ip"}, "",
                 std::chrono::seconds(s_.command_timeout_s));
  if (!r) return r.error();
  std::vector<Row> out;
  if (r->exit_code != 0) {
    // vzlist exits 1 with "Container(s) not found" when there are none
    if ((r->err + r->out).find("not found") != std::string::npos) return out;
    return Error::make("failed",
                       "vzlist on " + s.where() + " exited with " + std::to_string(r->exit_code) + ": " + trim(r->err));
  }
  std::stringstream ss(r->out);
  std::string line;
  while (std::getline(ss, line)) {
    std::stringstream ls(line);
    Row row;
    std::string ctid;
    if (!(ls >> ctid >> row.status >> row.name >> row.description)) continue;
    ls >> row.ip;  // the first address, if any
    try {
      row.ctid = std::stoll(ctid);
    } catch (...) {
      continue;
    }
    if (row.name == "-") row.name.clear();
    if (row.description == "-") row.description.clear();
    if (row.ip == "-") row.ip.clear();
    out.push_back(std::move(row));
  }
  return out;
}

Result<std::optional<OpenvzProvider::Row>> OpenvzProvider::find(SshSession& s, const std::string& name) {
  auto all = rows(s);
  if (!all) return all.error();
  for (auto& r : *all)
    if (r.name == name) return std::optional<Row>(r);
  return std::optional<Row>();
}

Machine OpenvzProvider::to_machine(const Row& r) {
  Machine m;
  m.name = r.name;
  // vzlist's words (running, stopped, mounted, suspended) -> the interface's
  m.status = r.status == "running" ? "Running" : r.status == "stopped" ? "Stopped" : r.status;
  if (r.status == "running") m.address = r.ip;
  if (auto l = decode_labels(r.description)) m.labels = *l;
  return m;
}

Status OpenvzProvider::place_files(SshSession& s, int64_t ctid, const std::vector<FileToPlace>& files,
                                   const ProgressFn& progress) {
  if (files.empty()) return Status::Ok();
  std::string id = std::to_string(ctid);
  auto st = vz(s, {"vzctl", "mount", id});
  if (!st) return st;
  Status result = Status::Ok();
  for (const auto& f : files) {
    if (f.path.empty() || f.path[0] != '/' || f.path.find("..") != std::string::npos) {
      result = Error::invalid("path", "file path must be absolute without '..': " + f.path);
      break;
    }
    if (progress) progress("placing " + f.path + " (" + std::to_string(f.content.size()) + " bytes)");
    result = s.put_file(s_.root_dir + "/" + id + f.path, f.content, f.mode);
    if (!result) break;
  }
  auto um = vz(s, {"vzctl", "umount", id});  // always, even after a failed copy
  if (!result) return result;
  return um;
}

Status OpenvzProvider::create(const MachineSpec& spec, const ProgressFn& progress) {
  if (!valid_machine_name(spec.name)) return Error::invalid("name", "not a valid machine name: " + spec.name);
  auto tmpl = s_.templates.find(spec.os_key);
  if (tmpl == s_.templates.end()) {
    std::string known;
    for (auto& [k, v] : s_.templates) known += (known.empty() ? "" : ", ") + k;
    return Error::invalid("os", "provider openvz has no OS template for " + spec.os_key + " (known: " + known + ")");
  }
  if (spec.address.empty())
    return Error::invalid("address", "the openvz provider needs a static address from " + s_.subnet_text);
  auto ctid = ctid_for(spec.address);
  if (!ctid) return ctid.error();
  for (const auto& f : spec.files)
    if (f.path.empty() || f.path[0] != '/' || f.path.find("..") != std::string::npos)
      return Error::invalid("path", "file path must be absolute without '..': " + f.path);
  auto sess = connect();
  if (!sess) return sess.error();
  SshSession& s = **sess;
  auto existing = find(s, spec.name);
  if (!existing) return existing.error();
  if (*existing)
    return Error::make("conflict", "a container named " + spec.name + " already exists (CTID " +
                                       std::to_string((*existing)->ctid) + ")");
  std::string id = std::to_string(*ctid);
  if (progress) progress("creating container " + spec.name + " (CTID " + id + ") from OS template " + tmpl->second);
  std::vector<std::string> create = {"vzctl", "create", id, "--ostemplate", tmpl->second};
  if (!s_.config.empty()) {
    create.push_back("--config");
    create.push_back(s_.config);
  }
  auto r = s.run(create, "", std::chrono::seconds(s_.command_timeout_s));
  if (!r) return r.error();
  if (r->exit_code == 44)  // VZ_FS_PRVT_AREA_EXIST
    return Error::make("conflict", "CTID " + id + " already exists on " + s.where() +
                                       " (not made by this ADS?): " + trim(r->err + r->out));
  if (r->exit_code != 0)
    return Error::make("failed", "vzctl create " + id + " on " + s.where() + " exited with " +
                                     std::to_string(r->exit_code) + ": " + trim(r->err + r->out));
  uint64_t mem = spec.memory_mb ? spec.memory_mb : s_.memory_mb;
  uint64_t disk = spec.storage_mb ? spec.storage_mb : s_.disk_mb;
  auto st = vz(s, {"vzctl",
                   "set",
                   id,
                   "--name",
                   spec.name,
                   "--hostname",
                   spec.name,
                   "--ipadd",
                   spec.address,
                   "--nameserver",
                   s_.nameserver,
                   "--ram",
                   std::to_string(mem) + "M",
                   "--swap",
                   std::to_string(s_.swap_mb) + "M",
                   "--diskspace",
                   std::to_string(disk) + "M:" + std::to_string(disk) + "M",
                   "--description",
                   encode_labels(spec.labels),
                   "--save"});
  if (!st) return st;
  return place_files(s, *ctid, spec.files, progress);
}

Result<OpenvzProvider::Located> OpenvzProvider::locate(const std::string& name, bool must_exist) {
  if (!valid_machine_name(name)) return Error::invalid("name", "not a valid machine name: " + name);
  auto sess = connect();
  if (!sess) return sess.error();
  auto row = find(**sess, name);
  if (!row) return row.error();
  if (!*row && must_exist) return Error::make("not_found", "no container " + name + " on " + (*sess)->where());
  return Located{std::move(*sess), std::move(*row)};
}

Status OpenvzProvider::halt(SshSession& s, const Row& row) {
  std::string id = std::to_string(row.ctid);
  if (row.status == "running") return vz(s, {"vzctl", "stop", id});
  if (row.status == "mounted") return vz(s, {"vzctl", "umount", id});
  return Status::Ok();
}

Status OpenvzProvider::start(const std::string& name) {
  auto at = locate(name);
  if (!at) return at.error();
  std::string id = std::to_string(at->row->ctid);
  if (at->row->status != "running") {
    auto st = vz(*at->session, {"vzctl", "start", id});
    if (!st) return st;
  }
  if (s_.start_command.empty()) return Status::Ok();
  return vz(*at->session, {"vzctl", "exec2", id, s_.start_command});
}

Status OpenvzProvider::stop(const std::string& name) {
  auto at = locate(name);
  if (!at) return at.error();
  if (at->row->status == "stopped") return Status::Ok();
  return vz(*at->session, {"vzctl", "stop", std::to_string(at->row->ctid)});
}

Status OpenvzProvider::destroy(const std::string& name) {
  auto at = locate(name, false);
  if (!at) return at.error();
  if (!at->row) return Status::Ok();  // already gone
  auto st = halt(*at->session, *at->row);
  if (!st) return st;
  return vz(*at->session, {"vzctl", "destroy", std::to_string(at->row->ctid)});
}

Result<Machine> OpenvzProvider::inspect(const std::string& name) {
  auto at = locate(name);
  if (!at) return at.error();
  return to_machine(*at->row);
}

Result<std::string> OpenvzProvider::wait_address(const std::string& name, std::chrono::milliseconds total) {
  auto deadline = std::chrono::steady_clock::now() + total;
  std::string last = "no address yet";
  while (true) {
    auto m = inspect(name);
    if (m && !m->address.empty()) return m->address;
    if (!m) {
      if (m.error().code == "not_found" || m.error().code == "invalid") return m.error();
      last = m.error().message;
    } else if (m->status != "Running") {
      last = "container is " + m->status;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return Error::make("timeout", "container " + name + " got no IPv4 address within " +
                                    std::to_string(total.count() / 1000) + " s (" + last + ")");
}

Result<std::vector<Machine>> OpenvzProvider::list() {
  auto sess = connect();
  if (!sess) return sess.error();
  auto all = rows(**sess);
  if (!all) return all.error();
  std::vector<Machine> out;
  for (auto& r : *all) {
    Machine m = to_machine(r);
    if (m.labels.count("deployment")) out.push_back(std::move(m));
  }
  return out;
}

Status OpenvzProvider::snapshot(const std::string& name, const std::string& snap) {
  if (!valid_machine_name(snap)) return Error::invalid("name", "not a valid snapshot name: " + snap);
  auto at = locate(name);
  if (!at) return at.error();
  SshSession& s = *at->session;
  std::string dir = s_.backup_dir + "/" + name + "/" + snap;
  auto st = vz(s, {"mkdir", "-p", dir});
  if (!st) return st;
  auto existing = s.list_dir(dir);
  if (existing && !existing->empty()) return Error::make("conflict", "snapshot " + snap + " of " + name + " exists");
  return vz(s, {"vzdump", "--compress", "--suspend", "--dumpdir", dir, std::to_string(at->row->ctid)});
}

Status OpenvzProvider::restore_snapshot(const std::string& name, const std::string& snap) {
  if (!valid_machine_name(snap)) return Error::invalid("name", "not a valid snapshot name: " + snap);
  auto at = locate(name);
  if (!at) return at.error();
  SshSession& s = *at->session;
  std::string dir = s_.backup_dir + "/" + name + "/" + snap;
  auto files = s.list_dir(dir);
  if (!files) {
    if (files.error().code == "not_found") return Error::make("not_found", "no snapshot " + snap + " of " + name);
    return files.error();
  }
  std::string archive;
  for (auto& f : *files)
    if (f.rfind("vzdump-", 0) == 0 &&
        (f.size() > 4 && (f.substr(f.size() - 4) == ".tgz" || f.substr(f.size() - 4) == ".tar")))
      archive = dir + "/" + f;
  if (archive.empty())
    return Error::make("not_found", "snapshot " + snap + " of " + name + " has no vzdump archive in " + dir);
  std::string id = std::to_string(at->row->ctid);
  if (auto st = halt(s, *at->row); !st) return st;
  // the archive holds the container's config (name, address, description), so
  // the same CTID comes back as it was; the engine starts it again
  auto st = vz(s, {"vzctl", "destroy", id});
  if (!st) return st;
  return vz(s, {"vzrestore", archive, id});
}

// The vzdump archives stay on the host after `vzctl destroy`, so this works
// with or without the container.
Status OpenvzProvider::delete_snapshot(const std::string& name, const std::string& snap) {
  if (!valid_machine_name(name)) return Error::invalid("name", "not a valid machine name: " + name);
  if (!valid_machine_name(snap)) return Error::invalid("name", "not a valid snapshot name: " + snap);
  auto sess = connect();
  if (!sess) return sess.error();
  return vz(**sess, {"rm", "-rf", "--", s_.backup_dir + "/" + name + "/" + snap});
}

// For vzctl exec2, whose `bash -c` gets: the environment LXD's exec gives
// (vzctl's own is HOME=/ and a PATH ending in "."), coreutils' `timeout` in
// the container (TERM at timeout_s, KILL 5 s later; 124 when it stopped the
// command), no stdin, and an `exit $?` that keeps bash from exec'ing the
// command (vzctl would report a command killed by a signal as its own error
// 3; through bash it is 128 + the signal, as on LXD).
Result<std::string> OpenvzProvider::exec_line(const std::vector<std::string>& argv, int timeout_s) {
  if (argv.empty()) return Error::invalid("command", "is empty");
  if (timeout_s < 1) return Error::invalid("timeout_s", "must be at least 1 s");
  std::vector<std::string> cmd = {"timeout", "-k", "5", std::to_string(timeout_s)};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  auto quoted = openvz::shell_join(cmd);
  if (!quoted) return Error::invalid("command", quoted.error().message);
  return "HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin " + *quoted +
         " </dev/null; exit $?";
}

Result<ExecResult> OpenvzProvider::exec(const std::string& name, const std::vector<std::string>& argv, int timeout_s,
                                        size_t max_bytes) {
  if (!valid_machine_name(name)) return Error::invalid("name", "not a valid machine name: " + name);
  auto line = exec_line(argv, timeout_s);
  if (!line) return line.error();
  // The line travels as one argument through the host's shell (SSH) to
  // vzctl, and then to the container's bash: both take at most 128 KiB in
  // one argument (Linux's MAX_ARG_STRLEN), and quoting makes a ' 4 bytes.
  // Checked before connecting, with the longest CTID.
  constexpr size_t kMaxLine = 120 * 1024;
  if (auto remote = openvz::shell_join({"vzctl", "exec2", "2147483647", *line}); !remote || remote->size() > kMaxLine)
    return Error::invalid("command", "is too long once quoted for the OpenVZ host's shell and the container's (" +
                                         std::to_string(remote ? remote->size() : 0) + " bytes, at most " +
                                         std::to_string(kMaxLine) + ")");
  auto at = locate(name);
  if (!at) return at.error();
  const Row& row = *at->row;
  if (row.status != "running")
    return Error::make("conflict", "container " + name + " (CTID " + std::to_string(row.ctid) + ") is " + row.status +
                                       " on " + at->session->where() + ": ads exec needs it running");
  // killed in the container at timeout_s (+5 s grace); this bounds the wait
  // if that fails (no `timeout` in the container, a hung host)
  auto r = at->session->run({"vzctl", "exec2", std::to_string(row.ctid), *line}, "",
                            std::chrono::seconds(timeout_s + 15), max_bytes);
  if (!r) {
    if (r.error().code == "timeout")
      return Error::make("timeout", "the command in " + name + " did not end within " + std::to_string(timeout_s) +
                                        " s + 15 s, although it runs under the container's `timeout` (is coreutils' "
                                        "timeout in the container?)");
    return r.error();
  }
  ExecResult out;
  out.exit_code = r->exit_code;
  out.out = std::move(r->out);
  out.err = std::move(r->err);
  out.truncated = r->truncated;
  return out;
}

Result<std::unique_ptr<ShellSession>> OpenvzProvider::open_shell(const std::string& name, const TerminalSize& size) {
  if (!valid_machine_name(name)) return Error::invalid("name", "not a valid machine name: " + name);
  if (auto st = check_terminal_size(size.cols, size.rows); !st) return st.error();
  auto at = locate(name);
  if (!at) return at.error();
  const Row& row = *at->row;
  if (row.status != "running")
    return Error::make("conflict", "container " + name + " (CTID " + std::to_string(row.ctid) + ") is " + row.status +
                                       " on " + at->session->where() + ": ads shell needs it running");
  return openvz::SshSession::open_terminal(std::move(at->session), {"vzctl", "enter", std::to_string(row.ctid)}, size);
}

Result<std::vector<ImageInfo>> OpenvzProvider::images() {
  std::vector<ImageInfo> out;
  for (const auto& [key, tmpl] : s_.templates)
    out.push_back({key, tmpl, "unchecked", "an OS template on the OpenVZ host; not looked up"});
  return out;
}

}  // namespace ads
