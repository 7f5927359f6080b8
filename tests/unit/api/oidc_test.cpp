// OpenID Connect sign-in end to end against a local OpenID provider (this
// file's FakeIssuer: discovery, authorize, token with PKCE check, JWKS), with
// ID tokens signed by libcjose. No real identity provider is reachable here.
#include "api/oidc.h"

#include <cjose/cjose.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>

#include "unit/api/api_fixture.h"

namespace {
using ads::test::ApiTest;
using nlohmann::json;

std::string b64url(const std::string& s) {
  std::string out(sodium_base64_encoded_len(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string url_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_form(const std::string& s) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t amp = s.find('&', i);
    std::string kv = s.substr(i, amp == std::string::npos ? std::string::npos : amp - i);
    auto eq = kv.find('=');
    if (eq != std::string::npos) out[url_decode(kv.substr(0, eq))] = url_decode(kv.substr(eq + 1));
    if (amp == std::string::npos) break;
    i = amp + 1;
  }
  return out;
}

cjose_jwk_t* rsa_key(const char* kid) {
  static const uint8_t e[] = {0x01, 0x00, 0x01};
  cjose_err err;
  cjose_jwk_t* k = cjose_jwk_create_RSA_random(2048, e, sizeof e, &err);
  cjose_jwk_set_kid(k, kid, std::strlen(kid), &err);
  return k;
}

std::string sign(cjose_jwk_t* key, const json& claims, const char* alg = "RS256") {
  cjose_err err;
  cjose_header_t* h = cjose_header_new(&err);
  cjose_header_set(h, CJOSE_HDR_ALG, alg, &err);
  cjose_header_set(h, CJOSE_HDR_KID, cjose_jwk_get_kid(key, &err), &err);
  std::string p = claims.dump();
  cjose_jws_t* jws = cjose_jws_sign(key, h, reinterpret_cast<const uint8_t*>(p.data()), p.size(), &err);
  const char* ser = nullptr;
  cjose_jws_export(jws, &ser, &err);
  std::string out = ser ? ser : "";
  cjose_jws_release(jws);
  cjose_header_release(h);
  return out;
}

// A small OpenID provider that checks what a real one checks: the client's
// secret, one use of each code, the redirect URI and the PKCE verifier.
class FakeIssuer {
 public:
  FakeIssuer() : server_(ads::http::ServerOptions{"127.0.0.1", 0, 65536, 8, 5}) {
    key = rsa_key("k1");
    rogue = rsa_key("k1");  // same kid, other key
    server_.route("GET", "/.well-known/openid-configuration", [this](ads::http::Request&) {
      return ads::http::Response::json(200, json{{"issuer", base},
                                                 {"authorization_endpoint", base + "/authorize"},
                                                 {"token_endpoint", base + "/token"},
                                                 {"jwks_uri", base + "/jwks"}}
                                                .dump());
    });
    server_.route("GET", "/jwks", [this](ads::http::Request&) {
      ++jwks_fetches;
      cjose_err err;
      char* pub = cjose_jwk_to_json(key, false, &err);
      json set = {{"keys", json::array({json::parse(pub)})}};
      free(pub);
      return ads::http::Response::json(200, set.dump());
    });
    server_.route("GET", "/authorize", [this](ads::http::Request& req) {
      Code c{req.query_or("nonce", ""), req.query_or("code_challenge", ""), req.query_or("redirect_uri", "")};
      EXPECT_EQ(req.query_or("code_challenge_method", ""), "S256");
      EXPECT_EQ(req.query_or("client_id", ""), "ads-test");
      EXPECT_NE(req.query_or("scope", "").find("openid"), std::string::npos);
      std::string code = "code" + std::to_string(codes_.size());
      codes_[code] = c;
      ads::http::Response r;
      r.status = 302;
      r.headers.push_back({"Location", c.redirect + "?code=" + code + "&state=" + req.query_or("state", "")});
      return r;
    });
    server_.route("POST", "/token", [this](ads::http::Request& req) {
      auto f = parse_form(req.body);
      auto bad = [](const char* e) { return ads::http::Response::json(400, json{{"error", e}}.dump()); };
      if (token_status != 200) return ads::http::Response::json(token_status, json{{"error", "invalid_grant"}}.dump());
      if (f["client_id"] != "ads-test" || f["client_secret"] != "s3cret-of-the-client") return bad("invalid_client");
      auto it = codes_.find(f["code"]);
      if (f["grant_type"] != "authorization_code" || it == codes_.end()) return bad("invalid_grant");
      Code c = it->second;
      codes_.erase(it);
      if (f["redirect_uri"] != c.redirect) return bad("invalid_grant");
      unsigned char d[crypto_hash_sha256_BYTES];
      crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(f["code_verifier"].data()), f["code_verifier"].size());
      if (b64url(std::string(reinterpret_cast<char*>(d), sizeof d)) != c.challenge) return bad("invalid_grant");
      int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
      json claims = {{"iss", base}, {"aud", "ads-test"}, {"sub", "42"},  {"exp", now + 300},
                     {"iat", now},  {"nonce", c.nonce},  {"email", email}, {"email_verified", true}};
      claims.update(overrides);
      std::string id_token = raw_id_token.empty() ? sign(sign_with_rogue ? rogue : key, claims) : raw_id_token;
      return ads::http::Response::json(200, json{{"access_token", "at"}, {"token_type", "Bearer"}, {"id_token", id_token}}.dump());
    });
    EXPECT_TRUE(server_.start().ok());
    base = "http://127.0.0.1:" + std::to_string(server_.port());
  }
  ~FakeIssuer() {
    server_.stop();
    cjose_jwk_release(key);
    cjose_jwk_release(rogue);
  }
  std::string base;
  cjose_jwk_t* key;
  cjose_jwk_t* rogue;
  std::string email = "alice@example.org";
  json overrides = json::object();
  bool sign_with_rogue = false;
  std::string raw_id_token;
  int token_status = 200;
  int jwks_fetches = 0;

 private:
  struct Code {
    std::string nonce, challenge, redirect;
  };
  std::map<std::string, Code> codes_;
  ads::http::Server server_;
};

class OidcTest : public ApiTest {
 protected:
  void add_routes() override {
    auto s = ads::parse_oidc_settings({{"issuer", issuer.base},
                                       {"client_id", "ads-test"},
                                       {"client_secret", "s3cret-of-the-client"},
                                       {"redirect_uri", "http://127.0.0.1/api/v1/oidc/callback"},
                                       {"allow", {{"alice@example.org", "deployer"}, {"*@example.org", "viewer"}}}});
    ASSERT_TRUE(s.ok()) << s.error().message;
    oidc = std::make_unique<ads::Oidc>(*s, *auth);
    ads::register_oidc(*server, *store, *oidc);
  }
  ads::http::ClientResponse get(const std::string& url) {
    ads::http::ClientRequest r;
    r.url = url;
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok());
    return res ? *res : ads::http::ClientResponse{};
  }
  std::string ads_base() { return "http://127.0.0.1:" + std::to_string(server->port()); }
  // login -> issuer -> the callback URL the browser would be sent to (on ADS)
  std::string callback_url() {
    auto login = get(ads_base() + "/api/v1/oidc/login");
    EXPECT_EQ(login.status, 302) << login.body;
    EXPECT_EQ(login.headers["location"].rfind(issuer.base + "/authorize?", 0), 0u) << login.headers["location"];
    auto authz = get(login.headers["location"]);
    EXPECT_EQ(authz.status, 302) << authz.body;
    std::string cb = authz.headers["location"];
    return ads_base() + cb.substr(cb.find("/api/v1/oidc/callback"));
  }
  // the whole sign-in; the ADS token from the final redirect, or "" (then `last` has the answer)
  std::string sign_in() {
    last = get(callback_url());
    if (last.status != 302) return "";
    std::string loc = last.headers["location"];
    EXPECT_EQ(loc.rfind("/#token=", 0), 0u) << loc;
    return loc.substr(loc.find('=') + 1);
  }
  void expect_refused(long status, const std::string& words) {
    EXPECT_EQ(sign_in(), "");
    EXPECT_EQ(last.status, status) << last.body;
    json b = json::parse(last.body, nullptr, false);
    ASSERT_TRUE(b.is_object() && b.contains("error")) << last.body;
    EXPECT_NE(b["error"]["message"].get<std::string>().find(words), std::string::npos) << last.body;
    EXPECT_EQ(last.body.find("s3cret"), std::string::npos);
  }
  FakeIssuer issuer;
  std::unique_ptr<ads::Oidc> oidc;
  ads::http::ClientResponse last;
};

