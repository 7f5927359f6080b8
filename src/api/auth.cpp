#include "api/auth.h"

#include <sodium.h>

#include <chrono>
#include <random>

#include "agent/protocol.h"
#include "core/id.h"
#include "core/names.h"
#include "core/oidc.h"

namespace ads {
namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
constexpr int64_t kLoginTtlS = 12 * 3600;

// Argon2id with libsodium's interactive limits.
Result<std::string> hash_password(const std::string& password) {
  if (password.size() < 12) return Error::invalid("password", "must be at least 12 characters");
  if (password.size() > 1024) return Error::invalid("password", "must be at most 1024 characters");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
    return Error::make("internal", "out of memory hashing the password");
  return std::string(out);
}
}  // namespace

std::string Auth::new_id() {
  std::array<uint8_t, 10> e;
  randombytes_buf(e.data(), e.size());
  return encode_ulid(static_cast<uint64_t>(now_ms()), e);
}

std::string Auth::hash_secret(const std::string& secret) { return agent::sha256_hex(secret); }

Result<std::optional<std::string>> Auth::bootstrap() {
  if (!agent::crypto_init()) return Error::make("internal", "libsodium cannot initialise");
  auto all = store_.users();
  if (!all) return all.error();
  if (!all->empty()) return std::optional<std::string>();
  auto admin = create_user("admin", Role::kAdmin, "");
  if (!admin) return admin.error();
  auto t = issue_token(*admin, "first start", 0);
  if (!t) return t.error();
  return std::optional<std::string>(t->second);
}

Result<Caller> Auth::authenticate(const std::string& header) {
  const std::string prefix = "Bearer ";
  if (header.empty()) return Error::make("unauthorized", "authentication required: send Authorization: Bearer <token>");
  if (header.rfind(prefix, 0) != 0) return Error::make("unauthorized", "the Authorization header must be \"Bearer <token>\"");
  std::string secret = header.substr(prefix.size());
  auto t = store_.token_by_hash(hash_secret(secret));
  if (!t) return Error::make("unauthorized", "unknown token");
  int64_t now = now_ms();
  if (t->revoked_ms != 0) return Error::make("unauthorized", "the token was revoked");
  if (t->expires_ms != 0 && now >= t->expires_ms) return Error::make("unauthorized", "the token has expired");
  auto u = store_.get_user(t->user_id);
  if (!u) return Error::make("unauthorized", "the token's user no longer exists");
  return Caller{std::move(u.value()), std::move(t.value())};
}

Result<std::pair<Token, std::string>> Auth::issue_token(const User& user, const std::string& name, int64_t ttl_s) {
  if (name.size() > 100) return Error::invalid("name", "must be at most 100 characters");
  if (ttl_s < 0) return Error::invalid("ttl_s", "must be 0 (never expires) or a positive number of seconds");
  Token t;
  t.id = new_id();
  t.user_id = user.id;
  t.name = name;
  t.created_ms = now_ms();
  t.expires_ms = ttl_s > 0 ? t.created_ms + ttl_s * 1000 : 0;
  std::string secret = "ads_" + agent::random_hex(24);
  t.hash = hash_secret(secret);
  auto st = store_.create_token(t);
  if (!st) return st.error();
  return std::make_pair(t, secret);
}

Result<User> Auth::create_user(const std::string& name, Role role, const std::string& password) {
  auto st = validate_lab_name(name, "name");  // same shape rules as lab names
  if (!st) return st.error();
  User u;
  u.id = new_id();
  u.name = name;
  u.role = role;
  u.created_ms = now_ms();
  if (!password.empty()) {
    auto h = hash_password(password);
    if (!h) return h.error();
    u.password_hash = *h;
  }
  std::lock_guard lock(users_mu_);
  st = store_.create_user(u);
  if (!st) return st.error();
  return u;
}

Result<bool> Auth::other_admin_exists(const std::string& except_id) {
  auto all = store_.users();
  if (!all) return all.error();
  int64_t now = now_ms();
  for (auto& u : *all) {
    if (u.id == except_id || u.role != Role::kAdmin) continue;
    if (!u.password_hash.empty()) return true;
    auto ts = store_.tokens_of(u.id);
    if (!ts) return ts.error();
    for (auto& t : *ts)
      if (t.usable_at(now)) return true;
  }
  return false;
}

Result<User> Auth::update_user(const std::string& name, std::optional<Role> role, std::optional<std::string> password) {
  std::lock_guard lock(users_mu_);
  auto u = store_.get_user_by_name(name);
  if (!u) return u.error();
  if (role && *role != Role::kAdmin && u->role == Role::kAdmin) {
    auto other = other_admin_exists(u->id);
    if (!other) return other.error();
    if (!*other) return Error{"conflict", name + " is the last admin who can sign in; make another admin first", "role"};
  }
  if (role) u->role = *role;
  if (password) {
    if (password->empty()) {
      u->password_hash.clear();
    } else {
      auto h = hash_password(*password);
      if (!h) return h.error();
      u->password_hash = *h;
    }
  }
  auto st = store_.update_user(*u);
  if (!st) return st.error();
  return *u;
}

Result<int> Auth::disable_user(const std::string& name) {
  std::lock_guard lock(users_mu_);
  auto u = store_.get_user_by_name(name);
  if (!u) return u.error();
  if (u->role == Role::kAdmin) {
    auto other = other_admin_exists(u->id);
    if (!other) return other.error();
    if (!*other) return Error{"conflict", name + " is the last admin who can sign in; make another admin first", "name"};
  }
  u->password_hash.clear();
  auto st = store_.update_user(*u);
  if (!st) return st.error();
  auto ts = store_.tokens_of(u->id);
  if (!ts) return ts.error();
  int n = 0;
  int64_t now = now_ms();
  for (auto& t : *ts) {
    if (t.revoked_ms != 0) continue;
    t.revoked_ms = now;
    st = store_.update_token(t);
    if (!st) return st.error();
    ++n;
  }
  return n;
}

Result<std::pair<Token, std::string>> Auth::login_external(const std::string& email, Role role) {
  auto st = validate_email(email, "email");
  if (!st) return st.error();
  User u;
  {
    std::lock_guard lock(users_mu_);
    auto found = store_.get_user_by_name(email);
    if (found) {
      u = *found;
      if (u.role != role) {
        u.role = role;
        st = store_.update_user(u);
        if (!st) return st.error();
      }
    } else if (found.error().code == "not_found") {
      u.id = new_id();
      u.name = email;
      u.role = role;
      u.created_ms = now_ms();
      st = store_.create_user(u);
      if (!st) return st.error();
    } else {
      return found.error();
    }
  }
  return issue_token(u, "oidc", kLoginTtlS);
}

Result<std::pair<Token, std::string>> Auth::login(const std::string& name, const std::string& password) {
  auto u = store_.get_user_by_name(name);
  // the same answer for an unknown user and a wrong password
  const Error denied = Error::make("unauthorized", "wrong user name or password");
  if (!u || u->password_hash.empty()) return denied;
  if (crypto_pwhash_str_verify(u->password_hash.c_str(), password.data(), password.size()) != 0) return denied;
  return issue_token(*u, "login", kLoginTtlS);
}

bool Auth::can_manage(const Caller& c, const Deployment& d) {
  if (c.user.role == Role::kAdmin) return true;
  if (c.user.role != Role::kDeployer) return false;
  return d.shared || d.owner == c.user.name;
}

}  // namespace ads
