// LXD provider: system containers through LXD's REST API on its unix socket
// (libcurl). Settings (JSON):
//   {"socket": "/var/lib/lxd/unix.socket", "profile": "default", "pool": "ads",
//    "images": {"debian-12": "ads-debian-12"}, "operation_timeout_s": 120,
//    "nic": {"type": "bridged", "parent": "br0", "subnet": "192.168.1.0/24",
//            "gateway": "192.168.1.1", "nameserver": "192.168.1.1"}}
// "nic" (optional) puts eth0 on the host's LAN instead of the profile's NIC:
// type "bridged" (parent: a host bridge) or "macvlan" (parent: a host
// interface). Without "subnet" the machine takes a DHCP lease on that LAN;
// with it, the engine allocates a static address from the subnet
// (address_pool()) and the provider writes the image's udhcpc hook
// (static_hook, /etc/ads/udhcpc.script in ads-debian-12) so that ads-init
// sets that address instead of asking for a lease.
//   "placement": "lxd" (default) or "ads", for an LXD cluster (the socket of
// any member): "lxd" lets LXD choose the member (POST /1.0/instances without
// target); "ads" picks it here (core/placement.h: the online member with the
// most memory available that fits the machine's memory; figures from
// GET /1.0/cluster/members, /1.0/resources?target= and the memory limits of
// the instances on each member) and creates with ?target=<member>.
// Machine::location names the member.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "core/placement.h"
#include "providers/provider.h"

namespace ads {

class LxdProvider : public Provider {
 public:
  struct Settings {
    std::string socket = "/var/lib/lxd/unix.socket";
    std::string profile = "default";
    // the storage pool of the machines' root disks; "" : the profile's
    std::string pool;
    // OS key -> a local image alias ...
    std::map<std::string, std::string> images = {{"debian-12", "ads-debian-12"},
                                                 {"debian-12-build", "ads-debian-12-build"}};
    // ... or an image LXD pulls from an image server (and caches) at create:
    // {"server": "https://...", "protocol": "simplestreams"|"lxd", "alias":
    // "ubuntu/22.04", "certificate": "/path/server.crt" (lxd protocol, a
    // server whose certificate no CA signed)}. A key is in one map only.
    struct RemoteImage {
      std::string server, protocol = "simplestreams", alias, certificate_file;
    };
    std::map<std::string, RemoteImage> remote_images;
    int operation_timeout_s = 120;
    std::string placement = "lxd";  // "lxd" or "ads" (see above)
    struct Nic {
      std::string type;        // "" : the profile's NIC; "bridged" or "macvlan"
      std::string parent;      // host bridge (bridged) or host interface (macvlan)
      std::string subnet;      // static addresses from this pool; "" : DHCP
      std::string gateway;     // default: the subnet's first host
      std::string nameserver;  // default: the gateway
      std::string static_hook = "/etc/ads/udhcpc.script";
    } nic;
  };

  explicit LxdProvider(Settings s);
  static Result<std::unique_ptr<Provider>> create_from(const nlohmann::json& settings);

  std::string kind() const override { return "lxd"; }
  std::string address_pool() const override { return s_.nic.subnet; }
  // The udhcpc hook that sets `address` (in the nic subnet) whatever the
  // event: DHCP leases are ignored. Public for tests.
  Result<std::string> static_hook_script(const std::string& address) const;
  Status create(const MachineSpec& spec, const ProgressFn& progress) override;
  Status start(const std::string& name) override;
  Status stop(const std::string& name) override;
  Status destroy(const std::string& name) override;
  Result<std::string> wait_address(const std::string& name, std::chrono::milliseconds total) override;
  Result<Machine> inspect(const std::string& name) override;
  Result<std::vector<Machine>> list() override;
  // Warm machines: on a host network with static addresses (nic.subnet) a
  // machine's address is given at its create, so there are none.
  // (nor with placement "ads": a warm machine is placed before its lab's
  // memory is known)
  bool can_claim() const override { return s_.nic.subnet.empty() && s_.placement != "ads"; }
  Status claim(const std::string& name, const MachineSpec& spec, const ProgressFn& progress) override;
  Result<std::vector<ImageInfo>> images() override;
  Result<ExecResult> exec(const std::string& name, const std::vector<std::string>& argv, int timeout_s,
                          size_t max_bytes) override;
  // LXD's interactive exec: a pty in the container, its websocket relayed
  // to the session's socket by a thread of the session (lxd_shell.cpp).
  Result<std::unique_ptr<ShellSession>> open_shell(const std::string& name, const TerminalSize& size) override;
  Status snapshot(const std::string& name, const std::string& snap) override;
  Status restore_snapshot(const std::string& name, const std::string& snap) override;
  Status delete_snapshot(const std::string& name, const std::string& snap) override;

  // GET /1.0: whether the daemon answers (for `ads doctor` and tests).
  Status ping();
  // The members of the cluster with their memory figures ("unavailable"
  // when this LXD is not clustered). A member LXD calls Online but whose
  // figures cannot be read (just stopped, not yet Offline) gets status
  // "Unreachable (<LXD's message>)", so placement skips it.
  Result<std::vector<MemberLoad>> cluster_load();
  // The figures from LXD's answers: `members` (GET /1.0/cluster/members?
  // recursion=1 metadata), `memory` (member name -> GET /1.0/resources?
  // target= metadata.memory; online members only) and `instances` (GET
  // /1.0/instances?recursion=1 metadata). Limits LXD would not accept count
  // as nothing. No I/O; public for tests.
  static std::vector<MemberLoad> member_loads(const nlohmann::json& members,
                                              const std::map<std::string, nlohmann::json>& memory,
                                              const nlohmann::json& instances);
  // The files an image's manifest (kImageManifest) lists: path -> SHA-256
  // hex; lines that are not "<64 hex>  /path" are skipped. No I/O; public
  // for tests.
  static std::map<std::string, std::string> parse_image_manifest(const std::string& text);

 private:
  struct Reply {  // NOLINT(bugprone-exception-escape): its implicit moves are noexcept (long, nlohmann::json)
    long status = 0;
    nlohmann::json body;
  };
  Result<Reply> call(const std::string& method, const std::string& path, const std::string& body = "",
                     const std::vector<std::pair<std::string, std::string>>& headers = {}, long timeout_ms = 60000);
  // Waits for an async operation returned by `r`; error with LXD's message.
  Status wait_operation(const Reply& r, const std::string& what);
  // The same, waiting at most `timeout_s`, and giving the finished
  // operation's own metadata (exec: its return code and output files).
  Result<nlohmann::json> await_operation(const Reply& r, const std::string& what, int timeout_s);
  Status change_state(const std::string& name, const std::string& action);
  Status put_identity(const std::string& name, const nlohmann::json& meta, const MachineSpec& spec,
                      const ProgressFn& progress);
  // make_parents false: the file's directory exists (one call, not one per parent)
  Status push_file(const std::string& name, const FileToPlace& f, bool make_parents = true);
  Status make_dirs(const std::string& name, const std::string& path);
  // A file of the machine ("" when it has none, or it is larger than max_bytes).
  Result<std::string> pull_file(const std::string& name, const std::string& path, size_t max_bytes);
  static Machine to_machine(const nlohmann::json& inst, const nlohmann::json& state);

  Settings s_;
  // Placement "ads": the memory of machines being created, per member, until
  // their create returns (LXD lists them, with their limit, from early in
  // the create; until it returns they may count twice, which errs on the safe
  // side). Placements in this process are one at a time under place_mu_.
  std::mutex place_mu_;
  std::map<std::string, uint64_t> pending_mb_;
};

}  // namespace ads
