#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/ipnet.h"
#include "core/rate.h"
#include "core/text.h"
#include "store/store_rules.h"

namespace ads {
using namespace store_detail;

// Prepared statements of one connection kept for reuse, one free statement
// per SQL text (at most kMax texts; ADS's are a fixed set). Preparing was
// a large part of what a short query cost (the API list's profile,
// docs/bench.md). Used with SqliteStore::mu_ held.
class StmtCache {
 public:
  explicit StmtCache(sqlite3* db) : db_(db) {}
  ~StmtCache() {
    for (auto& entry : free_) sqlite3_finalize(entry.second);
  }
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;
  sqlite3* db() const { return db_; }

  // A statement for `sql`: the kept one if it is free (a statement in use by
  // an outer caller is not shared), else a new one; *rc is SQLite's answer.
  sqlite3_stmt* take(const char* sql, int* rc) {
    auto it = free_.find(std::string_view(sql));
    if (it != free_.end() && it->second) {
      *rc = SQLITE_OK;
      return std::exchange(it->second, nullptr);
    }
    sqlite3_stmt* s = nullptr;
    *rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    return s;
  }
  // Resets `s`, taken for `sql` (ending its read of the file), and keeps
  // it, or finalizes it when one is kept already or the cache is full.
  void give_back(const char* sql, sqlite3_stmt* s) {
    if (!s) return;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    auto it = free_.find(std::string_view(sql));
    if (it == free_.end() && free_.size() < kMax) it = free_.emplace(std::string(sql), nullptr).first;
    if (it != free_.end() && !it->second) {
      it->second = s;
      return;
    }
    sqlite3_finalize(s);
  }

 private:
  static constexpr size_t kMax = 256;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*, Hash, std::equal_to<>> free_;
};

namespace {

constexpr const char* kDeploymentColumns =
    "id, name, source, ref, commit_id, provider, state, failed_step, error, machine, address, url, secret, "
    "spec_json, created_ms, updated_ms, idempotency_key, owner, shared, public_port, stable_url, keep_failed, "
    "expires_ms";
constexpr const char* kUserColumns =
    "id, name, role, password_hash, created_ms, oidc_issuer, oidc_subject, disabled_ms";
constexpr const char* kTokenColumns = "id, user_id, name, hash, created_ms, expires_ms, revoked_ms, session";
constexpr const char* kJobColumns =
    "id, deployment_id, kind, state, step, error, params_json, result_json, attempts, created_ms, updated_ms, "
    "lease_owner, lease_expires_ms, cancel_requested_ms";
// The same, qualified by the alias j (queries that join jobs with deployments).
constexpr const char* kJobColumnsJ =
    "j.id, j.deployment_id, j.kind, j.state, j.step, j.error, j.params_json, j.result_json, j.attempts, "
    "j.created_ms, j.updated_ms, j.lease_owner, j.lease_expires_ms, j.cancel_requested_ms";
constexpr const char* kBackupColumns =
    "id, deployment_id, created_ms, size_bytes, sha256, path, snapshot, commit_id, secret";
constexpr const char* kReleaseColumns =
    "id, deployment_id, seq, state, ref, commit_id, machine, address, url, secret, spec_json, by_user, job_id, error, "
    "created_ms, updated_ms";

// The schema, one entry per version; migrate() applies the missing ones in order.
const char* const kMigrations[] = {
    // version 1
    "CREATE TABLE deployments ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL, ref TEXT NOT NULL,"
    "  commit_id TEXT NOT NULL, provider TEXT NOT NULL, state TEXT NOT NULL, failed_step TEXT NOT NULL,"
    "  error TEXT NOT NULL, machine TEXT NOT NULL, address TEXT NOT NULL, url TEXT NOT NULL,"
    "  secret TEXT NOT NULL, spec_json TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE INDEX deployments_state ON deployments(state);"
    "CREATE INDEX deployments_name ON deployments(name);"
    "CREATE TABLE deployment_logs ("
    "  deployment_id TEXT NOT NULL REFERENCES deployments(id), seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
    "  step TEXT NOT NULL, stream TEXT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (deployment_id, seq));",
    // version 2: jobs, backups, idempotency keys
    "ALTER TABLE deployments ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';"
    "CREATE UNIQUE INDEX deployments_idempotency ON deployments(idempotency_key) WHERE idempotency_key != '';"
    "CREATE TABLE jobs ("
    "  id TEXT PRIMARY KEY, deployment_id TEXT NOT NULL REFERENCES deployments(id), kind TEXT NOT NULL,"
    "  state TEXT NOT NULL, step TEXT NOT NULL, error TEXT NOT NULL, params_json TEXT NOT NULL,"
    "  result_json TEXT NOT NULL, attempts INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE INDEX jobs_deployment ON jobs(deployment_id);"
    "CREATE INDEX jobs_state ON jobs(state);"
    "CREATE TABLE backups ("
    "  id TEXT PRIMARY KEY, deployment_id TEXT NOT NULL REFERENCES deployments(id), created_ms INTEGER NOT NULL,"
    "  size_bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, path TEXT NOT NULL, snapshot TEXT NOT NULL,"
    "  commit_id TEXT NOT NULL);"
    "CREATE INDEX backups_deployment ON backups(deployment_id);",
    // version 3: accounts, tokens, audit; owners of deployments
    "ALTER TABLE deployments ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE deployments ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
    "  password_hash TEXT NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE tokens (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), name TEXT NOT NULL,"
    "  hash TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, revoked_ms INTEGER NOT "
    "NULL);"
    "CREATE INDEX tokens_user ON tokens(user_id);"
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, user TEXT NOT NULL,"
    "  action TEXT NOT NULL, target TEXT NOT NULL, remote TEXT NOT NULL, status INTEGER NOT NULL);",
    // version 4: static addresses handed out from a subnet (one per owner and subnet)
    "CREATE TABLE addresses (subnet TEXT NOT NULL, address INTEGER NOT NULL, ip TEXT NOT NULL, owner TEXT NOT NULL,"
    "  allocated_ms INTEGER NOT NULL, PRIMARY KEY (subnet, address));"
    "CREATE UNIQUE INDEX addresses_owner ON addresses(subnet, owner);"
    "CREATE INDEX addresses_by_owner ON addresses(owner);",
    // version 5: job leases (which server works on a job, until when)
    "ALTER TABLE jobs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE jobs ADD COLUMN lease_expires_ms INTEGER NOT NULL DEFAULT 0;",
    // version 6: rate-limit buckets shared by every server on the store
    "CREATE TABLE rate_buckets (bucket TEXT PRIMARY KEY, tokens REAL NOT NULL, last_ms INTEGER NOT NULL,"
    "  full_at_ms INTEGER NOT NULL);"
    "CREATE INDEX rate_buckets_full_at ON rate_buckets(full_at_ms);",
    // version 7: accounts bound to (issuer, subject) at an OpenID provider, a
    // disabled mark, session tokens, and what an audited change did. Users
    // disabled before this version are marked from the audit (a successful
    // disable not followed by a successful change of that user); tokens made
    // by a sign-in were named "login" or "oidc" and expire.
    "ALTER TABLE users ADD COLUMN oidc_issuer TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN oidc_subject TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN disabled_ms INTEGER NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX users_oidc ON users(oidc_issuer, oidc_subject) WHERE oidc_subject != '';"
    "ALTER TABLE tokens ADD COLUMN session INTEGER NOT NULL DEFAULT 0;"
    "UPDATE tokens SET session = 1 WHERE name IN ('login', 'oidc') AND expires_ms != 0;"
    "ALTER TABLE audit ADD COLUMN detail TEXT NOT NULL DEFAULT '';"
    "UPDATE users SET disabled_ms = COALESCE((SELECT MAX(a.ts_ms) FROM audit a"
    "  WHERE a.action LIKE 'POST /api/v1/users/%/disable' AND a.target = users.name AND a.status = 200"
    "  AND NOT EXISTS (SELECT 1 FROM audit p WHERE p.action LIKE 'PATCH /api/v1/users/%' AND p.target = users.name"
    "    AND p.status = 200 AND p.ts_ms >= a.ts_ms)), 0);",
    // version 8: the clean-up queue (machines whose removal failed, tried again)
    "CREATE TABLE IF NOT EXISTS cleanups (provider TEXT NOT NULL, machine TEXT NOT NULL, deployment_id TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL, next_ms INTEGER NOT NULL, last_error TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (provider, machine));",
    // version 9: cancel of a job, asked for in the store and acted on by the
    // server that runs it
    "ALTER TABLE jobs ADD COLUMN cancel_requested_ms INTEGER NOT NULL DEFAULT 0;",
    // version 10: stable URLs through the reverse proxy; without a domain a
    // host port per lab, never held by two deployments
    "ALTER TABLE deployments ADD COLUMN public_port INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE deployments ADD COLUMN stable_url TEXT NOT NULL DEFAULT '';"
    "CREATE UNIQUE INDEX deployments_public_port ON deployments(public_port) WHERE public_port != 0;",
    // version 11: releases of a deployment (continuous delivery)
    "CREATE TABLE releases (id TEXT PRIMARY KEY, deployment_id TEXT NOT NULL REFERENCES deployments(id),"
    "  seq INTEGER NOT NULL, state TEXT NOT NULL, ref TEXT NOT NULL, commit_id TEXT NOT NULL, machine TEXT NOT NULL,"
    "  address TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL, spec_json TEXT NOT NULL, by_user TEXT NOT NULL,"
    "  job_id TEXT NOT NULL, error TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    "  UNIQUE (deployment_id, seq));",
    // version 12: deploy on git push: the branch a deployment tracks, its
    // webhook secret, poll interval and pending commit; delivery ids seen
    // (replays refused), a bounded number per deployment
    "CREATE TABLE git_tracks (deployment_id TEXT PRIMARY KEY REFERENCES deployments(id) ON DELETE CASCADE, branch TEXT "
    "NOT NULL,"
    "  secret TEXT NOT NULL, poll_s INTEGER NOT NULL, pending_commit TEXT NOT NULL, polled_ms INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE TABLE git_deliveries (deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE, "
    "delivery_id TEXT NOT NULL, seen_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (deployment_id, delivery_id));"
    "CREATE INDEX git_deliveries_seen ON git_deliveries(deployment_id, seen_ms);",
    // version 13: a backup keeps the agent secret of the machine it was taken
    // on (a snapshot restored into a new machine brings that agent back, and
    // a release since may have changed the deployment's)
    "ALTER TABLE backups ADD COLUMN secret TEXT NOT NULL DEFAULT '';",
    // version 14: throwaway deployments (ads lab try): a failed one keeps its
    // machine, and the server destroys each at its expiry
    "ALTER TABLE deployments ADD COLUMN keep_failed INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE deployments ADD COLUMN expires_ms BIGINT NOT NULL DEFAULT 0;",
    // version 15: warm machines (made ahead with no lab, claimed by deploys)
    "CREATE TABLE warm_machines (name TEXT PRIMARY KEY, provider TEXT NOT NULL, os_key TEXT NOT NULL,"
    "  state TEXT NOT NULL, address TEXT NOT NULL, agent_sha256 TEXT NOT NULL, maker TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE INDEX warm_machines_pool ON warm_machines(provider, os_key, state, created_ms);",
};

// An SQLite failure as an Error: a store that cannot answer now (the file
// locked by another connection past the busy timeout, a full disk, an I/O
// error, a file that cannot be opened or written) is "unavailable", which the
// API answers 503 and the engine retries; anything else is "internal".
Error sqlite_error(int rc, const std::string& what) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
      return Error::make("unavailable", "the store is unavailable (SQLite, " + what + ")");
    default:
      return Error::make("internal", "SQLite, " + what);
  }
}

