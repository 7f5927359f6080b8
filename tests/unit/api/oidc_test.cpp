// OpenID Connect sign-in end to end against a local OpenID provider (this
// file's FakeIssuer: discovery, authorize, token with PKCE check, JWKS), with
// ID tokens signed by libcjose. No real identity provider is reachable here.
#include "api/oidc.h"

#include <cjose/cjose.h>
#include <gtest/gtest.h>
#include <sodium.h>
#include <sqlite3.h>

#include <cstring>
#include <regex>

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
                                                 {"userinfo_endpoint", base + "/userinfo"},
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
    server_.route("GET", "/userinfo", [this](ads::http::Request& req) {
      ++userinfo_calls;
      if (req.header("authorization") != "Bearer at")
        return ads::http::Response::json(401, R"({"error":"invalid_token"})");
      return ads::http::Response::json(
          200,
          json{{"sub", userinfo_sub.empty() ? sub : userinfo_sub}, {"email", email}, {"email_verified", true}}.dump());
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
      crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(f["code_verifier"].data()),
                         f["code_verifier"].size());
      if (b64url(std::string(reinterpret_cast<char*>(d), sizeof d)) != c.challenge) return bad("invalid_grant");
      int64_t now =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
      json claims = {{"iss", base}, {"aud", "ads-test"}, {"sub", sub},     {"exp", now + 300},
                     {"iat", now},  {"nonce", c.nonce},  {"email", email}, {"email_verified", true}};
      claims.update(overrides);
      for (auto& k : drop) claims.erase(k);
      std::string id_token = raw_id_token.empty() ? sign(sign_with_rogue ? rogue : key, claims) : raw_id_token;
      return ads::http::Response::json(
          200, json{{"access_token", "at"}, {"token_type", "Bearer"}, {"id_token", id_token}}.dump());
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
  std::string sub = "42";
  json overrides = json::object();
  std::vector<std::string> drop;  // claims left out
  bool sign_with_rogue = false;
  std::string raw_id_token;
  int token_status = 200;
  int jwks_fetches = 0;
  int userinfo_calls = 0;
  std::string userinfo_sub;  // set: the userinfo endpoint speaks of this subject

 private:
  struct Code {
    std::string nonce, challenge, redirect;
  };
  std::map<std::string, Code> codes_;
  ads::http::Server server_;
};

