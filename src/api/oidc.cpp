#include "api/oidc.h"

#include <cjose/cjose.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>

#include "agent/protocol.h"
#include "core/text.h"
#include "http/client.h"

namespace ads {
using http::Request;
using http::Response;
using nlohmann::json;

namespace {
constexpr auto kPendingTtl = std::chrono::minutes(10);

std::string b64url(const unsigned char* p, size_t n) {
  std::string out(sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string random_b64url(size_t bytes) {
  std::vector<unsigned char> b(bytes);
  randombytes_buf(b.data(), b.size());
  return b64url(b.data(), b.size());
}

std::string form_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// https, or plain http to this machine only (a local test issuer).
bool acceptable_url(const std::string& u) {
  if (u.rfind("https://", 0) == 0) return true;
  for (const char* local : {"http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:", "http://localhost/"})
    if (u.rfind(local, 0) == 0) return true;
  return false;
}

Result<json> get_json(const std::string& url, const std::string& what) {
  http::ClientRequest r;
  r.url = url;
  r.timeout_ms = 10000;
  auto res = http::request(r);
  if (!res)
    return Error::make("unavailable", "cannot reach the OpenID provider for its " + what + ": " + res.error().message);
  if (res->status != 200)
    return Error::make("unavailable",
                       "the OpenID provider's " + what + " answered HTTP " + std::to_string(res->status));
  json j = json::parse(res->body, nullptr, false);
  if (!j.is_object()) return Error::make("unavailable", "the OpenID provider's " + what + " is not a JSON object");
  return j;
}

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Error denied(const std::string& msg) { return Error::make("unauthorized", msg); }

// j[key] if it is a string, else "".
std::string string_claim(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A random value of our own making: base64url, 16 to 128 characters.
bool nonce_shaped(const std::string& v) {
  if (v.size() < 16 || v.size() > 128) return false;
  for (unsigned char c : v)
    if (!(std::isalnum(c) || c == '-' || c == '_')) return false;
  return true;
}

// The value of cookie `name` in a Cookie header ("" if absent).
std::string cookie_value(const std::string& header, const std::string& name) {
  size_t i = 0;
  while (i < header.size()) {
    size_t end = header.find(';', i);
    if (end == std::string::npos) end = header.size();
    std::string part = header.substr(i, end - i);
    size_t b = part.find_first_not_of(" \t");
    if (b != std::string::npos) {
      part = part.substr(b);
      auto eq = part.find('=');
      if (eq != std::string::npos && part.substr(0, eq) == name) {
        std::string v = part.substr(eq + 1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
        return v;
      }
    }
    i = end + 1;
  }
  return "";
}
}  // namespace

Result<OidcSettings> parse_oidc_settings(const json& j) {
  if (!j.is_object()) return Error::invalid("oidc", "must be an object");
  OidcSettings s;
  std::string secret_file;
  for (auto& [k, v] : j.items()) {
    std::string field = "oidc." + k;
    if (k == "allow") {
      if (!v.is_object() || v.empty()) return Error::invalid(field, "must be an object of e-mail pattern -> role");
      for (auto& [pattern, role] : v.items()) {
        auto st = validate_allow_pattern(pattern, field + "." + pattern);
        if (!st) return st.error();
        if (role == "deny") {
          s.allow.push_back({pattern, Role::kViewer, true});
          continue;
        }
        auto r = role.is_string() ? role_from_string(role.get<std::string>()) : std::nullopt;
        if (!r) return Error::invalid(field + "." + pattern, "must be admin, deployer, viewer or deny");
        s.allow.push_back({pattern, *r, false});
      }
      continue;
    }
    if (k == "accept_unverified_email") {
      if (!v.is_boolean()) return Error::invalid(field, "must be true or false");
      s.accept_unverified_email = v.get<bool>();
      continue;
    }
    if (!v.is_string()) return Error::invalid(field, "must be a string");
    std::string x = v.get<std::string>();
    if (k == "issuer") s.issuer = x;
    else if (k == "client_id") s.client_id = x;
    else if (k == "client_secret") s.client_secret = x;
    else if (k == "client_secret_file") secret_file = x;
    else if (k == "redirect_uri") s.redirect_uri = x;
    else if (k == "scopes") s.scopes = x;
    else return Error::invalid(field, "is not a known setting");
  }
  if (!secret_file.empty()) {
    std::ifstream in(secret_file);
    if (!in || !std::getline(in, s.client_secret))
      return Error::invalid("oidc.client_secret_file", "cannot read " + secret_file);
  }
  if (!acceptable_url(s.issuer)) return Error::invalid("oidc.issuer", "must be an https:// URL");
  if (s.client_id.empty()) return Error::invalid("oidc.client_id", "is required");
  if (s.client_secret.empty()) return Error::invalid("oidc.client_secret", "is required (or client_secret_file)");
  if (s.redirect_uri.rfind("https://", 0) != 0 && s.redirect_uri.rfind("http://", 0) != 0)
    return Error::invalid("oidc.redirect_uri", "must be the URL of /api/v1/oidc/callback on this server");
  if (s.scopes.find("openid") == std::string::npos) return Error::invalid("oidc.scopes", "must include openid");
  if (s.allow.empty()) return Error::invalid("oidc.allow", "is required: who may sign in, with which role");
  if (std::all_of(s.allow.begin(), s.allow.end(), [](const AllowEntry& a) { return a.deny; }))
    return Error::invalid("oidc.allow", "lets nobody in: every entry is \"deny\"");
  if (s.issuer.back() == '/') s.issuer.pop_back();
  return s;
}

Result<json> Oidc::discovery() {
  {
    std::lock_guard lk(mu_);
    if (!discovery_.is_null()) return discovery_;
  }
  auto d = get_json(s_.issuer + "/.well-known/openid-configuration", "discovery document");
  if (!d) return d.error();
  for (const char* k : {"authorization_endpoint", "token_endpoint", "jwks_uri"}) {
    if (!(*d)[k].is_string() || !acceptable_url((*d)[k].get<std::string>()))
      return Error::make("unavailable", std::string("the OpenID provider's discovery document has no usable ") + k);
  }
  if ((*d).value("issuer", "") != s_.issuer)
    return Error::make("unavailable",
                       "the discovery document names issuer " + (*d).value("issuer", "") + ", not " + s_.issuer);
  std::lock_guard lk(mu_);
  discovery_ = *d;
  return discovery_;
}

Result<json> Oidc::jwks(bool refresh) {
  {
    std::lock_guard lk(mu_);
    if (!refresh && !jwks_.is_null()) return jwks_;
  }
  auto d = discovery();
  if (!d) return d.error();
  auto k = get_json((*d)["jwks_uri"].get<std::string>(), "key set");
  if (!k) return k.error();
  if (!(*k)["keys"].is_array()) return Error::make("unavailable", "the OpenID provider's key set has no keys");
  std::lock_guard lk(mu_);
  jwks_ = *k;
  return jwks_;
}

Result<std::string> Oidc::begin(const std::string& address, const std::string& binding, const std::string& ui) {
  if (!ui.empty() && !nonce_shaped(ui)) return Error::invalid("ui", "must be 16 to 128 characters of A-Z a-z 0-9 - _");
  if (!nonce_shaped(binding)) return Error::invalid("binding", "the browser binding is malformed");
  auto d = discovery();
  if (!d) return d.error();
  Pending p{random_b64url(24), random_b64url(32), address, binding, ui, std::chrono::steady_clock::now()};
  std::string state = random_b64url(24);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(p.verifier.data()), p.verifier.size());
  std::string challenge = b64url(digest, sizeof digest);
  {
    std::lock_guard lk(mu_);
    auto now = std::chrono::steady_clock::now();
    for (auto it = pending_.begin(); it != pending_.end();)
      it = now - it->second.made > kPendingTtl ? pending_.erase(it) : std::next(it);
    // Full for this address, or full: forget the oldest sign-in of the
    // address holding the most (this one when it is at its own cap), never
    // one of an address that has fewer: a flood pushes out only its own.
    std::map<std::string, size_t> per_address;
    for (auto& [st, q] : pending_) ++per_address[q.address];
    while (per_address[address] >= kMaxPendingPerAddress || pending_.size() >= kMaxPending) {
      std::string victim = address;
      if (per_address[address] < kMaxPendingPerAddress) {
        for (auto& [a, n] : per_address)
          if (n > per_address[victim]) victim = a;
      }
      auto oldest = pending_.end();
      for (auto it = pending_.begin(); it != pending_.end(); ++it)
        if (it->second.address == victim && (oldest == pending_.end() || it->second.made < oldest->second.made))
          oldest = it;
      if (oldest == pending_.end()) break;  // cannot happen: the victim holds at least one
      pending_.erase(oldest);
      --per_address[victim];
    }
    pending_[state] = p;
  }
  std::string url = (*d)["authorization_endpoint"].get<std::string>();
  url += (url.find('?') == std::string::npos ? "?" : "&");
  url += "response_type=code&client_id=" + form_escape(s_.client_id) + "&redirect_uri=" + form_escape(s_.redirect_uri) +
         "&scope=" + form_escape(s_.scopes) + "&state=" + state + "&nonce=" + p.nonce + "&code_challenge=" + challenge +
         "&code_challenge_method=S256";
  return url;
}

Result<json> Oidc::userinfo(const json& discovery, const std::string& access_token, const std::string& sub) {
  if (!discovery.contains("userinfo_endpoint") || !discovery["userinfo_endpoint"].is_string())
    return denied("the ID token has no email claim and the OpenID provider has no userinfo endpoint");
  std::string url = discovery["userinfo_endpoint"].get<std::string>();
  if (!acceptable_url(url)) return Error::make("unavailable", "the OpenID provider's userinfo endpoint is not https");
  if (access_token.empty() || access_token.size() > 8192)
    return denied("the ID token has no email claim and the token answer has no usable access_token");
  http::ClientRequest r;
  r.url = url;
  r.timeout_ms = 10000;
  r.headers = {{"Authorization", "Bearer " + access_token}, {"Accept", "application/json"}};
  auto res = http::request(r);
  if (!res)
    return Error::make("unavailable", "cannot reach the OpenID provider's userinfo endpoint: " + res.error().message);
  if (res->status != 200)
    return Error::make("unavailable",
                       "the OpenID provider's userinfo endpoint answered HTTP " + std::to_string(res->status));
  json j = json::parse(res->body, nullptr, false);
  if (!j.is_object()) return denied("the OpenID provider's userinfo answer is not a JSON object");
  if (sub.empty() || string_claim(j, "sub") != sub)
    return denied("the userinfo answer is about another subject than the ID token");
  return j;
}

Result<json> Oidc::verify_id_token(const std::string& id_token) {
  cjose_err err;
  cjose_jws_t* jws = cjose_jws_import(id_token.data(), id_token.size(), &err);
  if (!jws) return denied("the ID token is not a compact JWS");
  std::unique_ptr<cjose_jws_t, void (*)(cjose_jws_t*)> guard(jws, cjose_jws_release);
  cjose_header_t* hdr = cjose_jws_get_protected(jws);
  const char* alg = hdr ? cjose_header_get(hdr, CJOSE_HDR_ALG, &err) : nullptr;
  const char* kid = hdr ? cjose_header_get(hdr, CJOSE_HDR_KID, &err) : nullptr;
  std::string a = alg ? alg : "";
  // only asymmetric signatures: never "none", never HS256 with a guessable key
  if (a != "RS256" && a != "ES256" && a != "PS256")
    return denied("the ID token is signed with \"" + a + "\"; RS256, PS256 or ES256 is required");
  bool verified = false;
  for (bool refresh : {false, true}) {  // a key we do not know yet: the issuer may have rotated
    auto set = jwks(refresh);
    if (!set) return set.error();
    bool kid_known = false;
    for (auto& k : (*set)["keys"]) {
      if (kid && k.value("kid", "") != kid) continue;
      kid_known = true;
      std::string text = k.dump();
      cjose_jwk_t* jwk = cjose_jwk_import(text.data(), text.size(), &err);
      if (!jwk) continue;
      verified = cjose_jws_verify(jws, jwk, &err);
      cjose_jwk_release(jwk);
      if (verified) break;
    }
    if (verified || kid_known) break;
  }
  if (!verified) return denied("the ID token's signature does not verify with the issuer's keys");
  uint8_t* plain = nullptr;
  size_t len = 0;
  if (!cjose_jws_get_plaintext(jws, &plain, &len, &err)) return denied("the ID token has no payload");
  json claims = json::parse(std::string(reinterpret_cast<char*>(plain), len), nullptr, false);
  if (!claims.is_object()) return denied("the ID token's payload is not a JSON object");
  return claims;
}

bool Oidc::pending(const std::string& state) {
  std::lock_guard lk(mu_);
  auto it = pending_.find(state);
  return !state.empty() && it != pending_.end() && std::chrono::steady_clock::now() - it->second.made <= kPendingTtl;
}

Result<OidcLogin> Oidc::finish(const std::string& code, const std::string& state, const std::string& binding,
                               AuditNote* note) {
  Pending p;
  {
    std::lock_guard lk(mu_);
    auto it = pending_.find(state);
    if (state.empty() || it == pending_.end() || std::chrono::steady_clock::now() - it->second.made > kPendingTtl) {
      if (it != pending_.end()) pending_.erase(it);
      return Error::invalid("state", "unknown, used or expired sign-in; start again at /api/v1/oidc/login");
    }
    p = it->second;
    pending_.erase(it);  // one use, whatever happens next
  }
  // the browser that started this sign-in, and no other, may finish it
  if (binding.size() != p.binding.size() || sodium_memcmp(binding.data(), p.binding.data(), binding.size()) != 0)
    return Error::invalid("state", "this sign-in was not started in this browser; start again at /api/v1/oidc/login");
  if (code.empty() || code.size() > 4096) return Error::invalid("code", "is missing");
  auto d = discovery();
  if (!d) return d.error();
  http::ClientRequest r;
  r.method = "POST";
  r.url = (*d)["token_endpoint"].get<std::string>();
  r.timeout_ms = 10000;
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
  r.body = "grant_type=authorization_code&code=" + form_escape(code) + "&redirect_uri=" + form_escape(s_.redirect_uri) +
           "&client_id=" + form_escape(s_.client_id) + "&client_secret=" + form_escape(s_.client_secret) +
           "&code_verifier=" + p.verifier;
  auto res = http::request(r);
  if (!res)
    return Error::make("unavailable", "cannot reach the OpenID provider's token endpoint: " + res.error().message);
  json body = json::parse(res->body, nullptr, false);
  if (res->status != 200) {
    std::string why = body.is_object() ? body.value("error", "") : "";
    return denied("the OpenID provider refused the code (HTTP " + std::to_string(res->status) +
                  (why.empty() ? "" : ", " + why.substr(0, 64)) + ")");
  }
  if (!body.is_object() || !body["id_token"].is_string())
    return Error::make("unavailable", "the OpenID provider's token answer has no id_token");
  auto claims = verify_id_token(body["id_token"].get<std::string>());
  if (!claims) return claims.error();
  if (!claims->contains("email")) {
    // A provider that follows OpenID Connect Core 5.4 to the letter gives
    // the claims asked for by scope at its UserInfo endpoint only, not in the
    // ID token (the code flow): ask there, for the address and whether it is
    // verified, and only for the person the ID token names (Core 5.3.2).
    auto extra = userinfo(*d, string_claim(body, "access_token"), string_claim(*claims, "sub"));
    if (!extra) return extra.error();
    for (const char* k : {"email", "email_verified"})
      if (extra->contains(k)) (*claims)[k] = (*extra)[k];
  }
  ExpectedClaims want{s_.issuer, s_.client_id, p.nonce, now_s()};
  want.require_email_verified = !s_.accept_unverified_email;
  auto who = check_id_token_claims(*claims, want);
  if (!who) return who.error();
  auto role = role_for_email(s_.allow, who->email);
  if (!role) {
    if (note) note->describe(who->email, "refused: " + who->email + " (subject " + who->subject + ")");
    return Error::make("forbidden", who->email + (denied_by_allow_list(s_.allow, who->email)
                                                      ? " is denied by the allow-list of this ADS"
                                                      : " is not on the allow-list of this ADS"));
  }
  auto t = auth_.login_external(*who, *role, note);
  if (!t) return t.error();
  return OidcLogin{t->first, t->second, who->email, p.ui};
}

void register_oidc(http::Server& server, Store& store, Oidc& oidc, const ApiLimits& limits) {
  // Per address: sign-ins started and callbacks that are no sign-in under way.
  auto budget = std::make_shared<SharedLimiter>(store, "oidc:", limits.oidc_sign_ins_per_minute / 60.0,
                                                limits.oidc_sign_in_burst);
  // Refused callbacks over the budget are counted here and reported by the
  // next one from that address that is audited (bounded: the map is dropped
  // when it holds too many addresses; the audit then says less, never more).
  struct Unrecorded {
    std::mutex mu;
    std::map<std::string, int64_t> by_address;
  };
  auto unrecorded = std::make_shared<Unrecorded>();
  const bool secure_cookie = oidc.settings().redirect_uri.rfind("https://", 0) == 0;

  server.route("GET", "/api/v1/oidc/login", [&oidc, budget, secure_cookie](Request& req) {
    int64_t wait_s = 0;
    std::string key = address_key(req.remote);
    if (!budget->take(key, audit_now_ms(), &wait_s)) {
      Response r = Response::error(429, "too_many_requests", "too many sign-ins started from " + req.remote);
      r.headers.push_back({"Retry-After", std::to_string(wait_s)});
      return r;
    }
    // one binding per browser, kept while it has sign-ins under way (two tabs share it)
    std::string binding = cookie_value(req.header("cookie"), kOidcBindingCookie);
    if (!nonce_shaped(binding)) binding = random_b64url(32);
    auto url = oidc.begin(key, binding, req.query_or("ui", ""));
    if (!url) {
      if (url.error().code == "invalid") return Response::error(400, "invalid", url.error().message, url.error().field);
      return Response::error(502, url.error().code, url.error().message);
    }
    Response r;
    r.status = 302;
    r.headers.push_back({"Location", *url});
    r.headers.push_back({"Set-Cookie", std::string(kOidcBindingCookie) + "=" + binding +
                                           "; Path=/api/v1/oidc; Max-Age=600; HttpOnly; SameSite=Lax" +
                                           (secure_cookie ? "; Secure" : "")});
    r.headers.push_back({"Cache-Control", "no-store"});
    return r;
  });

  server.route("GET", "/api/v1/oidc/callback", [&oidc, &store, budget, unrecorded](Request& req) {
    Response r;
    std::string refusal;
    std::string key = address_key(req.remote);
    std::string state = req.query_or("state", "");
    AuditNote note(store, AuditEntry{0, 0, "anonymous", "GET /api/v1/oidc/callback", "", req.remote, 0, ""});
    bool under_way = oidc.pending(state);
    int64_t wait_s = 0;
    if (!under_way && !budget->take(key, audit_now_ms(), &wait_s)) {
      // a flood of made-up callbacks: refused, counted, not audited one by one
      std::lock_guard lk(unrecorded->mu);
      if (unrecorded->by_address.size() > 10000) unrecorded->by_address.clear();
      ++unrecorded->by_address[key];
      r = Response::error(429, "too_many_requests", "too many sign-in callbacks from " + req.remote);
      r.headers.push_back({"Retry-After", std::to_string(wait_s)});
      return r;
    }
    if (!req.query_or("error", "").empty()) {
      refusal = "the OpenID provider refused the sign-in: " + valid_utf8(req.query_or("error", "").substr(0, 64));
      r = Response::error(401, "unauthorized", refusal);
      if (under_way) (void)oidc.finish("", state, "");  // forget the sign-in it ends
    } else {
      auto t =
          oidc.finish(req.query_or("code", ""), state, cookie_value(req.header("cookie"), kOidcBindingCookie), &note);
      if (!t) {
        const Error& e = t.error();
        int status = e.code == "invalid"             ? 400
                     : e.code == "forbidden"         ? 403
                     : e.code == "unauthorized"      ? 401
                     : e.code == "audit_unavailable" ? 503
                                                     : 502;
        r = Response::error(status, e.code, e.message, e.field);
        refusal = e.field.empty() ? e.message : e.field + ": " + e.message;
      } else {
        r.status = 302;
        std::string frag = "#token=" + t->secret + (t->ui.empty() ? "" : "&sso=" + t->ui);
        r.headers.push_back({"Location", oidc.settings().after_login + frag});
        r.headers.push_back({"Cache-Control", "no-store"});
        r.headers.push_back({"Referrer-Policy", "no-referrer"});
      }
    }
    if (!note.begun()) {  // a refusal: say so, and how many like it went unrecorded
      int64_t left_out = 0;
      {
        std::lock_guard lk(unrecorded->mu);
        auto it = unrecorded->by_address.find(key);
        if (it != unrecorded->by_address.end()) {
          left_out = it->second;
          unrecorded->by_address.erase(it);
        }
      }
      std::string detail = note.entry().detail.empty() ? refusal.substr(0, 300) : note.entry().detail;
      if (left_out > 0)
        detail += "; and " + std::to_string(left_out) + " refused callbacks from this address not recorded one by one";
      note.describe(note.entry().target, detail);
    }
    auto st = note.finish(r.status);
    if (!st) {
      if (!note.begun() || r.status != 302) {
        refusal = "the audit log cannot be written; nothing was changed";
        r = audit_failed(st.error());
      } else {
        spdlog::error("audit: the sign-in of {} is in the audit without its status: {}", note.entry().user,
                      st.error().message);
      }
    }
    if (!refusal.empty() && req.header("accept").find("text/html") != std::string::npos) {
      // a browser: back to the sign-in page, which shows the reason (the JSON
      // would be a raw page); other clients keep the JSON error
      Response back;
      back.status = 302;
      back.headers.push_back({"Location", oidc.settings().after_login + "#error=" + form_escape(refusal)});
      back.headers.push_back({"Cache-Control", "no-store"});
      return back;
    }
    return r;
  });
}

}  // namespace ads
