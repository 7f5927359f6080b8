// Users, tokens and the audit through the API (issues 14 and 15): the audit
// names whom a change touched and is written before the change (a request
// whose audit cannot be written fails and changes nothing); the last admin
// cannot lock everyone out; sign-out ends a browser session only; unknown
// and disabled users cost an Argon2 verification like a wrong password; a
// sign-in session cannot make a token that never expires; password guesses
// are limited per user name; jobs are charged to the deployment's owner.
#include "api/auth.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "api/limits.h"
#include "unit/api/api_fixture.h"

namespace {
using ads::test::ApiTest;
using nlohmann::json;

class AuthApiTest : public ApiTest {
 protected:
  // The audit entries whose action is `action`, oldest first.
  std::vector<json> audit_of(const std::string& action, const std::string& as = "") {
    std::vector<json> out;
    auto r = call_as(as.empty() ? token : as, "GET", "/api/v1/audit");  // kept: a range over the temporary would dangle
    for (auto& e : r.body["entries"])
      if (e["action"] == action) out.push_back(e);
    return out;
  }
  // From now on every write to the audit table fails (the store's other tables work).
  void break_audit() {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((tmp.path / "ads.db").string().c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(
        db,
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(FAIL, 'audit disk full'); END;"
        "CREATE TRIGGER no_audit_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(FAIL, 'audit disk full'); END;",
        nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }
  std::string login(const std::string& name, const std::string& password) {
    auto r = call_as("", "POST", "/api/v1/login", json{{"name", name}, {"password", password}}.dump());
    return r.status == 201 ? r.body["secret"].get<std::string>() : "";
  }
  std::string token_id_of(const std::string& tok) { return call_as(tok, "GET", "/api/v1/whoami").body["token"]["id"]; }
};

TEST_F(AuthApiTest, TheAuditNamesWhomAChangeTouchedAndWithWhichRole) {
  auto made = call("POST", "/api/v1/users", R"({"name":"pat","role":"admin","password":"correct horse battery"})");
  ASSERT_EQ(made.status, 201) << made.body.dump();
  auto created = audit_of("POST /api/v1/users");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0]["user"], "admin");
  EXPECT_EQ(created[0]["target"], "pat");
  EXPECT_EQ(created[0]["status"], 201);
  EXPECT_NE(created[0]["detail"].get<std::string>().find("role admin"), std::string::npos) << created[0].dump();

  auto tok = call("POST", "/api/v1/tokens", R"({"name":"ci","user":"pat","ttl_s":3600})");
  ASSERT_EQ(tok.status, 201);
  auto tokens = audit_of("POST /api/v1/tokens");
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0]["target"], "pat") << "the token's owner, not its maker";
  std::string detail = tokens[0]["detail"];
  EXPECT_NE(detail.find(tok.body["id"].get<std::string>()), std::string::npos) << detail;
  EXPECT_NE(detail.find("for pat"), std::string::npos) << detail;
  EXPECT_EQ(detail.find(tok.body["secret"].get<std::string>()), std::string::npos) << "never the secret";

  ASSERT_EQ(call("PATCH", "/api/v1/users/pat", R"({"role":"viewer"})").status, 200);
  auto changed = audit_of("PATCH /api/v1/users/pat");
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0]["target"], "pat");
  EXPECT_EQ(changed[0]["detail"], "role admin -> viewer");

  ASSERT_EQ(call("DELETE", "/api/v1/tokens/" + tok.body["id"].get<std::string>()).status, 200);
  auto revoked = audit_of("DELETE /api/v1/tokens/" + tok.body["id"].get<std::string>());
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_EQ(revoked[0]["target"], "pat");
  // a refusal is recorded once, with its status
  expect_error(call("PATCH", "/api/v1/users/pat", R"({"role":"root"})"), 400);
  EXPECT_EQ(audit_of("PATCH /api/v1/users/pat").back()["status"], 400);
}

