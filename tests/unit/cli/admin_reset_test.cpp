// `ads admin reset`: the machine's root gets an admin back when nobody can
// sign in, without a token and without the server; nobody else can.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>

#include "api/auth.h"
#include "store/store.h"
#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using ads::test::json;
using ads::test::run;
namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

class AdminResetCli : public ::testing::Test {
 protected:
  std::string data() { return (tmp.path / "data").string(); }
  int reset(std::vector<std::string> extra, std::string& out) {
    std::vector<std::string> argv = {ADS_CLI_BIN, "admin", "reset", "--data-dir", data()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, &out);
  }
  ads::test::TempDir tmp;
};

// The state the finding describes: the only admin's only token revoked
// (behind the API's back, as the API now refuses it). A running server
// takes the new token at once; the reset is in the audit.
TEST_F(AdminResetCli, GivesRootAnAdminBackWithANewTokenFile) {
  ads::test::Server server(data());
  std::string old = server.token();
  {
    auto store = ads::open_store("sqlite://" + data() + "/ads.db");
    ASSERT_TRUE(store.ok());
    auto t = (*store)->token_by_hash(ads::Auth::hash_secret(old));
    ASSERT_TRUE(t.ok());
    t->revoked_ms = 1;
    ASSERT_TRUE((*store)->update_token(*t).ok());
  }
  long status = 0;
  server.call("GET", "/api/v1/whoami", nullptr, &status);
  ASSERT_EQ(status, 401) << "locked out";

  std::string out;
  ASSERT_EQ(reset({}, out), 0) << out;
  EXPECT_NE(out.find("admin is an enabled admin"), std::string::npos) << out;
  std::string fresh = read(data() + "/admin.token");
  EXPECT_EQ(fresh.rfind("ads_", 0), 0u);
  EXPECT_NE(fresh, old);
  EXPECT_EQ(out.find(fresh), std::string::npos) << "not printed when stdout is no terminal";
  struct stat st {};
  ASSERT_EQ(::stat((data() + "/admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  server.use_token(fresh);
  json me = server.call("GET", "/api/v1/whoami", nullptr, &status);
  ASSERT_EQ(status, 200) << me.dump();
  EXPECT_EQ(me["name"], "admin");
  EXPECT_EQ(me["role"], "admin");
  EXPECT_TRUE(me["token"]["expires_at"].is_null());
  json audit = server.call("GET", "/api/v1/audit");
  bool seen = false;
  for (auto& e : audit["entries"])
    seen |= e["action"] == "ads admin reset" && e["user"] == "root (local)" && e["target"] == "admin" &&
            e["status"] == 200 && e["detail"].get<std::string>().find("new token") != std::string::npos;
  EXPECT_TRUE(seen) << audit.dump();
}

TEST_F(AdminResetCli, EnablesADisabledAdminMakesAMissingOneAndRefusesNonRoot) {
  {
    ads::test::Server server(data());  // first start: creates the store and admin
  }
  {
    auto store = ads::open_store("sqlite://" + data() + "/ads.db");
    ASSERT_TRUE(store.ok());
    auto u = (*store)->get_user_by_name("admin");
    u->disabled_ms = 5;
    u->role = ads::Role::kViewer;
    ASSERT_TRUE((*store)->update_user(*u).ok());
  }
  std::string out;
  // a symlink planted where the token goes is replaced, not followed
  fs::remove(data() + "/admin.token");
  fs::create_symlink(tmp.path / "elsewhere", data() + "/admin.token");
  ASSERT_EQ(reset({}, out), 0) << out;
  EXPECT_FALSE(fs::exists(tmp.path / "elsewhere"));
  EXPECT_FALSE(fs::is_symlink(data() + "/admin.token"));
  ASSERT_EQ(reset({"--user", "ops"}, out), 0) << out;
  {
    auto store = ads::open_store("sqlite://" + data() + "/ads.db");
    auto admin = (*store)->get_user_by_name("admin");
    EXPECT_FALSE(admin->disabled());
    EXPECT_EQ(admin->role, ads::Role::kAdmin);
    auto ops = (*store)->get_user_by_name("ops");
    ASSERT_TRUE(ops.ok());
    EXPECT_EQ(ops->role, ads::Role::kAdmin);
    ads::Auth auth(**store);
    auto caller = auth.authenticate("Bearer " + read(data() + "/admin.token"));
    ASSERT_TRUE(caller.ok()) << caller.error().message;
    EXPECT_EQ(caller->user.name, "ops");
  }
  EXPECT_EQ(reset({"--user", "bad name; rm"}, out), 2) << out;
  // anyone but root: refused, nothing written
  std::string before = read(data() + "/admin.token");
  int rc = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ADS_CLI_BIN, "admin", "reset",
                "--data-dir", data()},
               &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("only root"), std::string::npos) << out;
  EXPECT_EQ(read(data() + "/admin.token"), before);
  EXPECT_EQ(reset({"--config", (tmp.path / "missing.json").string()}, out), 2) << out;
}

// Failure paths: an audit that cannot be written changes nothing; a token
// file that cannot be written is an error (exit 1), not a silent success.
TEST_F(AdminResetCli, FailsCleanlyWhenTheAuditOrTheTokenFileCannotBeWritten) {
  { ads::test::Server server(data()); }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((data() + "/ads.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(FAIL, 'full'); END;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  std::string before = read(data() + "/admin.token"), out;
  EXPECT_EQ(reset({"--user", "ops"}, out), 1) << out;
  EXPECT_NE(out.find("audit"), std::string::npos) << out;
  EXPECT_EQ(read(data() + "/admin.token"), before);
  {
    auto store = ads::open_store("sqlite://" + data() + "/ads.db");
    EXPECT_FALSE((*store)->get_user_by_name("ops").ok()) << "nothing changed";
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((data() + "/ads.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER no_audit;", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  fs::remove(data() + "/admin.token");
  fs::create_directory(data() + "/admin.token");  // cannot be replaced by a file
  EXPECT_EQ(reset({}, out), 1) << out;
  EXPECT_NE(out.find("cannot write"), std::string::npos) << out;
  for (auto& e : fs::directory_iterator(data()))
    EXPECT_EQ(e.path().filename().string().find(".new-"), std::string::npos) << "no temporary file left: " << e.path();
}

}  // namespace