// A prepared statement from the connection's cache, reset and given back at
// scope exit.
class Stmt {
 public:
  // `sql` must outlive the Stmt (a literal, or a string declared before it).
  Stmt(StmtCache& cache, const char* sql) : cache_(cache), db_(cache.db()), sql_(sql) { s_ = cache.take(sql, &rc_); }
  ~Stmt() { cache_.give_back(sql_, s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  // Text is stored as valid UTF-8 (see core/text.h), and read back so: a
  // record written by an older ads with invalid bytes cannot break an answer.
  Stmt& bind(int i, const std::string& v) {
    std::string t = valid_utf8(v);
    sqlite3_bind_text(s_, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(s_); }
  std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? valid_utf8(std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, col)))) : std::string();
  }
  int64_t integer(int col) const { return sqlite3_column_int64(s_, col); }
  double real(int col) const { return sqlite3_column_double(s_, col); }
  Error error(const std::string& what) const {
    int rc = ok() ? sqlite3_errcode(db_) : rc_;
    return sqlite_error(rc, what + ": " + sqlite3_errmsg(db_));
  }

 private:
  StmtCache& cache_;
  sqlite3* db_;
  const char* sql_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

// Every row of `s`, read by `read`.
template <typename T>
Result<std::vector<T>> collect(Stmt& s, T (*read)(const Stmt&), const std::string& what) {
  std::vector<T> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(read(s));
  if (rc != SQLITE_DONE) return s.error(what);
  return out;
}

LogLine read_log(const Stmt& s) {
  LogLine l;
  l.seq = s.integer(0);
  l.ts_ms = s.integer(1);
  l.step = s.text(2);
  l.stream = s.text(3);
  l.text = s.text(4);
  return l;
}

void bind_deployment(Stmt& s, const Deployment& d) {
  s.bind(1, d.id).bind(2, d.name).bind(3, d.source).bind(4, d.ref).bind(5, d.commit).bind(6, d.provider);
  s.bind(7, to_string(d.state)).bind(8, d.failed_step).bind(9, d.error).bind(10, d.machine).bind(11, d.address);
  s.bind(12, d.url).bind(13, d.secret).bind(14, d.spec_json).bind(15, d.created_ms).bind(16, d.updated_ms);
  s.bind(17, d.idempotency_key).bind(18, d.owner).bind(19, static_cast<int64_t>(d.shared ? 1 : 0));
  s.bind(20, static_cast<int64_t>(d.public_port)).bind(21, d.stable_url);
  s.bind(22, static_cast<int64_t>(d.keep_failed ? 1 : 0)).bind(23, d.expires_ms);
}

User read_user(const Stmt& s) {
  User u;
  u.id = s.text(0);
  u.name = s.text(1);
  u.role = role_from_string(s.text(2)).value_or(Role::kViewer);
  u.password_hash = s.text(3);
  u.created_ms = s.integer(4);
  u.oidc_issuer = s.text(5);
  u.oidc_subject = s.text(6);
  u.disabled_ms = s.integer(7);
  return u;
}

Token read_token(const Stmt& s) {
  Token t;
  t.id = s.text(0);
  t.user_id = s.text(1);
  t.name = s.text(2);
  t.hash = s.text(3);
  t.created_ms = s.integer(4);
  t.expires_ms = s.integer(5);
  t.revoked_ms = s.integer(6);
  t.session = s.integer(7) != 0;
  return t;
}

AuditEntry read_audit(const Stmt& s) {
  AuditEntry e;
  e.seq = s.integer(0);
  e.ts_ms = s.integer(1);
  e.user = s.text(2);
  e.action = s.text(3);
  e.target = s.text(4);
  e.remote = s.text(5);
  e.status = static_cast<int>(s.integer(6));
  e.detail = s.text(7);
  return e;
}

void bind_job(Stmt& s, const Job& j) {
  s.bind(1, j.id).bind(2, j.deployment_id).bind(3, j.kind).bind(4, j.state).bind(5, j.step).bind(6, j.error);
  s.bind(7, j.params_json).bind(8, j.result_json).bind(9, static_cast<int64_t>(j.attempts));
  s.bind(10, j.created_ms).bind(11, j.updated_ms);
}

Job read_job(const Stmt& s) {
  Job j;
  j.id = s.text(0);
  j.deployment_id = s.text(1);
  j.kind = s.text(2);
  j.state = s.text(3);
  j.step = s.text(4);
  j.error = s.text(5);
  j.params_json = s.text(6);
  j.result_json = s.text(7);
  j.attempts = static_cast<int>(s.integer(8));
  j.created_ms = s.integer(9);
  j.updated_ms = s.integer(10);
  j.lease_owner = s.text(11);
  j.lease_expires_ms = s.integer(12);
  j.cancel_requested_ms = s.integer(13);
  return j;
}

