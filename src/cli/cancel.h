// `ads cancel JOB`: cancels a job (POST /api/v1/jobs/JOB/cancel) and, unless
// --detach, waits for it to end.
// Exit codes: 0 the job ended cancelled; 1 it ended otherwise before the
// cancel took (succeeded or failed), or the server failed; 2 a refusal
// (no such job 404, not yours 403, already ended 409); 3 no server.
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "cli/client.h"

namespace ads::cli {

int run_cancel(const ApiClient& api, const std::string& job_id, bool detach, std::ostream& out,
               std::chrono::milliseconds poll = std::chrono::milliseconds(300));

}  // namespace ads::cli
