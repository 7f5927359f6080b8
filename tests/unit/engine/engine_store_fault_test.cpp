// Issue 16.2: a store outage during a deploy no longer strands the job. The
// store goes away while the deploy is in a step, on both stores, for less
// than the job's lease (the 12 s of a 30 s lease) and for longer
// (60 s of 30 s). Lease and outage are settings here; the long ones are
// shortened with the same ratios (SQLite's outage must outlast its 5 s busy
// timeout to be an outage at all, hence its longer figures):
//   SQLite: 12 s of a 30 s lease (the figures), and 8 s of a 4 s lease;
//   PostgreSQL: 2 s of a 5 s lease, and 6 s of a 3 s lease.
// Shorter than the lease: the job's store writes are retried and the job
// goes on as if nothing happened. Longer: the job is handed back without
// touching its machine, its lease lapses (it is renewed only for jobs a
// worker is running), and it is taken over: deployed again from the start,
// or rolled back. Either way every job ends, the deployment settles, no
// machine is left behind and the reconciler (`ads doctor`) finds nothing.
// Before the fix the job stayed `running` with its lease renewed forever and
// the deployment stayed in its step with its machine removed.
//
// Real engine, real stores (SQLite locked by another connection, as
// another process would; this test's own PostgreSQL stopped and started),
// the real openvz provider over SSH to the test host (its vzctl stand-in;
// no OpenVZ kernel, so the agent never answers and every deploy ends failed
// at starting_agent, which is all these tests need). Each case takes about a
// minute on a loaded 2-core machine (PostgreSQL in provisioning passed too
// and was left out to keep the suite shorter).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <thread>

#include "engine/engine.h"
#include "support/build_paths.h"
#include "support/engine_wait.h"
#include "support/openvz_engine.h"
#include "support/postgres.h"

namespace {
using namespace std::chrono_literals;

struct Case {
  std::string backend;  // "sqlite" | "postgres"
  std::string step;     // the deployment's step when the store goes away
  bool longer;          // longer than the lease
};

std::string case_name(const ::testing::TestParamInfo<Case>& i) {
  return i.param.backend + "_" + i.param.step + (i.param.longer ? "_LongerThanTheLease" : "_ShorterThanTheLease");
}

class EngineStoreFault : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    ASSERT_EQ(host.error(), "") << "test host";
    host.add_template("debian-12.0-x86_64-minimal");
    if (GetParam().backend == "sqlite") {
      url = "sqlite://" + (tmp.path / "ads.db").string();
    } else {
      pg = std::make_unique<ads::test::PostgresServer>();
      ASSERT_TRUE(pg->ok()) << pg->error();
      url = pg->fresh_database();
      ASSERT_FALSE(url.empty()) << pg->error();
    }
    auto s = ads::open_store(url);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(s.value());
    auto w = ads::open_store(url);  // the test's own connection, to watch
    ASSERT_TRUE(w.ok()) << w.error().message;
    watch = std::move(w.value());
  }

  std::chrono::milliseconds lease() const {
    bool sqlite = GetParam().backend == "sqlite";
    if (GetParam().longer) return sqlite ? 4000ms : 3000ms;
    return sqlite ? 30000ms : 5000ms;
  }
  std::chrono::milliseconds outage_length() const {
    if (GetParam().backend == "sqlite") return GetParam().longer ? 8000ms : 12000ms;
    return GetParam().longer ? 6000ms : 2000ms;
  }

  std::unique_ptr<ads::Engine> engine() {
    auto o = ads::test::openvz_engine_options(tmp.path);
    o.workers = 2;
    o.address_timeout = 20s;
    o.agent_timeout = 3s;  // nothing will answer; the step lasts this long
    o.provider_attempts = 1;
    o.lease = lease();
    o.poll = 200ms;
    o.store_retry_first = 100ms;
    o.store_retry_max = 1000ms;
    auto e = std::make_unique<ads::Engine>(*store, ads::test::openvz_providers(host, ",\"start_command\":\"true\""), o);
    auto st = e->start();
    EXPECT_TRUE(st.ok()) << st.error().message;
    return e;
  }

  // The store is away for outage_length().
  void outage() {
    if (GetParam().backend == "sqlite") {
      sqlite3* other = nullptr;
      ASSERT_EQ(sqlite3_open((tmp.path / "ads.db").c_str(), &other), SQLITE_OK);
      sqlite3_busy_timeout(other,
                           10000);  // the engine may be writing right now: wait for it like another process would
      ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE;", nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(other);
      std::this_thread::sleep_for(outage_length());
      sqlite3_exec(other, "ROLLBACK;", nullptr, nullptr, nullptr);
      sqlite3_close(other);
    } else {
      ASSERT_TRUE(pg->stop());
      std::this_thread::sleep_for(outage_length());
      ASSERT_TRUE(pg->start_again()) << pg->error();
    }
  }

  ads::test::SshTestHost host;
  ads::test::TempDir tmp;
  std::unique_ptr<ads::test::PostgresServer> pg;
  std::string url;
  std::unique_ptr<ads::Store> store, watch;
};