TEST_F(OidcTest, AllowListedAddressesSignInWithTheirRole) {
  std::string tok = sign_in();
  ASSERT_FALSE(tok.empty()) << last.body;
  auto me = call_as(tok, "GET", "/api/v1/whoami");
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.body["name"], "alice@example.org");
  EXPECT_EQ(me.body["role"], "deployer");
  EXPECT_FALSE(me.body["password"].get<bool>());
  EXPECT_FALSE(me.body["token"]["expires_at"].is_null());
  EXPECT_EQ(call_as(tok, "POST", "/api/v1/deployments", R"({"source":"https://example.invalid/labs/lab.git"})").status,
            202);
  // the domain entry
  issuer.email = "bob@example.org";
  std::string bob = sign_in();
  ASSERT_FALSE(bob.empty()) << last.body;
  EXPECT_EQ(call_as(bob, "GET", "/api/v1/whoami").body["role"], "viewer");
  // the allow-list decides the role at every sign-in, even after an admin changed it
  ASSERT_EQ(call("PATCH", "/api/v1/users/bob@example.org", R"({"role":"admin"})").status, 200);
  EXPECT_EQ(call_as(sign_in(), "GET", "/api/v1/whoami").body["role"], "viewer");
  // the audit names who signed in
  json audit = call("GET", "/api/v1/audit").body;
  bool seen = false;
  for (auto& e : audit["entries"]) seen |= e["action"] == "GET /api/v1/oidc/callback" && e["user"] == "alice@example.org";
  EXPECT_TRUE(seen) << audit.dump();
  EXPECT_EQ(audit.dump().find(tok), std::string::npos) << "no token in the audit";
}

