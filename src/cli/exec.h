// `ads exec ID -- PROGRAM ARGS...`: runs a command in a running lab's
// machine (POST /api/v1/deployments/ID/exec; the lab's owner and admins),
// prints its stdout and stderr, and exits with its exit code (0-255). Not
// interactive: the command's input is empty. Exit codes of the verb itself
// when the command did not run: 2 refused (4xx), 3 no server.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "cli/client.h"

namespace ads::cli {

int run_exec(const ApiClient& api, const std::string& id, const std::vector<std::string>& command, int timeout_s,
             std::ostream& out, std::ostream& err);

}  // namespace ads::cli
