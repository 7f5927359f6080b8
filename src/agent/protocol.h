// The ADS <-> agent protocol: every request is signed with the deployment's
// secret (HMAC-SHA256 via libsodium). Shared by the agent and its client.
//
// Headers:  X-ADS-Time: unix seconds   X-ADS-Nonce: 32 hex chars
//           X-ADS-Body-SHA256: hex(SHA256(body))
//           X-ADS-Signature: hex HMAC-SHA256(secret, canonical)
// canonical = METHOD "\n" TARGET "\n" TIME "\n" NONCE "\n" hex(SHA256(body))
// The agent refuses (401) a missing or wrong signature, a time more than
// kMaxSkewSeconds away from its clock, and a nonce it has seen before.
// X-ADS-Body-SHA256 lets the agent check the signature from the request's
// head alone, before it reads a byte of the body; the body must then hash to
// it. A request without that header (an older client) may carry at most
// kUnsignedBodyLimit bytes, read before the signature is checked.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace ads::agent {

inline constexpr uint16_t kAgentPort = 9089;
// The SSH door the agent opens for ADS's Ansible controller (ssh_access.h):
// its port (not 22, which a lab may use for its own sshd), and the longest
// it stays open (the longest command ADS allows, 7 days, and a margin).
inline constexpr int kSshDoorPort = 9022;
inline constexpr int kMaxSshTtlSeconds = 8 * 86400;
inline constexpr int64_t kMaxSkewSeconds = 300;
inline constexpr const char* kHeaderTime = "X-ADS-Time";
inline constexpr const char* kHeaderNonce = "X-ADS-Nonce";
inline constexpr const char* kHeaderSignature = "X-ADS-Signature";
inline constexpr const char* kHeaderBodyHash = "X-ADS-Body-SHA256";
inline constexpr size_t kUnsignedBodyLimit = 64 * 1024;
// On an action's stream: the agent sends a heartbeat event every this many
// seconds while a command runs (an agent without it sends none).
inline constexpr const char* kHeaderHeartbeat = "X-ADS-Heartbeat";

// Initialises libsodium; safe to call many times. False if it cannot.
bool crypto_init();
std::string hex(const std::string& bytes);
std::string sha256_hex(const std::string& data);
// `n` random bytes as hex (2n chars), from libsodium's CSPRNG.
std::string random_hex(size_t n);

std::string canonical(const std::string& method, const std::string& target, const std::string& time,
                      const std::string& nonce, const std::string& body);
// The same with the body's hash given (hex SHA-256), for a check before the body is read.
std::string canonical_for_hash(const std::string& method, const std::string& target, const std::string& time,
                               const std::string& nonce, const std::string& body_sha256_hex);
std::string sign(const std::string& secret, const std::string& canonical_text);
// Constant-time comparison of the expected and the given signature.
bool signature_matches(const std::string& secret, const std::string& canonical_text, const std::string& signature_hex);

// Remembers nonces for the skew window to refuse replays. Thread-safe.
class NonceCache {
 public:
  // True when `nonce` is new (and records it); false when replayed.
  bool insert(const std::string& nonce, int64_t now_s);

 private:
  std::mutex mu_;
  std::unordered_set<std::string> seen_;
  std::deque<std::pair<int64_t, std::string>> order_;
};

// The headers that sign a request (time, nonce, body hash, signature).
std::vector<std::pair<std::string, std::string>> signed_headers(const std::string& secret, const std::string& method,
                                                                const std::string& target, const std::string& body,
                                                                int64_t now_s);

}  // namespace ads::agent
