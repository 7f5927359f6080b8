// Job "delete-backup" (also used by backup to keep the last N backups).
// Rules (core/job_rules.h): needs {"backup": id}; queued on a running,
// stopped, failed or destroyed deployment; the provider snapshot first (it
// may outlive the machine), then the archive, then the record; every step
// tolerates work already done, so a cut-off job runs again from the start.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/client.h"
#include "engine/engine.h"
#include "engine/internal.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

// The provider's snapshot first (it may outlive the machine: an AMI, a vzdump
// archive), then the archive on this host, then the record: a failure leaves
// the backup listed, and deleting it again finishes the work.
Status Engine::do_delete_backup(Deployment& d, Job& job) {
  std::string backup_id = backup_param(job);
  auto b = store_.get_backup(backup_id);
  if (!b && b.error().code == "not_found") {
    // operate() checked that it existed: a resumed job whose first run got this far
    log(d, "ads", "backup " + backup_id + " is already deleted");
    return Status::Ok();
  }
  if (!b) return b.error();
  return remove_backup(d, job, *b);
}

Status Engine::remove_backup(Deployment& d, Job& job, const Backup& b) {
  if (!b.snapshot.empty()) {
    Provider* p = provider_for(d.provider);
    if (!p) return failed("provider " + d.provider + " is not configured");
    set_step(job, "deleting the snapshot");
    // the machine backups are taken on (job_backup.cpp): the deployment's
    // own, whatever its name (a release's, a warm machine's "ads-w-..."); the
    // name it was made under once it has none (an AMI or a vzdump archive
    // outlives its machine)
    std::string machine = d.machine.empty() ? machine_name(d.id) : d.machine;
    auto st = with_retry(d, "deleting snapshot " + b.snapshot, [&] { return p->delete_snapshot(machine, b.snapshot); });
    if (!st && st.error().code != "unsupported")
      return failed("cannot delete snapshot " + b.snapshot + ": " + st.error().message);
  }
  set_step(job, "deleting the archive");
  std::error_code ec;
  if (!b.path.empty() && !fs::remove(b.path, ec) && ec) return failed("cannot delete " + b.path + ": " + ec.message());
  auto st = store_.delete_backup(b.id);
  if (!st && st.error().code != "not_found") return st.error();
  log(d, "ads", "deleted backup " + b.id);
  return Status::Ok();
}

}  // namespace ads
