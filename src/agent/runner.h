// Runs one shell command of a lab spec inside the lab machine, streaming its
// output line by line. Commands come from the lab's own spec (validated), never
// from a request.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ads::agent {

struct RunResult {
  int exit_code = 0;      // 128 + signal when killed
  bool timed_out = false;
};

using OutputFn = std::function<void(const std::string& stream, const std::string& line)>;

// /bin/sh -c `command` in `workdir`, in its own session, with a clean
// environment. Stops reading shortly after the shell exits even if background
// daemons it started still hold the pipes. Kills the process group after
// `timeout_s` (SIGTERM, then SIGKILL 5 s later).
// `env` adds NAME=value entries to the clean environment.
RunResult run_command(const std::string& command, const std::string& workdir, int timeout_s, const OutputFn& out,
                      const std::vector<std::string>& env = {});

// Runs `argv` (a fixed program and arguments) with `input` on its stdin;
// returns the exit code and fills `output` with stdout+stderr.
int run_argv(const std::vector<std::string>& argv, const std::string& input, std::string* output);

}  // namespace ads::agent
