// What the providers are asked for outside jobs: `ads images` (what each can
// put a lab on), `ads exec` (a command in a lab's machine) and `ads shell`.
#include <functional>
#include <memory>
#include <optional>

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

namespace {
// The deployment whose machine may run a command (`ads exec`, `ads shell`):
// a running lab, or a failed one whose machine was kept for inspection
// (keep_failed, ads lab try) and is not being destroyed.
Result<Deployment> commandable(Store& store, const std::string& id, bool keep_failed, const std::string& verb) {
  auto d = store.get(id);
  if (!d) return d.error();
  const bool kept = d->state == State::kFailed && (keep_failed || d->keep_failed);
  if ((d->state != State::kRunning && !kept) || d->machine.empty())
    return Error::make("conflict", "deployment " + id + " is " + to_string(d->state) +
                                       (kept ? " and its machine is gone" : "") + ": " + verb +
                                       " needs a running lab, or a failed one whose machine was kept");
  if (kept) {
    auto jobs = store.jobs_of(id);
    if (!jobs) return jobs.error();
    for (const auto& j : *jobs)
      if (j.kind == "destroy" && (j.state == "queued" || j.state == "running"))
        return Error::make("conflict", "deployment " + id + " is being destroyed (job " + j.id + ")");
  }
  return d;
}

// A provider's shell session that writes its end to the deployment's log.
class LoggedShell final : public ShellSession {
 public:
  LoggedShell(std::unique_ptr<ShellSession> s, std::function<void(const std::string&)> log)
      : s_(std::move(s)), log_(std::move(log)) {}
  ~LoggedShell() override {
    try {
      log_(exit_ ? "ended with exit code " + std::to_string(*exit_) : "was closed before its program ended");
    } catch (...) {  // a destructor: the line is lost, nothing else
    }
  }
  LoggedShell(const LoggedShell&) = delete;
  LoggedShell& operator=(const LoggedShell&) = delete;
  int fd() const override { return s_->fd(); }
  Status resize(const TerminalSize& size) override { return s_->resize(size); }
  Result<int> exit_code(std::chrono::milliseconds wait) override {
    auto r = s_->exit_code(wait);
    if (r) exit_ = *r;
    return r;
  }

 private:
  std::unique_ptr<ShellSession> s_;
  std::function<void(const std::string&)> log_;
  std::optional<int> exit_;
};
}  // namespace

Result<ExecResult> Engine::exec(const std::string& id, const std::vector<std::string>& argv, int timeout_s,
                                const std::string& by) {
  auto d = commandable(store_, id, opts_.keep_failed, "exec");
  if (!d) return d.error();
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

Result<std::unique_ptr<ShellSession>> Engine::open_shell(const std::string& id, const TerminalSize& size,
                                                         const std::string& by) {
  auto d = commandable(store_, id, opts_.keep_failed, "a shell");
  if (!d) return d.error();
  Provider* p = provider_for(d->provider.empty() ? opts_.default_provider : d->provider);
  if (!p) return Error::make("unsupported", "deployment " + id + " has no known provider");
  auto s = p->open_shell(d->machine, size);
  if (!s) {
    log(*d, "ads", "shell for " + by + " could not be opened: " + s.error().message);
    return s.error();
  }
  log(*d, "ads", "shell opened by " + by);
  std::unique_ptr<ShellSession> logged = std::make_unique<LoggedShell>(
      std::move(s.value()),
      [this, dep = *d, by](const std::string& how) { log(dep, "ads", "shell by " + by + " " + how); });
  return logged;
}

}  // namespace ads
