#include "store/postgres/postgres_store.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <pqxx/pqxx>

#include "core/ipnet.h"
#include "core/rate.h"
#include "core/text.h"
#include "store/store_rules.h"

namespace ads {
using namespace store_detail;
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
constexpr const char* kBackupColumns =
    "id, deployment_id, created_ms, size_bytes, sha256, path, snapshot, commit_id, secret";
constexpr const char* kReleaseColumns =
    "id, deployment_id, seq, state, ref, commit_id, machine, address, url, secret, spec_json, by_user, job_id, error, "
    "created_ms, updated_ms";

// The schema, one entry per version, numbered like the SQLite store's.
// Ids sort bytewise (COLLATE "C") as ULIDs must, whatever the cluster's locale.
const char* const kMigrations[] = {
    // version 1
    "CREATE TABLE deployments ("
    "  id TEXT COLLATE \"C\" PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL, ref TEXT NOT NULL,"
    "  commit_id TEXT NOT NULL, provider TEXT NOT NULL, state TEXT NOT NULL, failed_step TEXT NOT NULL,"
    "  error TEXT NOT NULL, machine TEXT NOT NULL, address TEXT NOT NULL, url TEXT NOT NULL,"
    "  secret TEXT NOT NULL, spec_json TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    "CREATE INDEX deployments_state ON deployments(state);"
    "CREATE INDEX deployments_name ON deployments(name);"
    "CREATE TABLE deployment_logs ("
    "  deployment_id TEXT COLLATE \"C\" NOT NULL REFERENCES deployments(id), seq BIGINT NOT NULL,"
    "  ts_ms BIGINT NOT NULL, step TEXT NOT NULL, stream TEXT NOT NULL, text TEXT NOT NULL,"
    "  PRIMARY KEY (deployment_id, seq));",
    // version 2: jobs, backups, idempotency keys
    "ALTER TABLE deployments ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';"
    "CREATE UNIQUE INDEX deployments_idempotency ON deployments(idempotency_key) WHERE idempotency_key <> '';"
    "CREATE TABLE jobs ("
    "  id TEXT COLLATE \"C\" PRIMARY KEY, deployment_id TEXT COLLATE \"C\" NOT NULL REFERENCES deployments(id),"
    "  kind TEXT NOT NULL, state TEXT NOT NULL, step TEXT NOT NULL, error TEXT NOT NULL, params_json TEXT NOT NULL,"
    "  result_json TEXT NOT NULL, attempts INTEGER NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    "CREATE INDEX jobs_deployment ON jobs(deployment_id);"
    "CREATE INDEX jobs_state ON jobs(state);"
    "CREATE TABLE backups ("
    "  id TEXT COLLATE \"C\" PRIMARY KEY, deployment_id TEXT COLLATE \"C\" NOT NULL REFERENCES deployments(id),"
    "  created_ms BIGINT NOT NULL, size_bytes BIGINT NOT NULL, sha256 TEXT NOT NULL, path TEXT NOT NULL,"
    "  snapshot TEXT NOT NULL, commit_id TEXT NOT NULL);"
    "CREATE INDEX backups_deployment ON backups(deployment_id);",
    // version 3: accounts, tokens, audit; owners of deployments
    "ALTER TABLE deployments ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE deployments ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE users (id TEXT COLLATE \"C\" PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
    "  password_hash TEXT NOT NULL, created_ms BIGINT NOT NULL);"
    "CREATE TABLE tokens (id TEXT COLLATE \"C\" PRIMARY KEY, user_id TEXT COLLATE \"C\" NOT NULL REFERENCES users(id),"
    "  name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL,"
    "  revoked_ms BIGINT NOT NULL);"
    "CREATE INDEX tokens_user ON tokens(user_id);"
    "CREATE TABLE audit (seq BIGSERIAL PRIMARY KEY, ts_ms BIGINT NOT NULL, \"user\" TEXT NOT NULL,"
    "  action TEXT NOT NULL, target TEXT NOT NULL, remote TEXT NOT NULL, status INTEGER NOT NULL);",
    // version 4: static addresses handed out from a subnet (one per owner and subnet)
    "CREATE TABLE addresses (subnet TEXT COLLATE \"C\" NOT NULL, address BIGINT NOT NULL, ip TEXT NOT NULL,"
    "  owner TEXT COLLATE \"C\" NOT NULL, allocated_ms BIGINT NOT NULL, PRIMARY KEY (subnet, address));"
    "CREATE UNIQUE INDEX addresses_owner ON addresses(subnet, owner);"
    "CREATE INDEX addresses_by_owner ON addresses(owner);",
    // version 5: job leases (which server works on a job, until when)
    "ALTER TABLE jobs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE jobs ADD COLUMN lease_expires_ms BIGINT NOT NULL DEFAULT 0;"
    "CREATE INDEX jobs_lease_owner ON jobs(lease_owner);",
    // version 6: rate-limit buckets shared by every server on the store
    "CREATE TABLE rate_buckets (bucket TEXT COLLATE \"C\" PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL,"
    "  last_ms BIGINT NOT NULL, full_at_ms BIGINT NOT NULL);"
    "CREATE INDEX rate_buckets_full_at ON rate_buckets(full_at_ms);",
    // version 7: accounts bound to (issuer, subject) at an OpenID provider, a
    // disabled mark, session tokens, and what an audited change did (see the
    // SQLite store's version 7 for the two UPDATEs)
    "ALTER TABLE users ADD COLUMN oidc_issuer TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN oidc_subject TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN disabled_ms BIGINT NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX users_oidc ON users(oidc_issuer, oidc_subject) WHERE oidc_subject <> '';"
    "ALTER TABLE tokens ADD COLUMN session INTEGER NOT NULL DEFAULT 0;"
    "UPDATE tokens SET session = 1 WHERE name IN ('login', 'oidc') AND expires_ms <> 0;"
    "ALTER TABLE audit ADD COLUMN detail TEXT NOT NULL DEFAULT '';"
    "UPDATE users SET disabled_ms = COALESCE((SELECT MAX(a.ts_ms) FROM audit a"
    "  WHERE a.action LIKE 'POST /api/v1/users/%/disable' AND a.target = users.name AND a.status = 200"
    "  AND NOT EXISTS (SELECT 1 FROM audit p WHERE p.action LIKE 'PATCH /api/v1/users/%' AND p.target = users.name"
    "    AND p.status = 200 AND p.ts_ms >= a.ts_ms)), 0);",
    // version 8: the clean-up queue (machines whose removal failed, tried again)
    "CREATE TABLE IF NOT EXISTS cleanups (provider TEXT COLLATE \"C\" NOT NULL, machine TEXT COLLATE \"C\" NOT NULL,"
    "  deployment_id TEXT COLLATE \"C\" NOT NULL, attempts INTEGER NOT NULL, next_ms BIGINT NOT NULL,"
    "  last_error TEXT NOT NULL, created_ms BIGINT NOT NULL, PRIMARY KEY (provider, machine));",
    // version 9: cancel of a job, asked for in the store and acted on by the
    // server that runs it
    "ALTER TABLE jobs ADD COLUMN cancel_requested_ms BIGINT NOT NULL DEFAULT 0;",
    // version 10: stable URLs through the reverse proxy (see the SQLite store's)
    "ALTER TABLE deployments ADD COLUMN public_port INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE deployments ADD COLUMN stable_url TEXT NOT NULL DEFAULT '';"
    "CREATE UNIQUE INDEX deployments_public_port ON deployments(public_port) WHERE public_port <> 0;",
    // version 11: releases of a deployment (continuous delivery)
    "CREATE TABLE releases (id TEXT COLLATE \"C\" PRIMARY KEY, deployment_id TEXT NOT NULL REFERENCES deployments(id),"
    "  seq BIGINT NOT NULL, state TEXT NOT NULL, ref TEXT NOT NULL, commit_id TEXT NOT NULL, machine TEXT NOT NULL,"
    "  address TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL, spec_json TEXT NOT NULL, by_user TEXT NOT NULL,"
    "  job_id TEXT NOT NULL, error TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
    "  UNIQUE (deployment_id, seq));",
    // version 12: deploy on git push (see the SQLite store's)
    "CREATE TABLE git_tracks (deployment_id TEXT COLLATE \"C\" PRIMARY KEY REFERENCES deployments(id) ON DELETE "
    "CASCADE,"
    "  branch TEXT NOT NULL, secret TEXT NOT NULL, poll_s BIGINT NOT NULL, pending_commit TEXT NOT NULL,"
    "  polled_ms BIGINT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    "CREATE TABLE git_deliveries (seq BIGSERIAL PRIMARY KEY,"
    "  deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE, delivery_id TEXT NOT NULL,"
    "  seen_ms BIGINT NOT NULL, UNIQUE (deployment_id, delivery_id));",
    // version 13: a backup keeps its machine's agent secret (see the SQLite store's)
    "ALTER TABLE backups ADD COLUMN secret TEXT NOT NULL DEFAULT '';",
    // version 14: throwaway deployments (ads lab try): a failed one keeps its
    // machine, and the server destroys each at its expiry
    ("ALTER TABLE deployments ADD COLUMN keep_failed INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE deployments ADD COLUMN expires_ms BIGINT NOT NULL DEFAULT 0;"),  // one version, two statements
    // version 15: warm machines (see the SQLite store's)
    ("CREATE TABLE warm_machines (name TEXT COLLATE \"C\" PRIMARY KEY, provider TEXT COLLATE \"C\" NOT NULL,"
     "  os_key TEXT COLLATE \"C\" NOT NULL, state TEXT NOT NULL, address TEXT NOT NULL, agent_sha256 TEXT NOT NULL,"
     "  maker TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
     "CREATE INDEX warm_machines_pool ON warm_machines(provider, os_key, state, created_ms);"),
};

using Row = pqxx::row;

std::string text(const Row& r, int i) { return r[i].is_null() ? std::string() : r[i].as<std::string>(); }
int64_t integer(const Row& r, int i) { return r[i].is_null() ? 0 : r[i].as<int64_t>(); }

Deployment read_deployment(const Row& r) {
  Deployment d;
  d.id = text(r, 0);
  d.name = text(r, 1);
  d.source = text(r, 2);
  d.ref = text(r, 3);
  d.commit = text(r, 4);
  d.provider = text(r, 5);
  d.state = state_from_string(text(r, 6)).value_or(State::kFailed);
  d.failed_step = text(r, 7);
  d.error = text(r, 8);
  d.machine = text(r, 9);
  d.address = text(r, 10);
  d.url = text(r, 11);
  d.secret = text(r, 12);
  d.spec_json = text(r, 13);
  d.created_ms = integer(r, 14);
  d.updated_ms = integer(r, 15);
  d.idempotency_key = text(r, 16);
  d.owner = text(r, 17);
  d.shared = integer(r, 18) != 0;
  d.public_port = static_cast<int>(integer(r, 19));
  d.stable_url = text(r, 20);
  d.keep_failed = integer(r, 21) != 0;
  d.expires_ms = integer(r, 22);
  return d;
}

Job read_job(const Row& r) {
  Job j;
  j.id = text(r, 0);
  j.deployment_id = text(r, 1);
  j.kind = text(r, 2);
  j.state = text(r, 3);
  j.step = text(r, 4);
  j.error = text(r, 5);
  j.params_json = text(r, 6);
  j.result_json = text(r, 7);
  j.attempts = static_cast<int>(integer(r, 8));
  j.created_ms = integer(r, 9);
  j.updated_ms = integer(r, 10);
  j.lease_owner = text(r, 11);
  j.lease_expires_ms = integer(r, 12);
  j.cancel_requested_ms = integer(r, 13);
  return j;
}

Release read_release(const Row& r) {
  Release x;
  x.id = text(r, 0);
  x.deployment_id = text(r, 1);
  x.seq = integer(r, 2);
  x.state = text(r, 3);
  x.ref = text(r, 4);
  x.commit = text(r, 5);
  x.machine = text(r, 6);
  x.address = text(r, 7);
  x.url = text(r, 8);
  x.secret = text(r, 9);
  x.spec_json = text(r, 10);
  x.by = text(r, 11);
  x.job_id = text(r, 12);
  x.error = text(r, 13);
  x.created_ms = integer(r, 14);
  x.updated_ms = integer(r, 15);
  return x;
}

// Writes a release's row; false when there is none.
bool write_release(pqxx::work& w, const Release& r) {
  auto res = w.exec_params(
      "UPDATE releases SET deployment_id=$2, seq=$3, state=$4, ref=$5, commit_id=$6, machine=$7, address=$8, url=$9,"
      " secret=$10, spec_json=$11, by_user=$12, job_id=$13, error=$14, created_ms=$15, updated_ms=$16 WHERE id=$1",
      r.id, r.deployment_id, r.seq, r.state, valid_utf8(r.ref), r.commit, r.machine, r.address, r.url, r.secret,
      valid_utf8(r.spec_json), valid_utf8(r.by), r.job_id, valid_utf8(r.error), r.created_ms, r.updated_ms);
  return res.affected_rows() > 0;
}

Backup read_backup(const Row& r) {
  return Backup{text(r, 0), text(r, 1), integer(r, 2), integer(r, 3), text(r, 4),
                text(r, 5), text(r, 6), text(r, 7),    text(r, 8)};
}

User read_user(const Row& r) {
  User u;
  u.id = text(r, 0);
  u.name = text(r, 1);
  u.role = role_from_string(text(r, 2)).value_or(Role::kViewer);
  u.password_hash = text(r, 3);
  u.created_ms = integer(r, 4);
  u.oidc_issuer = text(r, 5);
  u.oidc_subject = text(r, 6);
  u.disabled_ms = integer(r, 7);
  return u;
}

Token read_token(const Row& r) {
  Token t;
  t.id = text(r, 0);
  t.user_id = text(r, 1);
  t.name = text(r, 2);
  t.hash = text(r, 3);
  t.created_ms = integer(r, 4);
  t.expires_ms = integer(r, 5);
  t.revoked_ms = integer(r, 6);
  t.session = integer(r, 7) != 0;
  return t;
}

LogLine read_log(const Row& r) {
  LogLine l;
  l.seq = integer(r, 0);
  l.ts_ms = integer(r, 1);
  l.step = text(r, 2);
  l.stream = text(r, 3);
  l.text = text(r, 4);
  return l;
}

template <typename T>
std::vector<T> all(const pqxx::result& res, T (*read)(const Row&)) {
  std::vector<T> out;
  out.reserve(res.size());
  for (const auto& r : res) out.push_back(read(r));
  return out;
}

// Whether `e` says the connection (or the server behind it) is gone: the
// server shut down or restarted (SQLSTATE class 57P), or a connection
// exception (class 08) that libpqxx did not turn into broken_connection.
bool connection_gone(const pqxx::sql_error& e) {
  const std::string& state = e.sqlstate();
  return state.rfind("57P", 0) == 0 || state.rfind("08", 0) == 0;
}

// Runs `f(txn)` in one transaction on a connection of `pool` (waiting for one
// when all are busy), committing when it returns a success. Database errors
// become Errors: no connection or a broken one "unavailable", a violated
// constraint `conflict` (with `conflict` as the message), anything else
// "internal" naming `what`. A connection found broken is dropped, with every
// idle one (after a server restart they are all dead), and when it came from
// the pool the transaction is run once more on a new connection: nothing was
// committed, so a pooled connection left over from before a restart costs
// the caller nothing. A commit whose outcome is unknown (the connection broke
// during COMMIT) is never run again.
template <typename Tx = pqxx::work, typename Pool, typename F>
auto in_tx(Pool& pool, const std::string& what, const std::string& conflict, F f) -> decltype(f(std::declval<Tx&>())) {
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<pqxx::connection> c;
    bool reused = false;
    try {
      c = pool.acquire(&reused);
    } catch (const std::exception& e) {
      return Error::make("unavailable",
                         "the store is unavailable: cannot connect to PostgreSQL while " + what + ": " + e.what());
    }
    struct GiveBack {
      Pool& pool;
      std::unique_ptr<pqxx::connection>& c;
      ~GiveBack() { pool.release(std::move(c)); }
    } give_back{pool, c};
    std::string lost;
    try {
      Tx w(*c);
      auto r = f(w);
      if (r.ok()) w.commit();  // a nontransaction's commit does nothing
      return r;
    } catch (const pqxx::in_doubt_error& e) {
      c.reset();
      pool.drop_idle();
      return Error::make("unavailable", "the store is unavailable: PostgreSQL connection lost while committing (" +
                                            what + "); whether it was recorded is unknown: " + e.what());
    } catch (const pqxx::integrity_constraint_violation& e) {
      return Error::make("conflict", conflict.empty() ? what + ": " + e.what() : conflict);
    } catch (const pqxx::broken_connection& e) {
      lost = e.what();
    } catch (const pqxx::sql_error& e) {
      if (!connection_gone(e)) return Error::make("internal", "PostgreSQL, " + what + ": " + e.what());
      lost = e.what();
    } catch (const std::exception& e) {
      return Error::make("internal", "PostgreSQL, " + what + ": " + e.what());
    }
    c.reset();  // never back into the pool
    pool.drop_idle();
    if (!reused || attempt > 0)
      return Error::make("unavailable",
                         "the store is unavailable: PostgreSQL connection lost while " + what + ": " + lost);
  }
}

// One read of a single SELECT, as in_tx but without BEGIN and COMMIT (each a
// round trip to the server): in autocommit the statement sees one snapshot,
// as it would in a read-committed transaction. For the reads on every API
// request (the deployment list, a deployment, the caller's token and user).
template <typename Pool, typename F>
auto in_read(Pool& pool, const std::string& what, F f) {
  return in_tx<pqxx::nontransaction>(pool, what, "", f);
}

void insert_deployment(pqxx::work& w, const Deployment& d) {
  w.exec_params(std::string("INSERT INTO deployments (") + kDeploymentColumns +
                    ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23)",
                d.id, d.name, valid_utf8(d.source), valid_utf8(d.ref), d.commit, d.provider, to_string(d.state),
                d.failed_step, valid_utf8(d.error), d.machine, d.address, d.url, d.secret, valid_utf8(d.spec_json),
                d.created_ms, d.updated_ms, valid_utf8(d.idempotency_key), d.owner, d.shared ? 1 : 0, d.public_port,
                d.stable_url, d.keep_failed ? 1 : 0, d.expires_ms);
}

