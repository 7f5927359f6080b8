// The Store contract, run against every backend: SQLite on a real file and
// PostgreSQL on a real server this test starts on loopback (see
// tests/support/postgres.h). A PostgreSQL that cannot be started fails the
// PostgreSQL cases; they are never skipped.
#include "store/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "store/postgres/postgres_store.h"
#include "support/process.h"
#include "support/store_backends.h"

namespace {

ads::Deployment sample(const std::string& id, const std::string& name = "cse02") {
  ads::Deployment d;
  d.id = id;
  d.name = name;
  d.source = "https://example.invalid/labs/it's \"quoted\".git";
  d.ref = "v1";
  d.commit = std::string(40, 'a');
  d.provider = "lxd";
  d.state = ads::State::kInstalling;
  d.failed_step = "";
  d.error = "'); DROP TABLE deployments;--";
  d.machine = "ads-" + id;
  d.address = "10.0.0.2";
  d.url = "http://10.0.0.2/";
  d.secret = "s3cr3t-ünïcødé";
  d.spec_json = R"({"a":1})";
  d.created_ms = 1700000000123;
  d.updated_ms = 1700000000456;
  return d;
}

// One PostgreSQL server per test process, started at first use.
ads::test::PostgresServer& postgres() { return ads::test::shared_postgres(); }

class StoreTest : public ads::test::BackendTest {
 protected:
  ads::Job job(const std::string& id, const std::string& deployment_id) {
    ads::Job j;
    j.id = id;
    j.deployment_id = deployment_id;
    j.kind = "deploy";
    return j;
  }
};

TEST_P(StoreTest, EveryFieldRoundTripsAndSurvivesReopening) {
  {
    auto s = open();
    ASSERT_TRUE(s->create(sample("01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  }
  auto s = open();
  auto d = s->get("01aaaaaaaaaaaaaaaaaaaaaaaa");
  ASSERT_TRUE(d.ok());
  auto want = sample("01aaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(d->name, want.name);
  EXPECT_EQ(d->source, want.source);
  EXPECT_EQ(d->ref, want.ref);
  EXPECT_EQ(d->commit, want.commit);
  EXPECT_EQ(d->provider, want.provider);
  EXPECT_EQ(d->state, ads::State::kInstalling);
  EXPECT_EQ(d->error, want.error);
  EXPECT_EQ(d->machine, want.machine);
  EXPECT_EQ(d->address, want.address);
  EXPECT_EQ(d->url, want.url);
  EXPECT_EQ(d->secret, want.secret);
  EXPECT_EQ(d->spec_json, want.spec_json);
  EXPECT_EQ(d->created_ms, want.created_ms);
  EXPECT_EQ(d->updated_ms, want.updated_ms);
  // the SQL-looking text did not drop anything
  EXPECT_EQ(s->list({})->size(), 1u);
}

TEST_P(StoreTest, ThrowawayDeploymentsKeepTheirSettingsAndAreListedOnceExpired) {
  auto s = open();
  auto keep = sample("01aaaaaaaaaaaaaaaaaaaaaaa1");
  keep.keep_failed = true;
  keep.expires_ms = 1700000100000;
  keep.state = ads::State::kFailed;
  ASSERT_TRUE(s->create(keep).ok());
  auto later = sample("01aaaaaaaaaaaaaaaaaaaaaaa2");
  later.expires_ms = 1700000200000;
  ASSERT_TRUE(s->create(later).ok());
  auto forever = sample("01aaaaaaaaaaaaaaaaaaaaaaa3");  // expires_ms 0: never
  ASSERT_TRUE(s->create(forever).ok());
  auto gone = sample("01aaaaaaaaaaaaaaaaaaaaaaa4");
  gone.expires_ms = 1700000000000;
  gone.state = ads::State::kDestroyed;  // destroyed already: not again
  ASSERT_TRUE(s->create(gone).ok());

  auto got = s->get(keep.id).value();
  EXPECT_TRUE(got.keep_failed);
  EXPECT_EQ(got.expires_ms, 1700000100000);
  EXPECT_FALSE(s->get(forever.id)->keep_failed);
  EXPECT_EQ(s->get(forever.id)->expires_ms, 0);

  EXPECT_TRUE(s->expired(1700000099999, 100)->empty());
  auto due = s->expired(1700000100000, 100).value();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].id, keep.id);
  due = s->expired(4000000000000, 100).value();
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].id, keep.id);  // the earliest expiry first
  EXPECT_EQ(due[1].id, later.id);
  EXPECT_EQ(s->expired(4000000000000, 1)->size(), 1u);
  // an update keeps (or changes) them
  got.keep_failed = false;
  got.expires_ms = 0;
  ASSERT_TRUE(s->update(got).ok());
  EXPECT_FALSE(s->get(keep.id)->keep_failed);
  EXPECT_EQ(s->expired(4000000000000, 100)->size(), 1u);
}

TEST_P(StoreTest, ConflictsAndMissingIds) {
  auto s = open();
  ASSERT_TRUE(s->create(sample("01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  auto dup = s->create(sample("01aaaaaaaaaaaaaaaaaaaaaaaa"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "conflict");
  EXPECT_EQ(s->get("01bbbbbbbbbbbbbbbbbbbbbbbb").error().code, "not_found");
  EXPECT_EQ(s->update(sample("01bbbbbbbbbbbbbbbbbbbbbbbb")).error().code, "not_found");
  EXPECT_EQ(s->append_log("01bbbbbbbbbbbbbbbbbbbbbbbb", {}).error().code, "not_found");
}

TEST_P(StoreTest, UpdateListFiltersPagingAndUnfinished) {
  auto s = open();
  for (int i = 0; i < 6; ++i) {
    auto d = sample("01aaaaaaaaaaaaaaaaaaaaaaa" + std::to_string(i), i % 2 ? "odd" : "even");
    d.state = i < 2 ? ads::State::kRunning : (i < 4 ? ads::State::kFailed : ads::State::kProvisioning);
    ASSERT_TRUE(s->create(d).ok());
  }
  auto d = s->get("01aaaaaaaaaaaaaaaaaaaaaaa5").value();
  d.state = ads::State::kDestroyed;
  ASSERT_TRUE(s->update(d).ok());
  EXPECT_EQ(s->get(d.id)->state, ads::State::kDestroyed);

  ads::ListQuery q;
  q.limit = 4;
  auto page1 = s->list(q).value();
  ASSERT_EQ(page1.size(), 4u);
  EXPECT_EQ(page1[0].id, "01aaaaaaaaaaaaaaaaaaaaaaa0");
  q.after_id = page1.back().id;
  auto page2 = s->list(q).value();
  ASSERT_EQ(page2.size(), 2u);
  EXPECT_EQ(page2[0].id, "01aaaaaaaaaaaaaaaaaaaaaaa4");
  ads::ListQuery byname;
  byname.name = "odd";
  EXPECT_EQ(s->list(byname)->size(), 3u);
  ads::ListQuery bystate;
  bystate.state = ads::State::kFailed;
  EXPECT_EQ(s->list(bystate)->size(), 2u);
  auto unfinished = s->unfinished().value();
  ASSERT_EQ(unfinished.size(), 1u);
  EXPECT_EQ(unfinished[0].id, "01aaaaaaaaaaaaaaaaaaaaaaa4");
}

TEST_P(StoreTest, LogSequenceHasNoGapsUnderConcurrentWriters) {
  auto s = open();
  auto s2 = open();  // a second connection, as a second server would have
  ASSERT_TRUE(s->create(sample("01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  std::vector<std::thread> ts;
  std::mutex mu;
  std::set<int64_t> seqs;
  ts.reserve(4);
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        ads::LogLine l;
        l.text = "t" + std::to_string(t) + " line " + std::to_string(i);
        l.stream = "stdout";
        auto r = (t % 2 ? s2 : s)->append_log("01aaaaaaaaaaaaaaaaaaaaaaaa", l);
        ASSERT_TRUE(r.ok());
        std::lock_guard<std::mutex> lk(mu);
        EXPECT_TRUE(seqs.insert(*r).second) << *r;
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(seqs.size(), 200u);
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), 200);
  auto tail = s->logs("01aaaaaaaaaaaaaaaaaaaaaaaa", 195, 100).value();
  ASSERT_EQ(tail.size(), 5u);
  EXPECT_EQ(tail[0].seq, 196);
  auto two = s->logs("01aaaaaaaaaaaaaaaaaaaaaaaa", 0, 2).value();
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].seq, 2);
}

TEST_P(StoreTest, JobsBackupsAndIdempotencyKeys) {
  auto s = open();
  auto d = sample("01aaaaaaaaaaaaaaaaaaaaaaaa");
  d.idempotency_key = "key-1";
  ASSERT_TRUE(s->create(d).ok());
  auto again = sample("01bbbbbbbbbbbbbbbbbbbbbbbb");
  again.idempotency_key = "key-1";
  EXPECT_EQ(s->create(again).error().code, "conflict");  // one deployment per key
  auto found = s->find_by_idempotency_key("key-1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->id, d.id);
  EXPECT_FALSE(s->find_by_idempotency_key("key-2")->has_value());

  ads::Job j;
  j.id = "01jjjjjjjjjjjjjjjjjjjjjjj1";
  j.deployment_id = d.id;
  j.kind = "backup";
  j.params_json = R"({"x":1})";
  ASSERT_TRUE(s->create_job(j).ok());
  j.state = "running";
  j.step = "snapshot";
  j.attempts = 2;
  ASSERT_TRUE(s->update_job(j).ok());
  auto got = s->get_job(j.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, "running");
  EXPECT_EQ(got->step, "snapshot");
  EXPECT_EQ(got->attempts, 2);
  EXPECT_EQ(got->params_json, R"({"x":1})");
  EXPECT_EQ(s->unfinished_jobs()->size(), 1u);
  j.state = "succeeded";
  ASSERT_TRUE(s->update_job(j).ok());
  EXPECT_EQ(s->unfinished_jobs()->size(), 0u);
  EXPECT_EQ(s->jobs_of(d.id)->size(), 1u);
  ads::Job orphan = j;
  orphan.id = "01jjjjjjjjjjjjjjjjjjjjjjj2";
  orphan.deployment_id = "01zzzzzzzzzzzzzzzzzzzzzzzz";
  EXPECT_EQ(s->create_job(orphan).error().code, "conflict");  // foreign key
  EXPECT_EQ(s->get_job("01jjjjjjjjjjjjjjjjjjjjjjj9").error().code, "not_found");

  ads::Backup b{"01kkkkkkkkkkkkkkkkkkkkkkk1",
                d.id,
                1700000000000,
                1234,
                std::string(64, 'f'),
                "/x/b.tgz",
                "snap1",
                "abc",
                "agent-secret-1"};
  ASSERT_TRUE(s->add_backup(b).ok());
  auto gb = s->get_backup(b.id);
  ASSERT_TRUE(gb.ok());
  EXPECT_EQ(gb->size_bytes, 1234);
  EXPECT_EQ(gb->snapshot, "snap1");
  EXPECT_EQ(gb->commit, "abc");
  EXPECT_EQ(gb->secret, "agent-secret-1");
  EXPECT_EQ(s->backups_of(d.id)->front().secret, "agent-secret-1");
  EXPECT_EQ(s->backups_of(d.id)->size(), 1u);
  EXPECT_EQ(s->get_backup("01kkkkkkkkkkkkkkkkkkkkkkk9").error().code, "not_found");

  ads::Backup b2 = b;
  b2.id = "01kkkkkkkkkkkkkkkkkkkkkkk2";
  ASSERT_TRUE(s->add_backup(b2).ok());
  ASSERT_TRUE(s->delete_backup(b.id).ok());
  EXPECT_EQ(s->get_backup(b.id).error().code, "not_found");
  auto left = s->backups_of(d.id);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].id, b2.id);
  EXPECT_EQ(s->delete_backup(b.id).error().code, "not_found");
}

TEST_P(StoreTest, RecordsItsSchemaVersionAndMigratesOnce) {
  auto s = open();
  ASSERT_TRUE(s->create(sample("01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  auto again = open();  // migrating an up-to-date schema changes nothing
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->get("01aaaaaaaaaaaaaaaaaaaaaaaa").ok());
  if (GetParam() == "postgres") {
    auto* pg = dynamic_cast<ads::PostgresStore*>(again.get());
    ASSERT_NE(pg, nullptr);
    EXPECT_EQ(pg->schema_version().value(), ads::PostgresStore::latest_schema_version());
  }
}

TEST_P(StoreTest, UsersTokensAndAudit) {
  auto s = open();
  ads::User u{"01uuuuuuuuuuuuuuuuuuuuuuu1", "alice", ads::Role::kDeployer, "$argon2id$x", 1700000000000};
  ASSERT_TRUE(s->create_user(u).ok());
  auto dup = u;
  dup.id = "01uuuuuuuuuuuuuuuuuuuuuuu2";
  auto st = s->create_user(dup);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "conflict");
  EXPECT_EQ(st.error().field, "name");
  EXPECT_EQ(s->get_user(u.id)->role, ads::Role::kDeployer);
  EXPECT_EQ(s->get_user_by_name("alice")->id, u.id);
  EXPECT_EQ(s->get_user_by_name("bob").error().code, "not_found");
  EXPECT_EQ(s->users()->size(), 1u);
  auto changed = u;
  changed.role = ads::Role::kAdmin;
  changed.password_hash = "$argon2id$y";
  changed.name = "renamed";  // the name is not changed by update_user
  ASSERT_TRUE(s->update_user(changed).ok());
  auto back = s->get_user(u.id).value();
  EXPECT_EQ(back.role, ads::Role::kAdmin);
  EXPECT_EQ(back.password_hash, "$argon2id$y");
  EXPECT_EQ(back.name, "alice");
  auto nobody = u;
  nobody.id = "01uuuuuuuuuuuuuuuuuuuuuuu9";
  EXPECT_EQ(s->update_user(nobody).error().code, "not_found");

  ads::Token t{"01tttttttttttttttttttttttt", u.id, "ci", std::string(64, 'a'), 1, 2, 0};
  ASSERT_TRUE(s->create_token(t).ok());
  EXPECT_EQ(s->create_token(t).error().code, "conflict");
  auto orphan = t;
  orphan.id = "01ttttttttttttttttttttttt2";
  orphan.hash = std::string(64, 'b');
  orphan.user_id = "01uuuuuuuuuuuuuuuuuuuuuuu9";
  EXPECT_EQ(s->create_token(orphan).error().code, "conflict");  // foreign key
  EXPECT_EQ(s->token_by_hash(std::string(64, 'a'))->id, t.id);
  EXPECT_EQ(s->token_by_hash(std::string(64, 'c')).error().code, "not_found");
  t.revoked_ms = 99;
  ASSERT_TRUE(s->update_token(t).ok());
  EXPECT_EQ(s->get_token(t.id)->revoked_ms, 99);
  EXPECT_EQ(s->tokens_of(u.id)->size(), 1u);
  auto missing = t;
  missing.id = "01ttttttttttttttttttttttt9";
  EXPECT_EQ(s->update_token(missing).error().code, "not_found");

  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(s->append_audit({0, 1000 + i, "alice", "POST /x", "t" + std::to_string(i), "127.0.0.1", 202}).ok());
  auto a = s->audit(0, 10).value();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].user, "alice");
  EXPECT_EQ(a[2].target, "t2");
  EXPECT_EQ(a[2].status, 202);
  auto rest = s->audit(a[0].seq, 10).value();
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].target, "t1");
}

