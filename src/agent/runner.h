// Runs one shell command of a lab spec inside the lab machine, streaming its
// output line by line. Commands come from the lab's own spec (validated), never
// from a request.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace ads::agent {

struct RunResult {
  int exit_code = 0;  // 128 + signal when killed
  bool timed_out = false;
  bool cancelled = false;  // stopped because RunOptions::cancel was set
};

using OutputFn = std::function<void(const std::string& stream, const std::string& line)>;

struct RunOptions {
  int timeout_s = 1800;          // then the group gets SIGTERM, SIGKILL after kill_grace
  std::vector<std::string> env;  // NAME=value added to the clean environment
  std::chrono::milliseconds kill_grace{5000};
  // Set by another thread: stop the command like a timeout does (the caller
  // may also signal the group itself, see on_group).
  const std::atomic<bool>* cancel = nullptr;
  // Called every `tick` while the command runs, whatever it prints (the
  // agent's heartbeats). 0 or no function: never.
  std::chrono::milliseconds tick{0};
  std::function<void()> on_tick;
  // Called with the command's process group id once it runs, and with 0 as
  // soon as its shell has been reaped (after that the id may be reused).
  std::function<void(pid_t)> on_group;
};

// /bin/sh -c `command` in `workdir`, in its own session (process group), with
// a clean environment. Every byte the command wrote before its shell exited
// reaches `out`, in order per stream: after the exit the pipes are drained of
// what is readable (until empty), without waiting for an end of file that a
// background daemon holding them may never give. What such a daemon writes
// later is not read (a daemon that writes without pause is cut off after
// what was pending at the exit plus 1 MiB, with a note). Lines longer than
// 64 KiB come in pieces.
RunResult run_command(const std::string& command, const std::string& workdir, const RunOptions& opts,
                      const OutputFn& out);

// The same for a fixed program and its arguments, without a shell: argv[0]
// is an absolute path (127 without running anything otherwise). The agent
// runs ansible-playbook this way: the lab's playbook path is one argument,
// never part of a shell string.
RunResult run_program(const std::vector<std::string>& argv, const std::string& workdir, const RunOptions& opts,
                      const OutputFn& out);

struct ArgvResult {
  int exit_code = 0;
  std::string out;  // standard output
  std::string err;  // standard error, kept apart (a warning never mixes into the data)
};

// Runs `argv` (a fixed program and arguments) with `input` on its stdin, to
// its end.
ArgvResult run_argv(const std::vector<std::string>& argv, const std::string& input);

}  // namespace ads::agent