Release read_release(const Stmt& s) {
  Release r;
  r.id = s.text(0);
  r.deployment_id = s.text(1);
  r.seq = s.integer(2);
  r.state = s.text(3);
  r.ref = s.text(4);
  r.commit = s.text(5);
  r.machine = s.text(6);
  r.address = s.text(7);
  r.url = s.text(8);
  r.secret = s.text(9);
  r.spec_json = s.text(10);
  r.by = s.text(11);
  r.job_id = s.text(12);
  r.error = s.text(13);
  r.created_ms = s.integer(14);
  r.updated_ms = s.integer(15);
  return r;
}

void bind_release(Stmt& s, const Release& r) {
  s.bind(1, r.id).bind(2, r.deployment_id).bind(3, r.seq).bind(4, r.state).bind(5, r.ref).bind(6, r.commit);
  s.bind(7, r.machine).bind(8, r.address).bind(9, r.url).bind(10, r.secret).bind(11, r.spec_json).bind(12, r.by);
  s.bind(13, r.job_id).bind(14, r.error).bind(15, r.created_ms).bind(16, r.updated_ms);
}

Backup read_backup(const Stmt& s) {
  Backup b;
  b.id = s.text(0);
  b.deployment_id = s.text(1);
  b.created_ms = s.integer(2);
  b.size_bytes = s.integer(3);
  b.sha256 = s.text(4);
  b.path = s.text(5);
  b.snapshot = s.text(6);
  b.commit = s.text(7);
  b.secret = s.text(8);
  return b;
}

Deployment read_deployment(const Stmt& s) {
  Deployment d;
  d.id = s.text(0);
  d.name = s.text(1);
  d.source = s.text(2);
  d.ref = s.text(3);
  d.commit = s.text(4);
  d.provider = s.text(5);
  d.state = state_from_string(s.text(6)).value_or(State::kFailed);
  d.failed_step = s.text(7);
  d.error = s.text(8);
  d.machine = s.text(9);
  d.address = s.text(10);
  d.url = s.text(11);
  d.secret = s.text(12);
  d.spec_json = s.text(13);
  d.created_ms = s.integer(14);
  d.updated_ms = s.integer(15);
  d.idempotency_key = s.text(16);
  d.owner = s.text(17);
  d.shared = s.integer(18) != 0;
  d.public_port = static_cast<int>(s.integer(19));
  d.stable_url = s.text(20);
  d.keep_failed = s.integer(21) != 0;
  d.expires_ms = s.integer(22);
  return d;
}

}  // namespace

Result<std::unique_ptr<Store>> SqliteStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Error{"invalid", "cannot open SQLite database " + path + ": " + msg, "store"};
  }
  std::unique_ptr<SqliteStore> s(new SqliteStore(db));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=NORMAL;", "PRAGMA foreign_keys=ON;"}) {
    auto st = s->exec(pragma);
    if (!st) return st.error();
  }
  auto st = s->migrate();
  if (!st) return st.error();
  return std::unique_ptr<Store>(std::move(s));
}

SqliteStore::SqliteStore(sqlite3* db) : db_(db), stmts_(std::make_unique<StmtCache>(db)) {}

SqliteStore::~SqliteStore() {
  stmts_.reset();  // a connection with statements left is not closed
  sqlite3_close(db_);
}

template <typename F>
auto SqliteStore::write_tx(F f) -> decltype(f()) {
  auto begun = exec("BEGIN IMMEDIATE;");
  if (!begun) return begun.error();
  auto r = f();
  if (!r) {
    (void)exec("ROLLBACK;");
    return r;
  }
  auto committed = exec("COMMIT;");
  if (!committed) {
    (void)exec("ROLLBACK;");
    return committed.error();
  }
  return r;
}

Status SqliteStore::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return sqlite_error(rc, msg);
  }
  return Status::Ok();
}

int64_t SqliteStore::latest_schema_version() {
  return static_cast<int64_t>(sizeof(kMigrations) / sizeof(kMigrations[0]));
}

Status SqliteStore::migrate() {
  std::lock_guard<std::mutex> lk(mu_);
  auto st = exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);");
  if (!st) return st;
  int64_t version = 0;
  {
    Stmt q(*stmts_, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    if (q.step() == SQLITE_ROW) version = q.integer(0);
  }
  const int64_t latest = latest_schema_version();
  if (version > latest)
    return Error::make("invalid", "the database has schema version " + std::to_string(version) +
                                      ", newer than this ads (" + std::to_string(latest) + ")");
  for (int64_t v = version; v < latest; ++v) {
    st = write_tx([&]() -> Status {
      auto applied = exec(kMigrations[v]);
      if (!applied) return applied;
      Stmt ins(*stmts_, "INSERT INTO schema_version (version) VALUES (?)");
      ins.bind(1, v + 1);
      if (ins.step() != SQLITE_DONE) return ins.error("recording schema version");
      return Status::Ok();
    });
    if (!st) return st;
  }
  return Status::Ok();
}

Status SqliteStore::create(const Deployment& d) {
  std::lock_guard<std::mutex> lk(mu_);
  return insert_deployment(d);
}

Status SqliteStore::insert_deployment(const Deployment& d) {
  std::string sql = std::string("INSERT INTO deployments (") + kDeploymentColumns +
                    ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  Stmt s(*stmts_, sql.c_str());
  if (!s.ok()) return s.error("preparing insert");
  bind_deployment(s, d);
  int rc = s.step();
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return Error::make("conflict",
                       "a deployment with id " + d.id + " or Idempotency-Key " + d.idempotency_key + " exists");
  if (rc != SQLITE_DONE) return s.error("inserting deployment");
  return Status::Ok();
}

Result<Deployment> SqliteStore::get(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kDeploymentColumns + " FROM deployments WHERE id = ?";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, id);
  int rc = s.step();
  if (rc == SQLITE_ROW) return read_deployment(s);
  if (rc == SQLITE_DONE) return Error::make("not_found", "no deployment " + id);
  return s.error("reading deployment");
}

Result<std::vector<Deployment>> SqliteStore::list(const ListQuery& q) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kDeploymentColumns +
                    " FROM deployments WHERE id > ? AND (? = '' OR state = ?) AND (? = '' OR name = ?)"
                    " ORDER BY id LIMIT ?";
  Stmt s(*stmts_, sql.c_str());
  std::string state = q.state ? to_string(*q.state) : "";
  s.bind(1, q.after_id).bind(2, state).bind(3, state).bind(4, q.name).bind(5, q.name);
  s.bind(6, static_cast<int64_t>(q.limit));
  return collect(s, read_deployment, "listing deployments");
}

Status SqliteStore::write_deployment(const Deployment& d) {
  Stmt s(*stmts_,
         "UPDATE deployments SET name=?2, source=?3, ref=?4, commit_id=?5, provider=?6, state=?7, failed_step=?8,"
         " error=?9, machine=?10, address=?11, url=?12, secret=?13, spec_json=?14, created_ms=?15, updated_ms=?16,"
         " idempotency_key=?17, owner=?18, shared=?19, public_port=?20, stable_url=?21, keep_failed=?22,"
         " expires_ms=?23 WHERE id=?1");
  if (!s.ok()) return s.error("preparing update");
  bind_deployment(s, d);
  if (s.step() != SQLITE_DONE) return s.error("updating deployment");
  if (sqlite3_changes(db_) == 0) return Error::make("not_found", "no deployment " + d.id);
  return Status::Ok();
}

Status SqliteStore::update(const Deployment& d) {
  std::lock_guard<std::mutex> lk(mu_);
  return write_deployment(d);
}

Result<int64_t> SqliteStore::append_log(const std::string& id, const LogLine& line) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_,
         "INSERT INTO deployment_logs (deployment_id, seq, ts_ms, step, stream, text)"
         " SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5 FROM deployment_logs WHERE deployment_id = ?1"
         " RETURNING seq");
  if (!s.ok()) return s.error("preparing log insert");
  s.bind(1, id).bind(2, line.ts_ms).bind(3, line.step).bind(4, line.stream).bind(5, line.text);
  int rc = s.step();
  if (rc != SQLITE_ROW) {
    if ((rc & 0xff) == SQLITE_CONSTRAINT) return Error::make("not_found", "no deployment " + id);
    return s.error("appending log line");
  }
  int64_t seq = s.integer(0);
  while (s.step() == SQLITE_ROW) {
  }
  return seq;
}

