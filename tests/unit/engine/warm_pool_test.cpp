// The warm keeper (engine/warm_pool.cpp) on both stores, against a provider
// kept in memory (machines with labels and a status; create and destroy can
// be made to fail): the pool filled to its count and no further, what a
// crash leaves removed or kept, warm machines of another agent replaced,
// stopped or vanished ones replaced, unlisted ones removed after warm_stale,
// everything removed once warm machines are turned off, and a removal that
// fails queued for clean-up. The claim itself is tested on real LXD
// (tests/integration/warm_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "engine/engine.h"
#include "support/engine_wait.h"
#include "support/store_backends.h"

namespace {
using namespace std::chrono_literals;

struct Platform {
  std::mutex mu;
  std::map<std::string, ads::Machine> machines;
  std::map<std::string, std::string> os_of;
  bool fail_create = false;
  bool fail_destroy = false;
  int creates = 0;
  int starts = 0;
  // run (outside the lock) once a create has made its machine, and as a start begins
  std::function<void(const std::string&)> after_create, on_start;
  std::set<std::string> names() {
    std::lock_guard<std::mutex> lk(mu);
    std::set<std::string> out;
    for (auto& [n, m] : machines) out.insert(n);
    return out;
  }
};

class MemoryProvider : public ads::Provider {
 public:
  explicit MemoryProvider(std::shared_ptr<Platform> p) : p_(std::move(p)) {}
  std::string kind() const override { return "mem"; }
  bool can_claim() const override { return true; }
  ads::Status create(const ads::MachineSpec& spec, const ads::ProgressFn&) override {
    std::unique_lock<std::mutex> lk(p_->mu);
    ++p_->creates;
    if (p_->fail_create) return ads::Error::make("unavailable", "create refused (test)");
    if (p_->machines.count(spec.name)) return ads::Error::make("conflict", "exists");
    EXPECT_TRUE(spec.warm);
    for (auto& f : spec.files) EXPECT_FALSE(f.path.find("agent.json") != std::string::npos) << "a secret in a warm one";
    p_->machines[spec.name] = ads::Machine{spec.name, "Stopped", "", spec.labels, ""};
    lk.unlock();
    if (p_->after_create) p_->after_create(spec.name);
    return ads::Status::Ok();
  }
  ads::Status start(const std::string& name) override {
    if (p_->on_start) p_->on_start(name);
    {
      std::lock_guard<std::mutex> lk(p_->mu);
      ++p_->starts;
    }
    return set_status(name, "Running");
  }
  ads::Status stop(const std::string& name) override { return set_status(name, "Stopped"); }
  ads::Status destroy(const std::string& name) override {
    std::lock_guard<std::mutex> lk(p_->mu);
    if (p_->fail_destroy) return ads::Error::make("unavailable", "destroy refused (test)");
    p_->machines.erase(name);
    return ads::Status::Ok();
  }
  ads::Result<std::string> wait_address(const std::string& name, std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lk(p_->mu);
    auto it = p_->machines.find(name);
    if (it == p_->machines.end()) return ads::Error::make("not_found", "no machine " + name);
    it->second.address = "10.1.0." + std::to_string(p_->machines.size() + 1);
    return it->second.address;
  }
  ads::Result<ads::Machine> inspect(const std::string& name) override {
    std::lock_guard<std::mutex> lk(p_->mu);
    auto it = p_->machines.find(name);
    if (it == p_->machines.end()) return ads::Error::make("not_found", "no machine " + name);
    return it->second;
  }
  ads::Result<std::vector<ads::Machine>> list() override {
    std::lock_guard<std::mutex> lk(p_->mu);
    std::vector<ads::Machine> out;
    for (auto& [n, m] : p_->machines) out.push_back(m);
    return out;
  }
  ads::Result<std::vector<ads::ImageInfo>> images() override { return std::vector<ads::ImageInfo>{}; }

