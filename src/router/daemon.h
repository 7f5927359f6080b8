// The pieces the proxy processes (caddy_process, haproxy_process) share: a
// background process started from a fixed argv in a session of its own, its
// output appended to a log file, its pid in a pid file; whether the pid file
// names a live process of the right program; stopping it.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace ads::router {

// Whether `pid` runs (a child of ours that exited is reaped here).
bool process_alive(int pid);
// The pid in `pid_file` if that process runs and its command line contains
// `program`; 0 otherwise.
int pid_from_file(const std::string& pid_file, const std::string& program);
// Forks and execs `args` (args[0] looked up in PATH) with only `env`, in a
// new session, stdin from /dev/null, stdout and stderr appended to `log`;
// writes the child's pid to `pid_file`. Returns the pid.
Result<int> spawn_logged(const std::vector<std::string>& args, const std::vector<std::string>& env,
                         const std::string& log, const std::string& pid_file);
// SIGTERM to the process `pid_file` names (if it runs `program`), after 10 s
// SIGKILL; removes the pid file. Ok when none runs.
Status stop_pid_file(const std::string& pid_file, const std::string& program);
// SIGKILL to `pid`, reaped, and the pid file removed (a start that failed).
void kill_started(int pid, const std::string& pid_file);
// The last `n` bytes of `file` (for error messages).
std::string file_tail(const std::string& file, size_t n);

}  // namespace ads::router