Result<std::vector<LogLine>> SqliteStore::logs(const std::string& id, int64_t after_seq, size_t limit) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_,
         "SELECT seq, ts_ms, step, stream, text FROM deployment_logs WHERE deployment_id = ? AND seq > ?"
         " ORDER BY seq LIMIT ?");
  s.bind(1, id).bind(2, after_seq).bind(3, static_cast<int64_t>(limit));
  return collect(s, read_log, "reading log");
}

Result<std::vector<Deployment>> SqliteStore::unfinished() {
  std::lock_guard<std::mutex> lk(mu_);
  // The settled states' names come from core (constants, not input).
  std::string settled;
  for (State st : all_states()) {
    if (is_settled(st)) settled += (settled.empty() ? "'" : ", '") + to_string(st) + "'";
  }
  std::string sql = std::string("SELECT ") + kDeploymentColumns + " FROM deployments WHERE state NOT IN (" + settled +
                    ") ORDER BY id";
  Stmt s(*stmts_, sql.c_str());
  return collect(s, read_deployment, "listing unfinished deployments");
}

Result<std::optional<Deployment>> SqliteStore::find_by_idempotency_key(const std::string& key) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kDeploymentColumns + " FROM deployments WHERE idempotency_key = ?";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, key);
  int rc = s.step();
  if (rc == SQLITE_ROW) return std::optional<Deployment>(read_deployment(s));
  if (rc == SQLITE_DONE) return std::optional<Deployment>();
  return s.error("reading deployment by idempotency key");
}

Status SqliteStore::create_job(const Job& j) {
  std::lock_guard<std::mutex> lk(mu_);
  return insert_job(j);
}

Status SqliteStore::admit_job(const Job& j, const Admission& a, const Deployment* new_deployment) {
  std::lock_guard<std::mutex> lk(mu_);
  // the write lock from the first read: another connection to the file waits
  // instead of counting the same jobs
  return write_tx([&]() -> Status {
    if (new_deployment) {
      Stmt q(*stmts_, "SELECT id FROM deployments WHERE name = ? AND state NOT IN ('failed','destroyed') LIMIT 1");
      q.bind(1, new_deployment->name);
      int rc = q.step();
      if (rc == SQLITE_ROW) return name_taken(new_deployment->name, q.text(0));
      if (rc != SQLITE_DONE) return q.error("reading names");
      if (auto s = insert_deployment(*new_deployment); !s) return s;
    } else {
      Stmt q(*stmts_,
             "SELECT kind, id FROM jobs WHERE deployment_id = ? AND state IN ('queued','running')"
             " AND (? = 0 OR cancel_requested_ms = 0) LIMIT 1");
      q.bind(1, j.deployment_id).bind(2, static_cast<int64_t>(a.behind_cancelled ? 1 : 0));
      int rc = q.step();
      if (rc == SQLITE_ROW)
        return Error::make("conflict", "deployment " + j.deployment_id + " already has a " + q.text(0) + " job (" +
                                           q.text(1) + ") under way");
      if (rc != SQLITE_DONE) return q.error("reading jobs");
    }
    if (a.max_active > 0) {
      Stmt q(*stmts_,
             "SELECT COUNT(*) FROM jobs JOIN deployments ON deployments.id = jobs.deployment_id"
             " WHERE jobs.state IN ('queued','running') AND deployments.owner = ?");
      q.bind(1, a.owner);
      if (q.step() != SQLITE_ROW) return q.error("counting jobs");
      int64_t n = q.integer(0);
      if (n >= a.max_active)
        return Error::make("too_many", a.owner + " has " + std::to_string(n) + " jobs under way (limit " +
                                           std::to_string(a.max_active) + "); wait for one to end");
    }
    return insert_job(j);
  });
}

Status SqliteStore::insert_job(const Job& j) {
  std::string sql = std::string("INSERT INTO jobs (") + kJobColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  Stmt s(*stmts_, sql.c_str());
  bind_job(s, j);
  s.bind(12, j.lease_owner).bind(13, j.lease_expires_ms).bind(14, j.cancel_requested_ms);
  int rc = s.step();
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return Error::make("conflict", "job " + j.id + " exists or its deployment does not");
  if (rc != SQLITE_DONE) return s.error("inserting job");
  return Status::Ok();
}

Status SqliteStore::update_job(const Job& j) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_,
         "UPDATE jobs SET deployment_id=?2, kind=?3, state=?4, step=?5, error=?6, params_json=?7, result_json=?8,"
         " attempts=?9, created_ms=?10, updated_ms=?11 WHERE id=?1");
  bind_job(s, j);
  if (s.step() != SQLITE_DONE) return s.error("updating job");
  if (sqlite3_changes(db_) == 0) return Error::make("not_found", "no job " + j.id);
  return Status::Ok();
}

Result<Job> SqliteStore::get_job(const std::string& id) {
  auto r = query_jobs("WHERE id = ?", id);
  if (!r) return r.error();
  if (r->empty()) return Error::make("not_found", "no job " + id);
  return r->front();
}

Result<std::vector<Job>> SqliteStore::jobs_of(const std::string& deployment_id) {
  return query_jobs("WHERE deployment_id = ? ORDER BY id", deployment_id);
}

Result<std::vector<Deployment>> SqliteStore::expired(int64_t now_ms, size_t limit) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kDeploymentColumns +
                    " FROM deployments WHERE expires_ms > 0 AND expires_ms <= ? AND state <> 'destroyed'"
                    " ORDER BY expires_ms, id LIMIT ?";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, now_ms).bind(2, static_cast<int64_t>(limit));
  return collect(s, read_deployment, "listing expired deployments");
}

Result<std::vector<Job>> SqliteStore::unfinished_jobs() {
  return query_jobs("WHERE state IN ('queued', 'running') AND ? = '' ORDER BY id", "");
}

Result<std::optional<Job>> SqliteStore::claim_job(const std::string& owner, int64_t now_ms, int64_t lease_ms,
                                                  int max_per_owner) {
  std::lock_guard<std::mutex> lk(mu_);
  // one writer at a time, so the pick and the lease are one step
  return write_tx([&]() -> Result<std::optional<Job>> {
    // leased(...): the jobs of d's owner that a server holds right now
    std::string leased =
        "(SELECT COUNT(*) FROM jobs r JOIN deployments rd ON rd.id = r.deployment_id"
        " WHERE rd.owner = d.owner AND r.state IN ('queued', 'running') AND r.lease_expires_ms >= ?1";
    std::string sql = std::string("SELECT ") + kJobColumnsJ +
                      " FROM jobs j JOIN deployments d ON d.id = j.deployment_id"
                      " WHERE j.state IN ('queued', 'running') AND j.lease_expires_ms < ?1"
                      " AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.deployment_id = j.deployment_id"
                      "   AND o.state IN ('queued', 'running') AND o.id < j.id)"
                      " AND (?3 <= 0 OR " +
                      leased +
                      " AND r.lease_owner = ?2) < ?3)"
                      " ORDER BY " +
                      leased + "), j.id LIMIT 1";
    Job job;
    {
      Stmt s(*stmts_, sql.c_str());
      s.bind(1, now_ms).bind(2, owner).bind(3, static_cast<int64_t>(max_per_owner));
      int rc = s.step();
      if (rc == SQLITE_DONE) return std::optional<Job>();
      if (rc != SQLITE_ROW) return s.error("claiming a job");
      job = read_job(s);
    }
    job.lease_owner = owner;
    job.lease_expires_ms = now_ms + lease_ms;
    Stmt u(*stmts_, "UPDATE jobs SET lease_owner = ?2, lease_expires_ms = ?3 WHERE id = ?1");
    u.bind(1, job.id).bind(2, job.lease_owner).bind(3, job.lease_expires_ms);
    if (u.step() != SQLITE_DONE) return u.error("leasing a job");
    return std::optional<Job>(job);
  });
}

