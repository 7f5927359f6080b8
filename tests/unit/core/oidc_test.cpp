#include "core/oidc.h"

#include <gtest/gtest.h>

namespace ads {
namespace {
using nlohmann::json;

TEST(OidcEmail, ShapesAcceptedAndRefused) {
  for (const char* ok : {"alice@example.org", "a.b+lab_1%x-y@dept.uni.example", "root@localhost"})
    EXPECT_TRUE(validate_email(ok).ok()) << ok;
  for (const char* bad :
       {"", "alice", "@example.org", "alice@", "a@@b.org", "Alice@example.org", "a..b@example.org", ".a@example.org",
        "a@example..org", "a@-", "a b@example.org", "a;rm@example.org", "a@example.org\n", "a@nodot"}) {
    auto st = validate_email(bad, "email");
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.error().field, "email");
  }
  EXPECT_FALSE(validate_email(std::string(250, 'a') + "@x.org").ok());
}

TEST(OidcAllowList, ExactAddressBeatsItsDomainAndNothingElseGetsIn) {
  std::vector<AllowEntry> allow = {{"*@example.org", Role::kViewer}, {"alice@example.org", Role::kAdmin}};
  EXPECT_EQ(role_for_email(allow, "alice@example.org"), Role::kAdmin);
  EXPECT_EQ(role_for_email(allow, "ALICE@Example.org"), Role::kAdmin);
  EXPECT_EQ(role_for_email(allow, "bob@example.org"), Role::kViewer);
  EXPECT_EQ(role_for_email(allow, "bob@sub.example.org"), std::nullopt);
  EXPECT_EQ(role_for_email(allow, "bob@example.org.evil.test"), std::nullopt);
  EXPECT_EQ(role_for_email(allow, "example.org"), std::nullopt);
  EXPECT_EQ(role_for_email({}, "alice@example.org"), std::nullopt);
  EXPECT_TRUE(validate_allow_pattern("*@example.org", "p").ok());
  EXPECT_FALSE(validate_allow_pattern("*@*.org", "p").ok());
  EXPECT_FALSE(validate_allow_pattern("*", "p").ok());
  EXPECT_FALSE(validate_allow_pattern("*@Example.org", "p").ok());
}

class IdTokenClaims : public ::testing::Test {
 protected:
  json good() {
    return {{"iss", "https://id.example.org"},
            {"aud", "ads"},
            {"sub", "u1"},
            {"exp", now + 300},
            {"iat", now - 5},
            {"nonce", "n0nce"},
            {"email", "Alice@Example.org"},
            {"email_verified", true}};
  }
  void expect_refused(const json& c, const std::string& claim) {
    auto r = check_id_token_claims(c, want);
    ASSERT_FALSE(r.ok()) << c.dump();
    EXPECT_EQ(r.error().code, "unauthorized");
    EXPECT_EQ(r.error().field, claim) << r.error().message;
  }
  int64_t now = 1'800'000'000;
  ExpectedClaims want{"https://id.example.org", "ads", "n0nce", now};
};

TEST_F(IdTokenClaims, GoodClaimsGiveTheLowerCaseAddress) {
  auto r = check_id_token_claims(good(), want);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->email, "alice@example.org");
  EXPECT_EQ(r->issuer, "https://id.example.org");
  EXPECT_EQ(r->subject, "u1");
  json c = good();
  c["aud"] = {"other", "ads"};
  c["azp"] = "ads";
  EXPECT_TRUE(check_id_token_claims(c, want).ok());
  c = good();
  c["azp"] = "ads";  // azp with one audience: fine when it is us
  EXPECT_TRUE(check_id_token_claims(c, want).ok());
  c = good();
  c["exp"] = now - 30;  // within the leeway for clock skew
  EXPECT_TRUE(check_id_token_claims(c, want).ok());
}

TEST_F(IdTokenClaims, EachBadClaimIsRefusedByName) {
  auto with = [&](const char* k, const json& v) {
    json c = good();
    if (v.is_null()) c.erase(k);
    else c[k] = v;
    return c;
  };
  expect_refused(with("iss", "https://evil.example"), "iss");
  expect_refused(with("iss", nullptr), "iss");
  expect_refused(with("aud", "someone-else"), "aud");
  expect_refused(with("aud", json::array({"x", "y"})), "aud");
  expect_refused(with("aud", json::array({"ads", "y"})), "azp");  // several audiences, no azp
  expect_refused(with("exp", now - 61), "exp");
  expect_refused(with("exp", nullptr), "exp");
  expect_refused(with("exp", "tomorrow"), "exp");
  expect_refused(with("iat", now + 3600), "iat");
  expect_refused(with("iat", now - 7200), "iat");
  expect_refused(with("iat", nullptr), "iat");
  expect_refused(with("nbf", now + 3600), "nbf");
  expect_refused(with("nonce", "replayed"), "nonce");
  expect_refused(with("nonce", nullptr), "nonce");
  expect_refused(with("sub", nullptr), "sub");
  expect_refused(with("email", nullptr), "email");
  expect_refused(with("email", "not-an-address"), "email");
  expect_refused(with("email_verified", false), "email_verified");
  expect_refused(with("email_verified", "false"), "email_verified");
  expect_refused(with("email_verified", nullptr), "email_verified");  // not said is not verified
  expect_refused(with("azp", "another-client"), "azp");               // one audience, but issued to another client
  expect_refused(with("azp", 7), "azp");
  expect_refused(with("sub", std::string(256, 's')), "sub");
  expect_refused(json::array(), "payload");
  ExpectedClaims no_nonce = want;
  no_nonce.nonce = "";
  json c = good();
  c["nonce"] = "";
  EXPECT_FALSE(check_id_token_claims(c, no_nonce).ok()) << "an empty expected nonce never matches";
}

// A provider that never sends email_verified can be let in by an explicit
// setting; an address it says is not verified never is.
TEST_F(IdTokenClaims, UnverifiedAddressesOnlyWithTheOptOutAndNeverWhenSaidFalse) {
  json c = good();
  c.erase("email_verified");
  EXPECT_FALSE(check_id_token_claims(c, want).ok());
  ExpectedClaims lax = want;
  lax.require_email_verified = false;
  EXPECT_TRUE(check_id_token_claims(c, lax).ok());
  c["email_verified"] = false;
  EXPECT_FALSE(check_id_token_claims(c, lax).ok());
}

TEST(OidcAllowList, DenyWinsOverTheAddressAndItsDomain) {
  std::vector<AllowEntry> allow = {{"*@example.org", Role::kViewer},
                                   {"mallory@example.org", Role::kViewer, true},
                                   {"boss@corp.example", Role::kAdmin},
                                   {"*@corp.example", Role::kViewer, true}};
  EXPECT_EQ(role_for_email(allow, "alice@example.org"), Role::kViewer);
  EXPECT_EQ(role_for_email(allow, "mallory@example.org"), std::nullopt);
  EXPECT_EQ(role_for_email(allow, "MALLORY@example.org"), std::nullopt);
  EXPECT_TRUE(denied_by_allow_list(allow, "mallory@example.org"));
  EXPECT_FALSE(denied_by_allow_list(allow, "alice@example.org"));
  // a denied domain keeps out even an address listed by itself
  EXPECT_EQ(role_for_email(allow, "boss@corp.example"), std::nullopt);
  EXPECT_FALSE(denied_by_allow_list(allow, "eve@elsewhere.example"));
  EXPECT_EQ(role_for_email(allow, "eve@elsewhere.example"), std::nullopt);
}

}  // namespace
}  // namespace ads
