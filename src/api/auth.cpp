#include "api/auth.h"

#include <sodium.h>

#include <chrono>
#include <ctime>
#include <mutex>

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

std::string iso(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

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

// A hash of a random password with the same parameters as every real one:
// verifying against it costs what verifying a real password costs.
const std::string& dummy_hash() {
  static std::once_flag once;
  static std::string hash;
  std::call_once(once, [] {
    auto h = hash_password(agent::random_hex(32));
    hash = h ? *h : std::string();
  });
  return hash;
}

// A store that did not answer a token lookup: no verdict on the token.
Error store_unavailable(const Error& e) {
  return Error::make("store_unavailable", "the server's store is unavailable (" + e.message +
                                              "); the token was not checked, try again later");
}

Status begin(AuditNote* note, const std::string& target, const std::string& detail) {
  if (!note) return Status::Ok();
  note->describe(target, detail);
  return note->begin();
}
}  // namespace

std::string describe_token(const Token& t, const std::string& user_name) {
  return std::string(t.session ? "session token " : "token ") + t.id + " (\"" + t.name + "\") for " + user_name +
         ", expires " + (t.expires_ms ? iso(t.expires_ms) : "never");
}

std::string Auth::new_id() {
  std::array<uint8_t, 10> e;
  randombytes_buf(e.data(), e.size());
  return encode_ulid(static_cast<uint64_t>(now_ms()), e);
}

std::string Auth::hash_secret(const std::string& secret) { return agent::sha256_hex(secret); }

bool Auth::verify_password(const std::string& hash, const std::string& password) {
  ++password_checks_;
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

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
  if (header.rfind(prefix, 0) != 0)
    return Error::make("unauthorized", "the Authorization header must be \"Bearer <token>\"");
  std::string secret = header.substr(prefix.size());
  auto t = store_.token_by_hash(hash_secret(secret));
  if (!t && t.error().code != "not_found") return store_unavailable(t.error());
  if (!t) return Error::make("unauthorized", "unknown token");
  int64_t now = now_ms();
  if (t->revoked_ms != 0) return Error::make("unauthorized", "the token was revoked");
  if (t->expires_ms != 0 && now >= t->expires_ms) return Error::make("unauthorized", "the token has expired");
  auto u = store_.get_user(t->user_id);
  if (!u && u.error().code != "not_found") return store_unavailable(u.error());
  if (!u) return Error::make("unauthorized", "the token's user no longer exists");
  if (u->disabled()) return Error::make("unauthorized", "the token's user is disabled");
  return Caller{std::move(u.value()), std::move(t.value())};
}

IssuedToken Auth::make_token(const User& user, const std::string& name, int64_t ttl_s, bool session) {
  Token t;
  t.id = new_id();
  t.user_id = user.id;
  t.name = name;
  t.created_ms = now_ms();
  t.expires_ms = ttl_s > 0 ? t.created_ms + ttl_s * 1000 : 0;
  t.session = session;
  std::string secret = "ads_" + agent::random_hex(24);
  t.hash = hash_secret(secret);
  return {t, secret};
}

Result<IssuedToken> Auth::issue_token(const User& user, const std::string& name, int64_t ttl_s, AuditNote* note,
                                      bool session) {
  if (name.size() > 100) return Error::invalid("name", "must be at most 100 characters");
  if (ttl_s < 0) return Error::invalid("ttl_s", "must be 0 (never expires) or a positive number of seconds");
  if (ttl_s > 100LL * 365 * 86400) return Error::invalid("ttl_s", "must be at most 100 years");
  auto issued = make_token(user, name, ttl_s, session);
  auto st = begin(note, user.name, describe_token(issued.first, user.name));
  if (!st) return st.error();
  st = store_.create_token(issued.first);
  if (!st) return st.error();
  return issued;
}