// The audit entry is written before the change; when it cannot be written,
// the request fails with 503 and a JSON error, and nothing is changed.
TEST_F(AuthApiTest, ARequestWhoseAuditCannotBeWrittenFailsAndChangesNothing) {
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"pat","role":"viewer","password":"correct horse battery"})").status,
      201);
  ads::Deployment idle;  // no job under way: a destroy would be accepted
  idle.id = "01m88rqkev9cbfs1eqysk664kz";
  idle.name = "idle";
  idle.source = "/srv/lab";
  idle.provider = "lxd";
  idle.state = ads::State::kFailed;
  idle.owner = "admin";
  idle.created_ms = idle.updated_ms = 1;
  ASSERT_TRUE(store->create(idle).ok());
  const std::string id = idle.id;
  auto users_before = store->users()->size();
  auto pat = *store->get_user_by_name("pat");
  auto tokens_before = store->tokens_of(pat.id)->size();
  auto jobs_before = store->jobs_of(id)->size();
  break_audit();
  auto expect_503 = [&](const ApiTest::Reply& r) {
    EXPECT_EQ(r.status, 503) << r.body.dump();
    EXPECT_EQ(r.body["error"]["code"], "audit_unavailable") << r.body.dump();
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("nothing was changed"), std::string::npos);
  };
  expect_503(call("POST", "/api/v1/users", R"({"name":"eve","role":"admin"})"));
  expect_503(call("PATCH", "/api/v1/users/pat", R"({"role":"admin"})"));
  expect_503(call("POST", "/api/v1/tokens", R"({"name":"x","user":"pat"})"));
  expect_503(call("POST", "/api/v1/users/pat/disable"));
  expect_503(call("DELETE", "/api/v1/deployments/" + id));  // audited before the handler runs
  expect_503(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"correct horse battery"})"));
  expect_503(call_as("", "POST", "/api/v1/logout"));  // even a refusal that cannot be recorded fails
  EXPECT_EQ(store->users()->size(), users_before);
  EXPECT_EQ(store->get_user_by_name("pat")->role, ads::Role::kViewer);
  EXPECT_FALSE(store->get_user_by_name("pat")->disabled());
  EXPECT_EQ(store->tokens_of(pat.id)->size(), tokens_before) << "no token made, not even by the sign-in";
  EXPECT_EQ(store->jobs_of(id)->size(), jobs_before);
  EXPECT_EQ(call("GET", "/api/v1/whoami").status, 200) << "reading needs no audit";
}

// A path segment that is not UTF-8 (a user name, a deployment id) is bad
// input, answered 400 naming it; it is audited (the bytes replaced), and the
// audit still reads as JSON. It used to escape as a 500 with no audit entry.
TEST_F(AuthApiTest, APathThatIsNotUtf8IsRefusedAndAudited) {
  auto r = call("POST", "/api/v1/users/%FF%FE/disable");
  expect_error(r, 400, "name");
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("UTF-8"), std::string::npos);
  expect_error(call("PATCH", "/api/v1/users/%C3%28", R"({"role":"viewer"})"), 400, "name");
  expect_error(call("DELETE", "/api/v1/deployments/ab%80cd"), 400, "id");
  auto audit = call("GET", "/api/v1/audit");
  ASSERT_EQ(audit.status, 200) << audit.body.dump();
  ASSERT_EQ(audit.body["entries"].size(), 3u) << audit.body.dump();
  EXPECT_EQ(audit.body["entries"][0]["status"], 400);
  EXPECT_EQ(audit.body["entries"][0]["target"], "\xEF\xBF\xBD\xEF\xBF\xBD");  // U+FFFD twice
}

