// A job's store writes while the store is briefly unavailable: tried again
// with backoff for as long as the job's lease holds here, so an outage
// shorter than the lease costs the job nothing; past it the job is handed
// back ("interrupted": nothing more of it is written, its machine is left
// alone) for whoever claims it next (this server or another) to resume,
// deploy again or roll back, per its kind's rules. A write after the lease
// lapsed is never made, even when the store is back: another worker may own
// the job by then.
#include <spdlog/spdlog.h>

#include <thread>

#include "engine/engine.h"
#include "engine/internal.h"

namespace ads {
using namespace engine_detail;

Status Engine::store_write(const std::string& deployment_id, const std::string& what,
                           const std::function<Status()>& f) {
  auto handed_back = [&] {
    return Error::make("interrupted", "the store was unavailable for longer than the job's lease while " + what +
                                          "; the job is handed back");
  };
  Backoff backoff(opts_.store_retry_first, opts_.store_retry_max);
  bool told = false;
  auto began = now_ms();
  while (true) {
    if (!leases_.held(deployment_id, now_ms())) {
      spdlog::warn("deployment {}: {}", deployment_id, handed_back().message);
      return handed_back();
    }
    Status st = f();
    if (st || !transient(st.error())) {
      if (told && st)
        spdlog::info("deployment {}: the store answers again; {} done after {} ms", deployment_id, what,
                     now_ms() - began);
      return st;
    }
    int64_t until = leases_.expiry_of_deployment(deployment_id);
    if (until == 0) return st;  // not a job of this process: nothing to keep, the caller decides
    if (stopping_) return Error::make("interrupted", "ads serve is stopping");
    auto wait = backoff.next();
    int64_t left = until - now_ms();
    if (left <= 0) continue;  // lapsed: handed back above
    if (wait.count() > left) wait = std::chrono::milliseconds(left);
    if (!told) {
      spdlog::warn("deployment {}: cannot record {} ({}); trying again for as long as the job's lease holds ({} ms)",
                   deployment_id, what, st.error().message, left);
      told = true;
    }
    std::this_thread::sleep_for(wait);
  }
}

}  // namespace ads
