// Deploy on git push from the command line (api/git_hooks.h):
//   ads track ID BRANCH [--poll S] [--new-secret]   PUT .../track
//   ads untrack ID                                  DELETE .../track
// and the lines `ads deploy --track` and `ads show` print about a track.
// Exit codes as elsewhere: 0 done, 2 a refusal, 3 no server.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>

#include "cli/client.h"

namespace ads::cli {

int run_track(const ApiClient& api, const std::string& server, const std::string& id, const std::string& branch,
              std::optional<long long> poll_s, bool new_secret, std::ostream& out);
int run_untrack(const ApiClient& api, const std::string& id, std::ostream& out);
// What a track answer says: the branch, the hook URL on `server`, the poll
// interval and, when the answer holds it, the secret (shown this once).
void print_track(const nlohmann::json& track, const std::string& server, std::ostream& out);

}  // namespace ads::cli