void insert_job(pqxx::work& w, const Job& j) {
  w.exec_params(
      std::string("INSERT INTO jobs (") + kJobColumns + ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)",
      j.id, j.deployment_id, j.kind, j.state, valid_utf8(j.step), valid_utf8(j.error), valid_utf8(j.params_json),
      valid_utf8(j.result_json), j.attempts, j.created_ms, j.updated_ms, j.lease_owner, j.lease_expires_ms,
      j.cancel_requested_ms);
}

std::string settled_list() {
  // The settled states' names come from core (constants, not input).
  std::string settled;
  for (State st : all_states()) {
    if (is_settled(st)) settled += (settled.empty() ? "'" : ", '") + to_string(st) + "'";
  }
  return settled;
}

}  // namespace

// Up to `max` connections, opened when needed and kept; each serves one
// transaction at a time.
struct PostgresStore::Conn {
  Conn(std::string u, size_t m) : url(std::move(u)), max(std::max<size_t>(1, m)) {}
  // A connection: an idle one (`*reused` set) unless it is known to be
  // closed (then it is dropped), else a new one.
  std::unique_ptr<pqxx::connection> acquire(bool* reused = nullptr) {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return !idle.empty() || open < max; });
    while (!idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      if (c->is_open()) {
        if (reused) *reused = true;
        return c;
      }
      --open;
    }
    ++open;
    lk.unlock();
    try {
      return std::make_unique<pqxx::connection>(url);
    } catch (...) {
      lk.lock();
      --open;
      cv.notify_one();
      throw;
    }
  }
  void release(std::unique_ptr<pqxx::connection> c) {
    std::lock_guard<std::mutex> lk(mu);
    if (c) {
      idle.push_back(std::move(c));
    } else {
      --open;
    }
    cv.notify_one();
  }
  // Closes every idle connection (the server went away: they are all dead).
  void drop_idle() {
    std::vector<std::unique_ptr<pqxx::connection>> dead;
    {
      std::lock_guard<std::mutex> lk(mu);
      open -= idle.size();
      dead.swap(idle);
      cv.notify_all();
    }
  }
  size_t opened() {
    std::lock_guard<std::mutex> lk(mu);
    return open;
  }

  const std::string url;
  const size_t max;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<pqxx::connection>> idle;
  size_t open = 0;
};

