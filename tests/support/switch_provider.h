// Test support: a provider whose platform can be switched off and on. While
// it is down every call answers "unavailable" (what a crashed LXD gives the
// engine); its machines are names in a set the test can read.
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "providers/provider.h"

namespace ads::test {

struct SwitchState {
  std::mutex mu;
  bool up = true;
  std::set<std::string> machines;
  int destroy_calls = 0;
  void set_up(bool v) {
    std::lock_guard<std::mutex> lk(mu);
    up = v;
  }
  bool has(const std::string& m) {
    std::lock_guard<std::mutex> lk(mu);
    return machines.count(m) > 0;
  }
  int destroys() {
    std::lock_guard<std::mutex> lk(mu);
    return destroy_calls;
  }
};

class SwitchProvider : public Provider {
 public:
  explicit SwitchProvider(std::shared_ptr<SwitchState> s, std::string kind = "switch")
      : s_(std::move(s)), kind_(std::move(kind)) {}
  std::string kind() const override { return kind_; }
  Status create(const MachineSpec& spec, const ProgressFn&) override {
    std::lock_guard<std::mutex> lk(s_->mu);
    if (!s_->up) return down();
    s_->machines.insert(spec.name);
    return Status::Ok();
  }
  Status start(const std::string&) override { return answer(); }
  Status stop(const std::string&) override { return answer(); }
  Status destroy(const std::string& name) override {
    std::lock_guard<std::mutex> lk(s_->mu);
    s_->destroy_calls += 1;
    if (!s_->up) return down();
    s_->machines.erase(name);
    return Status::Ok();
  }
  Result<std::string> wait_address(const std::string&, std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lk(s_->mu);
    if (!s_->up) return down();
    return std::string("127.0.0.1");
  }
  Result<Machine> inspect(const std::string& name) override {
    std::lock_guard<std::mutex> lk(s_->mu);
    if (!s_->up) return down();
    if (!s_->machines.count(name)) return Error::make("not_found", "no machine " + name);
    return Machine{name, "Running", "127.0.0.1", {}, ""};
  }
  Result<std::vector<ImageInfo>> images() override { return std::vector<ImageInfo>{}; }
  Result<std::vector<Machine>> list() override {
    std::lock_guard<std::mutex> lk(s_->mu);
    if (!s_->up) return down();
    std::vector<Machine> out;
    for (auto& m : s_->machines) {
      std::string id = m.rfind("ads-", 0) == 0 ? m.substr(4) : "";
      out.push_back(Machine{m, "Running", "127.0.0.1", {{"deployment", id}}, ""});
    }
    return out;
  }

 private:
  static Error down() { return Error::make("unavailable", "the platform is down (test)"); }
  Status answer() {
    std::lock_guard<std::mutex> lk(s_->mu);
    return s_->up ? Status::Ok() : Status(down());
  }
  std::shared_ptr<SwitchState> s_;
  std::string kind_;
};

}  // namespace ads::test
