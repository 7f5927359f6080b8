// Authentication and authorization of API callers: bearer tokens (stored as
// SHA-256 hashes, revocable, with expiry), passwords hashed with Argon2id
// (libsodium), roles. Every route but POST /api/v1/login needs a token.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "core/auth.h"
#include "core/deployment.h"
#include "core/result.h"
#include "store/store.h"

namespace ads {

struct Caller {
  User user;
  Token token;
};

class Auth {
 public:
  explicit Auth(Store& store) : store_(store) {}

  // On the first start (no users yet) creates the user "admin" and a token
  // for it; returns that token's secret, to be shown once. Otherwise nullopt.
  Result<std::optional<std::string>> bootstrap();
  // The caller behind "Authorization: Bearer <token>"; Error "unauthorized"
  // saying what is wrong (missing, unknown, expired, revoked).
  Result<Caller> authenticate(const std::string& authorization_header);
  // A new token for `user`; returns it and its secret (shown once).
  // ttl_s 0: never expires.
  Result<std::pair<Token, std::string>> issue_token(const User& user, const std::string& name, int64_t ttl_s);
  Result<User> create_user(const std::string& name, Role role, const std::string& password);
  // Changes a user's role and/or password ("" in `password` removes it:
  // no password login). Refuses ("conflict") to leave no usable admin.
  Result<User> update_user(const std::string& name, std::optional<Role> role, std::optional<std::string> password);
  // Disables a user: revokes every token and removes the password. The user
  // stays (deployments and the audit name it). Returns the tokens revoked.
  Result<int> disable_user(const std::string& name);
  // Sign-in vouched for by an OpenID provider: the user named `email` (made
  // on first sign-in, without a password) gets `role` (the allow-list is the
  // authority, every time) and a token that expires in 12 hours.
  Result<std::pair<Token, std::string>> login_external(const std::string& email, Role role);
  // Password login: a token that expires in 12 hours.
  Result<std::pair<Token, std::string>> login(const std::string& name, const std::string& password);

  // Whether `c` may change deployment `d` (start, stop, destroy...).
  static bool can_manage(const Caller& c, const Deployment& d);
  static std::string hash_secret(const std::string& secret);

 private:
  std::string new_id();
  // Whether an admin other than `except_id` can still act (a password or a usable token).
  Result<bool> other_admin_exists(const std::string& except_id);
  Store& store_;
  std::mutex users_mu_;  // one change of users at a time (the last-admin check)
};

}  // namespace ads
