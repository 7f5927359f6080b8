// `ads shell ID`: the login shell of a running lab's machine on this
// terminal (the lab's owner and admins; audited), through its provider
// (GET /api/v1/deployments/ID/shell, a websocket: see docs/api.md). The
// input must be a terminal: it is raw while the shell runs (every key goes to
// the machine, Ctrl-C included) and the window's size follows it. Exits with
// the shell's exit code (0-255); when no shell ran: 2 refused (4xx, or the
// input is not a terminal), 3 no server; 1 the connection was lost.
#pragma once

#include <ostream>
#include <string>

#include "cli/client.h"

namespace ads::cli {

int run_shell(const ApiClient& api, const std::string& id, int in_fd, int out_fd, std::ostream& err);

}  // namespace ads::cli
