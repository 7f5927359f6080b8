// What the providers are asked for outside jobs: `ads images` (what each can
// put a lab on) and `ads exec` (a command in a lab's machine).
#include "core/text.h"
#include "engine/engine.h"

namespace ads {

std::vector<Engine::ProviderImages> Engine::images() {
  std::vector<ProviderImages> out;
  for (auto& [kind, p] : providers_) {
    ProviderImages pi;
    pi.provider = kind;
    pi.is_default = kind == opts_.default_provider;
    auto imgs = p->images();
    if (imgs) pi.images = std::move(imgs.value());
    else pi.error = imgs.error();
    out.push_back(std::move(pi));
  }
  return out;
}

Result<ExecResult> Engine::exec(const std::string& id, const std::vector<std::string>& argv, int timeout_s,
                                const std::string& by) {
  auto d = store_.get(id);
  if (!d) return d.error();
  // a running lab, or a failed one whose machine was kept for inspection
  // (keep_failed, ads lab try) and is not being destroyed
  const bool kept = d->state == State::kFailed && (opts_.keep_failed || d->keep_failed);
  if ((d->state != State::kRunning && !kept) || d->machine.empty())
    return Error::make("conflict", "deployment " + id + " is " + to_string(d->state) +
                                       (kept ? " and its machine is gone" : "") +
                                       ": exec needs a running lab, or a failed one whose machine was kept");
  if (kept) {
    auto jobs = store_.jobs_of(id);
    if (!jobs) return jobs.error();
    for (const auto& j : *jobs)
      if (j.kind == "destroy" && (j.state == "queued" || j.state == "running"))
        return Error::make("conflict", "deployment " + id + " is being destroyed (job " + j.id + ")");
  }
  Provider* p = provider_for(d->provider.empty() ? opts_.default_provider : d->provider);
  if (!p) return Error::make("unsupported", "deployment " + id + " has no known provider");
  std::string shown;
  for (const auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
  log(*d, "ads", "exec by " + by + ": " + printable(shown, 300));
  auto r = p->exec(d->machine, argv, timeout_s, kExecOutputMax);
  if (r) log(*d, "ads", "exec by " + by + " ended with exit code " + std::to_string(r->exit_code));
  else log(*d, "ads", "exec by " + by + " failed: " + r.error().message);
  return r;
}

}  // namespace ads
