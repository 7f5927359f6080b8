// Provider: where lab machines come from. One interface; one folder per
// platform (lxd/, later aws/, openvz/), registered in one table (registry.cpp).
// Providers know nothing of deployments beyond the labels they are given.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ads {

// A file placed in the machine before its first start (the agent, its config).
struct FileToPlace {
  FileToPlace() = default;
  FileToPlace(std::string p, std::string c, int m = 0644, std::string sum = {})
      : path(std::move(p)), content(std::move(c)), mode(m), sha256(std::move(sum)) {}
  std::string path;  // absolute, inside the machine
  std::string content;
  int mode = 0644;
  // The content's SHA-256 (hex), for a file a machine image may carry
  // already (the agent): a provider that can tell the image holds this very
  // file (its manifest, kImageManifest) does not place it again. "" : always
  // placed (a secret, a per-machine config).
  std::string sha256;
};

// Where an ADS image lists the files it carries, as `sha256sum` writes them:
// "<64 hex>  <absolute path>" per line (scripts/build-image.sh).
inline constexpr const char* kImageManifest = "/etc/ads/image-files.sha256";
// What an ADS image's init can do, one word per line ("warm-claim": its
// agent waits for Provider::claim when the machine boots without a config).
inline constexpr const char* kImageFeatures = "/etc/ads/features";
// The mark claim() places last, once the agent's config is complete.
inline constexpr const char* kClaimedMark = "/etc/ads-agent/claimed";
// The label of a warm machine (Provider::list() lists them too): its OS key.
inline constexpr const char* kWarmLabel = "warm";

struct MachineSpec {
  std::string name;        // provider-side name, [a-z0-9-], <= 63
  std::string os_key;      // "debian-12" (LabSpec::os_key)
  uint64_t memory_mb = 0;  // 0: provider default
  uint64_t storage_mb = 0;
  std::map<std::string, std::string> labels;  // e.g. deployment id, lab name
  std::vector<FileToPlace> files;
  std::string address;  // static IPv4 from address_pool(), "" if none
  // A warm machine (EngineOptions::warm): made ahead with no identity, its
  // agent waiting for claim() to give it one. create() refuses ("unsupported")
  // where the image's init cannot wait for that (an image built before warm
  // machines).
  bool warm = false;
};

struct Machine {
  std::string name;
  std::string status;   // provider's word: Running, Stopped...
  std::string address;  // IPv4, "" if none yet
  std::map<std::string, std::string> labels;
  std::string location;  // cluster member holding it; "" outside a cluster
};

// One OS key a provider serves and the image behind it.
struct ImageInfo {
  std::string os_key;  // "debian-12", "debian-12-build"
  std::string image;   // the provider's name for it: LXD alias, AMI id, OpenVZ template
  // "available": the platform has it; "missing": it does not (a deploy on it
  // fails); "unchecked": configured, not asked of the platform.
  std::string state;
  std::string note;  // how to get a missing one, or why unchecked
};

// What a command run in a machine by exec() gave.
struct ExecResult {
  int exit_code = 0;  // 124: stopped at its timeout
  std::string out, err;
  bool truncated = false;  // a stream was longer than asked for and was cut
};

// The terminal an interactive program runs on (`ads shell`).
struct TerminalSize {
  int cols = 80;
  int rows = 24;
  std::string term = "xterm";  // TERM in the shell's environment (open_shell; resize ignores it)
};

// An interactive program on a terminal in a machine (`ads shell`), open
// until it ends or the session is destroyed (which ends it). What it prints
// and what is typed to it travel over fd(), the session's end of a stream
// socket: read the terminal's output from it, write its input to it; end of
// stream once the program has ended.
class ShellSession {
 public:
  virtual ~ShellSession() = default;
  virtual int fd() const = 0;
  virtual Status resize(const TerminalSize& size) = 0;
  // The program's exit code, once fd() has reached its end; waits at most
  // `wait` for the platform to report it ("timeout" otherwise).
  virtual Result<int> exit_code(std::chrono::milliseconds wait) = 0;
};

// Progress notes for the deployment log.
using ProgressFn = std::function<void(const std::string&)>;

class Provider {
 public:
  virtual ~Provider() = default;
  virtual std::string kind() const = 0;
  // The IPv4 subnet (CIDR) from which the engine must give each machine a
  // static address (MachineSpec::address, allocated in the store before
  // create, released after destroy); "" when the platform assigns addresses.
  virtual std::string address_pool() const { return ""; }