Result<Job> SqliteStore::request_cancel(const std::string& job_id, int64_t now_ms, const std::string& reason) {
  std::lock_guard<std::mutex> lk(mu_);
  return write_tx([&]() -> Result<Job> {
    Job job;
    {
      std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?";
      Stmt s(*stmts_, sql.c_str());
      s.bind(1, job_id);
      int rc = s.step();
      if (rc == SQLITE_DONE) return Error::make("not_found", "no job " + job_id);
      if (rc != SQLITE_ROW) return s.error("reading a job");
      job = read_job(s);
    }
    if (job.state != "queued" && job.state != "running")
      return Error::make("conflict", "job " + job_id + " has ended already (" + job.state + ")");
    if (job.state == "queued" && job.lease_expires_ms < now_ms) {
      job.state = "cancelled";
      job.step = "cancelled";
      job.error = reason;
      job.updated_ms = now_ms;
      Stmt u(*stmts_, "UPDATE jobs SET state = ?2, step = ?3, error = ?4, updated_ms = ?5 WHERE id = ?1");
      u.bind(1, job.id).bind(2, job.state).bind(3, job.step).bind(4, job.error).bind(5, job.updated_ms);
      if (u.step() != SQLITE_DONE) return u.error("cancelling a job");
      return job;
    }
    if (job.cancel_requested_ms == 0) {
      job.cancel_requested_ms = now_ms;
      Stmt u(*stmts_, "UPDATE jobs SET cancel_requested_ms = ?2 WHERE id = ?1");
      u.bind(1, job.id).bind(2, job.cancel_requested_ms);
      if (u.step() != SQLITE_DONE) return u.error("recording a cancel");
    }
    return job;
  });
}

Result<int64_t> SqliteStore::renew_leases(const std::string& owner, int64_t until_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "UPDATE jobs SET lease_expires_ms = ?2 WHERE lease_owner = ?1 AND state IN ('queued', 'running')");
  s.bind(1, owner).bind(2, until_ms);
  if (s.step() != SQLITE_DONE) return s.error("renewing leases");
  return static_cast<int64_t>(sqlite3_changes(db_));
}

Result<int64_t> SqliteStore::renew_leases_of(const std::string& owner, const std::vector<std::string>& job_ids,
                                             int64_t until_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  return write_tx([&]() -> Result<int64_t> {
    int64_t n = 0;
    for (const auto& id : job_ids) {
      Stmt s(*stmts_,
             "UPDATE jobs SET lease_expires_ms = ?3 WHERE id = ?2 AND lease_owner = ?1 AND state IN ('queued', "
             "'running')");
      s.bind(1, owner).bind(2, id).bind(3, until_ms);
      if (s.step() != SQLITE_DONE) return s.error("renewing leases");
      n += sqlite3_changes(db_);
    }
    return n;
  });
}

Result<std::map<std::string, int64_t>> SqliteStore::count_by_state() {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "SELECT state, COUNT(*) FROM deployments GROUP BY state");
  std::map<std::string, int64_t> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out[s.text(0)] = s.integer(1);
  if (rc != SQLITE_DONE) return s.error("counting deployments");
  return out;
}

Result<std::vector<Job>> SqliteStore::query_jobs(const char* where, const std::string& arg) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs " + where;
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, arg);
  return collect(s, read_job, "reading jobs");
}

Status SqliteStore::add_backup(const Backup& b) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("INSERT INTO backups (") + kBackupColumns + ") VALUES (?,?,?,?,?,?,?,?,?)";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, b.id).bind(2, b.deployment_id).bind(3, b.created_ms).bind(4, b.size_bytes).bind(5, b.sha256);
  s.bind(6, b.path).bind(7, b.snapshot).bind(8, b.commit).bind(9, b.secret);
  int rc = s.step();
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return Error::make("conflict", "backup " + b.id + " exists or its deployment does not");
  if (rc != SQLITE_DONE) return s.error("inserting backup");
  return Status::Ok();
}

Result<Backup> SqliteStore::get_backup(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kBackupColumns + " FROM backups WHERE id = ?";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, id);
  int rc = s.step();
  if (rc == SQLITE_ROW) return read_backup(s);
  if (rc == SQLITE_DONE) return Error::make("not_found", "no backup " + id);
  return s.error("reading backup");
}

Result<std::vector<Backup>> SqliteStore::backups_of(const std::string& deployment_id) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kBackupColumns + " FROM backups WHERE deployment_id = ? ORDER BY id";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, deployment_id);
  return collect(s, read_backup, "reading backups");
}

Status SqliteStore::delete_backup(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "DELETE FROM backups WHERE id = ?");
  s.bind(1, id);
  if (s.step() != SQLITE_DONE) return s.error("deleting backup");
  if (sqlite3_changes(db_) == 0) return Error::make("not_found", "no backup " + id);
  return Status::Ok();
}

Status SqliteStore::put_cleanup(const Cleanup& c) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_,
         "INSERT INTO cleanups (provider, machine, deployment_id, attempts, next_ms, last_error, created_ms)"
         " VALUES (?,?,?,?,?,?,?) ON CONFLICT (provider, machine) DO UPDATE SET deployment_id = excluded.deployment_id,"
         " attempts = excluded.attempts, next_ms = excluded.next_ms, last_error = excluded.last_error");
  s.bind(1, c.provider).bind(2, c.machine).bind(3, c.deployment_id).bind(4, static_cast<int64_t>(c.attempts));
  s.bind(5, c.next_ms).bind(6, c.last_error).bind(7, c.created_ms);
  if (s.step() != SQLITE_DONE) return s.error("recording a clean-up");
  return Status::Ok();
}

Result<std::vector<Cleanup>> SqliteStore::cleanups() {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_,
         "SELECT deployment_id, provider, machine, attempts, next_ms, last_error, created_ms FROM cleanups"
         " ORDER BY created_ms, provider, machine");
  return collect(
      s,
      +[](const Stmt& r) {
        return Cleanup{r.text(0),    r.text(1), r.text(2),   static_cast<int>(r.integer(3)),
                       r.integer(4), r.text(5), r.integer(6)};
      },
      "reading the clean-up queue");
}

Status SqliteStore::delete_cleanup(const std::string& provider, const std::string& machine) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "DELETE FROM cleanups WHERE provider = ? AND machine = ?");
  s.bind(1, provider).bind(2, machine);
  if (s.step() != SQLITE_DONE) return s.error("deleting a clean-up");
  return Status::Ok();
}

namespace {
constexpr const char* kWarmColumns =
    "name, provider, os_key, state, address, agent_sha256, maker, created_ms, updated_ms";
WarmMachine read_warm(const Stmt& r) {
  return WarmMachine{r.text(0), r.text(1), r.text(2),    r.text(3),   r.text(4),
                     r.text(5), r.text(6), r.integer(7), r.integer(8)};
}
}  // namespace

Status SqliteStore::add_warm(const WarmMachine& w, int max) {
  std::lock_guard<std::mutex> lk(mu_);
  return write_tx([&]() -> Status {
    {
      Stmt n(*stmts_, "SELECT COUNT(*) FROM warm_machines WHERE provider = ? AND os_key = ?");
      n.bind(1, w.provider).bind(2, w.os_key);
      if (n.step() != SQLITE_ROW) return n.error("counting warm machines");
      if (n.integer(0) >= max)
        return Error::make("exhausted", std::to_string(n.integer(0)) + " warm machine(s) of " + w.os_key + " already");
    }
    Stmt s(*stmts_,
           "INSERT INTO warm_machines (name, provider, os_key, state, address, agent_sha256, maker, created_ms,"
           " updated_ms) VALUES (?,?,?,?,?,?,?,?,?)");
    s.bind(1, w.name).bind(2, w.provider).bind(3, w.os_key).bind(4, w.state).bind(5, w.address);
    s.bind(6, w.agent_sha256).bind(7, w.maker).bind(8, w.created_ms).bind(9, w.updated_ms);
    if (s.step() != SQLITE_DONE) return s.error("recording a warm machine");
    return Status::Ok();
  });
}

Status SqliteStore::set_warm_ready(const std::string& name, const std::string& address, int64_t now_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_,
         "UPDATE warm_machines SET state = 'ready', address = ?, updated_ms = ? WHERE name = ? AND state = 'creating'");
  s.bind(1, address).bind(2, now_ms).bind(3, name);
  if (s.step() != SQLITE_DONE) return s.error("marking a warm machine ready");
  if (sqlite3_changes(db_) == 0) return Error::make("not_found", "no warm machine " + name + " being made");
  return Status::Ok();
}