Result<User> Auth::create_user(const std::string& name, Role role, const std::string& password, AuditNote* note) {
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
  st =
      begin(note, name, "created with role " + to_string(role) + (password.empty() ? ", no password" : ", a password"));
  if (!st) return st.error();
  st = store_.create_user(u);
  if (!st) return st.error();
  return u;
}

Result<bool> Auth::admin_remains(const Loss& loss) {
  auto all = store_.users();
  if (!all) return all.error();
  for (auto& u : *all) {
    if (u.role != Role::kAdmin || u.disabled() || u.id == loss.user) continue;
    if (!u.password_hash.empty() && u.id != loss.password) return true;
    if (oidc_sign_in_ && u.bound() && u.id != loss.binding) return true;
    auto ts = store_.tokens_of(u.id);
    if (!ts) return ts.error();
    // a token that expires is no lasting way in: an admin left with only
    // that is locked out within hours
    for (auto& t : *ts)
      if (t.id != loss.token && t.revoked_ms == 0 && t.expires_ms == 0) return true;
  }
  return false;
}

Status Auth::guard_last_admin(const Loss& loss, const std::string& who, const std::string& field) {
  auto after = admin_remains(loss);
  if (!after) return after.error();
  if (*after) return Status::Ok();
  auto before = admin_remains({});
  if (!before) return before.error();
  if (!*before) return Status::Ok();  // nobody could act before either: this change takes nothing away
  return Error{"conflict",
               who + " is the last admin who can sign in (a password, a token that does not expire" +
                   std::string(oidc_sign_in_ ? " or an OpenID account" : "") +
                   "); make another admin or give them another way in first (locked out: `ads admin reset` as root)",
               field};
}

Result<User> Auth::update_user(const std::string& name, std::optional<Role> role, std::optional<std::string> password,
                               AuditNote* note) {
  std::optional<std::string> new_hash;
  if (password && !password->empty()) {
    auto h = hash_password(*password);
    if (!h) return h.error();
    new_hash = *h;
  }
  std::lock_guard lock(users_mu_);
  auto u = store_.get_user_by_name(name);
  if (!u) return u.error();
  Loss loss;
  std::string field;
  if (u->role == Role::kAdmin && role && *role != Role::kAdmin) {
    loss.user = u->id;
    field = "role";
  } else if (u->role == Role::kAdmin && password && password->empty() && !u->password_hash.empty()) {
    loss.password = u->id;
    field = "password";
  }
  if (!field.empty()) {
    auto st = guard_last_admin(loss, name, field);
    if (!st) return st.error();
  }
  std::string detail;
  if (role && *role != u->role) detail = "role " + to_string(u->role) + " -> " + to_string(*role);
  else if (role) detail = "role " + to_string(*role) + " (unchanged)";
  if (password)
    detail += std::string(detail.empty() ? "" : "; ") + (password->empty() ? "password removed" : "password set");
  if (role) u->role = *role;
  if (password) u->password_hash = new_hash.value_or("");
  auto st = begin(note, name, detail);
  if (!st) return st.error();
  st = store_.update_user(*u);
  if (!st) return st.error();
  return *u;
}

Result<int> Auth::disable_user(const std::string& name, AuditNote* note) {
  std::lock_guard lock(users_mu_);
  auto u = store_.get_user_by_name(name);
  if (!u) return u.error();
  if (u->role == Role::kAdmin) {
    auto st = guard_last_admin({u->id, "", "", ""}, name, "name");
    if (!st) return st.error();
  }
  auto ts = store_.tokens_of(u->id);
  if (!ts) return ts.error();
  int64_t now = now_ms();
  int live = 0;
  for (auto& t : *ts) live += t.revoked_ms == 0;
  auto st = begin(
      note, name,
      "disabled (role " + to_string(u->role) + "); password removed; " + std::to_string(live) + " tokens revoked");
  if (!st) return st.error();
  u->password_hash.clear();
  if (!u->disabled()) u->disabled_ms = now;
  st = store_.update_user(*u);
  if (!st) return st.error();
  int n = 0;
  for (auto& t : *ts) {
    if (t.revoked_ms != 0) continue;
    t.revoked_ms = now;
    st = store_.update_token(t);
    if (!st) return st.error();
    ++n;
  }
  return n;
}