class OidcTest : public ApiTest {
 protected:
  virtual json settings() {
    return {{"issuer", issuer.base},
            {"client_id", "ads-test"},
            {"client_secret", "s3cret-of-the-client"},
            {"redirect_uri", "http://127.0.0.1/api/v1/oidc/callback"},
            {"allow", {{"alice@example.org", "deployer"}, {"*@example.org", "viewer"}}}};
  }
  void add_routes() override {
    auto s = ads::parse_oidc_settings(settings());
    ASSERT_TRUE(s.ok()) << s.error().message;
    oidc = std::make_unique<ads::Oidc>(*s, *auth);
    auth->set_oidc_sign_in(true);
    ads::register_oidc(*server, *store, *oidc, limits());
  }
  // A GET as a browser with its own cookie jar would send it (the browser-binding cookie).
  ads::http::ClientResponse get(const std::string& url, const std::string& cookie = "") {
    ads::http::ClientRequest r;
    r.url = url;
    if (!cookie.empty()) r.headers.push_back({"Cookie", cookie});
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok());
    return res ? *res : ads::http::ClientResponse{};
  }
  std::string ads_base() { return "http://127.0.0.1:" + std::to_string(server->port()); }
  // login -> issuer -> the callback URL the browser would be sent to (on ADS);
  // `cookie` gets the binding cookie /oidc/login set ("name=value").
  std::string callback_url(std::string* cookie = nullptr, const std::string& query = "") {
    auto login = get(ads_base() + "/api/v1/oidc/login" + query);
    EXPECT_EQ(login.status, 302) << login.body;
    EXPECT_EQ(login.headers["location"].rfind(issuer.base + "/authorize?", 0), 0u) << login.headers["location"];
    std::string set = login.headers["set-cookie"];
    if (cookie) *cookie = set.substr(0, set.find(';'));
    auto authz = get(login.headers["location"]);
    EXPECT_EQ(authz.status, 302) << authz.body;
    std::string cb = authz.headers["location"];
    return ads_base() + cb.substr(cb.find("/api/v1/oidc/callback"));
  }
  // the whole sign-in in one browser; the ADS token from the final redirect,
  // or "" (then `last` has the answer)
  std::string sign_in() {
    std::string cookie;
    std::string cb = callback_url(&cookie);
    last = get(cb, cookie);
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
  // the domain entry (another person)
  issuer.email = "bob@example.org";
  issuer.sub = "43";
  std::string bob = sign_in();
  ASSERT_FALSE(bob.empty()) << last.body;
  EXPECT_EQ(call_as(bob, "GET", "/api/v1/whoami").body["role"], "viewer");
  // the allow-list decides the role at every sign-in, even after an admin changed it
  ASSERT_EQ(call("PATCH", "/api/v1/users/bob@example.org", R"({"role":"admin"})").status, 200);
  EXPECT_EQ(call_as(sign_in(), "GET", "/api/v1/whoami").body["role"], "viewer");
  // the audit names who signed in
  json audit = call("GET", "/api/v1/audit").body;
  bool seen = false;
  for (auto& e : audit["entries"])
    seen |= e["action"] == "GET /api/v1/oidc/callback" && e["user"] == "alice@example.org";
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
  issuer.drop = {"email_verified"};  // not said is not verified
  expect_refused(401, "email_verified");
  issuer.drop = {};
  issuer.overrides = {{"azp", "another-client"}};  // issued to another client, naming us as audience
  expect_refused(401, "azp");
  issuer.overrides = json::object();
  issuer.token_status = 400;
  expect_refused(401, "refused the code");
  issuer.token_status = 200;
  // none of these made a user
  EXPECT_FALSE(store->get_user_by_name("alice@example.org").ok());
  EXPECT_FALSE(store->get_user_by_name("eve@evil.test").ok());
}