 private:
  ads::Status set_status(const std::string& name, const std::string& s) {
    std::lock_guard<std::mutex> lk(p_->mu);
    auto it = p_->machines.find(name);
    if (it == p_->machines.end()) return ads::Error::make("not_found", "no machine " + name);
    it->second.status = s;
    return ads::Status::Ok();
  }
  std::shared_ptr<Platform> p_;
};

class WarmPoolTest : public ads::test::BackendTest {
 protected:
  std::unique_ptr<ads::Engine> engine(ads::Store& store, std::map<std::string, int> warm,
                                      std::chrono::milliseconds stale = 300s, const std::string& server = "local") {
    std::map<std::string, std::unique_ptr<ads::Provider>> providers;
    providers["mem"] = std::make_unique<MemoryProvider>(platform);
    auto opts = ads::test::engine_options(tmp.path);
    opts.default_provider = "mem";
    opts.server_id = server;
    opts.warm = std::move(warm);
    opts.warm_interval = 3600s;  // the pass at start, then only the test's own passes
    opts.warm_stale = stale;
    return std::make_unique<ads::Engine>(store, std::move(providers), opts);
  }
  // ready warm machines the store lists, by name -> state
  static std::map<std::string, std::string> rows(ads::Store& s) {
    std::map<std::string, std::string> out;
    auto w = s.warm_machines();
    EXPECT_TRUE(w.ok());
    if (w.ok())
      for (auto& m : *w) out[m.name] = m.state;
    return out;
  }
  // `n` warm machines in the store, all ready (not one the engine's stop
  // would cut off half-made)
  bool all_ready(size_t n) {
    auto r = rows(*store);
    return r.size() == n && std::all_of(r.begin(), r.end(), [](const auto& x) { return x.second == "ready"; });
  }
  // Waits (at most 30 s) for `pred`: the keeper's first pass runs on its own thread.
  template <typename F>
  static bool eventually(F pred) {
    for (int i = 0; i < 1500; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return pred();
  }
  static ads::WarmMachine row(const std::string& name, const std::string& state, const std::string& agent,
                              const std::string& maker, int64_t updated_ms) {
    ads::WarmMachine w;
    w.name = name;
    w.provider = "mem";
    w.os_key = "debian-12";
    w.state = state;
    w.agent_sha256 = agent;
    w.maker = maker;
    w.created_ms = w.updated_ms = updated_ms;
    return w;
  }
  std::string our_agent() {
    // the keeper's agent: that of a machine it made
    auto w = store->warm_machines();
    return w.ok() && !w->empty() ? w->front().agent_sha256 : "";
  }
  static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void SetUp() override {
    BackendTest::SetUp();
    store = open();
    ASSERT_TRUE(store);
  }
  std::shared_ptr<Platform> platform = std::make_shared<Platform>();
  std::unique_ptr<ads::Store> store;
};

TEST_P(WarmPoolTest, ThePoolIsFilledToItsCountRunningWithTheWarmLabelAndNoFurther) {
  auto e = engine(*store, {{"debian-12", 3}});
  ASSERT_TRUE(e->start().ok());
  ASSERT_TRUE(eventually([&] { return all_ready(3); })) << rows(*store).size();
  e->warm_pass();  // full: nothing more
  e->stop();
  auto r = rows(*store);
  ASSERT_EQ(r.size(), 3u);
  for (auto& [name, state] : r) {
    EXPECT_EQ(state, "ready") << name;
    auto m = platform->machines.at(name);
    EXPECT_EQ(m.status, "Running");
    EXPECT_EQ(m.labels.at(ads::kWarmLabel), "debian-12");
    EXPECT_EQ(m.labels.count("deployment"), 0u);
    EXPECT_EQ(name.rfind("ads-w-", 0), 0u) << name;
  }
  EXPECT_EQ(platform->names().size(), 3u);
  EXPECT_EQ(platform->creates, 3);
  auto w = e->warm_machines();
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->size(), 3u);
}

// What a crash of this server left: its half-made one (and the machine)
// removed at once, its ready one kept; another server's half-made one kept
// and counted until it is older than warm_stale.
TEST_P(WarmPoolTest, ACrashLeavesHalfMadeOnesRemovedAndReadyOnesKept) {
  {
    auto e = engine(*store, {{"debian-12", 1}});
    ASSERT_TRUE(e->start().ok());
    ASSERT_TRUE(eventually([&] {
      auto r = rows(*store);
      return r.size() == 1 && r.begin()->second == "ready";
    }));
    e->stop();
  }
  const std::string agent = our_agent();
  const std::string ready = rows(*store).begin()->first;
  // a half-made one of this server ("local") and its machine, left by a kill -9
  ASSERT_TRUE(store->add_warm(row("ads-w-half", "creating", agent, "local", now_ms()), 10).ok());
  platform->machines["ads-w-half"] = ads::Machine{"ads-w-half", "Stopped", "", {{ads::kWarmLabel, "debian-12"}}, ""};
  // one another server is making right now
  ASSERT_TRUE(store->add_warm(row("ads-w-other", "creating", agent, "server-b", now_ms()), 10).ok());
  auto e = engine(*store, {{"debian-12", 2}});
  ASSERT_TRUE(e->start().ok());
  ASSERT_TRUE(eventually([&] { return !rows(*store).count("ads-w-half"); }));
  e->warm_pass();
  e->stop();
  auto r = rows(*store);
  // the ready one kept, the other server's counted: nothing made (2 asked for)
  EXPECT_EQ(r, (std::map<std::string, std::string>{{ready, "ready"}, {"ads-w-other", "creating"}}));
  EXPECT_FALSE(platform->machines.count("ads-w-half"));
  EXPECT_EQ(platform->creates, 1);

  // once older than warm_stale, the other server's is taken for a leftover: removed and replaced
  auto late = engine(*store, {{"debian-12", 2}}, 0ms);
  ASSERT_TRUE(late->start().ok());
  ASSERT_TRUE(eventually([&] {
    auto now = rows(*store);
    return !now.count("ads-w-other") && now.size() == 2;
  }));
  late->stop();
  EXPECT_EQ(rows(*store).count(ready), 1u);
}

// Ready ones that can no longer serve are removed and replaced: another
// agent's, a stopped one, one whose machine is gone, one over the count.
TEST_P(WarmPoolTest, WarmMachinesThatCannotServeAreReplaced) {
  const int64_t t = now_ms();
  // made by this server before an upgrade (another agent)
  ASSERT_TRUE(store->add_warm(row("ads-w-oldagent", "creating", "sha-of-another-agent", "local", t), 10).ok());
  ASSERT_TRUE(store->set_warm_ready("ads-w-oldagent", "10.9.0.2", t).ok());
  platform->machines["ads-w-oldagent"] =
      ads::Machine{"ads-w-oldagent", "Running", "10.9.0.2", {{ads::kWarmLabel, "debian-12"}}, ""};
  // A server started on the store: `gone` is removed (record and machine)
  // and one ready machine of debian-12 takes its place.
  auto replaced = [&](const std::string& gone) {
    auto e = engine(*store, {{"debian-12", 1}});
    EXPECT_TRUE(e->start().ok());
    EXPECT_TRUE(eventually([&] {
      auto r = rows(*store);
      return r.size() == 1 && !r.count(gone) && r.begin()->second == "ready";
    })) << gone
        << " was not replaced";
    e->stop();
    EXPECT_FALSE(platform->machines.count(gone)) << gone;
    return rows(*store).empty() ? std::string() : rows(*store).begin()->first;
  };
  const std::string first = replaced("ads-w-oldagent");
  ASSERT_FALSE(first.empty());
  // stopped (a host reboot): removed and replaced
  platform->machines[first].status = "Stopped";
  const std::string second = replaced(first);
  ASSERT_FALSE(second.empty());
  // vanished: forgotten and replaced
  platform->machines.erase(second);
  const std::string moved = replaced(second);
  ASSERT_FALSE(moved.empty());
  // another address (a host restart gave it another lease): removed and replaced
  platform->machines[moved].address = "10.99.0.99";
  const std::string third = replaced(moved);
  ASSERT_FALSE(third.empty());
  // the count lowered from 1 to 0 for this key (another key asked for): removed
  {
    auto e = engine(*store, {{"debian-12-build", 1}});
    ASSERT_TRUE(e->start().ok());
    ASSERT_TRUE(eventually([&] {
      auto w = store->warm_machines();
      return w.ok() && w->size() == 1 && w->front().os_key == "debian-12-build" && w->front().state == "ready";
    }));
    e->stop();
  }
  EXPECT_FALSE(platform->machines.count(third));
  EXPECT_EQ(platform->names().size(), 1u);
}

// Another server's ready machines (servers sharing a store): its agent and
// its settings are its own business until its record is older than
// warm_stale; a vanished machine is anybody's to forget.
TEST_P(WarmPoolTest, AnotherServersReadyOnesAreJudgedOnlyOnceStale) {
  const int64_t t = now_ms();
  for (const char* n : {"ads-w-b1", "ads-w-b2"}) {
    ASSERT_TRUE(store->add_warm(row(n, "creating", "sha-of-server-b", "server-b", t), 10).ok());
    ASSERT_TRUE(store->set_warm_ready(n, std::string("10.9.0.") + (n[7] == '1' ? "1" : "2"), t).ok());
  }
  platform->machines["ads-w-b1"] =
      ads::Machine{"ads-w-b1", "Running", "10.9.0.1", {{ads::kWarmLabel, "debian-12"}}, ""};
  // ads-w-b2's machine is gone
  {
    auto e = engine(*store, {{"debian-12-build", 1}}, 3600s);  // another key, another agent
    ASSERT_TRUE(e->start().ok());
    ASSERT_TRUE(eventually([&] { return all_ready(2); }));  // b2 forgotten, one of its own made
    e->warm_pass();
    e->stop();
  }
  auto r = rows(*store);
  EXPECT_TRUE(r.count("ads-w-b1")) << "another server's fresh machine was removed";
  EXPECT_FALSE(r.count("ads-w-b2"));
  EXPECT_TRUE(platform->machines.count("ads-w-b1"));
  // once stale (warm_stale 0 here), this server's rules apply to it too
  auto e = engine(*store, {{"debian-12-build", 1}}, 0ms);
  ASSERT_TRUE(e->start().ok());
  ASSERT_TRUE(eventually([&] { return !rows(*store).count("ads-w-b1"); }));
  e->stop();
  EXPECT_FALSE(platform->machines.count("ads-w-b1"));
}

TEST_P(WarmPoolTest, TurnedOffTheyAreAllRemoved) {
  {
    auto e = engine(*store, {{"debian-12", 2}});
    ASSERT_TRUE(e->start().ok());
    ASSERT_TRUE(eventually([&] { return all_ready(2); }));
    e->stop();
  }
  auto e = engine(*store, {});
  ASSERT_TRUE(e->start().ok());
  ASSERT_TRUE(eventually([&] { return rows(*store).empty() && platform->names().empty(); }))
      << rows(*store).size() << " records, " << platform->names().size() << " machines";
  e->stop();
}

// A machine labelled warm that no record lists (a crash between a claim and
// the deployment's record) is removed once found so for longer than
// warm_stale, not at the first sight (a claim under way looks the same).
TEST_P(WarmPoolTest, AnUnlistedWarmMachineIsRemovedOnlyAfterWarmStale) {
  platform->machines["ads-w-lost"] =
      ads::Machine{"ads-w-lost", "Running", "10.9.0.9", {{ads::kWarmLabel, "debian-12"}}, ""};
  {
    auto e = engine(*store, {{"debian-12", 1}}, 3600s);
    ASSERT_TRUE(e->start().ok());
    ASSERT_TRUE(eventually([&] { return all_ready(1); }));
    e->warm_pass();
    e->warm_pass();
    e->stop();
  }
  EXPECT_TRUE(platform->machines.count("ads-w-lost")) << "removed at first sight";
  auto e = engine(*store, {{"debian-12", 1}}, 0ms);
  ASSERT_TRUE(e->start().ok());
  e->warm_pass();  // seen (by this pass or the one at start) ...
  std::this_thread::sleep_for(5ms);
  e->warm_pass();  // ... and seen again later than warm_stale (0) after
  e->stop();
  EXPECT_FALSE(platform->machines.count("ads-w-lost"));
  EXPECT_EQ(platform->names().size(), 1u);
}

// Making one fails: its record is forgotten (nothing counted twice), and a
// warm machine that cannot be removed goes into the clean-up queue.
TEST_P(WarmPoolTest, FailuresForgetTheRecordAndQueueWhatCannotBeRemoved) {
  platform->fail_create = true;
  {
    auto e = engine(*store, {{"debian-12", 2}});
    ASSERT_TRUE(e->start().ok());
    ASSERT_TRUE(eventually([&] {
      std::lock_guard<std::mutex> lk(platform->mu);
      return platform->creates >= 1;
    }));
    e->stop();
  }
  EXPECT_TRUE(rows(*store).empty());
  EXPECT_TRUE(platform->names().empty());
  platform->fail_create = false;
  {
    auto e = engine(*store, {{"debian-12", 1}});
    ASSERT_TRUE(e->start().ok());
    ASSERT_TRUE(eventually([&] { return all_ready(1); }));
    e->stop();
  }
  const std::string made = rows(*store).begin()->first;
  platform->fail_destroy = true;
  auto e = engine(*store, {});
  ASSERT_TRUE(e->start().ok());
  ASSERT_TRUE(eventually([&] {
    auto q = store->cleanups();
    return q.ok() && q->size() == 1;
  }));
  e->stop();
  auto q = store->cleanups();
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 1u);
  EXPECT_EQ(q->front().machine, made);
  EXPECT_EQ(q->front().provider, "mem");
  EXPECT_TRUE(rows(*store).empty());
}