PostgresStore::PostgresStore(std::unique_ptr<Conn> c) : conn_(std::move(c)) {}
PostgresStore::~PostgresStore() = default;

size_t PostgresStore::connections() { return conn_->opened(); }
size_t PostgresStore::max_connections() const { return conn_->max; }

Result<std::unique_ptr<Store>> PostgresStore::open(const std::string& url, size_t connections) {
  auto c = std::make_unique<Conn>(url, connections);
  try {
    c->release(c->acquire());  // the first connection, now: a wrong URL fails here
  } catch (const std::exception& e) {
    std::string msg = e.what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Error{"unavailable", "cannot connect to PostgreSQL: " + msg, "store"};
  }
  std::unique_ptr<PostgresStore> s(new PostgresStore(std::move(c)));
  auto st = s->migrate();
  if (!st) {
    Error e = st.error();
    e.field = "store";
    return e;
  }
  return std::unique_ptr<Store>(std::move(s));
}

Status PostgresStore::migrate() {
  const int64_t latest = static_cast<int64_t>(sizeof(kMigrations) / sizeof(kMigrations[0]));
  return in_tx(*conn_, "migrating the schema", "", [&](pqxx::work& w) -> Status {
    // one migrating server at a time; the lock ends with the transaction
    w.exec("SELECT pg_advisory_xact_lock(4242001)");
    w.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    int64_t version = w.exec1("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0].as<int64_t>();
    if (version > latest)
      return Error::make("invalid", "the database has schema version " + std::to_string(version) +
                                        ", newer than this ads (" + std::to_string(latest) + ")");
    for (int64_t v = version; v < latest; ++v) {
      w.exec(kMigrations[v]);
      w.exec_params("INSERT INTO schema_version (version) VALUES ($1)", v + 1);
    }
    return Status::Ok();
  });
}

int64_t PostgresStore::latest_schema_version() {
  return static_cast<int64_t>(sizeof(kMigrations) / sizeof(kMigrations[0]));
}

Result<int64_t> PostgresStore::schema_version() {
  return in_tx(*conn_, "reading the schema version", "", [&](pqxx::work& w) -> Result<int64_t> {
    return w.exec1("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0].as<int64_t>();
  });
}

Status PostgresStore::create(const Deployment& d) {
  return in_tx(*conn_, "inserting a deployment",
               "a deployment with id " + d.id + " or Idempotency-Key " + d.idempotency_key + " exists",
               [&](pqxx::work& w) -> Status {
                 insert_deployment(w, d);
                 return Status::Ok();
               });
}

Result<Deployment> PostgresStore::get(const std::string& id) {
  return in_read(*conn_, "reading a deployment", [&](pqxx::transaction_base& w) -> Result<Deployment> {
    auto r = w.exec_params(std::string("SELECT ") + kDeploymentColumns + " FROM deployments WHERE id = $1", id);
    if (r.empty()) return Error::make("not_found", "no deployment " + id);
    return read_deployment(r[0]);
  });
}

Result<std::vector<Deployment>> PostgresStore::list(const ListQuery& q) {
  std::string state = q.state ? to_string(*q.state) : "";
  return in_read(*conn_, "listing deployments", [&](pqxx::transaction_base& w) -> Result<std::vector<Deployment>> {
    auto r = w.exec_params(std::string("SELECT ") + kDeploymentColumns +
                               " FROM deployments WHERE id > $1 AND ($2 = '' OR state = $2)"
                               " AND ($3 = '' OR name = $3) ORDER BY id LIMIT $4",
                           q.after_id, state, q.name, static_cast<int64_t>(q.limit));
    return all(r, read_deployment);
  });
}

// Writes a deployment's row; false when there is none.
static bool write_deployment(pqxx::work& w, const Deployment& d) {
  auto r = w.exec_params(
      "UPDATE deployments SET name=$2, source=$3, ref=$4, commit_id=$5, provider=$6, state=$7, failed_step=$8,"
      " error=$9, machine=$10, address=$11, url=$12, secret=$13, spec_json=$14, created_ms=$15, updated_ms=$16,"
      " idempotency_key=$17, owner=$18, shared=$19, public_port=$20, stable_url=$21, keep_failed=$22, expires_ms=$23"
      " WHERE id=$1",
      d.id, d.name, valid_utf8(d.source), valid_utf8(d.ref), d.commit, d.provider, to_string(d.state), d.failed_step,
      valid_utf8(d.error), d.machine, d.address, d.url, d.secret, valid_utf8(d.spec_json), d.created_ms, d.updated_ms,
      valid_utf8(d.idempotency_key), d.owner, d.shared ? 1 : 0, d.public_port, d.stable_url, d.keep_failed ? 1 : 0,
      d.expires_ms);
  return r.affected_rows() > 0;
}

Status PostgresStore::update(const Deployment& d) {
  return in_tx(*conn_, "updating a deployment", "", [&](pqxx::work& w) -> Status {
    if (!write_deployment(w, d)) return Error::make("not_found", "no deployment " + d.id);
    return Status::Ok();
  });
}

Result<int64_t> PostgresStore::append_log(const std::string& id, const LogLine& line) {
  return in_tx(*conn_, "appending a log line", "", [&](pqxx::work& w) -> Result<int64_t> {
    // The deployment's row lock orders writers (of any server) of its log.
    auto d = w.exec_params("SELECT 1 FROM deployments WHERE id = $1 FOR UPDATE", id);
    if (d.empty()) return Error::make("not_found", "no deployment " + id);
    auto r = w.exec_params1(
        "INSERT INTO deployment_logs (deployment_id, seq, ts_ms, step, stream, text)"
        " SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM deployment_logs WHERE deployment_id = $1"
        " RETURNING seq",
        id, line.ts_ms, line.step, line.stream, valid_utf8(line.text));
    return r[0].as<int64_t>();
  });
}

Result<std::vector<LogLine>> PostgresStore::logs(const std::string& id, int64_t after_seq, size_t limit) {
  return in_tx(*conn_, "reading a log", "", [&](pqxx::work& w) -> Result<std::vector<LogLine>> {
    auto r = w.exec_params(
        "SELECT seq, ts_ms, step, stream, text FROM deployment_logs WHERE deployment_id = $1 AND seq > $2"
        " ORDER BY seq LIMIT $3",
        id, after_seq, static_cast<int64_t>(limit));
    return all(r, read_log);
  });
}

Result<std::vector<Deployment>> PostgresStore::unfinished() {
  return in_tx(*conn_, "listing unfinished deployments", "", [&](pqxx::work& w) -> Result<std::vector<Deployment>> {
    auto r = w.exec(std::string("SELECT ") + kDeploymentColumns + " FROM deployments WHERE state NOT IN (" +
                    settled_list() + ") ORDER BY id");
    return all(r, read_deployment);
  });
}

Result<std::vector<Deployment>> PostgresStore::expired(int64_t now_ms, size_t limit) {
  return in_tx(*conn_, "listing expired deployments", "", [&](pqxx::work& w) -> Result<std::vector<Deployment>> {
    auto r = w.exec_params(std::string("SELECT ") + kDeploymentColumns +
                               " FROM deployments WHERE expires_ms > 0 AND expires_ms <= $1 AND state <> 'destroyed'"
                               " ORDER BY expires_ms, id LIMIT $2",
                           now_ms, static_cast<int64_t>(limit));
    return all(r, read_deployment);
  });
}

Result<std::optional<Deployment>> PostgresStore::find_by_idempotency_key(const std::string& key) {
  return in_tx(*conn_, "reading a deployment by idempotency key", "",
               [&](pqxx::work& w) -> Result<std::optional<Deployment>> {
                 auto r = w.exec_params(
                     std::string("SELECT ") + kDeploymentColumns + " FROM deployments WHERE idempotency_key = $1", key);
                 if (r.empty()) return std::optional<Deployment>();
                 return std::optional<Deployment>(read_deployment(r[0]));
               });
}

Status PostgresStore::create_job(const Job& j) {
  return in_tx(*conn_, "inserting a job", "job " + j.id + " exists or its deployment does not",
               [&](pqxx::work& w) -> Status {
                 insert_job(w, j);
                 return Status::Ok();
               });
}

Status PostgresStore::admit_job(const Job& j, const Admission& a, const Deployment* new_deployment) {
  const Deployment* d = new_deployment;
  return in_tx(*conn_, "admitting a job", "job " + j.id + " or deployment " + j.deployment_id + " exists",
               [&](pqxx::work& w) -> Status {
                 // One admission per owner at a time across every server (the
                 // advisory lock lasts until this transaction ends), and one
                 // per deployment (its row is locked): READ COMMITTED then
                 // counts what the previous holder committed.
                 if (a.max_active > 0) w.exec_params("SELECT pg_advisory_xact_lock(4242003, hashtext($1))", a.owner);
                 if (d) {
                   // one admission per name at a time across every server
                   w.exec_params("SELECT pg_advisory_xact_lock(4242004, hashtext($1))", d->name);
                   auto live = w.exec_params(
                       "SELECT id FROM deployments WHERE name = $1 AND state NOT IN ('failed','destroyed') LIMIT 1",
                       d->name);
                   if (!live.empty()) return name_taken(d->name, text(live[0], 0));
                   insert_deployment(w, *d);
                 } else {
                   w.exec_params("SELECT id FROM deployments WHERE id = $1 FOR UPDATE", j.deployment_id);
                   auto busy = w.exec_params(
                       "SELECT kind, id, cancel_requested_ms FROM jobs WHERE deployment_id = $1"
                       " AND state IN ('queued','running') ORDER BY id",
                       j.deployment_id);
                   for (const auto& b : busy) {
                     if (a.behind_cancelled && integer(b, 2) != 0) continue;  // being cancelled: queue behind it
                     return Error::make("conflict", "deployment " + j.deployment_id + " already has a " + text(b, 0) +
                                                        " job (" + text(b, 1) + ") under way");
                   }
                 }
                 if (a.max_active > 0) {
                   auto r = w.exec_params(
                       "SELECT COUNT(*) FROM jobs JOIN deployments ON deployments.id = jobs.deployment_id"
                       " WHERE jobs.state IN ('queued','running') AND deployments.owner = $1",
                       a.owner);
                   int64_t n = integer(r[0], 0);
                   if (n >= a.max_active)
                     return Error::make("too_many", a.owner + " has " + std::to_string(n) + " jobs under way (limit " +
                                                        std::to_string(a.max_active) + "); wait for one to end");
                 }
                 insert_job(w, j);
                 return Status::Ok();
               });
}

Status PostgresStore::update_job(const Job& j) {
  return in_tx(*conn_, "updating a job", "", [&](pqxx::work& w) -> Status {
    auto r = w.exec_params(
        "UPDATE jobs SET deployment_id=$2, kind=$3, state=$4, step=$5, error=$6, params_json=$7, result_json=$8,"
        " attempts=$9, created_ms=$10, updated_ms=$11 WHERE id=$1",
        j.id, j.deployment_id, j.kind, j.state, valid_utf8(j.step), valid_utf8(j.error), valid_utf8(j.params_json),
        valid_utf8(j.result_json), j.attempts, j.created_ms, j.updated_ms);
    if (r.affected_rows() == 0) return Error::make("not_found", "no job " + j.id);
    return Status::Ok();
  });
}

Result<Job> PostgresStore::get_job(const std::string& id) {
  return in_tx(*conn_, "reading a job", "", [&](pqxx::work& w) -> Result<Job> {
    auto r = w.exec_params(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1", id);
    if (r.empty()) return Error::make("not_found", "no job " + id);
    return read_job(r[0]);
  });
}

Result<std::vector<Job>> PostgresStore::jobs_of(const std::string& deployment_id) {
  return in_tx(*conn_, "reading jobs", "", [&](pqxx::work& w) -> Result<std::vector<Job>> {
    auto r = w.exec_params(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE deployment_id = $1 ORDER BY id",
                           deployment_id);
    return all(r, read_job);
  });
}

Result<std::vector<Job>> PostgresStore::unfinished_jobs() {
  return in_tx(*conn_, "reading jobs", "", [&](pqxx::work& w) -> Result<std::vector<Job>> {
    auto r =
        w.exec(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE state IN ('queued', 'running') ORDER BY id");
    return all(r, read_job);
  });
}

Result<std::optional<Job>> PostgresStore::claim_job(const std::string& owner, int64_t now_ms, int64_t lease_ms,
                                                    int max_per_owner) {
  return in_tx(*conn_, "claiming a job", "", [&](pqxx::work& w) -> Result<std::optional<Job>> {
    // SKIP LOCKED: a job another server is claiming right now is passed over;
    // under READ COMMITTED a row claimed meanwhile is re-checked against the
    // lease condition once locked, so it is never claimed twice. The fair
    // share order (the owner's jobs leased now, then age) is read as of the
    // statement: two servers claiming at once may both see the same counts.
    std::string leased =
        "(SELECT COUNT(*) FROM jobs r JOIN deployments rd ON rd.id = r.deployment_id"
        " WHERE rd.owner = d.owner AND r.state IN ('queued', 'running') AND r.lease_expires_ms >= $2";
    auto r =
        w.exec_params(std::string("UPDATE jobs SET lease_owner = $1, lease_expires_ms = $3 WHERE id = ("
                                  "  SELECT j.id FROM jobs j JOIN deployments d ON d.id = j.deployment_id"
                                  "    WHERE j.state IN ('queued', 'running') AND j.lease_expires_ms < $2"
                                  "    AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.deployment_id = j.deployment_id"
                                  "      AND o.state IN ('queued', 'running') AND o.id < j.id)"
                                  "    AND ($4 <= 0 OR ") +
                          leased + " AND r.lease_owner = $1) < $4)" + "  ORDER BY " + leased +
                          "), j.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED)"
                          " RETURNING " +
                          kJobColumns,
                      owner, now_ms, now_ms + lease_ms, static_cast<int64_t>(max_per_owner));
    if (r.empty()) return std::optional<Job>();
    return std::optional<Job>(read_job(r[0]));
  });
}

Result<Job> PostgresStore::request_cancel(const std::string& job_id, int64_t now_ms, const std::string& reason) {
  return in_tx(*conn_, "cancelling a job", "", [&](pqxx::work& w) -> Result<Job> {
    // the row locked: a claim at the same time waits, then sees the outcome
    auto r = w.exec_params(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1 FOR UPDATE", job_id);
    if (r.empty()) return Error::make("not_found", "no job " + job_id);
    Job job = read_job(r[0]);
    if (job.state != "queued" && job.state != "running")
      return Error::make("conflict", "job " + job_id + " has ended already (" + job.state + ")");
    if (job.state == "queued" && job.lease_expires_ms < now_ms) {
      job.state = "cancelled";
      job.step = "cancelled";
      job.error = reason;
      job.updated_ms = now_ms;
      w.exec_params("UPDATE jobs SET state = $2, step = $3, error = $4, updated_ms = $5 WHERE id = $1", job.id,
                    job.state, job.step, valid_utf8(job.error), job.updated_ms);
      return job;
    }
    if (job.cancel_requested_ms == 0) {
      job.cancel_requested_ms = now_ms;
      w.exec_params("UPDATE jobs SET cancel_requested_ms = $2 WHERE id = $1", job.id, job.cancel_requested_ms);
    }
    return job;
  });
}

Result<int64_t> PostgresStore::renew_leases(const std::string& owner, int64_t until_ms) {
  return in_tx(*conn_, "renewing leases", "", [&](pqxx::work& w) -> Result<int64_t> {
    auto r =
        w.exec_params("UPDATE jobs SET lease_expires_ms = $2 WHERE lease_owner = $1 AND state IN ('queued', 'running')",
                      owner, until_ms);
    return static_cast<int64_t>(r.affected_rows());
  });
}

Result<int64_t> PostgresStore::renew_leases_of(const std::string& owner, const std::vector<std::string>& job_ids,
                                               int64_t until_ms) {
  return in_tx(*conn_, "renewing leases", "", [&](pqxx::work& w) -> Result<int64_t> {
    int64_t n = 0;
    for (const auto& id : job_ids) {
      auto r = w.exec_params(
          "UPDATE jobs SET lease_expires_ms = $3 WHERE id = $2 AND lease_owner = $1 AND state IN ('queued', 'running')",
          owner, id, until_ms);
      n += static_cast<int64_t>(r.affected_rows());
    }
    return n;
  });
}

Result<std::map<std::string, int64_t>> PostgresStore::count_by_state() {
  return in_tx(*conn_, "counting deployments", "", [&](pqxx::work& w) -> Result<std::map<std::string, int64_t>> {
    std::map<std::string, int64_t> out;
    for (const auto& r : w.exec("SELECT state, COUNT(*) FROM deployments GROUP BY state"))
      out[text(r, 0)] = integer(r, 1);
    return out;
  });
}

Status PostgresStore::add_backup(const Backup& b) {
  return in_tx(*conn_, "inserting a backup", "backup " + b.id + " exists or its deployment does not",
               [&](pqxx::work& w) -> Status {
                 w.exec_params(
                     std::string("INSERT INTO backups (") + kBackupColumns + ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
                     b.id, b.deployment_id, b.created_ms, b.size_bytes, b.sha256, b.path, b.snapshot, b.commit,
                     b.secret);
                 return Status::Ok();
               });
}

Result<Backup> PostgresStore::get_backup(const std::string& id) {
  return in_tx(*conn_, "reading a backup", "", [&](pqxx::work& w) -> Result<Backup> {
    auto r = w.exec_params(std::string("SELECT ") + kBackupColumns + " FROM backups WHERE id = $1", id);
    if (r.empty()) return Error::make("not_found", "no backup " + id);
    return read_backup(r[0]);
  });
}

Result<std::vector<Backup>> PostgresStore::backups_of(const std::string& deployment_id) {
  return in_tx(*conn_, "reading backups", "", [&](pqxx::work& w) -> Result<std::vector<Backup>> {
    auto r = w.exec_params(
        std::string("SELECT ") + kBackupColumns + " FROM backups WHERE deployment_id = $1 ORDER BY id", deployment_id);
    return all(r, read_backup);
  });
}

Status PostgresStore::add_release(const Release& r) {
  return in_tx(*conn_, "inserting a release",
               "release " + r.id + " (or number " + std::to_string(r.seq) + ") exists or its deployment does not",
               [&](pqxx::work& w) -> Status {
                 w.exec_params(std::string("INSERT INTO releases (") + kReleaseColumns +
                                   ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
                               r.id, r.deployment_id, r.seq, r.state, valid_utf8(r.ref), r.commit, r.machine, r.address,
                               r.url, r.secret, valid_utf8(r.spec_json), valid_utf8(r.by), r.job_id,
                               valid_utf8(r.error), r.created_ms, r.updated_ms);
                 return Status::Ok();
               });
}

Status PostgresStore::update_release(const Release& r) {
  return in_tx(*conn_, "updating a release", "", [&](pqxx::work& w) -> Status {
    if (!write_release(w, r)) return Error::make("not_found", "no release " + r.id);
    return Status::Ok();
  });
}

Result<Release> PostgresStore::get_release(const std::string& id) {
  return in_tx(*conn_, "reading a release", "", [&](pqxx::work& w) -> Result<Release> {
    auto r = w.exec_params(std::string("SELECT ") + kReleaseColumns + " FROM releases WHERE id = $1", id);
    if (r.empty()) return Error::make("not_found", "no release " + id);
    return read_release(r[0]);
  });
}

Result<std::vector<Release>> PostgresStore::releases_of(const std::string& deployment_id) {
  return in_tx(*conn_, "reading releases", "", [&](pqxx::work& w) -> Result<std::vector<Release>> {
    auto r =
        w.exec_params(std::string("SELECT ") + kReleaseColumns + " FROM releases WHERE deployment_id = $1 ORDER BY seq",
                      deployment_id);
    return all(r, read_release);
  });
}

Status PostgresStore::switch_release(const Deployment& d, const std::vector<Release>& changed) {
  return in_tx(*conn_, "switching releases", "", [&](pqxx::work& w) -> Status {
    if (!write_deployment(w, d)) return Error::make("not_found", "no deployment " + d.id);
    for (const auto& r : changed) {
      if (r.deployment_id != d.id) return Error::make("invalid", "release " + r.id + " is not of deployment " + d.id);
      if (!write_release(w, r)) return Error::make("not_found", "no release " + r.id);
    }
    return Status::Ok();
  });
}

Status PostgresStore::delete_backup(const std::string& id) {
  return in_tx(*conn_, "deleting a backup", "", [&](pqxx::work& w) -> Status {
    auto r = w.exec_params("DELETE FROM backups WHERE id = $1", id);
    if (r.affected_rows() == 0) return Error::make("not_found", "no backup " + id);
    return Status::Ok();
  });
}

Status PostgresStore::put_cleanup(const Cleanup& c) {
  return in_tx(*conn_, "recording a clean-up", "", [&](pqxx::work& w) -> Status {
    w.exec_params(
        "INSERT INTO cleanups (provider, machine, deployment_id, attempts, next_ms, last_error, created_ms)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (provider, machine) DO UPDATE SET"
        " deployment_id = excluded.deployment_id, attempts = excluded.attempts, next_ms = excluded.next_ms,"
        " last_error = excluded.last_error",
        c.provider, c.machine, c.deployment_id, c.attempts, c.next_ms, valid_utf8(c.last_error), c.created_ms);
    return Status::Ok();
  });
}

Result<std::vector<Cleanup>> PostgresStore::cleanups() {
  return in_tx(*conn_, "reading the clean-up queue", "", [&](pqxx::work& w) -> Result<std::vector<Cleanup>> {
    auto r = w.exec(
        "SELECT deployment_id, provider, machine, attempts, next_ms, last_error, created_ms FROM cleanups"
        " ORDER BY created_ms, provider, machine");
    return all(
        r, +[](const Row& x) {
          return Cleanup{text(x, 0),    text(x, 1), text(x, 2),   static_cast<int>(integer(x, 3)),
                         integer(x, 4), text(x, 5), integer(x, 6)};
        });
  });
}

Status PostgresStore::delete_cleanup(const std::string& provider, const std::string& machine) {
  return in_tx(*conn_, "deleting a clean-up", "", [&](pqxx::work& w) -> Status {
    w.exec_params("DELETE FROM cleanups WHERE provider = $1 AND machine = $2", provider, machine);
    return Status::Ok();
  });
}

namespace {
constexpr const char* kWarmColumns =
    "name, provider, os_key, state, address, agent_sha256, maker, created_ms, updated_ms";
WarmMachine read_warm(const Row& r) {
  return WarmMachine{text(r, 0), text(r, 1), text(r, 2),    text(r, 3),   text(r, 4),
                     text(r, 5), text(r, 6), integer(r, 7), integer(r, 8)};
}
}  // namespace

Status PostgresStore::add_warm(const WarmMachine& w, int max) {
  return in_tx(*conn_, "recording a warm machine", "", [&](pqxx::work& w_) -> Status {
    // one maker per provider and OS key at a time, across every server: the
    // count below sees what the previous holder committed
    w_.exec_params("SELECT pg_advisory_xact_lock(4242006, hashtext($1))", w.provider + "/" + w.os_key);
    int64_t n = integer(
        w_.exec_params1("SELECT COUNT(*) FROM warm_machines WHERE provider = $1 AND os_key = $2", w.provider, w.os_key),
        0);
    if (n >= max) return Error::make("exhausted", std::to_string(n) + " warm machine(s) of " + w.os_key + " already");
    w_.exec_params(
        "INSERT INTO warm_machines (name, provider, os_key, state, address, agent_sha256, maker, created_ms,"
        " updated_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
        w.name, w.provider, w.os_key, w.state, w.address, w.agent_sha256, w.maker, w.created_ms, w.updated_ms);
    return Status::Ok();
  });
}

Status PostgresStore::set_warm_ready(const std::string& name, const std::string& address, int64_t now_ms) {
  return in_tx(*conn_, "marking a warm machine ready", "", [&](pqxx::work& w) -> Status {
    auto r = w.exec_params(
        "UPDATE warm_machines SET state = 'ready', address = $1, updated_ms = $2 WHERE name = $3 AND state = "
        "'creating'",
        address, now_ms, name);
    if (r.affected_rows() == 0) return Error::make("not_found", "no warm machine " + name + " being made");
    return Status::Ok();
  });
}

Status PostgresStore::touch_warm(const std::string& name, int64_t now_ms) {
  return in_tx(*conn_, "noting a warm machine still being made", "", [&](pqxx::work& w) -> Status {
    auto r =
        w.exec_params("UPDATE warm_machines SET updated_ms = $1 WHERE name = $2 AND state = 'creating'", now_ms, name);
    if (r.affected_rows() == 0) return Error::make("not_found", "no warm machine " + name + " being made");
    return Status::Ok();
  });
}

Result<std::optional<WarmMachine>> PostgresStore::claim_warm(const std::string& provider, const std::string& os_key,
                                                             const std::string& agent_sha256) {
  return in_tx(*conn_, "claiming a warm machine", "", [&](pqxx::work& w) -> Result<std::optional<WarmMachine>> {
    // SKIP LOCKED: a claim at the same time takes the next one instead of
    // waiting for this one and then finding it gone
    auto r = w.exec_params(std::string("DELETE FROM warm_machines WHERE name = (SELECT name FROM warm_machines"
                                       " WHERE provider = $1 AND os_key = $2 AND agent_sha256 = $3 AND state = 'ready'"
                                       " ORDER BY created_ms, name LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING ") +
                               kWarmColumns,
                           provider, os_key, agent_sha256);
    if (r.empty()) return std::optional<WarmMachine>();
    return std::optional<WarmMachine>(read_warm(r[0]));
  });
}

Result<bool> PostgresStore::remove_warm(const std::string& name, const std::string& state) {
  return in_tx(*conn_, "forgetting a warm machine", "", [&](pqxx::work& w) -> Result<bool> {
    return w.exec_params("DELETE FROM warm_machines WHERE name = $1 AND state = $2", name, state).affected_rows() > 0;
  });
}

Result<std::vector<WarmMachine>> PostgresStore::warm_machines() {
  return in_tx(*conn_, "reading warm machines", "", [&](pqxx::work& w) -> Result<std::vector<WarmMachine>> {
    auto r = w.exec(std::string("SELECT ") + kWarmColumns + " FROM warm_machines ORDER BY created_ms, name");
    return all(r, read_warm);
  });
}

Result<PruneResult> PostgresStore::prune_destroyed(int64_t before_ms) {
  return in_tx(*conn_, "pruning destroyed deployments", "", [&](pqxx::work& w) -> Result<PruneResult> {
    const std::string old = "SELECT id FROM deployments WHERE state = 'destroyed' AND updated_ms < $1";
    const std::string gone =
        "SELECT d.id FROM deployments d WHERE d.state = 'destroyed' AND d.updated_ms < $1"
        " AND NOT EXISTS (SELECT 1 FROM backups b WHERE b.deployment_id = d.id)"
        " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.deployment_id = d.id AND j.state IN ('queued', 'running'))";
    PruneResult out;
    // the rows of the deployments to forget, locked first (a job admitted
    // meanwhile waits, then finds no deployment)
    w.exec_params("SELECT id FROM deployments WHERE id IN (" + gone + ") FOR UPDATE", before_ms);
    out.log_lines = static_cast<int64_t>(
        w.exec_params("DELETE FROM deployment_logs WHERE deployment_id IN (" + old + ")", before_ms).affected_rows());
    out.jobs = static_cast<int64_t>(
        w.exec_params("DELETE FROM jobs WHERE deployment_id IN (" + gone + ")", before_ms).affected_rows());
    // its releases are part of the record (their machines are gone with it)
    w.exec_params("DELETE FROM releases WHERE deployment_id IN (" + gone + ")", before_ms);
    out.deployments = static_cast<int64_t>(
        w.exec_params("DELETE FROM deployments WHERE id IN (" + gone + ")", before_ms).affected_rows());
    return out;
  });
}

Status PostgresStore::create_user(const User& u) {
  Status st = in_tx(*conn_, "inserting a user", "a user named " + u.name + " exists", [&](pqxx::work& w) -> Status {
    try {
      w.exec_params(std::string("INSERT INTO users (") + kUserColumns + ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8)", u.id,
                    u.name, to_string(u.role), u.password_hash, u.created_ms, u.oidc_issuer, u.oidc_subject,
                    u.disabled_ms);
    } catch (const pqxx::unique_violation& e) {
      if (std::string(e.what()).find("users_oidc") == std::string::npos) throw;
      return Error::make("conflict", "another user is bound to this OpenID identity");
    }
    return Status::Ok();
  });
  if (!st && st.error().code == "conflict") return Error{"conflict", st.error().message, "name"};
  return st;
}

Result<User> PostgresStore::get_user(const std::string& id) {
  return in_read(*conn_, "reading a user", [&](pqxx::transaction_base& w) -> Result<User> {
    auto r = w.exec_params(std::string("SELECT ") + kUserColumns + " FROM users WHERE id = $1", id);
    if (r.empty()) return Error::make("not_found", "no user " + id);
    return read_user(r[0]);
  });
}

Result<User> PostgresStore::get_user_by_name(const std::string& name) {
  return in_read(*conn_, "reading a user", [&](pqxx::transaction_base& w) -> Result<User> {
    auto r = w.exec_params(std::string("SELECT ") + kUserColumns + " FROM users WHERE name = $1", name);
    if (r.empty()) return Error::make("not_found", "no user named " + name);
    return read_user(r[0]);
  });
}

Result<User> PostgresStore::get_user_by_subject(const std::string& issuer, const std::string& subject) {
  if (subject.empty()) return Error::make("not_found", "no user bound to an empty subject");
  return in_read(*conn_, "reading a user", [&](pqxx::transaction_base& w) -> Result<User> {
    auto r = w.exec_params(
        std::string("SELECT ") + kUserColumns + " FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2", issuer,
        subject);
    if (r.empty()) return Error::make("not_found", "no user bound to this OpenID identity");
    return read_user(r[0]);
  });
}

Result<std::vector<User>> PostgresStore::users() {
  return in_tx(*conn_, "reading users", "", [&](pqxx::work& w) -> Result<std::vector<User>> {
    return all(w.exec(std::string("SELECT ") + kUserColumns + " FROM users ORDER BY id"), read_user);
  });
}

Status PostgresStore::create_token(const Token& t) {
  return in_tx(
      *conn_, "inserting a token", "token " + t.id + " exists or its user does not", [&](pqxx::work& w) -> Status {
        w.exec_params(std::string("INSERT INTO tokens (") + kTokenColumns + ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8)", t.id,
                      t.user_id, t.name, t.hash, t.created_ms, t.expires_ms, t.revoked_ms, t.session ? 1 : 0);
        return Status::Ok();
      });
}

Result<Token> PostgresStore::token_by_hash(const std::string& hash) {
  return in_read(*conn_, "reading a token", [&](pqxx::transaction_base& w) -> Result<Token> {
    auto r = w.exec_params(std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE hash = $1", hash);
    if (r.empty()) return Error::make("not_found", "no such token");
    return read_token(r[0]);
  });
}

Result<Token> PostgresStore::get_token(const std::string& id) {
  return in_read(*conn_, "reading a token", [&](pqxx::transaction_base& w) -> Result<Token> {
    auto r = w.exec_params(std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE id = $1", id);
    if (r.empty()) return Error::make("not_found", "no token " + id);
    return read_token(r[0]);
  });
}

Status PostgresStore::update_user(const User& u) {
  return in_tx(*conn_, "updating a user", "", [&](pqxx::work& w) -> Status {
    auto r = w.exec_params("UPDATE users SET role = $2, password_hash = $3, disabled_ms = $4 WHERE id = $1", u.id,
                           to_string(u.role), u.password_hash, u.disabled_ms);
    if (r.affected_rows() == 0) return Error::make("not_found", "no user " + u.id);
    return Status::Ok();
  });
}

Status PostgresStore::bind_user(const std::string& id, const std::string& issuer, const std::string& subject) {
  if (subject.empty()) return Error::invalid("subject", "a binding needs a subject");
  return in_tx(*conn_, "binding a user", "another user is bound to this OpenID identity", [&](pqxx::work& w) -> Status {
    auto r = w.exec_params("UPDATE users SET oidc_issuer = $2, oidc_subject = $3 WHERE id = $1 AND oidc_subject = ''",
                           id, issuer, subject);
    if (r.affected_rows() == 1) return Status::Ok();
    if (w.exec_params("SELECT 1 FROM users WHERE id = $1", id).empty())
      return Error::make("not_found", "no user " + id);
    return Error::make("conflict", "the user is bound to another OpenID identity already");
  });
}

Status PostgresStore::unbind_user(const std::string& id) {
  return in_tx(*conn_, "unbinding a user", "", [&](pqxx::work& w) -> Status {
    auto r = w.exec_params("UPDATE users SET oidc_issuer = '', oidc_subject = '' WHERE id = $1", id);
    if (r.affected_rows() == 0) return Error::make("not_found", "no user " + id);
    return Status::Ok();
  });
}

Status PostgresStore::update_token(const Token& t) {
  return in_tx(*conn_, "updating a token", "", [&](pqxx::work& w) -> Status {
    auto r = w.exec_params("UPDATE tokens SET name = $2, expires_ms = $3, revoked_ms = $4 WHERE id = $1", t.id, t.name,
                           t.expires_ms, t.revoked_ms);
    if (r.affected_rows() == 0) return Error::make("not_found", "no token " + t.id);
    return Status::Ok();
  });
}

Result<std::vector<Token>> PostgresStore::tokens_of(const std::string& user_id) {
  return in_tx(*conn_, "reading tokens", "", [&](pqxx::work& w) -> Result<std::vector<Token>> {
    auto r =
        w.exec_params(std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE user_id = $1 ORDER BY id", user_id);
    return all(r, read_token);
  });
}

Result<int64_t> PostgresStore::append_audit(const AuditEntry& e) {
  return in_tx(*conn_, "appending an audit entry", "", [&](pqxx::work& w) -> Result<int64_t> {
    auto r = w.exec_params1(
        "INSERT INTO audit (ts_ms, \"user\", action, target, remote, status, detail) VALUES ($1,$2,$3,$4,$5,$6,$7)"
        " RETURNING seq",
        e.ts_ms, valid_utf8(e.user), valid_utf8(e.action), valid_utf8(e.target), valid_utf8(e.remote), e.status,
        valid_utf8(e.detail));
    return r[0].as<int64_t>();
  });
}

Status PostgresStore::finish_audit(int64_t seq, int status, const std::string& target, const std::string& detail) {
  return in_tx(*conn_, "completing an audit entry", "", [&](pqxx::work& w) -> Status {
    auto r = w.exec_params("UPDATE audit SET status = $2, target = $3, detail = $4 WHERE seq = $1 AND status = 0", seq,
                           status, valid_utf8(target), valid_utf8(detail));
    if (r.affected_rows() == 0)
      return Error::make("not_found", "no audit entry " + std::to_string(seq) + " waiting for its status");
    return Status::Ok();
  });
}

Result<std::vector<AuditEntry>> PostgresStore::audit(int64_t after_seq, size_t limit) {
  return in_tx(*conn_, "reading the audit log", "", [&](pqxx::work& w) -> Result<std::vector<AuditEntry>> {
    auto r = w.exec_params(
        "SELECT seq, ts_ms, \"user\", action, target, remote, status, detail FROM audit WHERE seq > $1 ORDER BY seq"
        " LIMIT $2",
        after_seq, static_cast<int64_t>(limit));
    std::vector<AuditEntry> out;
    for (const auto& row : r) {
      AuditEntry e;
      e.seq = integer(row, 0);
      e.ts_ms = integer(row, 1);
      e.user = text(row, 2);
      e.action = text(row, 3);
      e.target = text(row, 4);
      e.remote = text(row, 5);
      e.status = static_cast<int>(integer(row, 6));
      e.detail = text(row, 7);
      out.push_back(std::move(e));
    }
    return out;
  });
}

Result<std::string> PostgresStore::allocate_address(const std::string& subnet, const std::string& owner) {
  auto net = parse_ipv4_subnet(subnet);
  if (!net) return net.error();
  if (owner.empty()) return Error::invalid("owner", "an address needs an owner");
  const std::string key = net->to_string();
  return in_tx(*conn_, "allocating an address", "", [&](pqxx::work& w) -> Result<std::string> {
    // One allocator per subnet at a time, across every connection and server:
    // the advisory lock is held until this transaction ends, and the reads
    // below (READ COMMITTED: a snapshot per statement) see what the previous
    // holder committed. The primary key (subnet, address) backs it up.
    w.exec_params("SELECT pg_advisory_xact_lock(4242002, hashtext($1))", key);
    auto held = w.exec_params("SELECT ip FROM addresses WHERE subnet = $1 AND owner = $2", key, owner);
    if (!held.empty()) return text(held[0], 0);
    std::vector<uint32_t> taken;
    for (const auto& r : w.exec_params("SELECT address FROM addresses WHERE subnet = $1", key))
      taken.push_back(static_cast<uint32_t>(integer(r, 0)));
    auto free = lowest_free(*net, std::move(taken));
    if (!free) return Error{"exhausted", "every address of " + key + " is taken", "subnet"};
    std::string ip = format_ipv4(*free);
    int64_t now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    w.exec_params("INSERT INTO addresses (subnet, address, ip, owner, allocated_ms) VALUES ($1,$2,$3,$4,$5)", key,
                  static_cast<int64_t>(*free), ip, owner, now);
    return ip;
  });
}

Result<int> PostgresStore::allocate_port(const std::string& id, int lo, int hi) {
  if (lo < 1 || hi > 65535 || lo > hi) return Error::invalid("ports", "must be a range within 1-65535");
  return in_tx(*conn_, "allocating a port", "", [&](pqxx::work& w) -> Result<int> {
    // one allocator at a time across every server (until this transaction
    // ends); the unique index on public_port backs it up
    w.exec("SELECT pg_advisory_xact_lock(4242005, 0)");
    auto held = w.exec_params("SELECT public_port FROM deployments WHERE id = $1", id);
    if (held.empty()) return Error::make("not_found", "no deployment " + id);
    int p = static_cast<int>(integer(held[0], 0));
    if (p >= lo && p <= hi) return p;
    std::vector<int> taken;
    for (const auto& r :
         w.exec_params("SELECT public_port FROM deployments WHERE public_port BETWEEN $1 AND $2", lo, hi))
      taken.push_back(static_cast<int>(integer(r, 0)));
    auto free = lowest_free_port(lo, hi, std::move(taken));
    if (!free) return port_exhausted(lo, hi);
    w.exec_params("UPDATE deployments SET public_port = $1 WHERE id = $2", *free, id);
    return *free;
  });
}

Status PostgresStore::release_addresses(const std::string& owner) {
  return in_tx(*conn_, "releasing addresses", "", [&](pqxx::work& w) -> Status {
    w.exec_params("DELETE FROM addresses WHERE owner = $1", owner);
    return Status::Ok();
  });
}

Result<RateTake> PostgresStore::take_rate(const std::string& key, double per_second, double burst, int64_t now_ms) {
  if (key.empty()) return Error::invalid("key", "a rate needs a key");
  return in_tx(*conn_, "taking from a rate bucket", "", [&](pqxx::work& w) -> Result<RateTake> {
    // Inserts a fresh bucket or locks the one there (until this transaction
    // ends), in one statement: a server that comes second waits here and then
    // reads what the first committed.
    auto row = w.exec_params(
        "INSERT INTO rate_buckets (bucket, tokens, last_ms, full_at_ms) VALUES ($1, $2, $3, $3) "
        "ON CONFLICT (bucket) DO UPDATE SET tokens = rate_buckets.tokens RETURNING tokens, last_ms",
        key, burst, now_ms);
    TokenBucket b(per_second, burst, row[0][0].as<double>(), row[0][1].as<int64_t>());
    RateTake t;
    t.allowed = b.take(now_ms, &t.retry_after_ms);
    if (t.allowed)
      w.exec_params("UPDATE rate_buckets SET tokens = $2, last_ms = $3, full_at_ms = $4 WHERE bucket = $1", key,
                    b.tokens(), b.last_ms(), b.full_at_ms());
    // Forgets buckets full again; one another server holds is skipped, never
    // waited for (no lock is ever awaited while this one is held).
    w.exec_params(
        "DELETE FROM rate_buckets WHERE bucket IN (SELECT bucket FROM rate_buckets WHERE full_at_ms < $1 "
        "AND bucket <> $2 LIMIT 100 FOR UPDATE SKIP LOCKED)",
        now_ms, key);
    return t;
  });
}

namespace {
constexpr const char* kTrackColumns =
    "deployment_id, branch, secret, poll_s, pending_commit, polled_ms, created_ms, updated_ms";
GitTrack read_track(const Row& r) {
  return GitTrack{text(r, 0), text(r, 1),    text(r, 2),    integer(r, 3),
                  text(r, 4), integer(r, 5), integer(r, 6), integer(r, 7)};
}
}  // namespace

Status PostgresStore::put_track(const GitTrack& t) {
  return in_tx(*conn_, "recording a tracked branch", "", [&](pqxx::work& w) -> Status {
    if (w.exec_params("SELECT 1 FROM deployments WHERE id = $1 FOR UPDATE", t.deployment_id).empty())
      return Error::make("not_found", "no deployment " + t.deployment_id);
    w.exec_params(std::string("INSERT INTO git_tracks (") + kTrackColumns +
                      ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (deployment_id) DO UPDATE SET branch = "
                      "excluded.branch, secret = excluded.secret, poll_s = excluded.poll_s, pending_commit = "
                      "excluded.pending_commit, polled_ms = excluded.polled_ms, updated_ms = excluded.updated_ms",
                  t.deployment_id, valid_utf8(t.branch), t.secret, t.poll_s, t.pending_commit, t.polled_ms,
                  t.created_ms, t.updated_ms);
    return Status::Ok();
  });
}

Result<GitTrack> PostgresStore::get_track(const std::string& deployment_id) {
  return in_read(*conn_, "reading a tracked branch", [&](pqxx::transaction_base& w) -> Result<GitTrack> {
    auto r = w.exec_params(std::string("SELECT ") + kTrackColumns + " FROM git_tracks WHERE deployment_id = $1",
                           deployment_id);
    if (r.empty()) return Error::make("not_found", "deployment " + deployment_id + " tracks no branch");
    return read_track(r[0]);
  });
}

Status PostgresStore::delete_track(const std::string& deployment_id) {
  return in_tx(*conn_, "forgetting a tracked branch", "", [&](pqxx::work& w) -> Status {
    w.exec_params("DELETE FROM git_tracks WHERE deployment_id = $1", deployment_id);
    w.exec_params("DELETE FROM git_deliveries WHERE deployment_id = $1", deployment_id);
    return Status::Ok();
  });
}

Result<std::vector<GitTrack>> PostgresStore::tracks() {
  return in_tx(*conn_, "listing tracked branches", "", [&](pqxx::work& w) -> Result<std::vector<GitTrack>> {
    return all(w.exec(std::string("SELECT ") + kTrackColumns + " FROM git_tracks ORDER BY deployment_id"), read_track);
  });
}

Result<bool> PostgresStore::note_delivery(const std::string& deployment_id, const std::string& delivery_id,
                                          int64_t now_ms, size_t keep) {
  return in_tx(*conn_, "recording a delivery", "", [&](pqxx::work& w) -> Result<bool> {
    auto r = w.exec_params(
        "INSERT INTO git_deliveries (deployment_id, delivery_id, seen_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        deployment_id, valid_utf8(delivery_id), now_ms);
    if (r.affected_rows() == 0) return false;
    w.exec_params(
        "DELETE FROM git_deliveries WHERE deployment_id = $1 AND seq NOT IN (SELECT seq FROM git_deliveries"
        " WHERE deployment_id = $1 ORDER BY seq DESC LIMIT $2)",
        deployment_id, static_cast<int64_t>(keep));
    return true;
  });
}

Status PostgresStore::set_pending(const std::string& deployment_id, const std::string& commit, int64_t now_ms) {
  return in_tx(*conn_, "recording a pending commit", "", [&](pqxx::work& w) -> Status {
    auto r = w.exec_params("UPDATE git_tracks SET pending_commit = $2, updated_ms = $3 WHERE deployment_id = $1",
                           deployment_id, commit, now_ms);
    if (r.affected_rows() == 0) return Error::make("not_found", "deployment " + deployment_id + " tracks no branch");
    return Status::Ok();
  });
}

Result<bool> PostgresStore::take_pending(const std::string& deployment_id, const std::string& commit) {
  return in_tx(*conn_, "taking a pending commit", "", [&](pqxx::work& w) -> Result<bool> {
    auto r = w.exec_params("UPDATE git_tracks SET pending_commit = '' WHERE deployment_id = $1 AND pending_commit = $2",
                           deployment_id, commit);
    return r.affected_rows() > 0;
  });
}

Status PostgresStore::set_polled(const std::string& deployment_id, int64_t now_ms) {
  return in_tx(*conn_, "recording a poll", "", [&](pqxx::work& w) -> Status {
    w.exec_params("UPDATE git_tracks SET polled_ms = $2 WHERE deployment_id = $1", deployment_id, now_ms);
    return Status::Ok();
  });
}

}  // namespace ads
