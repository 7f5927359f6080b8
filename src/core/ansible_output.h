// Reads the output of `ansible-playbook` (its default callback) line by line
// and remembers what a failure was: the task that ran when a host failed, the
// host, and Ansible's message, so that a failed install can say "task 'Write
// the page' failed on localhost: ..." instead of an exit code. Pure logic:
// lines in, a sentence out.
//
// The last failure counts: a host stops at its first failure that no
// `rescue` catches, so an earlier one was rescued. A failure of a task that
// then prints "...ignoring" (ignore_errors; after a loop's last item) does
// not count. A result printed over several lines (indented JSON, as the
// default callback prints assert's) is read whole.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ads {

class AnsibleOutput {
 public:
  // One line of the playbook's output (stdout or stderr), without its newline.
  void feed(const std::string& line);
  // A line from `stream` ("stdout", "stderr", ...), fed only if it is one of
  // those read: results come on stdout; of stderr only Ansible's "ERROR! ..."
  // (a warning there, with a stray quote or brace, would cut into a result
  // read over several lines).
  void feed(const std::string& stream, const std::string& line);
  // The failure: "task 'T' failed on H: MSG" (MSG from the result's "msg",
  // "reason" or "module_stderr", with its return code and stderr,
  // shortened), else an "ERROR! ..." line that Ansible printed before running
  // anything (a syntax error, a missing playbook) or the agent's line saying
  // the machine has no ansible-playbook; nullopt when no line said why.
  std::optional<std::string> failure() const;

  // The tasks (and handlers) that reported "changed:" for a host, each name
  // once, in the order seen, each cut to kMaxTaskName bytes; at most
  // kMaxChanged names are kept (changed_tasks_cut() says when more changed).
  static constexpr size_t kMaxChanged = 100;
  static constexpr size_t kMaxTaskName = 200;
  const std::vector<std::string>& changed_tasks() const { return changed_; }
  bool changed_tasks_cut() const { return changed_cut_; }
  // The PLAY RECAP's counts, summed over its hosts; nullopt before a recap.
  struct Recap {
    int ok = 0, changed = 0, unreachable = 0, failed = 0, skipped = 0;
  };
  const std::optional<Recap>& recap() const { return recap_; }

 private:
  std::vector<std::string> changed_;
  bool changed_cut_ = false;
  std::optional<Recap> recap_;
  bool in_recap_ = false;
  void read_changed_or_recap(const std::string& line);
  std::string task_;                    // the task running now
  std::optional<std::string> in_task_;  // a failure of the task running now ("...ignoring" may take it back)
  std::optional<std::string> failed_;   // the last failure of an earlier task
  std::optional<std::string> error_;    // the first "ERROR!" line
  // A failure whose result spans lines (printed indented, as for assert):
  // its first line's prefix, the JSON so far (at most 64 KiB kept) and where
  // the scan of it stands.
  void failure(const std::string& host, const std::string& result);
  void scan(const std::string& text);
  bool collecting_ = false;
  std::string pending_host_;
  std::string pending_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

}  // namespace ads
