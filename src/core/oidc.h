// OpenID Connect sign-in: the rules, no I/O. Which ID token claims ADS
// accepts, and which role an e-mail address gets from the allow-list (the
// original system let in a list of e-mail addresses; here each entry also
// names a role).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/auth.h"
#include "core/result.h"

namespace ads {

// One allow-list entry: "alice@example.org" (that address) or
// "*@example.org" (every address of that domain), and the role it gives, or
// "deny": that address (or domain) never signs in, whatever else matches.
struct AllowEntry {
  std::string pattern;
  Role role = Role::kViewer;
  bool deny = false;
};

// Addresses as ADS accepts them for user names: local@domain, lower case,
// at most 254 characters, [a-z0-9._%+-] before '@', a dotted domain after.
Status validate_email(const std::string& email, const std::string& field = "email");
// Checks the shape of an allow-list entry (an address or "*@domain").
Status validate_allow_pattern(const std::string& pattern, const std::string& field);
// The role of the first entry that matches `email` (case-insensitive); the
// exact address wins over its domain; a "deny" entry for the address or its
// domain wins over both. nullopt: not allowed in.
std::optional<Role> role_for_email(const std::vector<AllowEntry>& allow, const std::string& email);
// Whether a "deny" entry matches `email` (for the refusal's message).
bool denied_by_allow_list(const std::vector<AllowEntry>& allow, const std::string& email);

// What the ID token must say (OpenID Connect Core 1.0, 3.1.3.7).
struct ExpectedClaims {
  std::string issuer;
  std::string client_id;
  std::string nonce;
  int64_t now_s = 0;
  int64_t leeway_s = 60;     // clock skew allowed on exp/iat/nbf
  int64_t max_age_s = 3600;  // an iat older than this is refused
  // email_verified must be present and true. false (an explicit opt-out, for
  // a provider that never sends the claim): a missing claim is accepted; a
  // false one never is.
  bool require_email_verified = true;
};

// Who an ID token speaks for: the account key (issuer, subject) and the
// address the allow-list is checked against.
struct IdTokenIdentity {
  std::string issuer;
  std::string subject;
  std::string email;  // lower case
};

// Validates the claims of a signature-checked ID token and returns who it
// names. Error "unauthorized" naming the claim.
Result<IdTokenIdentity> check_id_token_claims(const nlohmann::json& claims, const ExpectedClaims& want);

}  // namespace ads
