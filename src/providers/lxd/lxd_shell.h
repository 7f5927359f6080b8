// The session of an interactive exec LXD has started for `ads shell`
// (LxdProvider::open_shell): lxd_shell.cpp connects its websockets and
// relays them to the session's socket.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "providers/provider.h"

namespace ads {

// Where the exec's websockets are: LXD's unix socket, the operation's path
// ("/1.0/operations/<id>") and what goes after its query ("&project=..." or
// ""), and the secrets of its "0" and "control" file descriptors.
struct LxdExecSockets {
  std::string socket, operation, query, data_secret, control_secret;
};
// The program's exit code, waiting at most the time given (the operation's end).
using LxdExitFn = std::function<Result<int>(std::chrono::milliseconds)>;

// Connects both websockets within `limit` and starts relaying them.
Result<std::unique_ptr<ShellSession>> connect_lxd_shell(const LxdExecSockets& at, LxdExitFn exit_fn,
                                                        std::chrono::seconds limit);

}  // namespace ads
