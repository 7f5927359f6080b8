// The user data (cloud-init) that turns a fresh EC2 instance into an ADS lab
// machine: it writes the machine's files (the agent's config, mode 0600) and
// a systemd unit, fetches the agent binary
// from `agent_url` and checks it against the SHA-256 of the binary ADS holds
// (user data is limited to 16 KB, the static agent is megabytes), then
// enables and starts the agent. The document is "#cloud-config" followed by
// JSON (JSON is YAML, so no hand-written YAML quoting); commands are argv
// lists, and the one shell script is a constant that gets the URL as "$1".
// User data is not secret (every local user reads it through IMDS, and anyone
// allowed ec2:DescribeInstanceAttribute): the secret in the agent's config
// is a bootstrap secret that the engine replaces on first contact
// (AwsProvider::files_readable_by_others, agent/handover.h).
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "providers/provider.h"

namespace ads::aws {

inline constexpr const char* kAgentPath = "/usr/local/bin/ads-agent";
inline constexpr size_t kMaxUserData = 16384;  // EC2's limit, before base64

struct UserDataOptions {
  std::string agent_url;        // where instances download the agent from
  bool agent_in_image = false;  // the AMI already has /usr/local/bin/ads-agent
};

// The raw (not yet base64) user data. Errors: "invalid" (field "agent_url")
// when the agent must be fetched and no URL is set; "invalid" when the
// files do not fit EC2's 16 KB.
Result<std::string> cloud_config(const std::vector<FileToPlace>& files, const UserDataOptions& o);

std::string base64(const std::string& bytes);
Result<std::string> unbase64(const std::string& text);
std::string sha256_hex(const std::string& bytes);

}  // namespace ads::aws
