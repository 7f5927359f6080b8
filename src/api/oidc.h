// Optional OpenID Connect sign-in (authorization code flow with PKCE) for
// the web UI. ADS reads the issuer's discovery document, sends the browser to
// its authorization endpoint, exchanges the code at its token endpoint with
// the client secret, checks the ID token's signature against the issuer's
// JWKS (libcjose) and its claims (core/oidc.h), maps the e-mail address
// through the allow-list to a role, and issues an ADS token (12 hours).
//   GET /api/v1/oidc/login     -> 302 to the issuer
//   GET /api/v1/oidc/callback  -> 302 to /#token=<secret> (a fragment: never
//                                 sent to a server, never in an access log)
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/auth.h"
#include "core/oidc.h"
#include "http/server.h"

namespace ads {

struct OidcSettings {
  std::string issuer;         // https://..., or http://127.0.0.1... / localhost (tests)
  std::string client_id;
  std::string client_secret;  // never logged, never in a response
  std::string redirect_uri;   // https://ads.example.org/api/v1/oidc/callback
  std::string scopes = "openid email";
  std::vector<AllowEntry> allow;
  std::string after_login = "/";  // where the browser lands, with #token=...
};

// Reads {"issuer","client_id","client_secret" | "client_secret_file",
// "redirect_uri","scopes"?,"allow":{"pattern":"role"}}; errors name "oidc.<key>".
Result<OidcSettings> parse_oidc_settings(const nlohmann::json& j);

struct OidcLogin {
  Token token;
  std::string secret;  // the new ADS token, shown once
  std::string email;
};

class Oidc {
 public:
  Oidc(OidcSettings s, Auth& auth) : s_(std::move(s)), auth_(auth) {}
  // The issuer URL to send the browser to (state, nonce, PKCE remembered for 10 minutes).
  Result<std::string> begin();
  // The callback: the code and state the issuer sent back. Errors: "invalid"
  // (state, code), "unauthorized" (token or claims), "forbidden" (not on the
  // allow-list), "unavailable" (the issuer).
  Result<OidcLogin> finish(const std::string& code, const std::string& state);
  const OidcSettings& settings() const { return s_; }

 private:
  struct Pending {
    std::string nonce, verifier;
    std::chrono::steady_clock::time_point made;
  };
  Result<nlohmann::json> discovery();
  Result<nlohmann::json> jwks(bool refresh);
  Result<nlohmann::json> verify_id_token(const std::string& id_token);

  OidcSettings s_;
  Auth& auth_;
  std::mutex mu_;
  nlohmann::json discovery_, jwks_;
  std::map<std::string, Pending> pending_;  // by state; one use each
};

// Adds the two routes (audited like every sign-in).
void register_oidc(http::Server& server, Store& store, Oidc& oidc);

}  // namespace ads