Status SqliteStore::touch_warm(const std::string& name, int64_t now_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "UPDATE warm_machines SET updated_ms = ? WHERE name = ? AND state = 'creating'");
  s.bind(1, now_ms).bind(2, name);
  if (s.step() != SQLITE_DONE) return s.error("noting a warm machine still being made");
  if (sqlite3_changes(db_) == 0) return Error::make("not_found", "no warm machine " + name + " being made");
  return Status::Ok();
}

Result<std::optional<WarmMachine>> SqliteStore::claim_warm(const std::string& provider, const std::string& os_key,
                                                           const std::string& agent_sha256) {
  std::lock_guard<std::mutex> lk(mu_);
  // one statement: the row read is the row deleted
  static const std::string sql =
      std::string(
          "DELETE FROM warm_machines WHERE name = (SELECT name FROM warm_machines WHERE provider = ? AND"
          " os_key = ? AND agent_sha256 = ? AND state = 'ready' ORDER BY created_ms, name LIMIT 1)"
          " RETURNING ") +
      kWarmColumns;
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, provider).bind(2, os_key).bind(3, agent_sha256);
  int rc = s.step();
  if (rc == SQLITE_DONE) return std::optional<WarmMachine>();
  if (rc != SQLITE_ROW) return s.error("claiming a warm machine");
  std::optional<WarmMachine> out = read_warm(s);
  if (s.step() != SQLITE_DONE) return s.error("claiming a warm machine");
  return out;
}

Result<bool> SqliteStore::remove_warm(const std::string& name, const std::string& state) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "DELETE FROM warm_machines WHERE name = ? AND state = ?");
  s.bind(1, name).bind(2, state);
  if (s.step() != SQLITE_DONE) return s.error("forgetting a warm machine");
  return sqlite3_changes(db_) > 0;
}

Result<std::vector<WarmMachine>> SqliteStore::warm_machines() {
  std::lock_guard<std::mutex> lk(mu_);
  static const std::string sql =
      std::string("SELECT ") + kWarmColumns + " FROM warm_machines ORDER BY created_ms, name";
  Stmt s(*stmts_, sql.c_str());
  return collect(s, read_warm, "reading warm machines");
}

Result<PruneResult> SqliteStore::prune_destroyed(int64_t before_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  return write_tx([&]() -> Result<PruneResult> {
    PruneResult out;
    constexpr const char* kOld = "SELECT id FROM deployments WHERE state = 'destroyed' AND updated_ms < ?";
    constexpr const char* kGone =
        "SELECT d.id FROM deployments d WHERE d.state = 'destroyed' AND d.updated_ms < ?"
        " AND NOT EXISTS (SELECT 1 FROM backups b WHERE b.deployment_id = d.id)"
        " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.deployment_id = d.id AND j.state IN ('queued', 'running'))";
    auto run = [&](const std::string& sql, const char* what) -> Result<int64_t> {
      Stmt s(*stmts_, sql.c_str());
      s.bind(1, before_ms);
      if (s.step() != SQLITE_DONE) return s.error(what);
      return static_cast<int64_t>(sqlite3_changes(db_));
    };
    auto logs = run(std::string("DELETE FROM deployment_logs WHERE deployment_id IN (") + kOld + ")", "pruning logs");
    if (!logs) return logs.error();
    auto jobs = run(std::string("DELETE FROM jobs WHERE deployment_id IN (") + kGone + ")", "pruning jobs");
    if (!jobs) return jobs.error();
    // its releases are part of the record (their machines are gone with it)
    auto rels = run(std::string("DELETE FROM releases WHERE deployment_id IN (") + kGone + ")", "pruning releases");
    if (!rels) return rels.error();
    auto deps = run(std::string("DELETE FROM deployments WHERE id IN (") + kGone + ")", "pruning deployments");
    if (!deps) return deps.error();
    out.log_lines = *logs;
    out.jobs = *jobs;
    out.deployments = *deps;
    return out;
  });
}

Status SqliteStore::add_release(const Release& r) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql =
      std::string("INSERT INTO releases (") + kReleaseColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  Stmt s(*stmts_, sql.c_str());
  bind_release(s, r);
  int rc = s.step();
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return Error::make(
        "conflict", "release " + r.id + " (or number " + std::to_string(r.seq) + ") exists or its deployment does not");
  if (rc != SQLITE_DONE) return s.error("inserting release");
  return Status::Ok();
}

Status SqliteStore::write_release(const Release& r) {
  Stmt s(*stmts_,
         "UPDATE releases SET deployment_id=?2, seq=?3, state=?4, ref=?5, commit_id=?6, machine=?7, address=?8, url=?9,"
         " secret=?10, spec_json=?11, by_user=?12, job_id=?13, error=?14, created_ms=?15, updated_ms=?16 WHERE id=?1");
  if (!s.ok()) return s.error("preparing release update");
  bind_release(s, r);
  if (s.step() != SQLITE_DONE) return s.error("updating release");
  if (sqlite3_changes(db_) == 0) return Error::make("not_found", "no release " + r.id);
  return Status::Ok();
}

Status SqliteStore::update_release(const Release& r) {
  std::lock_guard<std::mutex> lk(mu_);
  return write_release(r);
}

Result<Release> SqliteStore::get_release(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kReleaseColumns + " FROM releases WHERE id = ?";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, id);
  int rc = s.step();
  if (rc == SQLITE_ROW) return read_release(s);
  if (rc == SQLITE_DONE) return Error::make("not_found", "no release " + id);
  return s.error("reading release");
}

Result<std::vector<Release>> SqliteStore::releases_of(const std::string& deployment_id) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kReleaseColumns + " FROM releases WHERE deployment_id = ? ORDER BY seq";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, deployment_id);
  return collect(s, read_release, "reading releases");
}

Status SqliteStore::switch_release(const Deployment& d, const std::vector<Release>& changed) {
  std::lock_guard<std::mutex> lk(mu_);
  return write_tx([&]() -> Status {
    if (auto st = write_deployment(d); !st) return st;
    for (const auto& r : changed) {
      if (r.deployment_id != d.id) return Error::make("invalid", "release " + r.id + " is not of deployment " + d.id);
      if (auto st = write_release(r); !st) return st;
    }
    return Status::Ok();
  });
}

Status SqliteStore::create_user(const User& u) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("INSERT INTO users (") + kUserColumns + ") VALUES (?,?,?,?,?,?,?,?)";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, u.id).bind(2, u.name).bind(3, to_string(u.role)).bind(4, u.password_hash).bind(5, u.created_ms);
  s.bind(6, u.oidc_issuer).bind(7, u.oidc_subject).bind(8, u.disabled_ms);
  int rc = s.step();
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_UNIQUE &&
        std::string(sqlite3_errmsg(db_)).find("oidc") != std::string::npos)
      return Error{"conflict", "another user is bound to this OpenID identity", "name"};
    return Error{"conflict", "a user named " + u.name + " exists", "name"};
  }
  if (rc != SQLITE_DONE) return s.error("inserting user");
  return Status::Ok();
}

Result<std::vector<User>> SqliteStore::query_users(const char* where, const std::string& arg) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kUserColumns + " FROM users " + where;
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, arg);
  return collect(s, read_user, "reading users");
}

Result<User> SqliteStore::get_user(const std::string& id) {
  auto r = query_users("WHERE id = ?", id);
  if (!r) return r.error();
  if (r->empty()) return Error::make("not_found", "no user " + id);
  return r->front();
}

Result<User> SqliteStore::get_user_by_name(const std::string& name) {
  auto r = query_users("WHERE name = ?", name);
  if (!r) return r.error();
  if (r->empty()) return Error::make("not_found", "no user named " + name);
  return r->front();
}

Result<User> SqliteStore::get_user_by_subject(const std::string& issuer, const std::string& subject) {
  if (subject.empty()) return Error::make("not_found", "no user bound to an empty subject");
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kUserColumns + " FROM users WHERE oidc_issuer = ? AND oidc_subject = ?";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, issuer).bind(2, subject);
  int rc = s.step();
  if (rc == SQLITE_ROW) return read_user(s);
  if (rc == SQLITE_DONE) return Error::make("not_found", "no user bound to this OpenID identity");
  return s.error("reading a user");
}