TEST_P(StoreTest, CountsDeploymentsByState) {
  auto s = open();
  EXPECT_TRUE(s->count_by_state()->empty());
  for (int i = 0; i < 5; ++i) {
    auto d = sample("01aaaaaaaaaaaaaaaaaaaaaaa" + std::to_string(i));
    d.state = i < 3 ? ads::State::kRunning : ads::State::kFailed;
    ASSERT_TRUE(s->create(d).ok());
  }
  auto c = s->count_by_state().value();
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c["running"], 3);
  EXPECT_EQ(c["failed"], 2);
}

TEST_P(StoreTest, JobLeasesGoToOneServerAtATimeAndExpire) {
  auto a = open();
  auto b = open();  // a second server's connection
  ASSERT_TRUE(a->create(sample("01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  ASSERT_TRUE(a->create(sample("01bbbbbbbbbbbbbbbbbbbbbbbb")).ok());
  ASSERT_TRUE(a->create_job(job("01jjjjjjjjjjjjjjjjjjjjjjj1", "01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  ASSERT_TRUE(a->create_job(job("01jjjjjjjjjjjjjjjjjjjjjjj2", "01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  ASSERT_TRUE(a->create_job(job("01jjjjjjjjjjjjjjjjjjjjjjj3", "01bbbbbbbbbbbbbbbbbbbbbbbb")).ok());

  // the oldest job; then the other deployment's (job 2 waits for job 1)
  auto first = a->claim_job("server-a", 1000, 500).value();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->id, "01jjjjjjjjjjjjjjjjjjjjjjj1");
  EXPECT_EQ(first->lease_owner, "server-a");
  EXPECT_EQ(first->lease_expires_ms, 1500);
  EXPECT_EQ(first->state, "queued");
  auto second = b->claim_job("server-b", 1000, 500).value();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->id, "01jjjjjjjjjjjjjjjjjjjjjjj3");
  EXPECT_FALSE(b->claim_job("server-b", 1000, 500)->has_value());
  EXPECT_EQ(a->get_job(first->id)->lease_owner, "server-a");

  // server-a runs job 1 and renews its lease; server-b's lapses
  first->state = "running";
  ASSERT_TRUE(a->update_job(*first).ok());
  EXPECT_EQ(a->renew_leases("server-a", 3000).value(), 1);
  EXPECT_EQ(a->get_job(first->id)->lease_expires_ms, 3000);
  auto taken = a->claim_job("server-a", 2000, 500).value();  // job 3's lease ended at 1500
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->id, "01jjjjjjjjjjjjjjjjjjjjjjj3");
  EXPECT_EQ(taken->lease_owner, "server-a");
  EXPECT_EQ(b->renew_leases("server-b", 9000).value(), 0);  // it holds nothing any more

  // update_job leaves leases alone
  first->lease_owner = "someone-else";
  first->lease_expires_ms = 1;
  ASSERT_TRUE(a->update_job(*first).ok());
  EXPECT_EQ(a->get_job(first->id)->lease_owner, "server-a");
  EXPECT_EQ(a->get_job(first->id)->lease_expires_ms, 3000);
  // a finished job frees its deployment for the next one
  first->state = "succeeded";
  ASSERT_TRUE(a->update_job(*first).ok());
  auto next = b->claim_job("server-b", 2000, 500).value();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->id, "01jjjjjjjjjjjjjjjjjjjjjjj2");
  EXPECT_EQ(a->renew_leases("server-a", 4000).value(), 1);  // job 3 only; job 1 is done
  // released (0): claimable at once by anyone
  EXPECT_EQ(a->renew_leases("server-a", 0).value(), 1);
  auto again = b->claim_job("server-b", 2001, 500).value();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id, "01jjjjjjjjjjjjjjjjjjjjjjj3");
}

TEST_P(StoreTest, ConcurrentClaimsNeverHandOutAJobTwice) {
  std::vector<std::unique_ptr<ads::Store>> stores;
  stores.reserve(3);
  for (int i = 0; i < 3; ++i) stores.push_back(open());
  const int kJobs = 30;
  for (int i = 0; i < kJobs; ++i) {
    char id[40];  // room for any int: -O1 builds warn (-Wformat-truncation) otherwise
    std::snprintf(id, sizeof id, "01aaaaaaaaaaaaaaaaaaaaa%03d", i);
    ASSERT_TRUE(stores[0]->create(sample(id)).ok());
    char jid[40];
    std::snprintf(jid, sizeof jid, "01jjjjjjjjjjjjjjjjjjjjj%03d", i);
    ASSERT_TRUE(stores[0]->create_job(job(jid, id)).ok());
  }
  std::mutex mu;
  std::multiset<std::string> claimed;
  std::vector<std::thread> ts;
  ts.reserve(6);
  for (int t = 0; t < 6; ++t) {
    ts.emplace_back([&, t] {
      auto& s = stores[t % 3];
      while (true) {
        auto r = s->claim_job("server-" + std::to_string(t), 1000, 60000);
        ASSERT_TRUE(r.ok()) << r.error().message;
        if (!r->has_value()) return;
        std::lock_guard<std::mutex> lk(mu);
        claimed.insert((*r)->id);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kJobs));
  for (auto& id : claimed) EXPECT_EQ(claimed.count(id), 1u) << id;
}

// open_store passes the configured pool size to the PostgreSQL store (0: its
// default); SQLite takes no such setting and ignores it.
TEST(PostgresStorePool, OpenStoreTakesThePoolSize) {
  ASSERT_TRUE(postgres().ok()) << "cannot start PostgreSQL: " << postgres().error();
  std::string url = postgres().fresh_database();
  ASSERT_FALSE(url.empty()) << postgres().error();
  for (size_t n : {0u, 1u, 9u}) {
    auto s = ads::open_store(url, n);
    ASSERT_TRUE(s.ok()) << s.error().message;
    auto* pg = dynamic_cast<ads::PostgresStore*>(s->get());
    ASSERT_NE(pg, nullptr);
    EXPECT_EQ(pg->max_connections(), n == 0 ? ads::PostgresStore::kConnections : n);
  }
}

// The PostgreSQL store keeps a few connections: a caller whose transaction
// waits on a lock (here another server's admission lock for the same user)
// holds up only itself, and the pool never opens more than it may.
TEST(PostgresStorePool, ACallerWaitingOnALockDoesNotHoldUpTheOthers) {
  ASSERT_TRUE(postgres().ok()) << "cannot start PostgreSQL: " << postgres().error();
  std::string url = postgres().fresh_database();
  ASSERT_FALSE(url.empty()) << postgres().error();
  auto opened = ads::PostgresStore::open(url, 2);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& store = *opened.value();
  auto* pg = dynamic_cast<ads::PostgresStore*>(&store);
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ(pg->connections(), 1u);  // one opened by open() to check the URL
  ads::Deployment d;
  d.id = "01aaaaaaaaaaaaaaaaaaaaaaaa";
  d.name = "lab";
  d.source = "/srv/lab";
  d.owner = "ann";
  ASSERT_TRUE(store.create(d).ok());

  pqxx::connection other(url);  // "another server", holding ann's admission lock
  pqxx::work hold(other);
  hold.exec("SELECT pg_advisory_xact_lock(4242003, hashtext('ann'))");
  ads::Job j;
  j.id = "01jjjjjjjjjjjjjjjjjjjjjjj1";
  j.deployment_id = d.id;
  j.kind = "start";
  auto admitted = std::async(std::launch::async, [&] { return store.admit_job(j, {"ann", 5}); });
  // wait until the admission is queued behind that lock in PostgreSQL
  pqxx::connection watch(url);
  int waiting = 0;
  for (int i = 0; i < 600 && waiting == 0; ++i) {
    pqxx::work w(watch);
    waiting = w.exec1("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[0].as<int>();
    w.commit();
    if (waiting == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(waiting, 1);
  // meanwhile the store answers others, on its second connection (one
  // connection behind a mutex would wait here until the lock is released)
  auto got = std::async(std::launch::async, [&] { return store.get(d.id); });
  bool answered = got.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  EXPECT_TRUE(answered) << "a read waited for another caller's lock";
  EXPECT_EQ(admitted.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  hold.commit();  // the lock goes with the transaction
  if (answered) {
    EXPECT_TRUE(got.get().ok());
  }
  auto a = admitted.get();
  EXPECT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(pg->connections(), 2u);

  // many callers at once share the two connections
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  ts.reserve(8);
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 20; ++i)
        if (!store.get(d.id).ok()) ++failures;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(pg->connections(), 2u);
}

TEST(PostgresStoreOpen, ClearErrorsForNoServerAndForANewerSchema) {
  int port = ads::test::free_loopback_port();  // nothing listens there
  ASSERT_NE(port, 0);
  auto none = ads::open_store("postgresql://ads@127.0.0.1:" + std::to_string(port) + "/ads");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "unavailable");
  EXPECT_EQ(none.error().field, "store");
  EXPECT_NE(none.error().message.find("cannot connect to PostgreSQL"), std::string::npos) << none.error().message;

  ASSERT_TRUE(postgres().ok()) << "cannot start PostgreSQL: " << postgres().error();
  std::string url = postgres().fresh_database();
  ASSERT_FALSE(url.empty()) << postgres().error();
  ASSERT_TRUE(ads::open_store(url).ok());
  {
    pqxx::connection c(url);
    pqxx::work w(c);
    w.exec("INSERT INTO schema_version (version) VALUES (99)");
    w.commit();
  }
  auto newer = ads::open_store(url);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.error().code, "invalid");
  EXPECT_EQ(newer.error().field, "store");
  EXPECT_NE(newer.error().message.find("schema version 99"), std::string::npos) << newer.error().message;
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ads::test::kBackends, ads::test::backend_name);

}  // namespace