TEST_F(OidcTest, StatesAreOneUseAndTheIssuersErrorsAreClear) {
  std::string cookie;
  std::string cb = callback_url(&cookie);
  EXPECT_EQ(get(cb, cookie).status, 302);
  auto again = get(cb, cookie);  // a replayed callback
  EXPECT_EQ(again.status, 400) << again.body;
  EXPECT_NE(again.body.find("\"field\":\"state\""), std::string::npos) << again.body;
  EXPECT_EQ(get(ads_base() + "/api/v1/oidc/callback?code=x&state=made-up").status, 400);
  EXPECT_EQ(get(ads_base() + "/api/v1/oidc/callback").status, 400);
  auto denied = get(ads_base() + "/api/v1/oidc/callback?error=access_denied&state=x");
  EXPECT_EQ(denied.status, 401);
  EXPECT_NE(denied.body.find("access_denied"), std::string::npos);
  // the provider's error is quoted as text, whatever bytes came (it was a 500 with no audit)
  auto odd = get(ads_base() + "/api/v1/oidc/callback?error=bad%FFbyte&state=x");
  EXPECT_EQ(odd.status, 401) << odd.body;
  EXPECT_NE(odd.body.find("bad\xEF\xBF\xBD"
                          "byte"),
            std::string::npos)
      << odd.body;
  EXPECT_EQ(store->audit(0, 100)->back().status, 401);
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
  EXPECT_EQ(denied.headers["location"], "/#error=the%20OpenID%20provider%20refused%20the%20sign-in%3A%20access_denied");
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

// A provider that gives the address at its userinfo endpoint only (as OpenID
// Connect Core says for claims asked for by scope): ADS asks there, for the
// person the ID token names and nobody else.
TEST_F(OidcTest, TheAddressComesFromTheUserinfoEndpointWhenTheIdTokenHasNone) {
  std::string tok = sign_in();
  ASSERT_FALSE(tok.empty()) << last.body;
  EXPECT_EQ(issuer.userinfo_calls, 0) << "not needed when the ID token has the address";
  issuer.drop = {"email", "email_verified"};
  issuer.email = "bob@example.org";
  issuer.sub = "43";
  std::string bob = sign_in();
  ASSERT_FALSE(bob.empty()) << last.body;
  EXPECT_EQ(issuer.userinfo_calls, 1);
  EXPECT_EQ(call_as(bob, "GET", "/api/v1/whoami").body["name"], "bob@example.org");
  issuer.userinfo_sub = "someone-else";
  expect_refused(401, "another subject");
}

// The ID token's iss and sub name the account, not its e-mail address: a
// provider that lets people edit their address (and does not say it is
// verified) cannot make one person another.
class OidcUnverifiedTest : public OidcTest {
 protected:
  json settings() override {
    json s = OidcTest::settings();
    s["accept_unverified_email"] = true;
    s["allow"] = {{"alice@example.org", "admin"}, {"*@example.org", "viewer"}};
    return s;
  }
};

TEST_F(OidcUnverifiedTest, AccountsAreKeyedOnIssuerAndSubjectNotTheAddress) {
  std::string alice = sign_in();
  ASSERT_FALSE(alice.empty()) << last.body;
  auto me = call_as(alice, "GET", "/api/v1/whoami").body;
  EXPECT_EQ(me["role"], "admin");
  EXPECT_TRUE(me["oidc"].get<bool>());
  auto account = store->get_user_by_name("alice@example.org");
  ASSERT_TRUE(account.ok());
  EXPECT_EQ(account->oidc_issuer, issuer.base);
  EXPECT_EQ(account->oidc_subject, "42");
  // someone else at the provider puts alice's address on their account
  issuer.sub = "666";
  issuer.drop = {"email_verified"};  // the provider does not say it checked it (allowed by the setting)
  expect_refused(403, "belongs to another person");
  EXPECT_EQ(store->get_user_by_name("alice@example.org")->oidc_subject, "42");
  // alice changes her address at the provider: still her account, with the
  // role the allow-list gives her new address
  issuer.sub = "42";
  issuer.drop = {};
  issuer.email = "alice.new@example.org";
  std::string again = sign_in();
  ASSERT_FALSE(again.empty()) << last.body;
  me = call_as(again, "GET", "/api/v1/whoami").body;
  EXPECT_EQ(me["name"], "alice@example.org");
  EXPECT_EQ(me["role"], "viewer");
  EXPECT_FALSE(store->get_user_by_name("alice.new@example.org").ok());
}

// An account of that name made before accounts were bound (an older ADS) is
// bound to the first person who signs in with that verified address, and
// then to nobody else.
TEST_F(OidcTest, AnAccountMadeBeforeBindingIsBoundAtItsFirstSignInOnly) {
  ads::User old;
  old.id = "01bbbbbbbbbbbbbbbbbbbbbbbb";
  old.name = "bob@example.org";
  old.role = ads::Role::kViewer;
  old.created_ms = 1;
  ASSERT_TRUE(store->create_user(old).ok());
  issuer.email = "bob@example.org";
  issuer.sub = "43";
  std::string bob = sign_in();
  ASSERT_FALSE(bob.empty()) << last.body;
  EXPECT_EQ(call_as(bob, "GET", "/api/v1/whoami").body["id"], old.id);
  EXPECT_EQ(store->get_user(old.id)->oidc_subject, "43");
  issuer.sub = "44";  // another person with that address, later
  expect_refused(403, "belongs to another person");
  auto audit = store->audit(0, 100);
  bool bound = false;
  for (auto& e : *audit) bound |= e.detail.find("bound to issuer " + issuer.base + " subject 43") != std::string::npos;
  EXPECT_TRUE(bound) << "the binding is in the audit";
}

// The person left and their address went to someone else: an admin unbinds
// the account, and the next verified sign-in with that address takes it.
TEST_F(OidcTest, AnUnboundAccountGoesToTheNextPersonWithItsAddress) {
  std::string first = sign_in();
  ASSERT_FALSE(first.empty()) << last.body;
  std::string id = call_as(first, "GET", "/api/v1/whoami").body["id"];
  issuer.sub = "99";
  expect_refused(403, "belongs to another person");
  auto r = call("POST", "/api/v1/users/alice@example.org/unbind");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_FALSE(r.body["oidc"].get<bool>());
  std::string second = sign_in();
  ASSERT_FALSE(second.empty()) << last.body;
  EXPECT_EQ(call_as(second, "GET", "/api/v1/whoami").body["id"], id);
  EXPECT_EQ(store->get_user(id)->oidc_subject, "99");
  issuer.sub = "42";
  expect_refused(403, "belongs to another person");
  auto audit = store->audit(0, 1000);
  bool seen = false;
  for (auto& e : *audit) seen |= e.detail == "unbound from issuer " + issuer.base + " subject 42";
  EXPECT_TRUE(seen);
  expect_error(call("POST", "/api/v1/users/nobody@example.org/unbind"), 404);
}

TEST_F(OidcTest, ADisabledAccountStaysDisabledAtTheNextSignIn) {
  ASSERT_FALSE(sign_in().empty()) << last.body;
  ASSERT_EQ(call("POST", "/api/v1/users/alice@example.org/disable").status, 200);
  auto alice = *store->get_user_by_name("alice@example.org");
  size_t tokens = store->tokens_of(alice.id)->size();
  expect_refused(403, "disabled");
  EXPECT_TRUE(store->get_user(alice.id)->disabled());
  EXPECT_EQ(store->tokens_of(alice.id)->size(), tokens) << "no new token";
  ASSERT_EQ(call("POST", "/api/v1/users/alice@example.org/enable").status, 200);
  EXPECT_FALSE(sign_in().empty()) << last.body;
}

// A sign-in is finished only in the browser that started it: someone else's
// callback URL (their code and state) is refused without that browser's cookie.
TEST_F(OidcTest, TheCallbackOnlyFinishesASignInStartedInThisBrowser) {
  auto login = get(ads_base() + "/api/v1/oidc/login");
  std::string set = login.headers["set-cookie"];
  EXPECT_EQ(set.rfind("ads_oidc=", 0), 0u) << set;
  for (const char* attr : {"; Path=/api/v1/oidc", "; HttpOnly", "; SameSite=Lax", "; Max-Age=600"})
    EXPECT_NE(set.find(attr), std::string::npos) << set;
  EXPECT_EQ(set.find("Secure"), std::string::npos) << "an http redirect_uri: no Secure (it would never be sent)";
  // the same browser keeps its binding for a second sign-in (two tabs)
  std::string cookie = set.substr(0, set.find(';'));
  EXPECT_EQ(get(ads_base() + "/api/v1/oidc/login", cookie).headers["set-cookie"].substr(0, cookie.size()), cookie);

  std::string mine;
  std::string attackers = callback_url(&mine);  // the attacker's own sign-in, stopped at the callback
  for (const std::string& victim : {std::string(), std::string("ads_oidc=") + std::string(43, 'x')}) {
    auto r = get(victim.empty() ? callback_url(&mine) : attackers, victim);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("not started in this browser"), std::string::npos) << r.body;
  }
  EXPECT_FALSE(store->get_user_by_name("alice@example.org").ok()) << "nobody was signed in";
}