Result<std::vector<User>> SqliteStore::users() { return query_users("WHERE ? = '' ORDER BY id", ""); }

Status SqliteStore::create_token(const Token& t) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("INSERT INTO tokens (") + kTokenColumns + ") VALUES (?,?,?,?,?,?,?,?)";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, t.id).bind(2, t.user_id).bind(3, t.name).bind(4, t.hash).bind(5, t.created_ms).bind(6, t.expires_ms);
  s.bind(7, t.revoked_ms).bind(8, static_cast<int64_t>(t.session ? 1 : 0));
  int rc = s.step();
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return Error::make("conflict", "token " + t.id + " exists or its user does not");
  if (rc != SQLITE_DONE) return s.error("inserting token");
  return Status::Ok();
}

Result<std::vector<Token>> SqliteStore::query_tokens(const char* where, const std::string& arg) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kTokenColumns + " FROM tokens " + where;
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, arg);
  return collect(s, read_token, "reading tokens");
}

Result<Token> SqliteStore::token_by_hash(const std::string& hash) {
  auto r = query_tokens("WHERE hash = ?", hash);
  if (!r) return r.error();
  if (r->empty()) return Error::make("not_found", "no such token");
  return r->front();
}

Result<Token> SqliteStore::get_token(const std::string& id) {
  auto r = query_tokens("WHERE id = ?", id);
  if (!r) return r.error();
  if (r->empty()) return Error::make("not_found", "no token " + id);
  return r->front();
}

Result<std::vector<Token>> SqliteStore::tokens_of(const std::string& user_id) {
  return query_tokens("WHERE user_id = ? ORDER BY id", user_id);
}

Status SqliteStore::update_user(const User& u) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "UPDATE users SET role = ?2, password_hash = ?3, disabled_ms = ?4 WHERE id = ?1");
  s.bind(1, u.id).bind(2, to_string(u.role)).bind(3, u.password_hash).bind(4, u.disabled_ms);
  if (s.step() != SQLITE_DONE) return s.error("updating user");
  if (sqlite3_changes(db_) == 0) return Error::make("not_found", "no user " + u.id);
  return Status::Ok();
}

Status SqliteStore::bind_user(const std::string& id, const std::string& issuer, const std::string& subject) {
  if (subject.empty()) return Error::invalid("subject", "a binding needs a subject");
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "UPDATE users SET oidc_issuer = ?2, oidc_subject = ?3 WHERE id = ?1 AND oidc_subject = ''");
  s.bind(1, id).bind(2, issuer).bind(3, subject);
  int rc = s.step();
  if ((rc & 0xff) == SQLITE_CONSTRAINT) return Error::make("conflict", "another user is bound to this OpenID identity");
  if (rc != SQLITE_DONE) return s.error("binding a user");
  if (sqlite3_changes(db_) == 1) return Status::Ok();
  Stmt q(*stmts_, "SELECT 1 FROM users WHERE id = ?");
  q.bind(1, id);
  if (q.step() != SQLITE_ROW) return Error::make("not_found", "no user " + id);
  return Error::make("conflict", "the user is bound to another OpenID identity already");
}

Status SqliteStore::unbind_user(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "UPDATE users SET oidc_issuer = '', oidc_subject = '' WHERE id = ?");
  s.bind(1, id);
  if (s.step() != SQLITE_DONE) return s.error("unbinding a user");
  if (sqlite3_changes(db_) == 0) return Error::make("not_found", "no user " + id);
  return Status::Ok();
}

Status SqliteStore::update_token(const Token& t) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "UPDATE tokens SET name = ?2, expires_ms = ?3, revoked_ms = ?4 WHERE id = ?1");
  s.bind(1, t.id).bind(2, t.name).bind(3, t.expires_ms).bind(4, t.revoked_ms);
  if (s.step() != SQLITE_DONE) return s.error("updating token");
  if (sqlite3_changes(db_) == 0) return Error::make("not_found", "no token " + t.id);
  return Status::Ok();
}

Result<int64_t> SqliteStore::append_audit(const AuditEntry& e) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(
      *stmts_,
      "INSERT INTO audit (ts_ms, user, action, target, remote, status, detail) VALUES (?,?,?,?,?,?,?) RETURNING seq");
  s.bind(1, e.ts_ms).bind(2, e.user).bind(3, e.action).bind(4, e.target).bind(5, e.remote);
  s.bind(6, static_cast<int64_t>(e.status)).bind(7, e.detail);
  if (s.step() != SQLITE_ROW) return s.error("appending audit entry");
  int64_t seq = s.integer(0);
  if (s.step() != SQLITE_DONE) return s.error("appending audit entry");
  return seq;
}

Status SqliteStore::finish_audit(int64_t seq, int status, const std::string& target, const std::string& detail) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "UPDATE audit SET status = ?2, target = ?3, detail = ?4 WHERE seq = ?1 AND status = 0");
  s.bind(1, seq).bind(2, static_cast<int64_t>(status)).bind(3, target).bind(4, detail);
  if (s.step() != SQLITE_DONE) return s.error("completing audit entry");
  if (sqlite3_changes(db_) == 0)
    return Error::make("not_found", "no audit entry " + std::to_string(seq) + " waiting for its status");
  return Status::Ok();
}

Result<std::vector<AuditEntry>> SqliteStore::audit(int64_t after_seq, size_t limit) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(
      *stmts_,
      "SELECT seq, ts_ms, user, action, target, remote, status, detail FROM audit WHERE seq > ? ORDER BY seq LIMIT ?");
  s.bind(1, after_seq).bind(2, static_cast<int64_t>(limit));
  return collect(s, read_audit, "reading audit");
}

Result<std::string> SqliteStore::allocate_address(const std::string& subnet, const std::string& owner) {
  auto net = parse_ipv4_subnet(subnet);
  if (!net) return net.error();
  if (owner.empty()) return Error::invalid("owner", "an address needs an owner");
  const std::string key = net->to_string();
  std::lock_guard<std::mutex> lk(mu_);
  // another connection (another Store on the same file, another process)
  // waits instead of reading the same free address
  return write_tx([&]() -> Result<std::string> {
    {
      Stmt held(*stmts_, "SELECT ip FROM addresses WHERE subnet = ? AND owner = ?");
      held.bind(1, key).bind(2, owner);
      int rc = held.step();
      if (rc == SQLITE_ROW) return held.text(0);
      if (rc != SQLITE_DONE) return held.error("reading addresses");
    }
    std::vector<uint32_t> taken;
    {
      Stmt q(*stmts_, "SELECT address FROM addresses WHERE subnet = ?");
      q.bind(1, key);
      int rc;
      while ((rc = q.step()) == SQLITE_ROW) taken.push_back(static_cast<uint32_t>(q.integer(0)));
      if (rc != SQLITE_DONE) return q.error("reading addresses");
    }
    auto free = lowest_free(*net, std::move(taken));
    if (!free) return Error{"exhausted", "every address of " + key + " is taken", "subnet"};
    std::string ip = format_ipv4(*free);
    Stmt ins(*stmts_, "INSERT INTO addresses (subnet, address, ip, owner, allocated_ms) VALUES (?,?,?,?,?)");
    int64_t now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    ins.bind(1, key).bind(2, static_cast<int64_t>(*free)).bind(3, ip).bind(4, owner).bind(5, now);
    if (ins.step() != SQLITE_DONE) return ins.error("recording address");
    return ip;
  });
}

Result<int> SqliteStore::allocate_port(const std::string& id, int lo, int hi) {
  if (lo < 1 || hi > 65535 || lo > hi) return Error::invalid("ports", "must be a range within 1-65535");
  std::lock_guard<std::mutex> lk(mu_);
  return write_tx([&]() -> Result<int> {
    {
      Stmt held(*stmts_, "SELECT public_port FROM deployments WHERE id = ?");
      held.bind(1, id);
      int rc = held.step();
      if (rc == SQLITE_DONE) return Error::make("not_found", "no deployment " + id);
      if (rc != SQLITE_ROW) return held.error("reading ports");
      int p = static_cast<int>(held.integer(0));
      if (p >= lo && p <= hi) return p;
    }
    std::vector<int> taken;
    {
      Stmt q(*stmts_, "SELECT public_port FROM deployments WHERE public_port BETWEEN ? AND ?");
      q.bind(1, static_cast<int64_t>(lo)).bind(2, static_cast<int64_t>(hi));
      int rc;
      while ((rc = q.step()) == SQLITE_ROW) taken.push_back(static_cast<int>(q.integer(0)));
      if (rc != SQLITE_DONE) return q.error("reading ports");
    }
    auto free = lowest_free_port(lo, hi, std::move(taken));
    if (!free) return port_exhausted(lo, hi);
    Stmt up(*stmts_, "UPDATE deployments SET public_port = ? WHERE id = ?");
    up.bind(1, static_cast<int64_t>(*free)).bind(2, id);
    if (up.step() != SQLITE_DONE) return up.error("recording a port");
    return *free;
  });
}

