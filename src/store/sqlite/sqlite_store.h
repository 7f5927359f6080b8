// SqliteStore: the embedded default Store, one SQLite file in WAL mode.
// One connection guarded by a mutex; every statement uses bound parameters,
// and is prepared once and kept for reuse (StmtCache in the .cpp).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "store/store.h"

struct sqlite3;

namespace ads {
class StmtCache;

class SqliteStore : public Store {
 public:
  // Opens (creating if needed) the database at `path` and migrates its schema.
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  // The schema version this build migrates to (its last migration).
  static int64_t latest_schema_version();
  ~SqliteStore() override;

  Status create(const Deployment& d) override;
  Result<Deployment> get(const std::string& id) override;
  Result<std::vector<Deployment>> list(const ListQuery& q) override;
  Status update(const Deployment& d) override;
  Result<int64_t> append_log(const std::string& id, const LogLine& line) override;
  Result<std::vector<LogLine>> logs(const std::string& id, int64_t after_seq, size_t limit) override;
  Result<std::vector<Deployment>> unfinished() override;
  Result<std::vector<Deployment>> expired(int64_t now_ms, size_t limit) override;
  Result<std::optional<Deployment>> find_by_idempotency_key(const std::string& key) override;
  Status create_job(const Job& j) override;
  Status admit_job(const Job& j, const Admission& a, const Deployment* new_deployment) override;
  Status update_job(const Job& j) override;
  Result<Job> get_job(const std::string& id) override;
  Result<std::vector<Job>> jobs_of(const std::string& deployment_id) override;
  Result<std::vector<Job>> unfinished_jobs() override;
  Result<std::optional<Job>> claim_job(const std::string& owner, int64_t now_ms, int64_t lease_ms,
                                       int max_per_owner = 0) override;
  Result<Job> request_cancel(const std::string& job_id, int64_t now_ms, const std::string& reason) override;
  Result<int64_t> renew_leases(const std::string& owner, int64_t until_ms) override;
  Result<int64_t> renew_leases_of(const std::string& owner, const std::vector<std::string>& job_ids,
                                  int64_t until_ms) override;
  Result<std::map<std::string, int64_t>> count_by_state() override;
  Status add_backup(const Backup& b) override;
  Result<Backup> get_backup(const std::string& id) override;
  Result<std::vector<Backup>> backups_of(const std::string& deployment_id) override;
  Status delete_backup(const std::string& id) override;
  Status put_cleanup(const Cleanup& c) override;
  Result<std::vector<Cleanup>> cleanups() override;
  Status delete_cleanup(const std::string& provider, const std::string& machine) override;
  Status add_warm(const WarmMachine& w, int max) override;
  Status set_warm_ready(const std::string& name, const std::string& address, int64_t now_ms) override;
  Status touch_warm(const std::string& name, int64_t now_ms) override;
  Result<std::optional<WarmMachine>> claim_warm(const std::string& provider, const std::string& os_key,
                                                const std::string& agent_sha256) override;
  Result<bool> remove_warm(const std::string& name, const std::string& state) override;
  Result<std::vector<WarmMachine>> warm_machines() override;
  Result<PruneResult> prune_destroyed(int64_t before_ms) override;
  Status add_release(const Release& r) override;
  Status update_release(const Release& r) override;
  Result<Release> get_release(const std::string& id) override;
  Result<std::vector<Release>> releases_of(const std::string& deployment_id) override;
  Status switch_release(const Deployment& d, const std::vector<Release>& changed) override;
  Status create_user(const User& u) override;
  Result<User> get_user(const std::string& id) override;
  Result<User> get_user_by_name(const std::string& name) override;
  Result<User> get_user_by_subject(const std::string& issuer, const std::string& subject) override;
  Result<std::vector<User>> users() override;
  Status update_user(const User& u) override;
  Status bind_user(const std::string& id, const std::string& issuer, const std::string& subject) override;
  Status unbind_user(const std::string& id) override;
  Status create_token(const Token& t) override;
  Result<Token> token_by_hash(const std::string& hash) override;
  Result<Token> get_token(const std::string& id) override;
  Status update_token(const Token& t) override;
  Result<std::vector<Token>> tokens_of(const std::string& user_id) override;
  Result<int64_t> append_audit(const AuditEntry& e) override;
  Status finish_audit(int64_t seq, int status, const std::string& target, const std::string& detail) override;
  Result<std::vector<AuditEntry>> audit(int64_t after_seq, size_t limit) override;
  Result<std::string> allocate_address(const std::string& subnet, const std::string& owner) override;
  Status release_addresses(const std::string& owner) override;
  Result<int> allocate_port(const std::string& id, int lo, int hi) override;
  Result<RateTake> take_rate(const std::string& key, double per_second, double burst, int64_t now_ms) override;
  Status put_track(const GitTrack& t) override;
  Result<GitTrack> get_track(const std::string& deployment_id) override;
  Status delete_track(const std::string& deployment_id) override;
  Result<std::vector<GitTrack>> tracks() override;
  Result<bool> note_delivery(const std::string& deployment_id, const std::string& delivery_id, int64_t now_ms,
                             size_t keep) override;
  Status set_pending(const std::string& deployment_id, const std::string& commit, int64_t now_ms) override;
  Result<bool> take_pending(const std::string& deployment_id, const std::string& commit) override;
  Status set_polled(const std::string& deployment_id, int64_t now_ms) override;

 private:
  explicit SqliteStore(sqlite3* db);
  Status migrate();
  Status exec(const char* sql);
  // Runs f() (returning a Status or a Result) between BEGIN IMMEDIATE, which
  // takes SQLite's write lock at once (another connection to the file waits,
  // within the busy timeout, instead of reading what this one is about to
  // change), and COMMIT; ROLLBACK when f or the commit fails. With mu_ held.
  template <typename F>
  auto write_tx(F f) -> decltype(f());
  // Inserts with mu_ held (and any transaction the caller opened).
  Status insert_deployment(const Deployment& d);
  Status insert_job(const Job& j);
  Status write_release(const Release& r);
  Status write_deployment(const Deployment& d);  // with mu_ held
  Result<std::vector<Job>> query_jobs(const char* where, const std::string& arg);
  Result<std::vector<User>> query_users(const char* where, const std::string& arg);
  Result<std::vector<Token>> query_tokens(const char* where, const std::string& arg);

  sqlite3* db_;
  std::unique_ptr<StmtCache> stmts_;  // used with mu_ held; finalized before db_ is closed
  std::mutex mu_;
};

}  // namespace ads
