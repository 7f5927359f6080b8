// The Store's accounts, tokens and audit beyond the basics of store_test.cpp,
// on both backends: accounts bound to (issuer, subject) at an OpenID
// provider, the disabled mark, session tokens, audit entries written before
// the change and completed once, and the migration that brought these to a
// database made before them.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <pqxx/pqxx>

#include "store/store.h"
#include "support/store_backends.h"

namespace {

class AccountsStoreTest : public ads::test::BackendTest {
 protected:
  // Runs SQL on the test's database behind the Store's back (as an older ADS would have left it).
  void sql(const std::string& text) {
    if (GetParam() == "sqlite") {
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open((tmp.path / "state" / "ads.db").string().c_str(), &db), SQLITE_OK);
      char* err = nullptr;
      int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err);
      std::string msg = err ? err : "";
      sqlite3_free(err);
      sqlite3_close(db);
      ASSERT_EQ(rc, SQLITE_OK) << msg << "\n" << text;
    } else {
      pqxx::connection c(url_);
      pqxx::work w(c);
      w.exec(text);
      w.commit();
    }
  }
  std::string user_column() { return GetParam() == "sqlite" ? "user" : "\"user\""; }
};

ads::User user(const std::string& id, const std::string& name) {
  ads::User u;
  u.id = id;
  u.name = name;
  u.role = ads::Role::kViewer;
  u.created_ms = 1700000000000;
  return u;
}

TEST_P(AccountsStoreTest, AccountsAreBoundOnceToOneIssuerAndSubject) {
  auto s = open();
  auto alice = user("01uuuuuuuuuuuuuuuuuuuuuuu1", "alice@example.org");
  alice.oidc_issuer = "https://id.example.org";
  alice.oidc_subject = "sub-alice";
  ASSERT_TRUE(s->create_user(alice).ok());
  auto found = s->get_user_by_subject("https://id.example.org", "sub-alice");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->name, "alice@example.org");
  EXPECT_TRUE(found->bound());
  // the same subject at another issuer is another person
  EXPECT_EQ(s->get_user_by_subject("https://other.example", "sub-alice").error().code, "not_found");
  EXPECT_EQ(s->get_user_by_subject("https://id.example.org", "").error().code, "not_found");
  // nobody else may be bound to that person
  auto twin = user("01uuuuuuuuuuuuuuuuuuuuuuu2", "twin");
  twin.oidc_issuer = alice.oidc_issuer;
  twin.oidc_subject = alice.oidc_subject;
  auto st = s->create_user(twin);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "conflict");
  EXPECT_NE(st.error().message.find("OpenID"), std::string::npos) << st.error().message;
  // an unbound account is bound once; then never again, to anyone
  auto bob = user("01uuuuuuuuuuuuuuuuuuuuuuu3", "bob@example.org");
  ASSERT_TRUE(s->create_user(bob).ok());
  EXPECT_FALSE(s->get_user(bob.id)->bound());
  EXPECT_EQ(s->bind_user(bob.id, "https://id.example.org", "sub-alice").error().code, "conflict");  // alice's
  ASSERT_TRUE(s->bind_user(bob.id, "https://id.example.org", "sub-bob").ok());
  EXPECT_EQ(s->bind_user(bob.id, "https://id.example.org", "sub-mallory").error().code, "conflict");
  EXPECT_EQ(s->get_user(bob.id)->oidc_subject, "sub-bob");
  EXPECT_EQ(s->bind_user("01uuuuuuuuuuuuuuuuuuuuuuu9", "https://id.example.org", "sub-x").error().code, "not_found");
  // update_user changes role, password and the disabled mark, never the binding
  auto changed = *s->get_user(bob.id);
  changed.role = ads::Role::kAdmin;
  changed.disabled_ms = 1234;
  changed.oidc_subject = "sub-mallory";
  ASSERT_TRUE(s->update_user(changed).ok());
  auto back = *s->get_user(bob.id);
  EXPECT_EQ(back.role, ads::Role::kAdmin);
  EXPECT_EQ(back.disabled_ms, 1234);
  EXPECT_TRUE(back.disabled());
  EXPECT_EQ(back.oidc_subject, "sub-bob");
  // an admin's unbinding frees the account for the next binding
  ASSERT_TRUE(s->unbind_user(bob.id).ok());
  EXPECT_FALSE(s->get_user(bob.id)->bound());
  EXPECT_EQ(s->get_user_by_subject("https://id.example.org", "sub-bob").error().code, "not_found");
  ASSERT_TRUE(s->bind_user(bob.id, "https://id.example.org", "sub-robert").ok());
  EXPECT_EQ(s->unbind_user("01uuuuuuuuuuuuuuuuuuuuuuu9").error().code, "not_found");
}

