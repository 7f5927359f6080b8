// Optional OpenID Connect sign-in (authorization code flow with PKCE) for
// the web UI. ADS reads the issuer's discovery document, sends the browser to
// its authorization endpoint, exchanges the code at its token endpoint with
// the client secret, checks the ID token's signature against the issuer's
// JWKS (libcjose) and its claims (core/oidc.h), finds the account bound to
// the token's (iss, sub), maps the verified e-mail address through the
// allow-list to a role, and issues an ADS session token (12 hours).
//   GET /api/v1/oidc/login[?ui=N] -> 302 to the issuer, and the browser-binding cookie
//   GET /api/v1/oidc/callback     -> 302 to /#token=<secret>&sso=N (a fragment:
//                                    never sent to a server, never in an access
//                                    log; the web UI takes the token only with
//                                    the N it made for this tab)
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/audit.h"
#include "api/auth.h"
#include "api/limits.h"
#include "core/oidc.h"
#include "http/server.h"

namespace ads {

struct OidcSettings {
  std::string issuer;  // https://..., or http://127.0.0.1... / localhost (tests)
  std::string client_id;
  std::string client_secret;  // never logged, never in a response
  std::string redirect_uri;   // https://ads.example.org/api/v1/oidc/callback
  std::string scopes = "openid email";
  std::vector<AllowEntry> allow;
  // false (the default): an ID token must say email_verified: true. true: a
  // token without the claim is accepted (a provider that never sends it and
  // does not let its users pick their address); false is refused anyway.
  bool accept_unverified_email = false;
  std::string after_login = "/";  // where the browser lands, with #token=...
};

// Reads {"issuer","client_id","client_secret" | "client_secret_file",
// "redirect_uri","scopes"?,"accept_unverified_email"?,
// "allow":{"pattern":"admin|deployer|viewer|deny"}}; errors name "oidc.<key>".
Result<OidcSettings> parse_oidc_settings(const nlohmann::json& j);

struct OidcLogin {
  Token token;
  std::string secret;  // the new ADS token, shown once
  std::string email;
  std::string ui;  // the web UI's nonce given at begin() (echoed back in the fragment)
};

// The cookie that binds a sign-in to the browser that started it: set by
// /oidc/login (HttpOnly, SameSite=Lax, for /api/v1/oidc only, 10 minutes),
// checked by the callback. Someone else's callback URL (a link carrying the
// attacker's own code and state) is refused in the victim's browser.
inline constexpr const char* kOidcBindingCookie = "ads_oidc";

class Oidc {
 public:
  static constexpr size_t kMaxPending = 1000;
  static constexpr size_t kMaxPendingPerAddress = 10;

  Oidc(OidcSettings s, Auth& auth) : s_(std::move(s)), auth_(auth) {}
  // The issuer URL to send the browser to (state, nonce, PKCE remembered for
  // 10 minutes with the client's address, the browser `binding` and the web
  // UI's `ui` nonce). When full, the oldest sign-in of the address with the
  // most of them is forgotten: a flood from a few addresses cannot push out
  // the sign-ins of everyone else. Errors: "invalid" (ui), "unavailable".
  Result<std::string> begin(const std::string& address, const std::string& binding, const std::string& ui = "");
  // Whether `state` is a sign-in under way (unused, unexpired).
  bool pending(const std::string& state);
  // The callback: the code and state the issuer sent back, and the browser
  // binding from the cookie. Errors: "invalid" (state, or not this browser's,
  // code), "unauthorized" (token or claims), "forbidden" (not on the
  // allow-list, or the account may not sign in), "unavailable" (the issuer).
  // The sign-in's changes are audited in `note` before they are made.
  Result<OidcLogin> finish(const std::string& code, const std::string& state, const std::string& binding,
                           AuditNote* note = nullptr);
  const OidcSettings& settings() const { return s_; }

 private:
  struct Pending {
    std::string nonce, verifier, address, binding, ui;
    std::chrono::steady_clock::time_point made;
  };
  Result<nlohmann::json> discovery();
  Result<nlohmann::json> jwks(bool refresh);
  Result<nlohmann::json> verify_id_token(const std::string& id_token);
  // The claims of the UserInfo endpoint for the person `sub` (Core 5.3).
  Result<nlohmann::json> userinfo(const nlohmann::json& discovery, const std::string& access_token,
                                  const std::string& sub);

  OidcSettings s_;
  Auth& auth_;
  std::mutex mu_;
  nlohmann::json discovery_, jwks_;
  std::map<std::string, Pending> pending_;  // by state; one use each
};

// Adds the two routes. Refused callbacks and sign-ins started count against
// a per-address budget (`limits.oidc_sign_ins_per_minute`); beyond it they
// get 429 and are not audited one by one: the next audited refusal from that
// address says how many were left out.
void register_oidc(http::Server& server, Store& store, Oidc& oidc, const ApiLimits& limits = {});

}  // namespace ads
