// Store: where deployments and their logs live. One interface, one
// implementation per backend (sqlite/, postgres/). Every method is
// thread-safe and durable when it returns (the write is committed).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/auth.h"
#include "core/deployment.h"
#include "core/git_push.h"
#include "core/result.h"

namespace ads {

struct ListQuery {
  std::optional<State> state;  // only deployments in this state
  std::string name;            // only this lab name ("" = any)
  std::string after_id;        // page: ids greater than this ("" = from the start)
  size_t limit = 100;          // at most this many, ordered by id ascending
};

// What Store::prune_destroyed removed.
struct PruneResult {
  int64_t deployments = 0;  // records forgotten
  int64_t jobs = 0;
  int64_t log_lines = 0;
};

// The answer of Store::take_rate.
struct RateTake {
  bool allowed = false;
  int64_t retry_after_ms = 0;  // when refused: the wait until the next token
};

class Store {
 public:
  virtual ~Store() = default;

  // Inserts a new deployment; `conflict` error when the id exists.
  virtual Status create(const Deployment& d) = 0;
  // `not_found` error when there is no such id.
  virtual Result<Deployment> get(const std::string& id) = 0;
  virtual Result<std::vector<Deployment>> list(const ListQuery& q) = 0;
  // Replaces the stored record with `d` (matched by d.id); `not_found` if absent.
  virtual Status update(const Deployment& d) = 0;
  // Appends a log line; its seq is assigned by the store (1, 2, ...). Returns the seq.
  virtual Result<int64_t> append_log(const std::string& id, const LogLine& line) = 0;
  // Lines with seq > after_seq, oldest first, at most `limit`.
  virtual Result<std::vector<LogLine>> logs(const std::string& id, int64_t after_seq, size_t limit) = 0;
  // Deployments whose state is not settled (see core/deployment.h is_settled).
  virtual Result<std::vector<Deployment>> unfinished() = 0;
  // Deployments not destroyed whose expires_ms is set and at or before
  // `now_ms` (throwaway labs due for removal), at most `limit`, oldest first.
  virtual Result<std::vector<Deployment>> expired(int64_t now_ms, size_t limit) = 0;
  // The deployment created with this Idempotency-Key, if any.
  virtual Result<std::optional<Deployment>> find_by_idempotency_key(const std::string& key) = 0;

  // Jobs: `conflict` if the id exists, `not_found` for a missing id.
  // update_job leaves the lease alone (see claim_job, renew_leases).
  virtual Status create_job(const Job& j) = 0;
  // New work, checked and inserted in one transaction, so that several
  // servers on one store cannot each let one more through: inserts
  // `new_deployment` when given (a deploy), then `j`, unless the deployment
  // already has an unfinished job ("conflict") or `a.owner` already has
  // `a.max_active` unfinished jobs on the deployments it owns ("too_many";
  // 0 means no limit).
  // With behind_cancelled, an unfinished job of the deployment whose cancel
  // was asked for (cancel_requested_ms set) is no conflict: the new job (a
  // destroy) queues behind it and runs once it has ended.
  struct Admission {
    std::string owner;
    int max_active = 0;
    bool behind_cancelled = false;
  };
  // A new deployment is refused ("conflict", field "name") when a live one
  // (any state but failed and destroyed) has its name: names are hosts in
  // stable URLs.
  virtual Status admit_job(const Job& j, const Admission& a, const Deployment* new_deployment = nullptr) = 0;
  virtual Status update_job(const Job& j) = 0;
  virtual Result<Job> get_job(const std::string& id) = 0;
  // A deployment's jobs, oldest first.
  virtual Result<std::vector<Job>> jobs_of(const std::string& deployment_id) = 0;
  // Jobs queued or running, oldest first.
  virtual Result<std::vector<Job>> unfinished_jobs() = 0;
  // Job leases, for several servers on one store. Claims the oldest job that is
  // queued or running, whose lease has expired (lease_expires_ms < now_ms) and
  // that is the oldest unfinished job of its deployment: it is leased to
  // `owner` until now_ms + lease_ms and returned with that lease and the state
  // it was found in ("running": its server died mid-way). Two callers never
  // get the same job. nullopt when there is nothing to claim.
  //
  // Fair share between the owners of deployments: among the claimable jobs,
  // those whose owner has the fewest jobs leased right now (by any server)
  // come first, then the oldest. With max_per_owner > 0, a job whose owner
  // already has that many jobs leased to `owner` (this server) is passed
  // over, so one owner's jobs cannot take every worker of a server.
  virtual Result<std::optional<Job>> claim_job(const std::string& owner, int64_t now_ms, int64_t lease_ms,
                                               int max_per_owner = 0) = 0;
  // Cancel of a job, recorded so that whichever server runs it acts on it.
  // In one transaction: "not_found" for no such job; "conflict" when it has
  // ended already (succeeded, failed, cancelled). A job still queued and not
  // leased to any server ends at once (state "cancelled", its error `reason`);
  // otherwise (running, or claimed by a server) its cancel_requested_ms is
  // set to now_ms (kept if set before) for its server to act on. Returns the
  // job as it now is.
  virtual Result<Job> request_cancel(const std::string& job_id, int64_t now_ms, const std::string& reason) = 0;
  // Extends every lease `owner` holds on an unfinished job to `until_ms`
  // (0 releases them); returns how many.
  virtual Result<int64_t> renew_leases(const std::string& owner, int64_t until_ms) = 0;
  // Extends the leases `owner` holds on those of `job_ids` that are
  // unfinished to `until_ms`, in one transaction; the others are left to
  // lapse (a server renews only the jobs it is running). Returns how many.
  virtual Result<int64_t> renew_leases_of(const std::string& owner, const std::vector<std::string>& job_ids,
                                          int64_t until_ms) = 0;
  // How many deployments are in each state (states with none are absent).
  virtual Result<std::map<std::string, int64_t>> count_by_state() = 0;

