// Jobs "release" and "rollback": continuous delivery of a running lab
// (core/deployment.h Release).
// release — Rules (core/job_rules.h): queued on a running deployment, with
// {"ref": r} (absent or "": the deployment's ref again, e.g. the newest
// commit of its branch). A new machine is built beside the serving one by
// the deploy pipeline, into a candidate: the deployment stays running and
// serving throughout. Once the new lab started, its data is copied across
// (the serving release's backup action, the new one's restore action; a lab
// without both is released without data and the log says so); then the
// lab's test action and the HTTP check run on the new machine, and only when
// all passed comes the switch: the deployment record and both releases
// change in one store transaction, then the stable URL's route. The old
// machine answers what is under way for `drain`, is stopped (unless
// keep_releases_running) and kept for a rollback; kept releases beyond
// keep_releases lose their machine. Fails at any step before the switch: the
// new machine is removed and the old release keeps serving, untouched. Cut
// off by a stopped server it runs again and first finishes a recorded switch
// (the tail: stop and prune), or else removes what the cut-off run built and
// fails ("interrupted"): old or new serves, never neither, and no machine is
// left that no release row names.
// rollback — Rules: queued on a running deployment, with {"release": id} of a
// kept release (absent: the newest kept one). Its machine is started if it is
// stopped, the data copied back by the same backup/restore contract, the
// HTTP check run, then the same switch and tail. Cut off before its switch,
// it simply runs again (each step tolerates work already done).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "engine/engine.h"
#include "engine/internal.h"
#include "http/client.h"