TEST_P(AccountsStoreTest, SessionTokensAndAuditEntriesCompletedOnce) {
  auto s = open();
  auto u = user("01uuuuuuuuuuuuuuuuuuuuuuu1", "pat");
  ASSERT_TRUE(s->create_user(u).ok());
  ads::Token t{"01tttttttttttttttttttttttt", u.id, "login", std::string(64, 'a'), 1, 2, 0, true};
  ASSERT_TRUE(s->create_token(t).ok());
  ads::Token api{"01ttttttttttttttttttttttt2", u.id, "ci", std::string(64, 'b'), 1, 0, 0, false};
  ASSERT_TRUE(s->create_token(api).ok());
  EXPECT_TRUE(s->get_token(t.id)->session);
  EXPECT_FALSE(s->token_by_hash(std::string(64, 'b'))->session);

  ads::AuditEntry e{0, 1000, "admin", "POST /api/v1/users", "pat", "127.0.0.1", 0, "created with role admin"};
  auto first = s->append_audit(e);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = s->append_audit(e);
  ASSERT_TRUE(second.ok());
  EXPECT_GT(*second, *first);
  ASSERT_TRUE(s->finish_audit(*first, 201, "pat", "created with role admin; a password").ok());
  // once: a finished entry is never changed again
  EXPECT_EQ(s->finish_audit(*first, 500, "x", "y").error().code, "not_found");
  EXPECT_EQ(s->finish_audit(*second + 100, 200, "x", "y").error().code, "not_found");
  auto a = s->audit(0, 10).value();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].seq, *first);
  EXPECT_EQ(a[0].status, 201);
  EXPECT_EQ(a[0].detail, "created with role admin; a password");
  EXPECT_EQ(a[1].status, 0);  // written before a change whose answer never came
  EXPECT_EQ(a[1].detail, "created with role admin");
}

// A database made before accounts were bound (migration 7 and later undone by
// hand, as an older ADS left it): opening it migrates, marks the users the
// audit shows were disabled (and not changed since), and the sign-in tokens.
TEST_P(AccountsStoreTest, TheMigrationMarksDisabledUsersAndSessionTokens) {
  {
    auto s = open();
    ASSERT_TRUE(s->create_user(user("01uuuuuuuuuuuuuuuuuuuuuuu1", "gone")).ok());
    ASSERT_TRUE(s->create_user(user("01uuuuuuuuuuuuuuuuuuuuuuu2", "back")).ok());
    ASSERT_TRUE(s->create_user(user("01uuuuuuuuuuuuuuuuuuuuuuu3", "never")).ok());
    ASSERT_TRUE(s->create_token({"01tttttttttttttttttttttttt", "01uuuuuuuuuuuuuuuuuuuuuuu3", "login",
                                 std::string(64, 'a'), 1, 99, 0, false})
                    .ok());
    ASSERT_TRUE(s->create_token({"01ttttttttttttttttttttttt2", "01uuuuuuuuuuuuuuuuuuuuuuu3", "login",
                                 std::string(64, 'b'), 1, 0, 0, false})
                    .ok());  // never expires: asked for
  }
  sql("DROP INDEX users_oidc;"
      "ALTER TABLE users DROP COLUMN oidc_issuer; ALTER TABLE users DROP COLUMN oidc_subject;"
      "ALTER TABLE users DROP COLUMN disabled_ms; ALTER TABLE tokens DROP COLUMN session;"
      "ALTER TABLE audit DROP COLUMN detail;"
      // and what came after version 7 (the clean-up queue, cancel of a job, ...), so that
      // reopening runs version 7 and everything after it again
      "ALTER TABLE jobs DROP COLUMN cancel_requested_ms;"
      "DROP INDEX deployments_public_port; ALTER TABLE deployments DROP COLUMN public_port;"
      "ALTER TABLE deployments DROP COLUMN stable_url; DROP TABLE releases;"
      "DROP TABLE git_deliveries; DROP TABLE git_tracks; ALTER TABLE backups DROP COLUMN secret;"
      "ALTER TABLE deployments DROP COLUMN keep_failed; ALTER TABLE deployments DROP COLUMN expires_ms;"
      "DROP TABLE warm_machines;"
      "DELETE FROM schema_version WHERE version >= 7;");
  std::string cols = "(ts_ms, " + user_column() + ", action, target, remote, status)";
  sql("INSERT INTO audit " + cols +
      " VALUES (10, 'admin', 'POST /api/v1/users/gone/disable', 'gone', 'x', 200);"
      "INSERT INTO audit " +
      cols +
      " VALUES (11, 'admin', 'POST /api/v1/users/back/disable', 'back', 'x', 200);"
      "INSERT INTO audit " +
      cols +
      " VALUES (12, 'admin', 'PATCH /api/v1/users/back', 'back', 'x', 200);"
      "INSERT INTO audit " +
      cols + " VALUES (13, 'admin', 'POST /api/v1/users/never/disable', 'never', 'x', 409);");
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->get_user_by_name("gone")->disabled_ms, 10);
  EXPECT_FALSE(s->get_user_by_name("back")->disabled());   // given a password again after
  EXPECT_FALSE(s->get_user_by_name("never")->disabled());  // the disable was refused
  EXPECT_TRUE(s->get_token("01tttttttttttttttttttttttt")->session);
  EXPECT_FALSE(s->get_token("01ttttttttttttttttttttttt2")->session);
  EXPECT_EQ(s->audit(0, 10)->front().detail, "");
}

INSTANTIATE_TEST_SUITE_P(Backends, AccountsStoreTest, ads::test::kBackends, ads::test::backend_name);

}  // namespace
