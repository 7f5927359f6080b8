// The engine's side of the secret switch (docs/agent.md, "The secret on
// AWS"): a machine whose first secret others can read (EC2 user data) boots
// its agent with that secret as a bootstrap secret; on first contact ADS
// sends it a fresh one, which the agent keeps (secret_file.h) and takes only
// from then on. The caller records `fresh` as the deployment's secret BEFORE
// calling this, so that whatever happens between the two sides (a lost
// answer, a crash of either) ADS holds the secret the agent may have switched
// to, and the bootstrap one while it has not.
#pragma once

#include <chrono>
#include <string>

#include "core/result.h"

namespace ads::agent {

// Waits (at most `total`) for the agent at `base_url` to answer with the
// bootstrap secret, sends it `fresh`, and checks that it answers with `fresh`
// (and presents the key derived from it). Safe to call again after any
// failure: an agent that already took `fresh` (the answer was lost) is
// recognised and left as it is. An agent that takes neither secret (someone
// who read the bootstrap secret switched it first): Error "unauthorized".
Status hand_over_secret(const std::string& base_url, const std::string& bootstrap, const std::string& fresh,
                        std::chrono::milliseconds total);

}  // namespace ads::agent