TEST_F(OidcTest, TheWebUisNonceComesBackWithTheToken) {
  const std::string nonce = "Zm9vYmFyYmF6cXV4cXV1eA";
  std::string cookie;
  std::string cb = callback_url(&cookie, "?ui=" + nonce);
  auto r = get(cb, cookie);
  ASSERT_EQ(r.status, 302) << r.body;
  EXPECT_TRUE(std::regex_match(r.headers["location"], std::regex("/#token=ads_[0-9a-f]+&sso=" + nonce)))
      << r.headers["location"];
  for (const char* bad : {"short", "has%20space%20in%20it%20yes", "%3Cscript%3Ealert(1)%3C/script%3E"}) {
    auto refused = get(ads_base() + "/api/v1/oidc/login?ui=" + bad);
    EXPECT_EQ(refused.status, 400) << bad;
    EXPECT_NE(refused.body.find("\"field\":\"ui\""), std::string::npos) << refused.body;
  }
}

// A flood of sign-ins started from a few addresses pushes out only the
// flooders' own: the one started earlier elsewhere can still finish.
TEST_F(OidcTest, AFloodOfSignInsPushesOutOnlyItsOwn) {
  const std::string binding(43, 'b');
  auto state_of = [](const std::string& url) {
    auto p = url.find("&state=");
    return url.substr(p + 7, url.find('&', p + 7) - p - 7);
  };
  auto first = oidc->begin("198.51.100.7", binding);
  ASSERT_TRUE(first.ok()) << first.error().message;
  std::string legit = state_of(*first);
  // one address alone holds at most kMaxPendingPerAddress: its oldest go first
  std::vector<std::string> own;
  for (size_t i = 0; i < ads::Oidc::kMaxPendingPerAddress + 1; ++i)
    own.push_back(state_of(*oidc->begin("203.0.113.9", binding)));
  EXPECT_FALSE(oidc->pending(own.front()));
  EXPECT_TRUE(oidc->pending(own.back()));
  // many addresses fill the table: each new one pushes out a flooder's, never the lone legit one
  for (size_t i = 0; i < ads::Oidc::kMaxPending + 200; ++i)
    ASSERT_TRUE(oidc->begin("10.9." + std::to_string(i / 10 / 250) + "." + std::to_string(i / 10 % 250), binding).ok());
  EXPECT_TRUE(oidc->pending(legit)) << "the sign-in started before the flood survives it";
}