// Revoking the last admin's only lasting token, or removing the password of
// the last admin who has nothing else, is refused like demoting them; and
// signing out of a browser never revokes an API token.
TEST_F(AuthApiTest, TheLastAdminCannotLockEveryoneOut) {
  std::string first_id = token_id_of(token);
  auto r = call("DELETE", "/api/v1/tokens/" + first_id);
  expect_error(r, 409, "id");
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("last admin"), std::string::npos) << r.body.dump();
  EXPECT_EQ(call("GET", "/api/v1/whoami").status, 200) << "the first-start token still works";
  // sign-out with the first-start token ends nothing: it is no session
  auto out = call("POST", "/api/v1/logout");
  ASSERT_EQ(out.status, 200) << out.body.dump();
  EXPECT_FALSE(out.body["revoked"].get<bool>());
  EXPECT_EQ(call("GET", "/api/v1/whoami").status, 200);

  // an admin with a password and no lasting token may not remove the password...
  ASSERT_EQ(call("PATCH", "/api/v1/users/admin", R"({"password":"the admin's own password"})").status, 200);
  ASSERT_EQ(call("DELETE", "/api/v1/tokens/" + first_id).status, 200) << "the password is a way in";
  std::string session = login("admin", "the admin's own password");
  ASSERT_FALSE(session.empty());
  auto own = call_as(session, "PATCH", "/api/v1/users/admin", R"({"password":""})");
  expect_error(own, 409, "password");
  EXPECT_NE(login("admin", "the admin's own password"), "");
  // ...and a 12-hour session is no lasting way in either
  std::string ci = call_as(session, "POST", "/api/v1/tokens", R"({"name":"ci","ttl_s":3600})").body["secret"];
  expect_error(call_as(ci, "PATCH", "/api/v1/users/admin", R"({"password":""})"), 409, "password");
  // sign-out of the browser session revokes that session only
  auto bye = call_as(session, "POST", "/api/v1/logout");
  ASSERT_EQ(bye.status, 200);
  EXPECT_TRUE(bye.body["revoked"].get<bool>());
  expect_error(call_as(session, "GET", "/api/v1/whoami"), 401);
  EXPECT_EQ(call_as(ci, "GET", "/api/v1/whoami").status, 200);
  // with a second admin who can sign in, all of it is allowed
  ASSERT_EQ(call_as(ci, "POST", "/api/v1/users", R"({"name":"ops","role":"admin","password":"another long password"})")
                .status,
            201);
  EXPECT_EQ(call_as(ci, "PATCH", "/api/v1/users/admin", R"({"password":""})").status, 200);
  auto audit = audit_of("POST /api/v1/logout", ci);
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_NE(audit[0]["detail"].get<std::string>().find("kept"), std::string::npos) << audit[0].dump();
  EXPECT_NE(audit[1]["detail"].get<std::string>().find("revoked session token"), std::string::npos) << audit[1].dump();
}

TEST_F(AuthApiTest, UnknownDisabledAndPasswordlessUsersCostOneArgon2VerificationToo) {
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"pat","role":"viewer","password":"correct horse battery"})").status,
      201);
  ASSERT_EQ(call("POST", "/api/v1/users", R"({"name":"tok","role":"viewer"})").status, 201);  // no password
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"gone","role":"viewer","password":"correct horse battery"})").status,
      201);
  ASSERT_EQ(call("POST", "/api/v1/users/gone/disable").status, 200);
  for (const char* name : {"nobody", "tok", "gone", "pat"}) {
    uint64_t before = auth->password_checks();
    expect_error(call_as("", "POST", "/api/v1/login", json{{"name", name}, {"password", "wrong horse battery"}}.dump()),
                 401);
    EXPECT_EQ(auth->password_checks(), before + 1) << name << ": one verification, whoever it is";
  }
}

TEST_F(AuthApiTest, ADisabledUserStaysDisabledUntilEnabled) {
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"pat","role":"deployer","password":"correct horse battery"})").status,
      201);
  std::string api = call("POST", "/api/v1/tokens", R"({"name":"ci","user":"pat"})").body["secret"];
  ASSERT_EQ(call("POST", "/api/v1/users/pat/disable").status, 200);
  EXPECT_TRUE(call("GET", "/api/v1/users").body["users"][1]["disabled"].get<bool>());
  // a new password or a new token does not let it back in
  ASSERT_EQ(call("PATCH", "/api/v1/users/pat", R"({"password":"a brand new password"})").status, 200);
  EXPECT_EQ(login("pat", "a brand new password"), "");
  std::string fresh = call("POST", "/api/v1/tokens", R"({"name":"new","user":"pat"})").body["secret"];
  auto refused = call_as(fresh, "GET", "/api/v1/whoami");
  expect_error(refused, 401);
  EXPECT_NE(refused.body["error"]["message"].get<std::string>().find("disabled"), std::string::npos);
  auto on = call("POST", "/api/v1/users/pat/enable");
  ASSERT_EQ(on.status, 200) << on.body.dump();
  EXPECT_FALSE(on.body["disabled"].get<bool>());
  EXPECT_NE(login("pat", "a brand new password"), "");
  EXPECT_EQ(call_as(fresh, "GET", "/api/v1/whoami").status, 200);
  expect_error(call_as(api, "GET", "/api/v1/whoami"), 401);  // revoked by the disable, for good
  expect_error(call("POST", "/api/v1/users/nobody/enable"), 404);
}

