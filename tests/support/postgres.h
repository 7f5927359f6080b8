// Test support: a real PostgreSQL 15 server of the test's own, on 127.0.0.1
// and a unix socket in a temp dir, stopped and removed at scope exit (even when
// the test fails). Run as root, it runs the server as the `postgres` system
// user (PostgreSQL refuses root). When ADS_TEST_POSTGRES_URL is set (by
// scripts/test.sh, which then owns that server) no server is started and that
// one is used. Each test gets a fresh database from fresh_database().
// The server's log is in <temp dir>/data/log/ while it runs.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "core/env.h"
#include "support/ports.h"
#include "support/process.h"

namespace ads::test {

inline const char* kPgBin = "/usr/lib/postgresql/15/bin";

class PostgresServer {
 public:
  // Starts a server (or adopts ADS_TEST_POSTGRES_URL). error() says why not.
  PostgresServer() {
    if (auto url = ads::env_var("ADS_TEST_POSTGRES_URL"); url && !url->empty()) {
      admin_url_ = *url;
      return;
    }
    start();
  }
  ~PostgresServer() {
    if (child_) child_->kill_now(SIGINT);  // fast shutdown: ends client sessions too
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  bool ok() const { return error_.empty() && !admin_url_.empty(); }
  const std::string& error() const { return error_; }
  // A URL of the server's maintenance database `postgres`.
  const std::string& admin_url() const { return admin_url_; }

  // Store outages (tests/unit/store/store_fault_test.cpp and others): stops
  // the server (fast shutdown: client sessions end), and starts it again on
  // the same port and data. Only for a server this fixture started (not the
  // shared one: other tests of the process use it); true when done.
  bool stop() {
    if (!child_) return false;
    child_->kill_now(SIGINT);  // waits for it (SIGKILL after 10 s)
    child_.reset();
    return true;
  }
  bool start_again() {
    if (child_ || port_ == 0) return false;
    return launch(port_, nullptr);
  }

  // Creates an empty database with a unique name; returns its URL ("" and
  // error() set on failure).
  std::string fresh_database() {
    static std::atomic<int> n{0};
    std::string name = "ads_test_" + std::to_string(getpid()) + "_" + std::to_string(n++);
    try {
      pqxx::connection c(admin_url_);
      pqxx::nontransaction w(c);
      w.exec("DROP DATABASE IF EXISTS " + name);
      w.exec("CREATE DATABASE " + name);
    } catch (const std::exception& e) {
      error_ = std::string("cannot create a database: ") + e.what();
      return "";
    }
    auto slash = admin_url_.rfind('/');
    return admin_url_.substr(0, slash + 1) + name;
  }

 private:
  // argv run as the postgres user when we are root (setpriv execs, no shell).
  std::vector<std::string> as_postgres(std::vector<std::string> argv) const {
    if (geteuid() != 0) return argv;
    std::vector<std::string> a = {"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"};
    a.insert(a.end(), argv.begin(), argv.end());
    return a;
  }

  // Whether `pid` (our child, not yet reaped) has exited: a zombie.
  static bool exited(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    auto paren = stat.rfind(')');
    return paren == std::string::npos || (paren + 2 < stat.size() && stat[paren + 2] == 'Z');
  }

  void start() {
    namespace fs = std::filesystem;
    if (geteuid() == 0) {
      passwd pwd{};
      passwd* pw = nullptr;
      std::vector<char> buf(16384);
      if (getpwnam_r("postgres", &pwd, buf.data(), buf.size(), &pw) != 0 || !pw) {
        error_ = "running as root and there is no `postgres` user to run PostgreSQL as";
        return;
      }
      if (chown(tmp_.path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        error_ = "cannot give " + tmp_.str() + " to the postgres user";
        return;
      }
    }
    std::string data = (tmp_.path / "data").string();
    std::string out;
    int rc = run(as_postgres({std::string(kPgBin) + "/initdb", "-D", data, "-U", "ads", "-A", "trust", "-E", "UTF8",
                              "--locale=C", "--no-sync"}),
                 &out);
    if (rc != 0) {
      error_ = "initdb failed (" + std::to_string(rc) + "): " + out;
      return;
    }
    // A port that another process takes between our pick and the bind makes
    // the server exit; try a few picks.
    for (int attempt = 0; attempt < 3; ++attempt) {
      int port = free_loopback_port();
      if (port == 0) {
        error_ = "no free port on 127.0.0.1 for PostgreSQL";
        continue;
      }
      std::string last;
      if (launch(port, &last)) return;
      error_ = "PostgreSQL did not start on port " + std::to_string(port) + ": " + last;
    }
  }

  // Runs postgres on `port` and waits until it answers (then admin_url_ and
  // port_ are set); false (child_ reset) if it does not.
  bool launch(int port, std::string* last_error) {
    std::string data = (tmp_.path / "data").string();
    child_ = std::make_unique<Child>(
        as_postgres({std::string(kPgBin) + "/postgres", "-D", data, "-p", std::to_string(port), "-k", tmp_.str(), "-c",
                     "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c",
                     "max_connections=200", "-c", "logging_collector=on", "-c", "log_min_error_statement=panic"}));
    std::string url = "postgresql://ads@127.0.0.1:" + std::to_string(port) + "/postgres";
    std::string last;
    // Up to 60 s on a loaded 2-core machine; done as soon as it answers.
    for (int i = 0; i < 600; ++i) {
      try {
        pqxx::connection c(url);
        admin_url_ = url;
        port_ = port;
        return true;
      } catch (const std::exception& e) {
        last = e.what();
      }
      if (exited(child_->pid())) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (last_error) *last_error = last;
    child_.reset();
    return false;
  }

  TempDir tmp_;
  std::unique_ptr<Child> child_;
  int port_ = 0;
  std::string admin_url_;
  std::string error_;
};

// One server per test process, started at first use and shared by every test
// file of that process (stopped at exit).
inline PostgresServer& shared_postgres() {
  static PostgresServer server;
  return server;
}

}  // namespace ads::test