TEST_F(OidcTest, RefusesWhatIsNotOnTheAllowListOrNotProperlySigned) {
  issuer.email = "eve@evil.test";
  expect_refused(403, "not on the allow-list");
  issuer.email = "alice@example.org";
  issuer.sign_with_rogue = true;
  expect_refused(401, "signature does not verify");
  issuer.sign_with_rogue = false;
  // "none" and a shared-secret algorithm are never accepted
  issuer.raw_id_token = b64url(R"({"alg":"none"})") + "." + b64url(R"({"iss":"x","email":"alice@example.org"})") + ".";
  expect_refused(401, "\"none\"");
  {
    cjose_err err;
    cjose_jwk_t* oct = cjose_jwk_create_oct_random(256, &err);
    cjose_jwk_set_kid(oct, "k1", 2, &err);
    issuer.raw_id_token = sign(oct, {{"iss", issuer.base}, {"email", "alice@example.org"}}, "HS256");
    cjose_jwk_release(oct);
  }
  expect_refused(401, "HS256");
  issuer.raw_id_token = "not.a.jws!";
  expect_refused(401, "ID token");
  issuer.raw_id_token = "";
  // a valid signature over wrong claims
  issuer.overrides = {{"aud", "another-client"}};
  expect_refused(401, "aud");
  issuer.overrides = {{"nonce", "from-another-sign-in"}};
  expect_refused(401, "nonce");
  issuer.overrides = {{"exp", 1000}};
  expect_refused(401, "expired");
  issuer.overrides = {{"iss", "https://evil.example"}};
  expect_refused(401, "iss");
  issuer.overrides = {{"email_verified", false}};
  expect_refused(401, "email_verified");
  issuer.overrides = json::object();
  issuer.token_status = 400;
  expect_refused(401, "refused the code");
  issuer.token_status = 200;
  // none of these made a user
  EXPECT_FALSE(store->get_user_by_name("alice@example.org").ok());
  EXPECT_FALSE(store->get_user_by_name("eve@evil.test").ok());
}

