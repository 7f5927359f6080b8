// Issue 16.6: a deployment that fails while its provider is down keeps its
// machine under a `failed` record. The removal goes into the clean-up queue
// (in the store: it outlives a restart of the server), is tried again until
// the provider answers, and `ads doctor` (Engine::reconcile) reports the
// failed record that still owns a machine, with "destroy" as its fix.
// Runs on both stores.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/engine.h"
#include "engine/internal.h"
#include "support/engine_wait.h"
#include "support/store_backends.h"
#include "support/switch_provider.h"

namespace {
using ads::test::SwitchProvider;
using ads::test::SwitchState;

class EngineCleanup : public ads::test::BackendTest {
 protected:
  std::unique_ptr<ads::Engine> engine(ads::Store& store, std::shared_ptr<SwitchState> s,
                                      std::chrono::milliseconds poll = std::chrono::milliseconds(0)) {
    std::map<std::string, std::unique_ptr<ads::Provider>> providers;
    providers["switch"] = std::make_unique<SwitchProvider>(std::move(s));
    auto opts = ads::test::engine_options(tmp.path);
    if (poll.count() > 0) opts.poll = poll;
    opts.default_provider = "switch";
    opts.provider_attempts = 1;
    opts.retry_backoff = std::chrono::milliseconds(1);
    opts.cleanup_interval = std::chrono::milliseconds(20);
    return std::make_unique<ads::Engine>(store, std::move(providers), opts);
  }
  // Polls `pred` (a wait, not a timing assertion: at most 30 s).
  template <typename F>
  static bool eventually(F pred) {
    for (int i = 0; i < 1500; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
  }
};

TEST_P(EngineCleanup, AMachineThatCouldNotBeRemovedIsRemovedOnceTheProviderIsBackAfterARestart) {
  auto state = std::make_shared<SwitchState>();
  // mid-way, its server gone: rolled back at the next start
  ads::Deployment d = ads::test::lab_record("01m88rqkev9cbfs1eqysk664kc", ads::State::kStarting);
  d.address = "127.0.0.1";
  state->machines.insert(d.machine);
  {
    auto store = open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->create(d).ok());
    state->set_up(false);  // LXD crashed
    auto e = engine(*store, state);
    ASSERT_TRUE(e->start().ok());
    auto got = store->get(d.id);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->state, ads::State::kFailed);
    EXPECT_EQ(got->machine, d.machine);  // still owned: it is still there
    // the janitor tries again while the provider is down, and records each try
    ASSERT_TRUE(eventually([&] {
      auto q = store->cleanups();
      return q.ok() && q->size() == 1 && q->front().attempts >= 3;
    }));
    e->stop();
    auto q = store->cleanups();
    ASSERT_TRUE(q.ok());
    ASSERT_EQ(q->size(), 1u);
    EXPECT_EQ(q->front().machine, d.machine);
    EXPECT_EQ(q->front().deployment_id, d.id);
    EXPECT_NE(q->front().last_error.find("down"), std::string::npos) << q->front().last_error;
    EXPECT_TRUE(state->has(d.machine));
  }
  // the provider is back; a new server process (a new store connection, a new engine)
  state->set_up(true);
  auto store = open();
  ASSERT_TRUE(store);
  auto e = engine(*store, state);
  // before the janitor runs, the doctor reports the failed record owning a machine
  auto drift = e->reconcile();
  ASSERT_TRUE(drift.ok()) << drift.error().message;
  ASSERT_EQ(drift->size(), 1u);
  EXPECT_EQ(drift->front().machine, d.machine);
  EXPECT_EQ(drift->front().deployment_id, d.id);
  EXPECT_EQ(drift->front().fix, "destroy");
  EXPECT_NE(drift->front().problem.find("still owns this machine"), std::string::npos) << drift->front().problem;
  EXPECT_NE(drift->front().problem.find("tried again"), std::string::npos) << drift->front().problem;
  ASSERT_TRUE(e->start().ok());
  ASSERT_TRUE(eventually([&] { return !state->has(d.machine); })) << "the queued removal was never tried again";
  ASSERT_TRUE(eventually([&] {
    auto q = store->cleanups();
    return q.ok() && q->empty();
  }));
  e->stop();
  auto got = store->get(d.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, ads::State::kFailed);
  EXPECT_EQ(got->machine, "");
  EXPECT_EQ(got->address, "");
  EXPECT_NE(ads::test::log_of(*store, d.id).find("removed machine " + d.machine + " (clean-up"), std::string::npos)
      << ads::test::log_of(*store, d.id);
  drift = e->reconcile();
  ASSERT_TRUE(drift.ok());
  EXPECT_TRUE(drift->empty()) << drift->front().problem;
}