  virtual Status add_backup(const Backup& b) = 0;
  virtual Result<Backup> get_backup(const std::string& id) = 0;
  // A deployment's backups, oldest first.
  virtual Result<std::vector<Backup>> backups_of(const std::string& deployment_id) = 0;
  // Forgets a backup (its archive and snapshot are the engine's to remove);
  // `not_found` if there is none with this id.
  virtual Status delete_backup(const std::string& id) = 0;

  // The clean-up queue (machines to remove again). put_cleanup inserts or
  // replaces the entry of (provider, machine); cleanups lists every entry,
  // oldest first; delete_cleanup succeeds when there is none.
  virtual Status put_cleanup(const Cleanup& c) = 0;
  virtual Result<std::vector<Cleanup>> cleanups() = 0;
  virtual Status delete_cleanup(const std::string& provider, const std::string& machine) = 0;

  // Retention, in one transaction: destroyed deployments last changed before
  // `before_ms` lose their log lines; those of them with no backup left (a
  // backup can bring a destroyed deployment back) and no unfinished job are
  // forgotten, with their jobs and releases (and tracks). Nothing of a
  // deployment in any other state is touched; the audit is never pruned.
  virtual Result<PruneResult> prune_destroyed(int64_t before_ms) = 0;

  // Releases (core/deployment.h Release): `conflict` for an id or a
  // (deployment, seq) in use or a missing deployment, `not_found` for a
  // missing id.
  virtual Status add_release(const Release& r) = 0;
  virtual Status update_release(const Release& r) = 0;
  virtual Result<Release> get_release(const std::string& id) = 0;
  // A deployment's releases, by seq.
  virtual Result<std::vector<Release>> releases_of(const std::string& deployment_id) = 0;
  // The switch of a release or a rollback, in one transaction: the
  // deployment record and the releases that change with it (the one that
  // starts serving, the one that stops). Nothing is written unless all is.
  virtual Status switch_release(const Deployment& d, const std::vector<Release>& changed) = 0;

  // Warm machines (core/deployment.h WarmMachine). add_warm records one
  // about to be made, in one transaction with the count of its provider and
  // OS key: "exhausted" when they have `max` already (creating or ready).
  // set_warm_ready marks a "creating" one ready with its address; "not_found"
  // once it was removed meanwhile (its maker then removes the machine).
  // touch_warm moves a "creating" one's updated_ms on while its maker is
  // still at work (others take one not touched for warm_stale for left
  // half-made); "not_found" as for set_warm_ready.
  // claim_warm takes the oldest ready one of provider and OS key that carries
  // agent `agent_sha256` and forgets it, in one statement: two claims never
  // get the same one; nullopt when there is none. remove_warm forgets one in
  // `state`: false when it is not (any more) in that state (it was claimed,
  // became ready or is gone): whoever removed it owns its machine.
  // warm_machines: every one, oldest first.
  virtual Status add_warm(const WarmMachine& w, int max) = 0;
  virtual Status set_warm_ready(const std::string& name, const std::string& address, int64_t now_ms) = 0;
  virtual Status touch_warm(const std::string& name, int64_t now_ms) = 0;
  virtual Result<std::optional<WarmMachine>> claim_warm(const std::string& provider, const std::string& os_key,
                                                        const std::string& agent_sha256) = 0;
  virtual Result<bool> remove_warm(const std::string& name, const std::string& state) = 0;
  virtual Result<std::vector<WarmMachine>> warm_machines() = 0;

