// Where the AWS provider's credentials come from: long-term keys (from the
// ADS config or the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN environment), or the IAM role of the instance ADS runs
// on, read through IMDSv2 (PUT /latest/api/token, then the role name and its
// credentials under /latest/meta-data/iam/security-credentials/). Role
// credentials are cached and fetched again `refresh_before` ahead of their
// Expiration; the IMDS session token is fetched again when IMDS refuses it
// (401) or its TTL has run out. Thread-safe. Secrets never reach a message.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "core/result.h"
#include "providers/aws/signed_request.h"

namespace ads::aws {

struct CredentialSettings {
  enum class Kind { kStatic, kImds } kind = Kind::kStatic;
  Credentials keys;                                      // kStatic
  std::string imds_endpoint = "http://169.254.169.254";  // kImds
  int imds_token_ttl_s = 21600;
  std::chrono::seconds refresh_before{300};
  long timeout_ms = 2000;
};

class CredentialSource {
 public:
  explicit CredentialSource(CredentialSettings s) : s_(std::move(s)) {}
  // Credentials good for at least `refresh_before` (role credentials), or the
  // static keys. IMDS failures: "unavailable" with what was asked.
  Result<Credentials> get();
  // Forgets cached role credentials (after AWS refused them).
  void invalidate();
  // How many times role credentials / IMDS tokens were fetched (for tests and logs).
  int role_fetches() const { return role_fetches_; }
  int token_fetches() const { return token_fetches_; }

 private:
  Result<std::string> imds_token(bool fresh);
  Result<std::string> imds_get(const std::string& path);
  Result<Credentials> fetch_role();

  CredentialSettings s_;
  std::mutex mu_;
  Credentials cached_;
  std::string token_;
  std::chrono::steady_clock::time_point token_expiry_{};
  int role_fetches_ = 0, token_fetches_ = 0;
};

// Parses IMDS's ISO 8601 "2026-11-25T10:00:00Z"; nullopt-like error when malformed.
Result<std::chrono::system_clock::time_point> parse_iso8601_utc(const std::string& s);

}  // namespace ads::aws
