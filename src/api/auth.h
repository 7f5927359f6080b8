// Authentication and authorization of API callers: bearer tokens (stored as
// SHA-256 hashes, revocable, with expiry), passwords hashed with Argon2id
// (libsodium), roles, accounts bound to a person at an OpenID provider.
// Every route but POST /api/v1/login needs a token.
//
// Every change of users and tokens here takes an AuditNote (api/audit.h) and
// writes it before changing anything; when the audit cannot be written the
// change is not made and the error is returned.
//
// Last admin: no change may leave ADS without an enabled admin who can still
// act, i.e. who has a password, a token that does not expire, or (when OpenID
// Connect sign-in is on) an account bound at the OpenID provider. Demoting,
// disabling, removing a password and revoking a token are all checked.
// `ads admin reset` (reset_admin) is the way back for the machine's root.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>

#include "api/audit.h"
#include "core/auth.h"
#include "core/deployment.h"
#include "core/oidc.h"
#include "core/result.h"
#include "store/store.h"

namespace ads {

struct Caller {
  User user;
  Token token;
  AuditNote* audit = nullptr;  // the request's audit entry; null outside a request
};

// A new token and its secret (shown once).
using IssuedToken = std::pair<Token, std::string>;

class Auth {
 public:
  static constexpr int64_t kSessionTtlS = 12 * 3600;  // sign-in sessions (password, OpenID Connect)

  explicit Auth(Store& store) : store_(store) {}

  // With OpenID Connect sign-in configured, an admin account bound at the
  // provider counts as an admin who can sign in (the last-admin rule).
  void set_oidc_sign_in(bool on) { oidc_sign_in_ = on; }

  // On the first start (no users yet) creates the user "admin" and a token
  // for it; returns that token's secret, to be shown once. Otherwise nullopt.
  Result<std::optional<std::string>> bootstrap();
  // The caller behind "Authorization: Bearer <token>"; Error "unauthorized"
  // saying what is wrong (missing, unknown, expired, revoked, user disabled),
  // or "store_unavailable" when the store could not answer (no verdict).
  Result<Caller> authenticate(const std::string& authorization_header);
  // A new token for `user` (ttl_s 0: never expires). `session`: made by a sign-in.
  Result<IssuedToken> issue_token(const User& user, const std::string& name, int64_t ttl_s, AuditNote* note = nullptr,
                                  bool session = false);
  Result<User> create_user(const std::string& name, Role role, const std::string& password, AuditNote* note = nullptr);
  // Changes a user's role and/or password ("" in `password` removes it:
  // no password login). Refuses ("conflict") to leave no admin who can act.
  Result<User> update_user(const std::string& name, std::optional<Role> role, std::optional<std::string> password,
                           AuditNote* note = nullptr);
  // Disables a user: marks it disabled (no sign-in of any kind, its tokens
  // refused), revokes every token and removes the password. The user stays
  // (deployments and the audit name it). Returns the tokens revoked.
  Result<int> disable_user(const std::string& name, AuditNote* note = nullptr);
  // Lets a disabled user sign in again (with what it has: a new password or
  // token, or its OpenID account).
  Result<User> enable_user(const std::string& name, AuditNote* note = nullptr);
  // Forgets the OpenID identity a user is bound to (the person left and the
  // address went to someone else): the next sign-in with a verified address
  // of that name binds it again. Refuses to take the last admin's way in.
  Result<User> unbind_user(const std::string& name, AuditNote* note = nullptr);
  // Revokes a token (the caller's right to do so is the API's to check).
  // Refuses ("conflict") to revoke the last way an admin can act.
  Result<Token> revoke_token(const std::string& id, AuditNote* note = nullptr);
  // Sign-out: revokes the caller's token if it is a session token (made by a
  // sign-in); an API token (such as the first-start admin token) is left
  // alone: signing out of a browser must not lock anyone out. Returns whether
  // a token was revoked.
  Result<bool> end_session(const Caller& c, AuditNote* note = nullptr);
  // Sign-in vouched for by an OpenID provider. The account is the one bound
  // to (issuer, subject); the first time, it is made (named by the address)
  // or, when an account of that name exists and is bound to nobody yet,
  // bound to this person. A disabled account, or one of that name bound to
  // another person, is refused ("forbidden"). It gets `role` (the allow-list
  // is the authority, every time) and a 12-hour session token.
  Result<IssuedToken> login_external(const IdTokenIdentity& who, Role role, AuditNote* note = nullptr);
  // Password sign-in: a 12-hour session token. Unknown, disabled and
  // password-less users cost one Argon2 verification too (against a dummy
  // hash), so their answer takes as long as a wrong password's.
  Result<IssuedToken> login(const std::string& name, const std::string& password, AuditNote* note = nullptr);
  // Recovery by the machine's root (`ads admin reset`): `name` (made if
  // missing) becomes an enabled admin with a new token that never expires.
  Result<IssuedToken> reset_admin(const std::string& name, AuditNote* note = nullptr);

  // Whether `c` may change deployment `d` (start, stop, destroy...).
  static bool can_manage(const Caller& c, const Deployment& d);
  static std::string hash_secret(const std::string& secret);
  // How many Argon2 verifications this Auth has run (a seam for tests).
  uint64_t password_checks() const { return password_checks_.load(); }

 private:
  // What a change would take away (ids; "" : nothing of that kind).
  struct Loss {
    std::string user;      // demoted or disabled
    std::string password;  // whose password is removed
    std::string token;     // revoked
    std::string binding;   // whose OpenID binding is forgotten
  };
  std::string new_id();
  // Whether an enabled admin can still act after `loss`.
  Result<bool> admin_remains(const Loss& loss);
  // Refuses (conflict on `field`) a change that would leave no admin who can
  // act where one could before.
  Status guard_last_admin(const Loss& loss, const std::string& who, const std::string& field);
  IssuedToken make_token(const User& user, const std::string& name, int64_t ttl_s, bool session);
  bool verify_password(const std::string& hash, const std::string& password);

  Store& store_;
  bool oidc_sign_in_ = false;
  std::mutex users_mu_;  // one change of users and tokens at a time (the last-admin check)
  std::atomic<uint64_t> password_checks_{0};
};

// "token 01H.. (\"ci\") for pat, expires 2026-01-01T00:00:00Z" (audit detail).
std::string describe_token(const Token& t, const std::string& user_name);

}  // namespace ads