class OidcLimitsTest : public OidcTest {
 protected:
  ads::ApiLimits limits() override {
    ads::ApiLimits l = OidcTest::limits();
    l.oidc_sign_ins_per_minute = 0.001;
    l.oidc_sign_in_burst = 3;
    return l;
  }
};

TEST_F(OidcLimitsTest, SignInsStartedAreLimitedPerAddress) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(get(ads_base() + "/api/v1/oidc/login").status, 302);
  auto over = get(ads_base() + "/api/v1/oidc/login");
  EXPECT_EQ(over.status, 429) << over.body;
  EXPECT_FALSE(over.headers["retry-after"].empty());
}

// Made-up callbacks beyond the budget are refused (429) and counted, not
// audited one by one; the next audited refusal from that address says how
// many were left out. A callback of a sign-in under way is never throttled.
TEST_F(OidcLimitsTest, RefusedCallbacksBeyondTheBudgetAreCountedNotAuditedOneByOne) {
  std::string cookie;
  std::string cb = callback_url(&cookie);  // budget 3 -> 2
  auto callbacks = [&] {
    int n = 0;
    auto entries = store->audit(0, 1000);  // kept: a range over the temporary would dangle
    for (auto& e : *entries) n += e.action == "GET /api/v1/oidc/callback";
    return n;
  };
  for (int i = 0; i < 2; ++i) EXPECT_EQ(get(ads_base() + "/api/v1/oidc/callback?code=x&state=made-up").status, 400);
  EXPECT_EQ(callbacks(), 2);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(get(ads_base() + "/api/v1/oidc/callback?code=x&state=made-up").status, 429);
  EXPECT_EQ(callbacks(), 2) << "no audit row each";
  auto r = get(cb);  // the sign-in under way, from a browser without its cookie: refused, audited
  EXPECT_EQ(r.status, 400) << r.body;
  auto audit = *store->audit(0, 1000);
  ASSERT_EQ(callbacks(), 3);
  EXPECT_NE(audit.back().detail.find("and 5 refused callbacks from this address not recorded one by one"),
            std::string::npos)
      << audit.back().detail;
}

