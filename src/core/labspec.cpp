#include "core/labspec.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/names.h"
#include "core/size.h"

namespace ads {
using nlohmann::json;

namespace {

const std::vector<std::string> kV1Actions = {"init",   "shutdown", "pause", "resume", "start",   "stop",
                                             "backup", "restore",  "clean", "stats",  "publish", "test"};
const std::vector<std::string> kOses = {"debian", "ubuntu", "centos"};
constexpr size_t kMaxCommands = 256;
constexpr size_t kMaxCommandLen = 8192;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// A JSON parse that reports where it failed, never what it read there: the
// text may not be what its author meant to show (nlohmann's own message
// quotes the bytes it last read).
Result<json> parse_json(std::string_view text) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    size_t end = std::min(e.byte == 0 ? 0 : e.byte - 1, text.size());
    size_t line = 1, column = 1;
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) {
        ++column;  // count characters, not UTF-8 continuation bytes
      }
    }
    return Error::invalid("", "malformed JSON at line " + std::to_string(line) + ", column " + std::to_string(column));
  } catch (const json::exception&) {  // out_of_range for numbers too large
    return Error::invalid("", "malformed JSON: a number is out of range");
  }
}

// Walks one object, naming fields by their dotted path.
class Reader {
 public:
  Reader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  std::string at(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  // The object under `key`; absent is an error when `required`.
  Result<const json*> object(const std::string& key, bool required) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) {
      if (required) return Error::invalid(at(key), "is required");
      return static_cast<const json*>(nullptr);
    }
    if (!it->is_object()) return Error::invalid(at(key), "must be an object");
    return &*it;
  }

  Result<std::string> string(const std::string& key, bool required, bool allow_number = false) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) {
      if (required) return Error::invalid(at(key), "is required");
      return std::string();
    }
    if (allow_number && it->is_number()) {
      if (it->is_number_integer()) return std::to_string(it->get<long long>());
      std::string s = it->dump();
      return s;
    }
    if (!it->is_string()) return Error::invalid(at(key), "must be a string");
    return it->get<std::string>();
  }

  // A field that is a string or an object ("ansible"); absent: both empty.
  struct StringOrObject {
    std::string text;
    const json* object = nullptr;
  };
  Result<StringOrObject> object_or_string(const std::string& key) const {
    StringOrObject out;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return out;
    if (it->is_object()) {
      out.object = &*it;
      return out;
    }
    if (!it->is_string()) return Error::invalid(at(key), "must be a string (the playbook) or an object");
    out.text = it->get<std::string>();
    return out;
  }

  Result<std::vector<std::string>> commands(const std::string& key) const {
    std::vector<std::string> out;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return out;
    if (!it->is_array()) return Error::invalid(at(key), "must be a list of shell commands");
    if (it->size() > kMaxCommands)
      return Error::invalid(at(key), "has more than " + std::to_string(kMaxCommands) + " commands");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& c = (*it)[i];
      std::string f = at(key) + "[" + std::to_string(i) + "]";
      if (!c.is_string()) return Error::invalid(f, "must be a string");
      auto s = c.get<std::string>();
      if (s.find_first_not_of(" \t\r\n\v\f") == std::string::npos) return Error::invalid(f, "must not be empty");
      if (s.size() > kMaxCommandLen) return Error::invalid(f, "is longer than 8192 characters");
      if (s.find('\0') != std::string::npos) return Error::invalid(f, "must not contain NUL");
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<uint64_t> size(const std::string& key) const {
    auto s = string(key, false, true);
    if (!s) return s.error();
    auto mb = parse_size_mb(*s);
    if (!mb) return Error::invalid(at(key), "must be a size such as \"512mb\" or \"2gb\"");
    return *mb;
  }

  // Keys not in `allowed` are errors (they are most often typos).
  Status only(const std::set<std::string>& allowed) const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!allowed.count(it.key())) return Error::invalid(at(it.key()), "is not a known field");
    }
    return Status::Ok();
  }

 private:
  const json& j_;
  std::string path_;
};