Result<User> Auth::enable_user(const std::string& name, AuditNote* note) {
  std::lock_guard lock(users_mu_);
  auto u = store_.get_user_by_name(name);
  if (!u) return u.error();
  auto st =
      begin(note, name, u->disabled() ? "enabled (role " + to_string(u->role) + ")" : "enabled (was not disabled)");
  if (!st) return st.error();
  if (!u->disabled()) return *u;
  u->disabled_ms = 0;
  st = store_.update_user(*u);
  if (!st) return st.error();
  return *u;
}

Result<User> Auth::unbind_user(const std::string& name, AuditNote* note) {
  std::lock_guard lock(users_mu_);
  auto u = store_.get_user_by_name(name);
  if (!u) return u.error();
  if (!u->bound()) {
    if (note) note->describe(name, "was bound to no OpenID identity");
    return *u;
  }
  if (u->role == Role::kAdmin) {
    auto st = guard_last_admin({"", "", "", u->id}, name, "name");
    if (!st) return st.error();
  }
  auto st = begin(note, name, "unbound from issuer " + u->oidc_issuer + " subject " + u->oidc_subject);
  if (!st) return st.error();
  st = store_.unbind_user(u->id);
  if (!st) return st.error();
  u->oidc_issuer.clear();
  u->oidc_subject.clear();
  return *u;
}

Result<Token> Auth::revoke_token(const std::string& id, AuditNote* note) {
  std::lock_guard lock(users_mu_);
  auto t = store_.get_token(id);
  if (!t) return t.error();
  auto u = store_.get_user(t->user_id);
  if (!u) return u.error();
  if (t->revoked_ms != 0) {
    if (note) note->describe(u->name, describe_token(*t, u->name) + ": revoked already");
    return *t;
  }
  if (u->role == Role::kAdmin) {
    auto st = guard_last_admin({"", "", t->id, ""}, u->name, "id");
    if (!st) return st.error();
  }
  auto st = begin(note, u->name, "revoked " + describe_token(*t, u->name));
  if (!st) return st.error();
  t->revoked_ms = now_ms();
  st = store_.update_token(*t);
  if (!st) return st.error();
  return *t;
}

Result<bool> Auth::end_session(const Caller& c, AuditNote* note) {
  if (!c.token.session) {
    if (note)
      note->describe(c.user.name,
                     "signed out; " + describe_token(c.token, c.user.name) + " kept (not a session token)");
    return false;
  }
  std::lock_guard lock(users_mu_);
  auto t = store_.get_token(c.token.id);
  if (!t) return t.error();
  if (t->revoked_ms != 0) return false;
  auto st = begin(note, c.user.name, "signed out; revoked " + describe_token(*t, c.user.name));
  if (!st) return st.error();
  t->revoked_ms = now_ms();
  st = store_.update_token(*t);
  if (!st) return st.error();
  return true;
}