namespace ads {
using nlohmann::json;
using namespace engine_detail;

namespace {

// The deployment as it would be with `r`'s machine serving.
Deployment with_release(const Deployment& d, const Release& r) {
  Deployment t = d;
  t.machine = r.machine;
  t.address = r.address;
  t.url = r.url;
  t.secret = r.secret;
  t.commit = r.commit;
  t.ref = r.ref;
  t.spec_json = r.spec_json;
  return t;
}

std::string label(const Release& r) { return "release #" + std::to_string(r.seq); }

}  // namespace

Result<std::vector<Release>> Engine::releases_with_current(Deployment& d) {
  auto rels = store_.releases_of(d.id);
  if (!rels) return rels.error();
  bool serving = std::any_of(rels->begin(), rels->end(), [](const Release& r) { return r.state == "serving"; });
  if (serving || d.machine.empty()) return rels;
  // the first release of a deployment is its deploy (or the release it was
  // before releases were recorded): recorded when the second one starts
  Release cur;
  cur.id = new_id();
  cur.deployment_id = d.id;
  cur.seq = rels->empty() ? 1 : rels->back().seq + 1;
  cur.state = "serving";
  cur.ref = d.ref;
  cur.commit = d.commit;
  cur.machine = d.machine;
  cur.address = d.address;
  cur.url = d.url;
  cur.secret = d.secret;
  cur.spec_json = d.spec_json;
  cur.by = d.owner;
  cur.created_ms = d.updated_ms ? d.updated_ms : now_ms();
  cur.updated_ms = cur.created_ms;
  if (auto st = store_.add_release(cur); !st) return st.error();
  rels->push_back(cur);
  return rels;
}

Status Engine::remove_release_machine(Deployment& d, Release& r, const std::string& state) {
  if (!r.machine.empty()) {
    Provider* p = provider_for(d.provider);
    if (!p) return failed("provider " + d.provider + " is not configured");
    log(d, "ads", "removing machine " + r.machine + " of " + label(r));
    auto st = with_retry(d, "removing machine " + r.machine, [&] { return p->destroy(r.machine); });
    if (!st) return st;
  }
  // the first release's static address is held in the deployment's name
  if (r.machine != machine_name(d.id)) {
    auto freed = store_.release_addresses(r.id);
    if (!freed) log(d, "ads", "could not release the static address of " + label(r) + ": " + freed.error().message);
  }
  r.machine.clear();
  r.address.clear();
  r.url.clear();
  r.state = state;
  r.updated_ms = now_ms();
  return store_.update_release(r);
}

// The stable URL's route to d's machine (publish.cpp); ok without a proxy.
Status Engine::put_route(Deployment& d) {
  if (!opts_.router) return Status::Ok();
  auto spec = stored_spec(d);
  if (!spec) return spec.error();
  return publish(d, *spec);
}

Status Engine::switch_release(Deployment& d, Job& job, Release& next, Release& prev) {
  set_step(job, "switching");
  const int64_t now = now_ms();
  // the serving release's row takes what the deployment knows of its machine
  prev.machine = d.machine;
  prev.address = d.address;
  prev.url = d.url;
  prev.secret = d.secret;
  prev.commit = d.commit;
  prev.ref = d.ref;
  prev.spec_json = d.spec_json;
  prev.state = "kept";
  prev.updated_ms = now;
  next.state = "serving";
  next.job_id = job.id;
  next.error.clear();
  next.updated_ms = now;  // the same instant as prev's: how a resumed job finds prev again
  Deployment nd = with_release(d, next);
  nd.updated_ms = now;
  if (auto st = store_.switch_release(nd, {next, prev}); !st)
    return failed("cannot record the switch (" + label(prev) + " keeps serving): " + st.error().message);
  d = nd;
  job.result_json =
      json{{"release", next.id}, {"seq", next.seq}, {"previous", prev.id}, {"commit", next.commit}}.dump();
  log(d, "ads",
      "switched: " + label(next) + " (" + (next.commit.empty() ? "" : "commit " + next.commit.substr(0, 12) + ", ") +
          "machine " + next.machine + ") serves now; " + label(prev) + " is kept");
  if (auto st = put_route(d); !st)
    return failed("switched to " + label(next) + ", but the proxy did not take the route (" + st.error().message +
                  "); " + label(prev) +
                  "'s machine keeps running and the stable URL reaches it until the proxy "
                  "takes the route (again at the next start of ads serve)");
  return Status::Ok();
}

void Engine::after_switch(Deployment& d, Job& job, Release& prev) {
  if (!prev.machine.empty() && !opts_.keep_releases_running) {
    // requests under way on the old machine finish first
    set_step(job, "draining");
    auto until = std::chrono::steady_clock::now() + opts_.drain;
    while (std::chrono::steady_clock::now() < until && !stopping_)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Deployment old = with_release(d, prev);
    old.state = State::kRunning;
    if (auto st = put_down(old, job); !st)
      log(d, "ads", "could not stop the machine of " + label(prev) + " (it stays running): " + st.error().message);
    else log(d, "ads", "stopped the machine of " + label(prev) + " (kept for a rollback)");
  }
  auto rels = store_.releases_of(d.id);
  if (!rels) {
    log(d, "ads",
        "cannot list the releases to keep the last " + std::to_string(opts_.keep_releases) + ": " +
            rels.error().message);
    return;
  }
  // the kept releases that served last stay (a rollback makes an older
  // release serve again: its number says nothing of when it served)
  std::vector<Release*> kept;
  for (auto& r : *rels)
    if (r.state == "kept") kept.push_back(&r);
  std::stable_sort(kept.begin(), kept.end(),
                   [](const Release* a, const Release* b) { return a->updated_ms > b->updated_ms; });
  for (size_t i = static_cast<size_t>(std::max(0, opts_.keep_releases)); i < kept.size(); ++i) {
    if (auto st = remove_release_machine(d, *kept[i], "removed"); !st)
      log(d, "ads", "could not remove the machine of " + label(*kept[i]) + " (it stays kept): " + st.error().message);
  }
}

Status Engine::finish_or_undo_release(Deployment& d, Job& job, bool* done) {
  *done = false;
  auto rels = store_.releases_of(d.id);
  if (!rels) return rels.error();
  for (auto& r : *rels) {
    if (r.job_id != job.id) continue;
    if (r.state == "serving") {
      // the switch was recorded: only the tail is left
      log(d, "ads", "resuming " + job.kind + " job " + job.id + ": " + label(r) + " serves already");
      if (auto st = put_route(d); !st) log(d, "ads", "the proxy did not take the route: " + st.error().message);
      for (auto& prev : *rels)
        if (prev.state == "kept" && prev.updated_ms == r.updated_ms) after_switch(d, job, prev);
      *done = true;
      return Status::Ok();
    }
    if (r.state == "building") {
      log(d, "ads", "the release job " + job.id + " was cut off before its switch: removing what it built");
      r.error = "interrupted: ads serve stopped during the release";
      if (auto st = remove_release_machine(d, r, "failed"); !st) return st;
      return failed(
          "interrupted: ads serve stopped during the release; its machine was removed and the release "
          "serving before keeps serving");
    }
  }
  return Status::Ok();
}

Status Engine::carry_data(Deployment& from, Deployment& to, Job& job, const std::string& from_label,
                          const std::string& to_label, bool* carried) {
  *carried = false;
  auto from_spec = stored_spec(from);
  auto to_spec = stored_spec(to);
  if (!from_spec || !to_spec || !from_spec->has_action("backup") || !to_spec->has_action("restore"))
    return Status::Ok();
  log(from, "ads", "copying the data of " + from_label + " into " + to_label);
  if (auto e = do_backup(from, job); !e) return failed("the backup of " + from_label + " failed: " + e.error().message);
  json res = json::parse(job.result_json, nullptr, false);
  auto b = store_.get_backup(res.is_object() ? res.value("backup", "") : "");
  if (!b) return b.error();
  if (auto e = restore_data(to, job, *b); !e)
    return failed("the restore into " + to_label + " failed: " + e.error().message);
  *carried = true;
  return Status::Ok();
}

Status Engine::do_release(Deployment& d, Job& job) {
  bool done = false;
  if (auto st = finish_or_undo_release(d, job, &done); !st || done) return st;
  auto rels = releases_with_current(d);
  if (!rels) return rels.error();
  auto cur_it = std::find_if(rels->begin(), rels->end(), [](const Release& r) { return r.state == "serving"; });
  if (cur_it == rels->end()) return failed("deployment " + d.id + " has no serving release");
  Release cur = *cur_it;
  Release r;
  r.id = new_id();
  r.deployment_id = d.id;
  r.seq = rels->back().seq + 1;
  r.state = "building";
  r.ref = string_param(job, "ref");
  if (r.ref.empty()) r.ref = d.ref;
  r.by = string_param(job, "by");
  r.job_id = job.id;
  r.created_ms = r.updated_ms = now_ms();
  if (auto st = store_.add_release(r); !st) return st;
  log(d, "ads",
      label(r) + " of " + d.name + " at " + (r.ref.empty() ? "the default branch" : "ref " + r.ref) +
          ": building a new machine; " + label(cur) + " keeps serving until the switch");

  Deployment cand = d;
  cand.ref = r.ref;
  cand.machine.clear();
  cand.address.clear();
  cand.url.clear();
  cand.commit.clear();
  cand.spec_json.clear();
  cand.secret.clear();
  BuildHooks h;
  h.step = [&](State s) -> Status {
    if (stopping_) return Error::make("interrupted", "interrupted");    // the next run removes what was built
    if (cancelled(d.id)) return Error::make("cancelled", "cancelled");  // what was built is removed below
    cand.state = s;
    set_step(job, "release: " + to_string(s));
    log(cand, "ads", label(r) + ": step " + to_string(s));
    return Status::Ok();
  };
  h.record_machine = [&](const Deployment& t) {
    r.machine = t.machine;
    r.secret = t.secret;
    r.updated_ms = now_ms();
    return store_.update_release(r);
  };
  h.machine = machine_name(d.id) + "-r" + std::to_string(r.seq);
  h.address_owner = r.id;
  h.after_start = [&](Deployment& t) -> Status {
    bool carried = false;
    if (auto e = carry_data(d, t, job, label(cur), label(r), &carried); !e) return e;
    if (!carried)
      log(d, "ads",
          label(r) + " is released without data (a backup action on " + label(cur) + " and a restore action on " +
              label(r) + " are needed)");
    return Status::Ok();
  };
  Status built = build(cand, job, h);
  if (!built) {
    if (built.error().code == "interrupted") return built;  // the next run removes what was built
    r.error = built.error().message;
    log(d, "ads", label(r) + " failed: " + r.error + "; " + label(cur) + " keeps serving");
    if (keep_failed_release(d, r)) {
      r.state = "failed";
      r.updated_ms = now_ms();
      (void)store_.update_release(r);
    } else if (auto st = remove_release_machine(d, r, "failed"); !st) {
      log(d, "ads", "could not remove the machine of the failed " + label(r) + ": " + st.error().message);
    }
    return failed(label(r) + " failed, " + label(cur) + " keeps serving: " + built.error().message);
  }
  r.commit = cand.commit;
  r.address = cand.address;
  r.url = cand.url;
  r.spec_json = cand.spec_json;
  if (auto st = switch_release(d, job, r, cur); !st) {
    if (d.machine != r.machine) (void)remove_release_machine(d, r, "failed");  // not switched: the old one serves
    return st;
  }
  after_switch(d, job, cur);
  return Status::Ok();
}

bool Engine::keep_failed_release(Deployment& d, const Release& r) {
  if (!(opts_.keep_failed || d.keep_failed) || r.machine.empty()) return false;
  log(d, "ads", "keeping machine " + r.machine + " of the failed " + label(r) + " for inspection (keep_failed)");
  return true;
}

Status Engine::do_rollback(Deployment& d, Job& job) {
  bool done = false;
  if (auto st = finish_or_undo_release(d, job, &done); !st || done) return st;
  auto rels = releases_with_current(d);
  if (!rels) return rels.error();
  auto cur_it = std::find_if(rels->begin(), rels->end(), [](const Release& r) { return r.state == "serving"; });
  if (cur_it == rels->end()) return failed("deployment " + d.id + " has no serving release");
  Release cur = *cur_it;
  std::string want = string_param(job, "release");
  const Release* target = nullptr;
  for (auto it = rels->rbegin(); it != rels->rend(); ++it) {
    if (want.empty() ? it->state == "kept" : it->id == want) {
      target = &*it;
      break;
    }
  }
  if (!target) return failed(want.empty() ? "there is no kept release to roll back to" : "there is no release " + want);
  if (target->state != "kept" || target->machine.empty())
    return failed("cannot roll back to " + label(*target) + ": it is " + target->state +
                  (target->state == "serving" ? "" : " and has no machine"));
  Release k = *target;
  log(d, "ads",
      "rolling back to " + label(k) + " (" + (k.commit.empty() ? "" : "commit " + k.commit.substr(0, 12) + ", ") +
          "machine " + k.machine + "); " + label(cur) + " keeps serving until the switch");
  Deployment t = with_release(d, k);
  t.state = State::kStopped;
  // a rollback that fails leaves the kept machine as it found it (stopped
  // unless keep_releases_running) and the serving release untouched
  auto give_up = [&](const std::string& why) -> Status {
    if (!opts_.keep_releases_running) {
      t.state = State::kRunning;
      if (auto st = put_down(t, job); !st)
        log(d, "ads", "could not stop " + label(k) + " again: " + st.error().message);
    }
    return failed("rollback to " + label(k) + " failed, " + label(cur) + " keeps serving: " + why);
  };
  // a kept machine left running (keep_releases_running) that still serves
  // needs nothing more: its lab's start action would refuse a second start
  bool serving = false;
  if (Provider* p = provider_for(t.provider)) {
    auto m = p->inspect(t.machine);
    auto spec = stored_spec(t);
    if (m && m->status == "Running" && spec) {
      http::ClientRequest probe;
      probe.url = lab_url(t.address, *spec);
      probe.timeout_ms = 3000;
      probe.connect_timeout_ms = 1000;
      auto r = http::request(probe);
      serving = r && r->status >= 200 && r->status < 400;
      if (serving) log(d, "ads", label(k) + "'s machine is running and its lab answers at " + probe.url);
    }
  }
  if (!serving) {
    if (auto st = bring_up(t, job); !st) return give_up("cannot bring it back: " + st.error().message);
  }
  bool carried = false;
  if (auto e = carry_data(d, t, job, label(cur), label(k), &carried); !e) return give_up(e.error().message);
  if (carried) {
    auto k_spec = stored_spec(t);
    if (!k_spec) return give_up(k_spec.error().message);
    if (auto e = http_check(t, *k_spec, &t.url); !e)
      return give_up("it does not answer after its restore: " + e.error().message);
  } else {
    log(d, "ads",
        "the rollback to " + label(k) + " carries no data (a backup action on " + label(cur) +
            " and a restore action on " + label(k) + " are needed): it serves the data it had");
  }
  k.address = t.address;
  k.url = t.url;
  if (auto st = switch_release(d, job, k, cur); !st) return st;
  after_switch(d, job, cur);
  return Status::Ok();
}

}  // namespace ads
