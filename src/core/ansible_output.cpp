#include "core/ansible_output.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ads {
namespace {

constexpr size_t kMessageMax = 300;

std::string shorten(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > kMessageMax) s = s.substr(0, kMessageMax) + "...";
  return s;
}

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// "TASK [Write the page] ****" -> "Write the page" (a role's task: "role : name")
std::optional<std::string> task_name(const std::string& line) {
  if (!starts_with(line, "TASK [") && !starts_with(line, "HANDLER [") && !starts_with(line, "RUNNING HANDLER ["))
    return std::nullopt;
  size_t open = line.find('[');
  size_t close = line.rfind(']');
  if (close == std::string::npos || close <= open) return std::nullopt;
  return line.substr(open + 1, close - open - 1);
}

// "fatal: [localhost]: FAILED! => {...}", "failed: [localhost] (item=x) => {...}",
// "fatal: [web1]: UNREACHABLE! => {...}": the host and the JSON result.
bool failure_line(const std::string& line, std::string& host, std::string& result) {
  if (!starts_with(line, "fatal: [") && !starts_with(line, "failed: [")) return false;
  size_t open = line.find('[');
  size_t close = line.find(']', open);
  if (close == std::string::npos) return false;
  host = line.substr(open + 1, close - open - 1);
  size_t arrow = line.find("=> ", close);
  result = arrow == std::string::npos ? "" : line.substr(arrow + 3);
  return true;
}

std::string message_of(const std::string& result) {
  auto j = nlohmann::json::parse(result, nullptr, false);
  if (!j.is_object()) return shorten(result);
  auto text = [](const nlohmann::json& o, const char* key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const nlohmann::json* r = &j;
  // a loop's summary: the first failed item says more
  if (auto it = j.find("results"); it != j.end() && it->is_array())
    for (const auto& item : *it)
      if (item.is_object() && item.value("failed", false)) {
        r = &item;
        break;
      }
  std::string msg = text(*r, "msg");
  if (std::string a = text(*r, "assertion"); !a.empty()) msg += ": " + a;  // assert: which condition
  if (msg.empty()) msg = text(*r, "reason");                               // include_tasks and friends
  if (msg.empty()) msg = text(*r, "module_stderr");
  if (msg.empty()) msg = "failed";
  if (auto rc = r->find("rc"); rc != r->end() && rc->is_number_integer())
    msg += " (rc " + std::to_string(rc->get<long long>()) + ")";
  std::string err = text(*r, "stderr");
  if (!err.empty() && err != msg) msg += ": " + err;
  return shorten(msg);
}

}  // namespace

constexpr size_t kPendingMax = 64 * 1024;

void AnsibleOutput::scan(const std::string& text) {
  for (char c : text) {
    if (in_string_) {
      if (escaped_) escaped_ = false;
      else if (c == '\\') escaped_ = true;
      else if (c == '"') in_string_ = false;
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      --depth_;
    }
  }
}

void AnsibleOutput::failure(const std::string& host, const std::string& result) {
  std::string what = result.empty() ? "no message" : message_of(result);
  if (!in_task_)  // a loop's first failed item says more than the summary after it
    in_task_ = "task '" + (task_.empty() ? std::string("(none)") : task_) + "' failed on " + host + ": " + what;
}

void AnsibleOutput::feed(const std::string& stream, const std::string& line) {
  if (stream != "stderr" || line.rfind("ERROR! ", 0) == 0) feed(line);
}

void AnsibleOutput::feed(const std::string& line) {
  if (collecting_) {
    // the rest of a result printed over several lines, to its closing brace
    bool next = starts_with(line, "TASK [") || starts_with(line, "PLAY RECAP") || line == "...ignoring";
    if (!next) {
      if (pending_.size() < kPendingMax) pending_ += line.substr(0, kPendingMax - pending_.size()) + "\n";
      scan(line);
      if (depth_ > 0) return;
    }
    collecting_ = false;
    failure(pending_host_, pending_);
    if (!next) return;
  }
  if (line == "...ignoring") {  // the task's failures do not count
    in_task_.reset();
    return;
  }
  read_changed_or_recap(line);
  if (auto t = task_name(line)) {
    if (in_task_) failed_ = std::move(in_task_);
    in_task_.reset();
    task_ = *t;
    return;
  }
  std::string host, result;
  if (failure_line(line, host, result)) {
    depth_ = 0;
    in_string_ = escaped_ = false;
    scan(result);
    if (depth_ > 0) {  // "=> {" and the rest on the lines that follow
      collecting_ = true;
      pending_host_ = host;
      pending_ = result.substr(0, kPendingMax) + "\n";
      return;
    }
    failure(host, result);
    return;
  }
  if (!error_ && (starts_with(line, "ERROR! ") || starts_with(line, "ansible-playbook is not installed")))
    error_ = shorten(line);
}

void AnsibleOutput::read_changed_or_recap(const std::string& line) {
  if (starts_with(line, "PLAY RECAP")) {
    in_recap_ = true;
    recap_ = Recap{};
    return;
  }
  if (starts_with(line, "PLAY [") || task_name(line)) in_recap_ = false;
  if (starts_with(line, "changed: [") && !task_.empty()) {
    std::string name = task_.substr(0, kMaxTaskName);
    if (std::find(changed_.begin(), changed_.end(), name) == changed_.end()) {
      if (changed_.size() < kMaxChanged) changed_.push_back(std::move(name));
      else changed_cut_ = true;
    }
  }
  if (!in_recap_ || line.find(" : ok=") == std::string::npos) return;
  // "lab : ok=4    changed=2    unreachable=0    failed=0    skipped=1 ..."
  std::istringstream words(line.substr(line.find(" : ok=") + 3));
  for (std::string w; words >> w;) {
    auto eq = w.find('=');
    if (eq == std::string::npos) continue;
    int n = 0;
    auto [end, ec] = std::from_chars(w.data() + eq + 1, w.data() + w.size(), n);
    if (ec != std::errc() || end != w.data() + w.size()) continue;
    const std::string key = w.substr(0, eq);
    if (key == "ok") recap_->ok += n;
    else if (key == "changed") recap_->changed += n;
    else if (key == "unreachable") recap_->unreachable += n;
    else if (key == "failed") recap_->failed += n;
    else if (key == "skipped") recap_->skipped += n;
  }
}

std::optional<std::string> AnsibleOutput::failure() const {
  if (collecting_) {  // the output ended inside a result: what there is of it
    AnsibleOutput copy = *this;
    copy.collecting_ = false;
    copy.failure(pending_host_, pending_);
    return copy.in_task_ ? copy.in_task_ : copy.failure();
  }
  if (in_task_) return in_task_;
  if (failed_) return failed_;
  return error_;
}

}  // namespace ads