  // Creates the machine (not started) and places spec.files in it. Fails
  // with "invalid" (field "os") when the provider has no image for os_key.
  virtual Status create(const MachineSpec& spec, const ProgressFn& progress) = 0;
  virtual Status start(const std::string& name) = 0;
  virtual Status stop(const std::string& name) = 0;
  // Removes the machine and everything in it. Succeeds when already gone.
  virtual Status destroy(const std::string& name) = 0;
  // Waits until the machine reports an IPv4 address; "timeout" otherwise.
  virtual Result<std::string> wait_address(const std::string& name, std::chrono::milliseconds total) = 0;
  virtual Result<Machine> inspect(const std::string& name) = 0;
  // Machines this ADS made (those with the ads labels: "deployment", or
  // kWarmLabel for a warm machine not claimed yet).
  virtual Result<std::vector<Machine>> list() = 0;

  // The OS keys this provider serves (its settings' image map) and whether
  // the platform has each image, where it can tell without cost.
  virtual Result<std::vector<ImageInfo>> images() = 0;

  // Runs `argv` (no shell) in the running machine as root, waits for it at
  // most `timeout_s` seconds (then it is killed: exit code 124), and keeps
  // at most `max_bytes` of each stream. For `ads exec`: the agent has no
  // endpoint that runs a command, the platform does. "unsupported" where the
  // platform has none; "not_found" for no such machine.
  virtual Result<ExecResult> exec(const std::string& name, const std::vector<std::string>& argv, int timeout_s,
                                  size_t max_bytes) {
    return Error::make("unsupported", kind() + " cannot run a command in a machine (ads exec works on LXD and OpenVZ)");
  }

  // Starts the machine's login shell as root on a terminal of `size` (for
  // `ads shell`; like exec(), through the platform, never the agent).
  // "unsupported" where the platform has no way; "not_found" for no such
  // machine.
  virtual Result<std::unique_ptr<ShellSession>> open_shell(const std::string& name, const TerminalSize& size) {
    return Error::make("unsupported", kind() + " cannot open a shell in a machine (ads shell works on LXD)");
  }

  // Warm machines (EngineOptions::warm). Whether this provider can claim().
  virtual bool can_claim() const { return false; }
  // Gives a running warm machine (made by create() with spec.warm) the
  // identity of `spec`: its labels (the warm label goes), its memory limit,
  // and the files of spec.files without a sha256 (the agent's config and
  // secret; the files with one were placed at its create). The agent starts
  // once they are all in place. "not_found" for no such machine, "conflict"
  // for a machine that is not a warm one (claimed already, or never warm),
  // "unsupported" where the platform cannot.
  virtual Status claim(const std::string& name, const MachineSpec& spec, const ProgressFn& progress) {
    return Error::make("unsupported", kind() + " has no warm machines");
  }

  // Disk snapshots, where the platform has them; the default says "unsupported".
  virtual Status snapshot(const std::string& name, const std::string& snap) {
    return Error::make("unsupported", kind() + " has no snapshots");
  }
  virtual Status restore_snapshot(const std::string& name, const std::string& snap) {
    return Error::make("unsupported", kind() + " has no snapshots");
  }
  // Whether a snapshot survives its machine's destroy (and can be restored
  // into a new machine of the same name): AMIs and vzdump archives do, LXD
  // snapshots go with their container.
  virtual bool snapshots_outlive_machine() const { return false; }
  // Whether others than the machine's root can read the files given to
  // create() once it runs (EC2 user data: every local user through the
  // instance metadata service, and anyone allowed ec2:DescribeInstanceAttribute).
  // The engine then gives the agent a bootstrap secret only and replaces it
  // on first contact (agent/handover.h).
  virtual bool files_readable_by_others() const { return false; }
  // Removes a snapshot for good. Succeeds when it is already gone, also when
  // the machine is gone (a snapshot may outlive its machine on some platforms).
  virtual Status delete_snapshot(const std::string& name, const std::string& snap) {
    return Error::make("unsupported", kind() + " has no snapshots");
  }
};

// Builds a provider from its kind and its JSON settings (from the ADS config).
// Unknown kind: Error "invalid" with field "provider".
Result<std::unique_ptr<Provider>> make_provider(const std::string& kind, const nlohmann::json& settings);
// Kinds the registry knows.
std::vector<std::string> provider_kinds();

}  // namespace ads
