#include "agent/handover.h"

#include <thread>

#include "agent/client.h"

namespace ads::agent {

namespace {
Error taken_by_someone_else(const std::string& base_url, const Error& why) {
  return Error::make(
      "unauthorized",
      "the agent at " + base_url +
          " no longer takes its bootstrap secret and does not take the one ADS "
          "sent it: someone who read the bootstrap secret (the machine's user data) replaced it first (" +
          why.message + ")");
}
}  // namespace

Status hand_over_secret(const std::string& base_url, const std::string& bootstrap, const std::string& fresh,
                        std::chrono::milliseconds total) {
  AgentClient boot(base_url, bootstrap), now(base_url, fresh);
  auto ready = boot.wait_ready(total);
  if (!ready) {
    // a machine that does not prove the bootstrap key, or refuses the
    // bootstrap secret: switched already (to ours, when an answer was lost)
    if (ready.error().code != "tls" && ready.error().code != "unauthorized") return ready;
    auto h = now.health();
    if (h) return Status::Ok();
    return taken_by_someone_else(base_url, h.error());
  }
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    auto st = boot.replace_secret(fresh);
    if (st) break;
    // the agent may have switched and its answer been lost: ask with ours
    if (now.health()) return Status::Ok();
    bool again = st.error().code == "unavailable" || st.error().code == "timeout" || st.error().code == "failed";
    if (!again || attempt >= kAttempts) {
      if (st.error().code == "unauthorized" || st.error().code == "tls")
        return taken_by_someone_else(base_url, st.error());
      return Error::make(st.error().code, "replacing the agent's bootstrap secret: " + st.error().message);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // the switch took: the agent now presents the new key and takes the new secret
  auto done = now.wait_ready(std::min<std::chrono::milliseconds>(total, std::chrono::seconds(30)));
  if (!done)
    return Error::make(done.error().code,
                       "the agent took the new secret but does not answer with it: " + done.error().message);
  return Status::Ok();
}

}  // namespace ads::agent