TEST_P(EngineStoreFault, TheJobEndsTheDeploymentSettlesAndNothingIsLeftBehind) {
  auto e = engine();
  ads::DeployRequest r;
  r.source = std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site";
  r.owner = "tester";
  r.admin = true;
  auto submitted = e->submit(r);
  ASSERT_TRUE(submitted.ok()) << submitted.error().message;
  std::string id = submitted->id;

  // wait (bounded) for the step, then take the store away
  bool reached = false;
  for (int i = 0; i < 1200 && !reached; ++i) {
    auto d = watch->get(id);
    ASSERT_TRUE(d.ok()) << d.error().message;
    reached = ads::to_string(d->state) == GetParam().step;
    if (ads::is_settled(d->state)) break;
    if (!reached) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(reached) << "the deploy never reached " << GetParam().step << "\n" << ads::test::log_of(*watch, id);
  outage();

  // every job of the deployment ends (bounded wait; before the fix it never did)
  auto d = ads::test::settle(*watch, id, 1500);
  auto jobs = watch->jobs_of(id);
  ASSERT_TRUE(jobs.ok()) << jobs.error().message;
  for (auto& j : *jobs)
    EXPECT_TRUE(j.state == "failed" || j.state == "succeeded")
        << "job " << j.id << " is still " << j.state << " (" << j.step << ")\n"
        << ads::test::log_of(*watch, id);
  EXPECT_EQ(d.state, ads::State::kFailed) << ads::test::log_of(*watch, id);
  EXPECT_EQ(d.machine, "") << ads::test::log_of(*watch, id);
  std::string log = ads::test::log_of(*watch, id);
  if (GetParam().longer) {
    // handed back and taken over: deployed again from the start (then failed
    // at starting_agent, the agent never answers), or rolled back
    EXPECT_TRUE(log.find("taken over by server") != std::string::npos) << log;
  } else {
    // as if nothing had happened: the deploy went on and failed where it always does
    EXPECT_EQ(d.failed_step, "starting_agent") << d.error << "\n" << log;
    EXPECT_EQ(log.find("taken over"), std::string::npos) << log;
  }
  // no machine left behind, no lease held, nothing for `ads doctor`
  EXPECT_TRUE(std::filesystem::is_empty(host.state_dir() / "ct")) << log;
  auto drift = e->reconcile();
  ASSERT_TRUE(drift.ok()) << drift.error().message;
  for (auto& x : *drift) ADD_FAILURE() << "doctor: " << x.provider << " " << x.machine << " " << x.problem;
  e->stop();
}

INSTANTIATE_TEST_SUITE_P(Outages, EngineStoreFault,
                         ::testing::Values(Case{"sqlite", "provisioning", false}, Case{"sqlite", "provisioning", true},
                                           Case{"postgres", "starting_agent", false},
                                           Case{"postgres", "starting_agent", true}),
                         case_name);

}  // namespace