  // Users: `conflict` for a name in use, or an (oidc_issuer, oidc_subject)
  // another user is bound to.
  virtual Status create_user(const User& u) = 0;
  virtual Result<User> get_user(const std::string& id) = 0;
  virtual Result<User> get_user_by_name(const std::string& name) = 0;
  // The user bound to this person at this OpenID provider; `not_found` if none.
  virtual Result<User> get_user_by_subject(const std::string& issuer, const std::string& subject) = 0;
  virtual Result<std::vector<User>> users() = 0;
  // Changes a user's role, password hash and disabled_ms (by id); `not_found`
  // if none. The name and the OpenID binding never change here.
  virtual Status update_user(const User& u) = 0;
  // Binds an unbound user to (issuer, subject), in one statement, so that two
  // sign-ins at once cannot both bind it: `conflict` when the user is bound
  // already or another user has that binding, `not_found` if no such user.
  virtual Status bind_user(const std::string& id, const std::string& issuer, const std::string& subject) = 0;
  // Forgets a user's binding (an admin's decision: the person left and the
  // address went to someone else); `not_found` if no such user.
  virtual Status unbind_user(const std::string& id) = 0;
  // Tokens: looked up by the hash of their secret.
  virtual Status create_token(const Token& t) = 0;
  virtual Result<Token> token_by_hash(const std::string& hash) = 0;
  virtual Result<Token> get_token(const std::string& id) = 0;
  // Changes a token's name, expiry and revocation (by id).
  virtual Status update_token(const Token& t) = 0;
  virtual Result<std::vector<Token>> tokens_of(const std::string& user_id) = 0;
  // Audit: appended, with its seq assigned by the store (returned). An entry
  // written before the change it records has status 0; finish_audit then
  // fills in the answer's status, target and detail, once (only while the
  // status is 0): nothing else of an entry ever changes.
  virtual Result<int64_t> append_audit(const AuditEntry& e) = 0;
  virtual Status finish_audit(int64_t seq, int status, const std::string& target, const std::string& detail) = 0;
  virtual Result<std::vector<AuditEntry>> audit(int64_t after_seq, size_t limit) = 0;

  // Static addresses (core/ipnet.h has the pool rule).
  // Takes the lowest free host address of `subnet` (IPv4 CIDR; network, first host (gateway) and broadcast excluded)
  // for `owner`, in one transaction; returns the address `owner` already holds in that subnet if any. Error "exhausted"
  // when none is free, "invalid" for a bad CIDR.
  virtual Result<std::string> allocate_address(const std::string& subnet, const std::string& owner) = 0;
  // Releases every address `owner` holds. Succeeds when it holds none.
  virtual Status release_addresses(const std::string& owner) = 0;

  // Host ports for stable URLs without a domain. Gives deployment `id` the
  // lowest port of [lo, hi] that no other deployment holds (its public_port;
  // one transaction, and a unique index behind it), or the one it holds in
  // that range already. Error "exhausted" when none is free, "not_found"
  // for no such deployment. Freed by an update with public_port 0.
  virtual Result<int> allocate_port(const std::string& id, int lo, int hi) = 0;

  // Shared rate limits (core/rate.h has the bucket rule). Takes one token at
  // `now_ms` from the bucket `key` (refilled at `per_second`, holding at most
  // `burst`) in one transaction, so every server on this store draws from
  // the same bucket. Buckets full again are forgotten (a fresh one is the
  // same). Error "invalid" for an empty key.
  virtual Result<RateTake> take_rate(const std::string& key, double per_second, double burst, int64_t now_ms) = 0;

  // Deploy on git push (core/git_push.h). put_track inserts or replaces a
  // deployment's track (all its fields); `not_found` for no such deployment.
  // get_track: `not_found` when it tracks nothing. delete_track forgets the
  // track and its delivery ids (ok when there is none). tracks: every track.
  virtual Status put_track(const GitTrack& t) = 0;
  virtual Result<GitTrack> get_track(const std::string& deployment_id) = 0;
  virtual Status delete_track(const std::string& deployment_id) = 0;
  virtual Result<std::vector<GitTrack>> tracks() = 0;
  // Records a webhook delivery id of a deployment, in one transaction: false
  // when it was recorded before (a replay). Only the newest `keep` ids of a
  // deployment are kept.
  virtual Result<bool> note_delivery(const std::string& deployment_id, const std::string& delivery_id, int64_t now_ms,
                                     size_t keep) = 0;
  // The pending commit of a track: set_pending replaces it (`not_found` when
  // the deployment tracks nothing); take_pending clears it only while it is
  // still `commit` (true) so that a push meanwhile is not lost (false).
  virtual Status set_pending(const std::string& deployment_id, const std::string& commit, int64_t now_ms) = 0;
  virtual Result<bool> take_pending(const std::string& deployment_id, const std::string& commit) = 0;
  // Marks a track's branch as polled at now_ms (the git watch).
  virtual Status set_polled(const std::string& deployment_id, int64_t now_ms) = 0;
};

// Opens a store from a URL: "sqlite:///var/lib/ads/ads.db", a bare path, or
// "postgresql://user@host:port/db" (also "postgres://"). `connections`:
// the PostgreSQL store's pool size (0: its default); SQLite ignores it.
Result<std::unique_ptr<Store>> open_store(const std::string& url, size_t connections = 0);

}  // namespace ads
