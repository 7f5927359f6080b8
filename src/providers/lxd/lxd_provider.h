// LXD provider: system containers through LXD's REST API on its unix socket
// (libcurl). Settings (JSON):
//   {"socket": "/var/lib/lxd/unix.socket", "profile": "default",
//    "images": {"debian-12": "ads-debian-12"}, "operation_timeout_s": 120}
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "providers/provider.h"

namespace ads {

class LxdProvider : public Provider {
 public:
  struct Settings {
    std::string socket = "/var/lib/lxd/unix.socket";
    std::string profile = "default";
    std::map<std::string, std::string> images = {{"debian-12", "ads-debian-12"}};
    int operation_timeout_s = 120;
  };

  explicit LxdProvider(Settings s);
  static Result<std::unique_ptr<Provider>> create_from(const nlohmann::json& settings);

  std::string kind() const override { return "lxd"; }
  Status create(const MachineSpec& spec, const ProgressFn& progress) override;
  Status start(const std::string& name) override;
  Status stop(const std::string& name) override;
  Status destroy(const std::string& name) override;
  Result<std::string> wait_address(const std::string& name, std::chrono::milliseconds total) override;
  Result<Machine> inspect(const std::string& name) override;
  Result<std::vector<Machine>> list() override;
  Status snapshot(const std::string& name, const std::string& snap) override;
  Status restore_snapshot(const std::string& name, const std::string& snap) override;

  // GET /1.0: whether the daemon answers (for `ads doctor` and tests).
  Status ping();

 private:
  struct Reply {
    long status = 0;
    nlohmann::json body;
  };
  Result<Reply> call(const std::string& method, const std::string& path, const std::string& body = "",
                     const std::vector<std::pair<std::string, std::string>>& headers = {},
                     long timeout_ms = 60000);
  // Waits for an async operation returned by `r`; error with LXD's message.
  Status wait_operation(const Reply& r, const std::string& what);
  Status change_state(const std::string& name, const std::string& action);
  Status push_file(const std::string& name, const FileToPlace& f);
  Status make_dirs(const std::string& name, const std::string& path);
  static Machine to_machine(const nlohmann::json& inst, const nlohmann::json& state);

  Settings s_;
};

}  // namespace ads