// A machine being made is noted in the store between its steps, so that a
// create or a start slower than warm_stale does not look left half-made to
// another server; and a maker whose record another server removed meanwhile
// (it took it for left half-made) stops there: no start, no machine left.
TEST_P(WarmPoolTest, AMachineBeingMadeIsNotedAliveBetweenItsStepsAndStopsOnceItsRecordIsGone) {
  int64_t created_ms = -1, updated_ms = -1;
  platform->after_create = [&](const std::string&) {
    std::this_thread::sleep_for(5ms);  // (the clock moves on before the next step's note)
  };
  platform->on_start = [&](const std::string& name) {
    auto w = store->warm_machines();
    ASSERT_TRUE(w.ok());
    for (auto& m : *w)
      if (m.name == name) created_ms = m.created_ms, updated_ms = m.updated_ms;
  };
  {
    auto e = engine(*store, {{"debian-12", 1}});
    ASSERT_TRUE(e->start().ok());
    ASSERT_TRUE(eventually([&] { return all_ready(1); }));
    e->stop();
  }
  ASSERT_GE(created_ms, 0) << "the start did not find the record";
  EXPECT_GE(updated_ms, created_ms + 5) << "not noted after the create";

  // the next one's record is removed by "another server" while it is created
  ASSERT_TRUE(store->remove_warm(rows(*store).begin()->first, "ready").ok());
  platform->machines.clear();
  platform->on_start = nullptr;
  platform->starts = 0;
  std::string removed;
  platform->after_create = [&](const std::string& name) {
    auto r = store->remove_warm(name, "creating");
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(*r);
    removed = name;
  };
  auto e = engine(*store, {{"debian-12", 1}});
  e->warm_pass();  // (no start(): this pass alone, on this thread)
  EXPECT_FALSE(removed.empty());
  EXPECT_EQ(platform->starts, 0);
  EXPECT_TRUE(platform->names().empty());
  EXPECT_TRUE(rows(*store).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, WarmPoolTest, ads::test::kBackends, ads::test::backend_name);

}  // namespace
