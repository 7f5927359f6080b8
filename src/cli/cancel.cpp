#include "cli/cancel.h"

#include <iostream>
#include <thread>

namespace ads::cli {
using nlohmann::json;

int run_cancel(const ApiClient& api, const std::string& job_id, bool detach, std::ostream& out,
               std::chrono::milliseconds poll) {
  auto r = api.call("POST", "/api/v1/jobs/" + job_id + "/cancel");
  if (!r) return fail_with(r.error(), kExitUnreachable);
  if (r->status != 202) return reply_error(*r);
  json job = r->body;
  std::string kind = job.value("kind", "job");
  if (job.value("state", "") != "cancelled") {
    out << "cancel of " << kind << " job " << job_id << " asked; the server running it stops it\n";
    if (detach) return 0;
  }
  // a running job ends within seconds: its server kills the command, then the job
  while (job.value("state", "") == "queued" || job.value("state", "") == "running") {
    out.flush();
    std::this_thread::sleep_for(poll);
    auto j = api.call("GET", "/api/v1/jobs/" + job_id);
    if (!j) return fail_with(j.error(), kExitUnreachable);
    if (j->status != 200) return reply_error(*j);
    job = j->body;
  }
  std::string state = job.value("state", "");
  if (state == "cancelled") {
    out << kind << " job " << job_id << " cancelled\n";
    return 0;
  }
  std::cerr << "ads: " << kind << " job " << job_id << " ended " << state << " before the cancel took effect"
            << (job.value("error", "").empty() ? "" : ": " + job.value("error", "")) << "\n";
  return kExitFailed;
}

}  // namespace ads::cli