TEST_F(AuthApiTest, ATokenMadeWithASignInSessionExpires) {
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"pat","role":"viewer","password":"correct horse battery"})").status,
      201);
  std::string session = login("pat", "correct horse battery");
  ASSERT_FALSE(session.empty());
  EXPECT_TRUE(call_as(session, "GET", "/api/v1/whoami").body["token"]["session"].get<bool>());
  expect_error(call_as(session, "POST", "/api/v1/tokens", R"({"name":"forever","ttl_s":0})"), 400, "ttl_s");
  auto too_long = call_as(session, "POST", "/api/v1/tokens", R"({"name":"long","ttl_s":31536000})");
  expect_error(too_long, 400, "ttl_s");
  EXPECT_NE(too_long.body["error"]["message"].get<std::string>().find("2592000"), std::string::npos);
  auto dflt = call_as(session, "POST", "/api/v1/tokens", R"({"name":"ci"})");
  ASSERT_EQ(dflt.status, 201) << dflt.body.dump();
  ASSERT_TRUE(dflt.body["expires_at"].is_string()) << "a default lifetime, not never";
  auto t = store->get_token(dflt.body["id"]);
  EXPECT_NEAR(static_cast<double>(t->expires_ms - t->created_ms), 2592000e3, 1000);
  EXPECT_FALSE(t->session) << "what it makes is an API token";
  EXPECT_EQ(call_as(session, "POST", "/api/v1/tokens", R"({"name":"day","ttl_s":86400})").status, 201);
  // an API token may still make a token that never expires
  auto forever = call("POST", "/api/v1/tokens", R"({"name":"forever","ttl_s":0,"user":"pat"})");
  ASSERT_EQ(forever.status, 201);
  EXPECT_TRUE(forever.body["expires_at"].is_null());
}

TEST_F(AuthApiTest, ClientAddressesAreKeyedByHostAndIpv6ByItsSlash64) {
  EXPECT_EQ(ads::address_key("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(ads::address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(ads::address_key("2001:db8:1:2::1"), ads::address_key("[2001:db8:1:2:ffff::9]"));
  EXPECT_NE(ads::address_key("2001:db8:1:2::1"), ads::address_key("2001:db8:1:3::1"));
  EXPECT_EQ(ads::address_key("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(ads::address_key("not:an:address"), "not:an:address");
}

// Strict limits, as in api_test.cpp's LimitsTest.
class AuthLimitsTest : public AuthApiTest {
 protected:
  ads::ApiLimits limits() override {
    ads::ApiLimits l;
    l.request_burst = 1e6;
    l.auth_failure_burst = 1e6;  // the per-address budget is not what stops these
    l.user_sign_ins_per_hour = 0.001;
    l.user_sign_in_burst = 3;
    l.active_jobs_per_user = 2;
    return l;
  }
};

// Guesses at one account's password are limited per user name, whatever the
// address (here the per-address budget is far from spent); other accounts
// are not affected.
TEST_F(AuthLimitsTest, PasswordGuessesAreLimitedPerUserName) {
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"pat","role":"viewer","password":"correct horse battery"})").status,
      201);
  ASSERT_EQ(
      call("POST", "/api/v1/users", R"({"name":"dan","role":"viewer","password":"correct horse battery"})").status,
      201);
  for (int i = 0; i < 3; ++i)
    expect_error(call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"guess guess guess"})"), 401);
  auto over = call_as("", "POST", "/api/v1/login", R"({"name":"pat","password":"correct horse battery"})");
  expect_error(over, 429);
  EXPECT_NE(over.body["error"]["message"].get<std::string>().find("user name"), std::string::npos);
  EXPECT_FALSE(over.headers["retry-after"].empty());
  EXPECT_NE(login("dan", "correct horse battery"), "");
}

// An admin's destroy of someone else's deployment is charged to the owner of
// the deployment (whose jobs the limit counts), not to the admin.
TEST_F(AuthLimitsTest, JobsOnADeploymentAreChargedToItsOwner) {
  ASSERT_EQ(call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"lab-1"})").status, 202);
  ASSERT_EQ(call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"lab-2"})").status, 202);
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"lab-3"})"),
               429);  // the admin is at its limit
  ads::Deployment pats;
  pats.id = "01m88rqkev9cbfs1eqysk664kz";
  pats.name = "pats";
  pats.source = "/srv/lab";
  pats.provider = "lxd";
  pats.state = ads::State::kFailed;
  pats.owner = "pat";
  pats.created_ms = pats.updated_ms = 1;
  ASSERT_TRUE(store->create(pats).ok());
  auto destroy = call("DELETE", "/api/v1/deployments/" + pats.id);
  ASSERT_EQ(destroy.status, 202) << destroy.body.dump();
  EXPECT_EQ(store->jobs_of(pats.id)->size(), 1u);
}

}  // namespace
