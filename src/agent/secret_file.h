// The agent's replaced secret, kept in a root-only file (mode 0600).
//
// Where a machine's first secret can be read by others (on EC2 it travels in
// the instance's user data, which every local user reads through IMDS and
// anyone with ec2:DescribeInstanceAttribute through the API), that secret is a
// bootstrap secret only: on first contact ADS sends the agent a fresh one
// (POST /v1/secret, signed with the bootstrap secret), the agent writes it
// here and uses it from then on, also after a restart. While this file
// exists the secret in the agent's config is refused. docs/agent.md, "The
// secret on AWS".
#pragma once

#include <optional>
#include <string>

#include "core/result.h"

namespace ads::agent {

// A secret the agent takes in place of its bootstrap one: 64 to 256
// lower-case hex characters (ADS sends 32 random bytes as hex).
bool is_valid_new_secret(const std::string& s);

// The secret kept at `path`: nullopt when there is no file (the agent has not
// switched yet). A file that cannot be read or does not hold a valid secret is
// an error ("failed", naming the file): the agent must then not fall back to
// its bootstrap secret. A leftover `<path>.tmp` (a write cut off before its
// rename) is ignored.
Result<std::optional<std::string>> read_secret_file(const std::string& path);

// Writes `secret` to `path` so that after a crash at any point the file holds
// either the old content (or none) or the new secret whole: `<path>.tmp`
// (0600, not through a symbolic link) written and synced, renamed over
// `path`, the directory synced. Creates the directory (0700) if missing.
Status write_secret_file(const std::string& path, const std::string& secret);

}  // namespace ads::agent
