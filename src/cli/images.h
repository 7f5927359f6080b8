// `ads images`: the images each provider can put a lab on (GET
// /api/v1/images), one row per OS key: provider (`*` marks the default),
// OS key, image, state (available, missing, unchecked) and how to get a
// missing one. Exit codes: 0 answered; 1 a provider could not be asked;
// 2 refused; 3 no server.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/client.h"

namespace ads::cli {

// Prints the answer of GET /api/v1/images; 1 when a provider has an error.
int print_images(const nlohmann::json& answer, std::ostream& out);
int run_images(const ApiClient& api, std::ostream& out);

}  // namespace ads::cli
