// Waiting out a busy agent: an action (or a check) started by a server that
// has since stopped goes on in the machine and holds its agent, which answers
// "busy" until it ends (agent/server.h). The engine's agent actions
// (steps.cpp) and the check job (job_check.cpp) wait for it the same way.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

#include "core/result.h"

namespace ads::engine_detail {

// Calls `attempt` again while `busy` says its error is the agent being busy
// and `deadline` has not passed; between attempts it waits a second, less
// when `abandon` turns true (the next attempt then says why it stops).
// `on_first_wait` runs once, before the first wait.
inline Result<int> retry_while_agent_busy(const std::function<Result<int>()>& attempt,
                                          const std::function<bool(const Error&)>& busy,
                                          const std::function<bool()>& abandon,
                                          std::chrono::steady_clock::time_point deadline,
                                          const std::function<void()>& on_first_wait) {
  bool told = false;
  while (true) {
    Result<int> rc = attempt();
    if (rc || !busy(rc.error()) || std::chrono::steady_clock::now() >= deadline) return rc;
    if (!told) on_first_wait();
    told = true;
    for (int i = 0; i < 10 && !abandon(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace ads::engine_detail