TEST_P(EngineCleanup, AQueuedRemovalWaitsForAJobUnderWayOnTheDeployment) {
  auto state = std::make_shared<SwitchState>();
  auto store = open();
  ASSERT_TRUE(store);
  ads::Deployment d = ads::test::lab_record("01m88rqkev9cbfs1eqysk664kd", ads::State::kFailed);
  state->machines.insert(d.machine);
  ASSERT_TRUE(store->create(d).ok());
  ads::Cleanup c{d.id, "switch", d.machine, 1, 0, "earlier failure", 1};
  ASSERT_TRUE(store->put_cleanup(c).ok());
  // a job of the deployment that another server holds (its lease runs): the
  // janitor leaves the machine to it
  ads::Job j;
  j.id = "01m88rqkev9cbfs1eqysk664ke";
  j.deployment_id = d.id;
  j.kind = "destroy";
  j.state = "running";
  j.created_ms = j.updated_ms = 1;
  ASSERT_TRUE(store->create_job(j).ok());
  ASSERT_TRUE(store->claim_job("other-server", 2, int64_t(1) << 60).ok());
  // and a machine of another failed deployment, queued after it: once that
  // one is gone, the janitor has been past the first (a pass goes in order)
  ads::Deployment free = d;
  free.id = "01m88rqkev9cbfs1eqysk664kh";
  free.machine = "ads-" + free.id;
  state->machines.insert(free.machine);
  ASSERT_TRUE(store->create(free).ok());
  ASSERT_TRUE(store->put_cleanup({free.id, "switch", free.machine, 1, 0, "earlier failure", 2}).ok());
  auto e = engine(*store, state);
  ASSERT_TRUE(e->start().ok());
  ASSERT_TRUE(eventually([&] { return !state->has(free.machine); }));
  e->stop();
  EXPECT_EQ(state->destroys(), 1);
  EXPECT_TRUE(state->has(d.machine));
  auto q = store->cleanups();
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 1u);
  EXPECT_EQ(q->front().machine, d.machine);
}

TEST_P(EngineCleanup, TheQueueIsOneEntryPerMachineAndForgetsWhatIsDeleted) {
  auto store = open();
  ASSERT_TRUE(store);
  ads::Cleanup c{"01m88rqkev9cbfs1eqysk664kf", "lxd", "ads-x", 1, 10, "first", 5};
  ASSERT_TRUE(store->put_cleanup(c).ok());
  c.attempts = 2;
  c.last_error = "second \xff";  // not UTF-8: stored as valid text
  ASSERT_TRUE(store->put_cleanup(c).ok());
  ads::Cleanup other{"01m88rqkev9cbfs1eqysk664kg", "lxd", "ads-y", 1, 10, "other", 6};
  ASSERT_TRUE(store->put_cleanup(other).ok());
  auto q = store->cleanups();
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 2u);
  EXPECT_EQ(q->at(0).machine, "ads-x");
  EXPECT_EQ(q->at(0).attempts, 2);
  EXPECT_EQ(q->at(0).created_ms, 5);
  EXPECT_EQ(q->at(0).last_error.rfind("second ", 0), 0u);
  ASSERT_TRUE(store->delete_cleanup("lxd", "ads-x").ok());
  ASSERT_TRUE(store->delete_cleanup("lxd", "ads-x").ok());  // gone already: fine
  q = store->cleanups();
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 1u);
  EXPECT_EQ(q->at(0).machine, "ads-y");
}