TEST_F(OidcTest, ARoleChangeBySignInIsAuditedAndASignInThatCannotBeAuditedFails) {
  issuer.email = "bob@example.org";
  issuer.sub = "43";
  ASSERT_FALSE(sign_in().empty()) << last.body;
  ASSERT_EQ(call("PATCH", "/api/v1/users/bob@example.org", R"({"role":"admin"})").status, 200);
  ASSERT_FALSE(sign_in().empty()) << last.body;
  auto audit = *store->audit(0, 1000);
  const auto& e = audit.back();
  EXPECT_EQ(e.action, "GET /api/v1/oidc/callback");
  EXPECT_EQ(e.user, "bob@example.org");
  EXPECT_EQ(e.target, "bob@example.org");
  EXPECT_EQ(e.status, 302);
  EXPECT_NE(e.detail.find("role admin -> viewer (from the allow-list)"), std::string::npos) << e.detail;
  // the audit table refuses writes: the sign-in fails and changes nothing
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((tmp.path / "ads.db").string().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(FAIL, 'full'); END;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  issuer.email = "carol@example.org";
  issuer.sub = "45";
  EXPECT_EQ(sign_in(), "");
  EXPECT_EQ(last.status, 503) << last.body;
  EXPECT_NE(last.body.find("audit_unavailable"), std::string::npos) << last.body;
  EXPECT_FALSE(store->get_user_by_name("carol@example.org").ok());
}

// With OpenID Connect on, an admin account bound at the provider is a way in:
// the first-start token may go then.
TEST_F(OidcUnverifiedTest, AnOpenIdAdminCountsAsAnAdminWhoCanSignIn) {
  std::string id = call("GET", "/api/v1/whoami").body["token"]["id"];
  expect_error(call("DELETE", "/api/v1/tokens/" + id), 409);
  ASSERT_FALSE(sign_in().empty()) << last.body;  // alice, admin by the allow-list
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/" + id).status, 200);
  // alice is then the last admin's way in: her binding stays
  std::string alice = sign_in();
  expect_error(call_as(alice, "POST", "/api/v1/users/alice@example.org/unbind"), 409, "name");
}

class OidcDenyTest : public OidcTest {
 protected:
  json settings() override {
    json s = OidcTest::settings();
    s["allow"] = {{"*@example.org", "viewer"}, {"mallory@example.org", "deny"}};
    return s;
  }
};

TEST_F(OidcDenyTest, ADenyEntryKeepsOutAnAddressItsDomainLetsIn) {
  issuer.email = "mallory@example.org";
  issuer.sub = "66";
  expect_refused(403, "denied by the allow-list");
  EXPECT_FALSE(store->get_user_by_name("mallory@example.org").ok());
  issuer.email = "bob@example.org";
  issuer.sub = "43";
  EXPECT_FALSE(sign_in().empty()) << last.body;
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
  auto refused = [&](const char* key, const json& value, const std::string& field) {
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
  refused("accept_unverified_email", "yes", "oidc.accept_unverified_email");
  refused("allow", {{"*@example.org", "deny"}}, "oidc.allow");  // lets nobody in
  refused("allow", {{"a@example.org", "block"}}, "oidc.allow.a@example.org");
  refused("client_id", 5, "oidc.client_id");
  EXPECT_EQ(ads::parse_oidc_settings(json::array()).error().field, "oidc");
}

}  // namespace