Result<IssuedToken> Auth::login_external(const IdTokenIdentity& who, Role role, AuditNote* note) {
  auto st = validate_email(who.email, "email");
  if (!st) return st.error();
  if (who.subject.empty()) return Error::invalid("sub", "an OpenID sign-in needs a subject");
  std::lock_guard lock(users_mu_);
  const std::string identity = "issuer " + who.issuer + " subject " + who.subject;
  User u;
  enum { kKnown, kBind, kCreate } how = kKnown;
  auto found = store_.get_user_by_subject(who.issuer, who.subject);
  if (found) {
    u = *found;
  } else if (found.error().code != "not_found") {
    return found.error();
  } else {
    auto by_name = store_.get_user_by_name(who.email);
    if (by_name) {
      u = *by_name;
      if (u.bound())
        return Error::make(
            "forbidden",
            "the account " + u.name + " belongs to another person at the OpenID provider; an admin must sort this out");
      how = kBind;
    } else if (by_name.error().code == "not_found") {
      u.id = new_id();
      u.name = who.email;
      u.role = role;
      u.created_ms = now_ms();
      u.oidc_issuer = who.issuer;
      u.oidc_subject = who.subject;
      how = kCreate;
    } else {
      return by_name.error();
    }
  }
  if (note) note->set_user(u.name);
  if (u.disabled()) {
    if (note) note->describe(u.name, "refused: the account is disabled");
    return Error::make("forbidden", "the account " + u.name + " is disabled; an admin can enable it");
  }
  std::string detail = how == kCreate
                           ? "account created by OpenID Connect sign-in with role " + to_string(role) + ", " + identity
                       : how == kBind ? "bound to " + identity + " at its first OpenID Connect sign-in"
                                      : "OpenID Connect sign-in";
  if (how != kCreate) {
    detail += u.role != role ? "; role " + to_string(u.role) + " -> " + to_string(role) + " (from the allow-list)"
                             : "; role " + to_string(role);
  }
  bool role_changes = how != kCreate && u.role != role;
  u.role = role;
  auto issued = make_token(u, "oidc", kSessionTtlS, true);
  st = begin(note, u.name, detail + "; " + describe_token(issued.first, u.name));
  if (!st) return st.error();
  if (how == kCreate) {
    st = store_.create_user(u);
  } else if (how == kBind) {
    st = store_.bind_user(u.id, who.issuer, who.subject);
  }
  if (!st) return st.error();
  if (role_changes) {
    st = store_.update_user(u);
    if (!st) return st.error();
  }
  st = store_.create_token(issued.first);
  if (!st) return st.error();
  return issued;
}

Result<IssuedToken> Auth::login(const std::string& name, const std::string& password, AuditNote* note) {
  // the same answer for an unknown user, a disabled one and a wrong password
  const Error denied = Error::make("unauthorized", "wrong user name or password");
  auto u = store_.get_user_by_name(name);
  if (!u && u.error().code != "not_found") return u.error();
  bool usable = u && !u->password_hash.empty() && !u->disabled();
  // one Argon2 verification whatever the case, so that the time of the answer
  // does not tell which names exist
  const std::string& hash = usable ? u->password_hash : dummy_hash();
  bool good = verify_password(hash, password);
  if (!usable || !good) return denied;
  return issue_token(*u, "login", kSessionTtlS, note, true);
}

Result<IssuedToken> Auth::reset_admin(const std::string& name, AuditNote* note) {
  auto st = validate_lab_name(name, "user");
  if (!st) return st.error();
  std::lock_guard lock(users_mu_);
  auto u = store_.get_user_by_name(name);
  bool create = false;
  if (!u) {
    if (u.error().code != "not_found") return u.error();
    User n;
    n.id = new_id();
    n.name = name;
    n.role = Role::kAdmin;
    n.created_ms = now_ms();
    u = n;
    create = true;
  }
  std::string detail = create ? "created as admin by the machine's root"
                              : "reset by the machine's root: role " + to_string(u->role) + " -> admin" +
                                    (u->disabled() ? ", enabled again" : "");
  auto issued = make_token(*u, "reset", 0, false);
  st = begin(note, name, detail + "; new " + describe_token(issued.first, name));
  if (!st) return st.error();
  u->role = Role::kAdmin;
  u->disabled_ms = 0;
  st = create ? store_.create_user(*u) : store_.update_user(*u);
  if (!st) return st.error();
  st = store_.create_token(issued.first);
  if (!st) return st.error();
  return issued;
}

bool Auth::can_manage(const Caller& c, const Deployment& d) {
  if (c.user.role == Role::kAdmin) return true;
  if (c.user.role != Role::kDeployer) return false;
  return d.shared || d.owner == c.user.name;
}

}  // namespace ads