Status SqliteStore::release_addresses(const std::string& owner) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "DELETE FROM addresses WHERE owner = ?");
  s.bind(1, owner);
  if (s.step() != SQLITE_DONE) return s.error("releasing addresses");
  return Status::Ok();
}

Result<RateTake> SqliteStore::take_rate(const std::string& key, double per_second, double burst, int64_t now_ms) {
  if (key.empty()) return Error::invalid("key", "a rate needs a key");
  std::lock_guard<std::mutex> lk(mu_);
  // two servers on this file never both read the same count of tokens
  return write_tx([&]() -> Result<RateTake> {
    {
      Stmt forget(*stmts_, "DELETE FROM rate_buckets WHERE full_at_ms < ?");
      forget.bind(1, now_ms);
      if (forget.step() != SQLITE_DONE) return forget.error("forgetting full rate buckets");
    }
    TokenBucket b(per_second, burst);
    {
      Stmt q(*stmts_, "SELECT tokens, last_ms FROM rate_buckets WHERE bucket = ?");
      q.bind(1, key);
      int rc = q.step();
      if (rc == SQLITE_ROW) b = TokenBucket(per_second, burst, q.real(0), q.integer(1));
      else if (rc != SQLITE_DONE) return q.error("reading a rate bucket");
    }
    RateTake t;
    t.allowed = b.take(now_ms, &t.retry_after_ms);
    if (!t.allowed) return t;  // a refusal takes nothing: the bucket is as it was
    Stmt up(*stmts_,
            "INSERT INTO rate_buckets (bucket, tokens, last_ms, full_at_ms) VALUES (?,?,?,?) "
            "ON CONFLICT (bucket) DO UPDATE SET tokens = excluded.tokens, last_ms = excluded.last_ms, "
            "full_at_ms = excluded.full_at_ms");
    up.bind(1, key).bind(2, b.tokens()).bind(3, b.last_ms()).bind(4, b.full_at_ms());
    if (up.step() != SQLITE_DONE) return up.error("saving a rate bucket");
    return t;
  });
}

namespace {
constexpr const char* kTrackColumns =
    "deployment_id, branch, secret, poll_s, pending_commit, polled_ms, created_ms, updated_ms";
GitTrack read_track(const Stmt& s) {
  return GitTrack{s.text(0), s.text(1), s.text(2), s.integer(3), s.text(4), s.integer(5), s.integer(6), s.integer(7)};
}
}  // namespace

Status SqliteStore::put_track(const GitTrack& t) {
  std::lock_guard<std::mutex> lk(mu_);
  return write_tx([&]() -> Status {
    {
      Stmt q(*stmts_, "SELECT 1 FROM deployments WHERE id = ?");
      q.bind(1, t.deployment_id);
      int rc = q.step();
      if (rc == SQLITE_DONE) return Error::make("not_found", "no deployment " + t.deployment_id);
      if (rc != SQLITE_ROW) return q.error("reading a deployment");
    }
    std::string sql = std::string("INSERT INTO git_tracks (") + kTrackColumns +
                      ") VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (deployment_id) DO UPDATE SET branch = excluded.branch,"
                      " secret = excluded.secret, poll_s = excluded.poll_s, pending_commit = excluded.pending_commit,"
                      " polled_ms = excluded.polled_ms, updated_ms = excluded.updated_ms";
    Stmt s(*stmts_, sql.c_str());
    s.bind(1, t.deployment_id).bind(2, t.branch).bind(3, t.secret).bind(4, t.poll_s).bind(5, t.pending_commit);
    s.bind(6, t.polled_ms).bind(7, t.created_ms).bind(8, t.updated_ms);
    if (s.step() != SQLITE_DONE) return s.error("recording a tracked branch");
    return Status::Ok();
  });
}

Result<GitTrack> SqliteStore::get_track(const std::string& deployment_id) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kTrackColumns + " FROM git_tracks WHERE deployment_id = ?";
  Stmt s(*stmts_, sql.c_str());
  s.bind(1, deployment_id);
  int rc = s.step();
  if (rc == SQLITE_ROW) return read_track(s);
  if (rc == SQLITE_DONE) return Error::make("not_found", "deployment " + deployment_id + " tracks no branch");
  return s.error("reading a tracked branch");
}

Status SqliteStore::delete_track(const std::string& deployment_id) {
  std::lock_guard<std::mutex> lk(mu_);
  return write_tx([&]() -> Status {
    for (const char* sql :
         {"DELETE FROM git_tracks WHERE deployment_id = ?", "DELETE FROM git_deliveries WHERE deployment_id = ?"}) {
      Stmt s(*stmts_, sql);
      s.bind(1, deployment_id);
      if (s.step() != SQLITE_DONE) return s.error("forgetting a tracked branch");
    }
    return Status::Ok();
  });
}

Result<std::vector<GitTrack>> SqliteStore::tracks() {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sql = std::string("SELECT ") + kTrackColumns + " FROM git_tracks ORDER BY deployment_id";
  Stmt s(*stmts_, sql.c_str());
  return collect(s, read_track, "listing tracked branches");
}

Result<bool> SqliteStore::note_delivery(const std::string& deployment_id, const std::string& delivery_id,
                                        int64_t now_ms, size_t keep) {
  std::lock_guard<std::mutex> lk(mu_);
  return write_tx([&]() -> Result<bool> {
    Stmt s(*stmts_,
           "INSERT INTO git_deliveries (deployment_id, delivery_id, seen_ms) VALUES (?,?,?)"
           " ON CONFLICT DO NOTHING");
    s.bind(1, deployment_id).bind(2, delivery_id).bind(3, now_ms);
    if (s.step() != SQLITE_DONE) return s.error("recording a delivery");
    if (sqlite3_changes(db_) == 0) return false;
    Stmt trim(*stmts_,
              "DELETE FROM git_deliveries WHERE deployment_id = ?1 AND delivery_id NOT IN (SELECT delivery_id FROM"
              " git_deliveries WHERE deployment_id = ?1 ORDER BY seen_ms DESC, rowid DESC LIMIT ?2)");
    trim.bind(1, deployment_id).bind(2, static_cast<int64_t>(keep));
    if (trim.step() != SQLITE_DONE) return trim.error("trimming deliveries");
    return true;
  });
}

Status SqliteStore::set_pending(const std::string& deployment_id, const std::string& commit, int64_t now_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "UPDATE git_tracks SET pending_commit = ?, updated_ms = ? WHERE deployment_id = ?");
  s.bind(1, commit).bind(2, now_ms).bind(3, deployment_id);
  if (s.step() != SQLITE_DONE) return s.error("recording a pending commit");
  if (sqlite3_changes(db_) == 0) return Error::make("not_found", "deployment " + deployment_id + " tracks no branch");
  return Status::Ok();
}

Result<bool> SqliteStore::take_pending(const std::string& deployment_id, const std::string& commit) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "UPDATE git_tracks SET pending_commit = '' WHERE deployment_id = ? AND pending_commit = ?");
  s.bind(1, deployment_id).bind(2, commit);
  if (s.step() != SQLITE_DONE) return s.error("taking a pending commit");
  return sqlite3_changes(db_) > 0;
}

Status SqliteStore::set_polled(const std::string& deployment_id, int64_t now_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt s(*stmts_, "UPDATE git_tracks SET polled_ms = ? WHERE deployment_id = ?");
  s.bind(1, now_ms).bind(2, deployment_id);
  if (s.step() != SQLITE_DONE) return s.error("recording a poll");
  return Status::Ok();
}

}  // namespace ads