// A job queued here wakes a worker at once, whatever else waits: the lease
// renewer waited on the workers' condition variable and took the wake-up
// meant for one, which then slept its whole poll interval (seen: a deploy
// waited up to the 1 s poll before its first step). With the poll at ten
// minutes, each destroy is picked up only if the wake-up reaches a worker.
TEST_P(EngineCleanup, AQueuedJobWakesAWorkerAtOnceNotAfterItsPollInterval) {
  auto state = std::make_shared<SwitchState>();
  auto store = open();
  ASSERT_TRUE(store);
  auto e = engine(*store, state, std::chrono::minutes(10));
  ASSERT_TRUE(e->start().ok());
  for (int i = 0; i < 6; ++i) {
    ads::Deployment d =
        ads::test::lab_record("01m88rqkev9cbfs1eqysk664m" + std::string(1, "abcdef"[i]), ads::State::kFailed);
    state->machines.insert(d.machine);
    ASSERT_TRUE(store->create(d).ok());
    auto job = e->operate(d.id, "destroy");
    ASSERT_TRUE(job.ok()) << job.error().message;
    EXPECT_TRUE(eventually([&] {
      auto got = store->get(d.id);
      return got.ok() && got->state == ads::State::kDestroyed;
    })) << "destroy "
        << i << " was not picked up (its worker waits for the 10-minute poll)";
  }
  e->stop();
}

// An Ansible controller run holds its directory (the lab's copy, the run's
// private SSH key) while it lasts; a server killed mid-run leaves it, and the
// next start removes it. A run still under way (held) is left alone, and so
// is whatever is not an Ansible run's directory or is a symlink.
TEST_P(EngineCleanup, TheDirectoriesOfAnsibleRunsAKillCutShortAreRemovedAtTheNextStart) {
  namespace fs = std::filesystem;
  const fs::path work = ads::test::engine_options(tmp.path).work_dir;
  const fs::path dead = work / "ansible-01m88rqkev9cbfs1eqysk664kd-0a1b2c3d4e5f";
  const fs::path live = work / "ansible-01m88rqkev9cbfs1eqysk664ke-0a1b2c3d4e60";
  const fs::path other = work / "01m88rqkev9cbfs1eqysk664kf";
  const fs::path outside = tmp.path / "outside";
  for (const auto& p : {dead, live, other, outside}) {
    fs::create_directories(p / "home");
    std::ofstream(p / "key") << "-----BEGIN OPENSSH PRIVATE KEY-----";
  }
  fs::create_directory_symlink(outside, work / "ansible-01m88rqkev9cbfs1eqysk664kg-0a1b2c3d4e61");

  // a process that holds `dead` the way a run does, killed with SIGKILL
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ads::engine_detail::DirHold hold(dead);
    char c = hold.held() ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    for (;;) ::pause();
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  ASSERT_EQ(c, 'y');
  {
    const ads::engine_detail::DirHold probe(dead);
    EXPECT_FALSE(probe.held());  // held by the child
    EXPECT_EQ(probe.error(), EWOULDBLOCK);
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  const ads::engine_detail::DirHold run_under_way(live);
  ASSERT_TRUE(run_under_way.held());

  auto store = open();
  ASSERT_TRUE(store);
  auto e = engine(*store, std::make_shared<SwitchState>());
  ASSERT_TRUE(e->start().ok());
  e->stop();
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live / "key"));
  EXPECT_TRUE(fs::exists(other / "key"));
  EXPECT_TRUE(fs::exists(outside / "key"));
  EXPECT_TRUE(fs::is_symlink(work / "ansible-01m88rqkev9cbfs1eqysk664kg-0a1b2c3d4e61"));
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineCleanup, ads::test::kBackends, ads::test::backend_name);

}  // namespace