TEST_F(OidcTest, StatesAreOneUseAndTheIssuersErrorsAreClear) {
  std::string cb = callback_url();
  EXPECT_EQ(get(cb).status, 302);
  auto again = get(cb);  // a replayed callback
  EXPECT_EQ(again.status, 400) << again.body;
  EXPECT_NE(again.body.find("\"field\":\"state\""), std::string::npos) << again.body;
  EXPECT_EQ(get(ads_base() + "/api/v1/oidc/callback?code=x&state=made-up").status, 400);
  EXPECT_EQ(get(ads_base() + "/api/v1/oidc/callback").status, 400);
  auto denied = get(ads_base() + "/api/v1/oidc/callback?error=access_denied&state=x");
  EXPECT_EQ(denied.status, 401);
  EXPECT_NE(denied.body.find("access_denied"), std::string::npos);
}

// A browser (Accept: text/html) is sent back to the sign-in page with the
// reason in the fragment instead of a raw JSON page; no token goes with it.
TEST_F(OidcTest, ABrowserIsSentBackToTheSignInPageWithTheReason) {
  auto browser_get = [&](const std::string& url) {
    ads::http::ClientRequest r;
    r.url = url;
    r.headers = {{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}};
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok());
    return res ? *res : ads::http::ClientResponse{};
  };
  auto denied = browser_get(ads_base() + "/api/v1/oidc/callback?error=access_denied&state=x");
  EXPECT_EQ(denied.status, 302);
  EXPECT_EQ(denied.headers["location"],
            "/#error=the%20OpenID%20provider%20refused%20the%20sign-in%3A%20access_denied");
  auto forged = browser_get(ads_base() + "/api/v1/oidc/callback?code=x&state=made-up");
  EXPECT_EQ(forged.status, 302);
  EXPECT_EQ(forged.headers["location"].rfind("/#error=state%3A%20", 0), 0u) << forged.headers["location"];
  EXPECT_EQ(forged.headers["location"].find("token"), std::string::npos);
  // the refusals are audited with their real status
  auto audit = store->audit(0, 100);
  ASSERT_TRUE(audit.ok());
  int refused = 0;
  for (auto& e : *audit) refused += e.action == "GET /api/v1/oidc/callback" && (e.status == 401 || e.status == 400);
  EXPECT_EQ(refused, 2);
}

TEST_F(OidcTest, ARotatedKeyIsFetchedOnceAndUsed) {
  ASSERT_FALSE(sign_in().empty()) << last.body;
  EXPECT_EQ(issuer.jwks_fetches, 1);
  ASSERT_FALSE(sign_in().empty()) << last.body;
  EXPECT_EQ(issuer.jwks_fetches, 1) << "the key set is cached";
  cjose_jwk_release(issuer.key);
  issuer.key = rsa_key("k2");
  ASSERT_FALSE(sign_in().empty()) << last.body;
  EXPECT_EQ(issuer.jwks_fetches, 2);
}

TEST(OidcSettings, BadSettingsNameTheirKey) {
  json good = {{"issuer", "https://id.example.org/"},
               {"client_id", "ads"},
               {"client_secret", "x"},
               {"redirect_uri", "https://ads.example.org/api/v1/oidc/callback"},
               {"allow", {{"*@example.org", "viewer"}}}};
  auto s = ads::parse_oidc_settings(good);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->issuer, "https://id.example.org");
  auto refused = [&](const char* key, json value, const std::string& field) {
    json j = good;
    if (value.is_null()) j.erase(key);
    else j[key] = value;
    auto r = ads::parse_oidc_settings(j);
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_EQ(r.error().field, field) << r.error().message;
  };
  refused("issuer", "http://id.example.org", "oidc.issuer");  // plain http off this machine
  refused("issuer", nullptr, "oidc.issuer");
  refused("client_id", nullptr, "oidc.client_id");
  refused("client_secret", nullptr, "oidc.client_secret");
  refused("client_secret_file", "/nonexistent/secret", "oidc.client_secret_file");
  refused("redirect_uri", "ftp://x", "oidc.redirect_uri");
  refused("scopes", "email", "oidc.scopes");
  refused("allow", json::object(), "oidc.allow");
  refused("allow", {{"*", "admin"}}, "oidc.allow.*");
  refused("allow", {{"a@example.org", "root"}}, "oidc.allow.a@example.org");
  refused("colour", "blue", "oidc.colour");
  refused("client_id", 5, "oidc.client_id");
  EXPECT_EQ(ads::parse_oidc_settings(json::array()).error().field, "oidc");
}

}  // namespace