#define ADS_TRY(var, expr)              \
  auto var##_r = (expr);                \
  if (!var##_r) return var##_r.error(); \
  auto var = std::move(var##_r.value())  // NOLINT(bugprone-macro-parentheses): var is the declared name

Status check_os(LabSpec& spec, const std::string& os_field, const std::string& ver_field) {
  spec.os = lower(spec.os);
  if (std::find(kOses.begin(), kOses.end(), spec.os) == kOses.end())
    return Error::invalid(os_field, "must be one of debian, ubuntu, centos");
  if (spec.os_version.empty()) return Error::invalid(ver_field, "is required");
  // Numbers separated by single dots: "12", "14.04", "6.9" (not ".", "14." or "1..2").
  bool digit_before = false;
  for (char c : spec.os_version) {
    bool digit = std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (!digit && !(c == '.' && digit_before))
      return Error::invalid(ver_field, "must be a version such as \"12\" or \"14.04\"");
    digit_before = digit;
  }
  if (!digit_before) return Error::invalid(ver_field, "must be a version such as \"12\" or \"14.04\"");
  spec.os_version = normalise_os_version(spec.os, spec.os_version);
  return Status::Ok();
}

// A playbook path is one argument of ansible-playbook: inside the lab, no
// option, a plain name.
Status check_playbook(const std::string& playbook, const std::string& field) {
  if (playbook.empty()) return Error::invalid(field, "is required");
  if (playbook.size() > 255) return Error::invalid(field, "must be at most 255 characters");
  if (playbook[0] == '/' || playbook.find("..") != std::string::npos)
    return Error::invalid(field, "must be a path inside the lab, without '..'");
  if (playbook[0] == '-') return Error::invalid(field, "must not start with '-'");
  for (unsigned char c : playbook) {
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/'))
      return Error::invalid(field, "may contain only letters, digits, '.', '_', '-' and '/'");
  }
  return Status::Ok();
}

}  // namespace

const std::vector<std::string>& known_actions() { return kV1Actions; }

bool LabSpec::has_action(const std::string& name) const {
  return !action(name).empty() || action_playbooks.count(name) > 0;
}

std::string LabSpec::playbook_for(const std::string& name) const {
  if (name == "install") return ansible_playbook;
  auto it = action_playbooks.find(name);
  return it == action_playbooks.end() ? "" : it->second;
}

const std::vector<std::string>& LabSpec::action(const std::string& name) const {
  static const std::vector<std::string> kNone;
  auto it = actions.find(name);
  return it == actions.end() ? kNone : it->second;
}

int LabSpec::timeout_for(const std::string& name) const {
  auto it = timeouts_s.find(name);
  return it == timeouts_s.end() ? 0 : it->second;
}

std::optional<int> parse_timeout_s(const std::string& text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  size_t digits = text.find_first_not_of("0123456789");
  if (digits == 0) return std::nullopt;
  std::string unit = digits == std::string::npos ? "" : text.substr(digits);
  long long mult = unit == "s" || unit.empty() ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (mult == 0) return std::nullopt;
  long long n = std::stoll(text.substr(0, digits));  // at most 12 digits: no overflow
  if (n < 1 || n * mult > kMaxSpecTimeoutS) return std::nullopt;
  return static_cast<int>(n * mult);
}

std::string normalise_os_version(const std::string& os, const std::string& v) {
  if (os == "ubuntu" && v.find('.') == std::string::npos && !v.empty()) return v + ".04";
  if (os == "centos" && v == "6") return "6.9";
  return v;
}

Result<LabSpec> parse_labspec_v1(std::string_view text) {
  ADS_TRY(root, parse_json(text));
  if (!root.is_object()) return Error::invalid("", "the lab spec must be a JSON object");
  LabSpec spec;
  spec.format = 1;
  spec.workdir = "scripts";
  Reader top(root, "");
  ADS_TRY(lab, top.object("lab", true));
  Reader rlab(*lab, "lab");

  ADS_TRY(desc, rlab.object("description", false));
  if (desc) {
    Reader d(*desc, "lab.description");
    ADS_TRY(id, d.string("id", false));
    ADS_TRY(name, d.string("name", false));
    if (!id.empty()) {
      auto st = validate_lab_name(id, "lab.description.id");
      if (!st) return st.error();
    }
    spec.id = id;
    spec.title = name;
  }

  ADS_TRY(build, rlab.object("build_requirements", false));
  if (build) {
    ADS_TRY(bp, Reader(*build, "lab.build_requirements").object("platform", false));
    if (bp) {
      Reader p(*bp, "lab.build_requirements.platform");
      ADS_TRY(installer, p.commands("installer"));
      if (!installer.empty()) spec.install.push_back({"build-installer", installer});
      ADS_TRY(steps, p.object("build_steps", false));
      if (steps) {
        Reader s(*steps, "lab.build_requirements.platform.build_steps");
        auto st = s.only({"configure", "pre_build", "build", "post_build", "status"});
        if (!st) return st.error();
        for (const char* phase : {"configure", "pre_build", "build", "post_build", "status"}) {
          ADS_TRY(cmds, s.commands(phase));
          if (!cmds.empty()) spec.install.push_back({phase, cmds});
        }
      }
    }
  }

  ADS_TRY(runtime, rlab.object("runtime_requirements", true));
  ADS_TRY(rp, Reader(*runtime, "lab.runtime_requirements").object("platform", true));
  Reader p(*rp, "lab.runtime_requirements.platform");
  ADS_TRY(os, p.string("os", true));
  ADS_TRY(ver, p.string("osVersion", true, true));
  spec.os = os;
  spec.os_version = ver;
  auto st = check_os(spec, p.at("os"), p.at("osVersion"));
  if (!st) return st.error();
  ADS_TRY(mem, p.object("memory", false));
  if (mem) {
    ADS_TRY(mb, Reader(*mem, p.at("memory")).size("min_required"));
    ADS_TRY(swap, Reader(*mem, p.at("memory")).size("swap"));
    spec.memory_mb = mb;
    spec.swap_mb = swap;
  }
  ADS_TRY(storage, p.object("storage", false));
  if (storage) {
    ADS_TRY(mb, Reader(*storage, p.at("storage")).size("min_required"));
    spec.storage_mb = mb;
  }
  ADS_TRY(rinst, p.commands("installer"));
  if (!rinst.empty()) spec.install.push_back({"runtime-installer", rinst});
  ADS_TRY(actions, p.object("lab_actions", false));
  if (actions) {
    Reader a(*actions, p.at("lab_actions"));
    auto only = a.only(std::set<std::string>(kV1Actions.begin(), kV1Actions.end()));
    if (!only) return only.error();
    for (const auto& name : kV1Actions) {
      ADS_TRY(cmds, a.commands(name));
      if (!cmds.empty()) spec.actions[name] = cmds;
    }
  }
  // The seed system ran init once, after the installers, during deployment.
  if (!spec.action("init").empty()) spec.install.push_back({"init", spec.action("init")});
  return spec;
}

Result<LabSpec> parse_labspec_v2(std::string_view text) {
  ADS_TRY(root, parse_json(text));
  if (!root.is_object()) return Error::invalid("", "the lab spec must be a JSON object");
  Reader r(root, "");
  auto only = r.only({"ads", "name", "title", "os", "resources", "install", "ansible", "actions", "http", "timeouts"});
  if (!only) return only.error();
  auto ver = root.find("ads");
  if (ver == root.end()) return Error::invalid("ads", "is required and must be 2");
  if (!ver->is_number_integer() || ver->get<long long>() != 2)
    return Error::invalid("ads", "must be 2 (the spec format version)");
  LabSpec spec;
  spec.format = 2;
  spec.workdir = ".";
  ADS_TRY(name, r.string("name", false));
  if (!name.empty()) {
    auto st = validate_lab_name(name, "name");
    if (!st) return st.error();
  }
  spec.id = name;
  ADS_TRY(title, r.string("title", false));
  spec.title = title;

  ADS_TRY(os, r.object("os", true));
  Reader ros(*os, "os");
  auto st = ros.only({"name", "version", "variant"});
  if (!st) return st.error();
  ADS_TRY(osname, ros.string("name", true));
  ADS_TRY(osver, ros.string("version", true, true));
  ADS_TRY(variant, ros.string("variant", false));
  spec.os = osname;
  spec.os_version = osver;
  st = check_os(spec, "os.name", "os.version");
  if (!st) return st.error();
  if (!variant.empty()) {
    // a word of the image key ("debian-12-build"): lower-case letters and
    // digits, '-' inside, at most 32
    bool ok = variant.size() <= 32 && variant.front() != '-' && variant.back() != '-';
    for (unsigned char c : variant) ok = ok && (std::islower(c) || std::isdigit(c) || c == '-');
    if (!ok)
      return Error::invalid("os.variant", "must be 1 to 32 lower-case letters, digits or inner '-', e.g. \"build\"");
    spec.os_variant = variant;
  }

  ADS_TRY(res, r.object("resources", false));
  if (res) {
    Reader rr(*res, "resources");
    st = rr.only({"memory", "swap", "storage"});
    if (!st) return st.error();
    ADS_TRY(mem, rr.size("memory"));
    ADS_TRY(swap, rr.size("swap"));
    ADS_TRY(disk, rr.size("storage"));
    spec.memory_mb = mem;
    spec.swap_mb = swap;
    spec.storage_mb = disk;
  }
  ADS_TRY(install, r.commands("install"));
  if (!install.empty()) spec.install.push_back({"install", install});
  // "ansible": "site.yml", or {"playbook": "site.yml", "mode": "controller" | "local"}
  std::string playbook;
  std::string playbook_field = "ansible";
  ADS_TRY(ansible, r.object_or_string("ansible"));
  if (ansible.object) {
    Reader ra(*ansible.object, "ansible");
    st = ra.only({"playbook", "mode"});
    if (!st) return st.error();
    ADS_TRY(book, ra.string("playbook", false));
    ADS_TRY(mode, ra.string("mode", false));
    if (mode == "local") {
      spec.ansible_mode = LabSpec::AnsibleMode::kLocal;
    } else if (!mode.empty() && mode != "controller") {
      return Error::invalid("ansible.mode",
                            "must be \"controller\" (ansible-playbook on the ADS host, over SSH) or \"local\" "
                            "(inside the machine)");
    }
    if (ansible.object->contains("playbook") && book.empty())
      return Error::invalid("ansible.playbook", "must not be empty");
    playbook = book;
    playbook_field = "ansible.playbook";
  } else {
    playbook = ansible.text;
  }
  if (!playbook.empty()) {
    st = check_playbook(playbook, playbook_field);
    if (!st) return st.error();
    spec.ansible_playbook = playbook;
  }
  ADS_TRY(actions, r.object("actions", false));
  if (actions) {
    Reader a(*actions, "actions");
    st = a.only(std::set<std::string>(kV1Actions.begin(), kV1Actions.end()));
    if (!st) return st.error();
    for (const auto& n : kV1Actions) {
      // an action is its commands, or {"playbook": "backup.yml"}
      auto it = actions->find(n);
      if (it != actions->end() && it->is_object()) {
        std::string field = "actions." + n;
        if (n == "init") return Error::invalid(field, "cannot be a playbook: name it in \"ansible\", which installs");
        Reader rp(*it, field);
        st = rp.only({"playbook"});
        if (!st) return st.error();
        ADS_TRY(book, rp.string("playbook", true));
        st = check_playbook(book, field + ".playbook");
        if (!st) return st.error();
        spec.action_playbooks[n] = book;
        continue;
      }
      ADS_TRY(cmds, a.commands(n));
      if (!cmds.empty()) spec.actions[n] = cmds;
    }
  }
  if (!spec.action("init").empty()) spec.install.push_back({"init", spec.action("init")});
  if (!spec.has_action("start"))
    return Error::invalid("actions.start", "is required: the commands (or the playbook) that start the lab");

  ADS_TRY(timeouts, r.object("timeouts", false));
  if (timeouts) {
    std::set<std::string> names(kV1Actions.begin(), kV1Actions.end());
    names.insert("install");
    st = Reader(*timeouts, "timeouts").only(names);
    if (!st) return st.error();
    for (auto it = timeouts->begin(); it != timeouts->end(); ++it) {
      std::string field = "timeouts." + it.key();
      std::optional<int> secs;
      if (it->is_number_integer()) {
        long long n = it->get<long long>();
        if (n >= 1 && n <= kMaxSpecTimeoutS) secs = static_cast<int>(n);
      } else if (it->is_string()) {
        secs = parse_timeout_s(it->get<std::string>());
      }
      if (!secs)
        return Error::invalid(field,
                              "must be a duration from 1 s to 24 h: seconds as a number, or a string such "
                              "as \"90s\", \"20m\" or \"2h\"");
      spec.timeouts_s[it.key()] = *secs;
    }
  }

  ADS_TRY(http, r.object("http", false));
  if (http) {
    Reader h(*http, "http");
    st = h.only({"port", "path"});
    if (!st) return st.error();
    auto port = http->find("port");
    if (port != http->end()) {
      if (!port->is_number_integer() || port->get<long long>() < 1 || port->get<long long>() > 65535)
        return Error::invalid("http.port", "must be an integer from 1 to 65535");
      if (port->get<long long>() == 9089) return Error::invalid("http.port", "9089 is the ADS agent's port");
      spec.http_port = static_cast<int>(port->get<long long>());
    }
    ADS_TRY(path, h.string("path", false));
    if (!path.empty()) {
      if (path[0] != '/') return Error::invalid("http.path", "must start with '/'");
      for (unsigned char c : path) {  // it becomes part of the checked URL
        if (c <= 0x20 || c == 0x7f) return Error::invalid("http.path", "must not contain spaces or control characters");
      }
      spec.http_path = path;
    }
  }
  return spec;
}

Result<LabSpec> parse_labspec(const std::string& path, std::string_view text) {
  if (path == kSpecV2Path) return parse_labspec_v2(text);
  if (path == kSpecV1Path) return parse_labspec_v1(text);
  return Error::invalid("spec", "unknown lab spec file " + path);
}

}  // namespace ads
