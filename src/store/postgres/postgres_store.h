// PostgresStore: the Store on a PostgreSQL server (libpqxx), for several
// `ads serve` processes sharing one state. A small pool of connections
// (kConnections by default, opened as needed), each running one transaction
// at a time, so a slow statement or a lock wait holds up only its own caller;
// every statement uses bound parameters; every method is one transaction. Schema migrations are numbered like the
// SQLite store's and applied under an advisory lock, so servers starting together do not race.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "store/store.h"

namespace ads {

class PostgresStore : public Store {
 public:
  // Connects to `url` (a libpq URI "postgresql://user@host:port/db" or a
  // "key=value" conninfo string) and migrates the schema. Errors have field
  // "store" and say what failed.
  static constexpr size_t kConnections = 4;
  static Result<std::unique_ptr<Store>> open(const std::string& url, size_t connections = kConnections);
  ~PostgresStore() override;

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

  // The schema version the database is at (for tests and `ads doctor`).
  Result<int64_t> schema_version();
  // The version this build migrates to (its last migration).
  static int64_t latest_schema_version();
  // How many connections the pool has opened so far (for tests).
  size_t connections();
  // How many it may open (the `connections` given to open()).
  size_t max_connections() const;

 private:
  struct Conn;  // the libpqxx connection (kept out of this header)
  explicit PostgresStore(std::unique_ptr<Conn> c);
  Status migrate();

  std::unique_ptr<Conn> conn_;
};

}  // namespace ads
