// Warm machines (EngineOptions::warm): the keeper makes and starts machines
// ahead, with no lab and no secret, so that a deploy gives one its identity
// (Provider::claim) instead of waiting for a create and a start.
// Rules:
// - each is recorded in the store ("creating") before it exists, in one
//   transaction with the count of its OS key (servers sharing a store never
//   make more than asked between them), and marked ready once it runs with
//   an address;
// - a deploy claims one in one store statement (two deploys never get the
//   same one) and records it as its machine before the provider gives it
//   its identity: from then on it is the deployment's machine like any other
//   (removed when the deploy fails or is rolled back);
// - a crash leaves: a "creating" record (its maker's next start removes it
//   and its machine; another server does once it is older than warm_stale),
//   a ready one (claimed later as it is, once the keeper has checked that
//   its machine runs), and at worst a machine labelled warm that no record
//   lists (a crash between a claim and the deployment's record): the keeper
//   removes it once its passes have found it so for longer than warm_stale;
// - a warm machine carries the agent of the server that made it; a deploy
//   only takes one with its own agent, and the keeper replaces the others;
// - the keeper yields to jobs: while this server runs any, it waits (at most
//   warm_interval) before it makes machines.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "engine/engine.h"
#include "engine/internal.h"

namespace ads {
using namespace engine_detail;

Result<bool> Engine::take_warm(Deployment& t, const MachineSpec& ms, const BuildHooks& h, Provider* p) {
  auto want = opts_.warm.find(ms.os_key);
  if (want == opts_.warm.end() || want->second <= 0 || t.provider != opts_.default_provider || !p->can_claim() ||
      !p->address_pool().empty())
    return false;
  Result<std::optional<WarmMachine>> got = Error::make("internal", "not claimed");
  auto st = store_write(t.id, "the claim of a warm machine", [&]() -> Status {
    got = store_.claim_warm(t.provider, ms.os_key, agent_sha256_);
    return got ? Status::Ok() : Status(got.error());
  });
  if (!st && st.error().code == "interrupted") return st.error();
  {
    std::lock_guard<std::mutex> lk(mu_);
    warm_wake_ = true;  // one taken (or none there): the keeper refills now
  }
  warm_cv_.notify_all();
  if (!st) {
    log(t, "ads", "cannot claim a warm machine (" + st.error().message + "): making a machine");
    return false;
  }
  if (!*got) {
    log(t, "ads", "no warm machine of " + ms.os_key + " is ready: making a machine");
    return false;
  }
  const WarmMachine w = **got;
  t.machine = w.name;
  if (auto r = h.record_machine(t); !r) {
    // nobody's machine now: the keeper removes it (labelled warm, listed nowhere)
    t.machine.clear();
    return r.error();
  }
  MachineSpec spec = ms;
  spec.name = w.name;
  auto progress = [&](const std::string& s) { log(t, "ads", s); };
  auto c = with_retry(t, "claiming warm machine " + w.name, [&] { return p->claim(w.name, spec, progress); });
  // its address as recorded when it was made (its DHCP lease is renewed
  // while it runs); asked of the provider only if none was recorded
  Result<std::string> addr = !c                  ? Result<std::string>(c.error())
                             : w.address.empty() ? p->wait_address(w.name, opts_.address_timeout)
                                                 : Result<std::string>(w.address);
  if (!addr) {
    log(t, "ads", "warm machine " + w.name + " could not be claimed (" + addr.error().message + "): removing it");
    if (!remove_machine(t)) queue_cleanup(t, "the claim of a warm machine failed");
    t.machine.clear();
    if (stopping_) return Error::make("interrupted", "interrupted");
    return false;
  }
  t.address = *addr;
  log(t, "ads",
      "warm machine " + w.name + " claimed (made " + std::to_string((now_ms() - w.created_ms) / 1000) +
          " s ago); machine address " + t.address);
  return true;
}

void Engine::remove_warm_machine(Provider* p, const std::string& name, const std::string& why) {
  spdlog::info("warm machine {}: removing it ({})", name, why);
  Status st = p->destroy(name);
  if (st) return;
  // the clean-up queue tries again (an entry of no deployment)
  Cleanup c;
  c.provider = opts_.default_provider;
  c.machine = name;
  c.attempts = 1;
  c.created_ms = now_ms();
  c.next_ms = c.created_ms + opts_.cleanup_interval.count();
  c.last_error = st.error().message;
  auto q = store_.put_cleanup(c);
  spdlog::warn(
      "warm machine {}: cannot remove it ({}); {}", name, st.error().message,
      q ? "queued for clean-up" : "nor queue it for clean-up (" + q.error().message + "); ads doctor reports it");
}

bool Engine::make_warm(Provider* p, const std::string& os_key, int max) {
  WarmMachine w;
  w.name = "ads-w-" + new_id();
  w.provider = opts_.default_provider;
  w.os_key = os_key;
  w.state = "creating";
  w.agent_sha256 = agent_sha256_;
  w.maker = opts_.server_id;
  w.created_ms = w.updated_ms = now_ms();
  // recorded before it exists: no warm machine without a record
  if (auto st = store_.add_warm(w, max); !st) {
    if (st.error().code != "exhausted" && st.error().message != warm_last_error_) {
      warm_last_error_ = st.error().message;
      spdlog::warn("warm machines: cannot record one of {}: {}", os_key, st.error().message);
    }
    return false;
  }
  MachineSpec ms;
  ms.name = w.name;
  ms.os_key = os_key;
  ms.labels = {{kWarmLabel, os_key}};
  ms.warm = true;
  // the agent (not placed where the image carries it); never its config or a secret
  ms.files = {{"/usr/local/bin/ads-agent", agent_bytes_, 0755, agent_sha256_}};
  Status made = p->create(ms, nullptr);
  const bool exists = made || made.error().code != "conflict";  // a conflict: a machine of that name not ours
  if (!made && made.error().code == "unsupported") {
    // (the image: retried after a while, not at every claim's wake-up)
    warm_unsupported_until_[os_key] = now_ms() + 10 * std::max<int64_t>(opts_.warm_interval.count(), 1000);
  }
  // between the steps: still being made (a create or a start slower than
  // warm_stale is not taken by another server for one left half-made), and
  // not removed meanwhile by one that did
  auto still_ours = [&]() -> Status {
    if (stopping_) return Error::make("interrupted", "the server is stopping");
    auto t = store_.touch_warm(w.name, now_ms());
    return t || t.error().code != "not_found" ? Status::Ok() : t;  // (a store error: the ready mark tells)
  };
  if (made) made = still_ours();
  if (made) made = p->start(w.name);
  if (made) made = still_ours();
  Result<std::string> addr = made ? p->wait_address(w.name, opts_.address_timeout) : Result<std::string>(made.error());
  if (addr) {
    auto ready = store_.set_warm_ready(w.name, *addr, now_ms());
    if (ready) {
      warm_last_error_.clear();
      spdlog::info("warm machine {} of {} ready at {}", w.name, os_key, *addr);
      return true;
    }
    addr = ready.error();
  }
  if (addr.error().message != warm_last_error_) {
    warm_last_error_ = addr.error().message;
    spdlog::warn("warm machines: cannot make one of {}: {}", os_key, addr.error().message);
  }
  (void)store_.remove_warm(w.name, "creating");  // (gone already when another server found it stale)
  if (exists) remove_warm_machine(p, w.name, "it could not be made");
  return false;
}

void Engine::warm_pass() {
  std::lock_guard<std::mutex> pass(warm_mu_);
  Provider* p = provider_for(opts_.default_provider);
  if (!p || !p->can_claim()) return;  // (the config's check refuses warm machines there)
  const std::string& kind = opts_.default_provider;
  auto rows = store_.warm_machines();
  if (!rows) {
    spdlog::warn("warm machines: cannot read the store: {}", rows.error().message);
    return;
  }
  const bool any = std::any_of(rows->begin(), rows->end(), [&](const WarmMachine& w) { return w.provider == kind; });
  if (opts_.warm.empty() && !any && warm_suspects_.empty()) return;  // turned off, and all removed
  auto machines = p->list();                                         // without it, only the store's side is checked
  std::map<std::string, Machine> present;
  if (machines)
    for (auto& m : *machines) present[m.name] = m;
  const int64_t now = now_ms();
  std::map<std::string, int> kept;  // per OS key
  std::set<std::string> listed;
  for (const auto& w : *rows) {
    if (w.provider != kind) continue;
    listed.insert(w.name);
    auto want = opts_.warm.find(w.os_key);
    std::string why;
    // what this server's settings and agent say is judged on its own
    // machines, and on another server's only once it is older than
    // warm_stale (servers sharing a store mid-upgrade, or set apart, do not
    // remove each other's pools at every pass)
    const bool ours = w.maker == opts_.server_id || now - w.updated_ms > opts_.warm_stale.count();
    if (w.state == "creating") {
      // this pass makes none of ours yet: one of ours being made was left by
      // a stopped process; another server's, once older than warm_stale
      if (w.maker == opts_.server_id) why = "left half-made by an earlier run of this server";
      else if (ours) why = "left half-made by server " + w.maker;
    } else if (machines && !present.count(w.name)) {
      why = "the provider has no such machine";
    } else if (machines && present[w.name].status != "Running") {
      why = "it is " + present[w.name].status;
    } else if (machines && present[w.name].address != w.address) {
      // (a host restart: LXD started it again, with another lease)
      why = "its address is no longer " + w.address;
    } else if (ours && (want == opts_.warm.end() || want->second <= 0)) {
      why = "no warm machines of " + w.os_key + " are asked for";
    } else if (ours && w.agent_sha256 != agent_sha256_) {
      why = "it carries another agent";
    } else if (ours && want != opts_.warm.end() && kept[w.os_key] >= want->second) {
      why = "more than asked for";
    }
    if (why.empty()) {
      ++kept[w.os_key];
      continue;
    }
    auto mine = store_.remove_warm(w.name, w.state);
    if (!mine || !*mine) continue;  // claimed or changed meanwhile: not this pass's to remove
    remove_warm_machine(p, w.name, why);
  }
  if (machines) {
    // labelled warm, listed nowhere: a crash between a claim and its record
    // (or a claim under way: its machine keeps the label until the provider
    // has given it its identity, well within warm_stale)
    std::map<std::string, int64_t> suspects;
    for (auto& m : *machines) {
      if (!m.labels.count(kWarmLabel) || listed.count(m.name)) continue;
      auto seen = warm_suspects_.find(m.name);
      const int64_t since = seen == warm_suspects_.end() ? now : seen->second;
      if (now - since <= opts_.warm_stale.count()) {
        suspects[m.name] = since;
      } else if (!named_by_a_deployment(m.name)) {
        remove_warm_machine(p, m.name, "the store lists it nowhere");
      }
    }
    warm_suspects_ = std::move(suspects);
  }
  for (const auto& [os_key, n] : opts_.warm) {
    // an image that cannot make warm machines: not tried again for a while
    // (each try is a create and a destroy)
    if (auto u = warm_unsupported_until_.find(os_key); u != warm_unsupported_until_.end() && now < u->second) continue;
    for (int i = kept[os_key]; i < n && !stopping_; ++i)
      if (!make_warm(p, os_key, n)) break;
  }
}

bool Engine::named_by_a_deployment(const std::string& machine) {
  // a crash between a claim's record and the provider's claim leaves the
  // machine of a deployment (or of a release of one) with the warm label:
  // its job's recovery or destroy removes it, not the keeper
  ListQuery q;
  q.limit = 100000;
  auto all = store_.list(q);
  if (!all) return true;  // cannot tell: keep it for the next pass
  for (const auto& d : *all) {
    if (d.machine == machine) return true;
    if (d.state == State::kDestroyed) continue;
    auto rels = store_.releases_of(d.id);
    if (!rels) return true;
    for (const auto& r : *rels)
      if (r.machine == machine) return true;
  }
  return false;
}

void Engine::warm_keeper() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    warm_wake_ = false;
    lk.unlock();
    // Jobs first: making a machine is LXD's create and start (about a
    // second of CPU on this kind of host), which would slow the deploys that
    // just took warm machines. The pass waits while this server runs jobs,
    // at most warm_interval.
    const auto yield_until = std::chrono::steady_clock::now() + opts_.warm_interval;
    while (!stopping_ && std::chrono::steady_clock::now() < yield_until) {
      {
        std::lock_guard<std::mutex> g(running_mu_);
        if (running_.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    warm_pass();
    lk.lock();
    warm_cv_.wait_for(lk, opts_.warm_interval, [&] { return stopping_.load() || warm_wake_; });
  }
}

}  // namespace ads
