// Accounts, roles, API tokens and the audit trail: data and rules, no I/O.
//   viewer   reads everything
//   deployer also deploys, and manages its own deployments and shared ones
//   admin    also manages users and tokens and every deployment
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ads {

enum class Role { kViewer = 0, kDeployer = 1, kAdmin = 2 };

std::string to_string(Role r);
std::optional<Role> role_from_string(const std::string& s);
// Whether `have` may do what needs `need` (roles are ordered).
inline bool role_allows(Role have, Role need) { return static_cast<int>(have) >= static_cast<int>(need); }

struct User {
  std::string id;    // ULID
  std::string name;  // unique
  Role role = Role::kViewer;
  std::string password_hash;  // Argon2id (libsodium crypto_pwhash_str); "" = no password login
  int64_t created_ms = 0;
  // The person at an OpenID provider this account belongs to: the ID token's
  // `iss` and `sub` (never the e-mail address, which a provider may let its
  // users change). "" : not bound. (issuer, subject) is unique in the store.
  std::string oidc_issuer{};
  std::string oidc_subject{};
  int64_t disabled_ms = 0;  // when an admin disabled it; 0: enabled

  bool disabled() const { return disabled_ms != 0; }
  bool bound() const { return !oidc_subject.empty(); }
};

// An API token. The secret is shown once; only its SHA-256 is stored.
struct Token {
  std::string id;  // ULID
  std::string user_id;
  std::string name;  // what it is for
  std::string hash;  // hex SHA-256 of the secret
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // 0: never
  int64_t revoked_ms = 0;  // 0: not revoked
  // Made by a sign-in (password or OpenID Connect) for a browser session,
  // not asked for as an API token. Sign-out revokes only these; a token made
  // with one lasts no longer than a setting (ApiLimits::max_token_ttl_from_session_s).
  bool session = false;

  bool usable_at(int64_t now_ms) const { return revoked_ms == 0 && (expires_ms == 0 || now_ms < expires_ms); }
};

// Who did what to which deployment, when, from where, with what outcome.
struct AuditEntry {
  int64_t seq = 0;
  int64_t ts_ms = 0;
  std::string user;      // name, or "anonymous"
  std::string action;    // e.g. "POST /api/v1/deployments"
  std::string target;    // deployment id, user name...
  std::string remote;    // client address
  int status = 0;        // HTTP status answered; 0: written before the change, no answer recorded
  std::string detail{};  // what changed for the target: the role given, the token made...
};

}  // namespace ads
