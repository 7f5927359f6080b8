// Jobs "backup" and "restore".
// backup — Rules (core/job_rules.h): queued on a running deployment only; the
// lab's backup action, the data copied to this host (archive + sha256), a
// provider snapshot where there is one, then the record. A failure leaves
// nothing behind (no archive or snapshot without a record); cut off by a
// stopped server it fails (never half-recorded). keep_backups prunes the
// oldest afterwards (a pruning failure is logged, never fails the backup).
// restore — Rules: needs {"backup": id} of one of the deployment's backups;
// queued on a running, stopped or destroyed deployment. In place: the lab's
// restore action with the archive, or else the provider snapshot. Of a
// destroyed deployment: the deploy pipeline again at the backup's commit,
// into a new machine (refused up front when nothing could bring the data
// back, see admit_restore). Cut off: fails and the deployment is rolled back.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/client.h"
#include "engine/archive.h"
#include "engine/durable_file.h"
#include "engine/engine.h"
#include "engine/internal.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

Status Engine::do_backup(Deployment& d, Job& job) {
  Provider* p = provider_for(d.provider);
  if (!p) return failed("provider " + d.provider + " is not configured");
  auto spec = stored_spec(d);
  if (!spec) return spec.error();
  Backup b;
  b.id = new_id();
  b.deployment_id = d.id;
  b.commit = d.commit;
  b.secret = d.secret;  // the agent a snapshot of this machine brings back
  agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
  if (spec->has_action("backup")) {
    set_step(job, "running the lab's backup");
    if (auto e = run_action(d, client, "backup"); !e) return e;
  } else {
    log(d, "ads", "the lab has no backup action: the backup holds no lab data, only the machine snapshot");
  }
  set_step(job, "copying the data");
  auto data = client.download_backup(opts_.max_backup_bytes);
  if (!data) return failed("cannot copy the backup from the agent: " + data.error().message);
  fs::path dir = fs::path(opts_.backup_dir) / d.id;
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::path file = dir / (b.id + ".tar.gz");
  std::string snap = "backup-" + b.id;
  // a backup that fails leaves nothing behind: no archive without a record,
  // no snapshot (or AMI) that nothing lists
  auto discard = [&](const std::string& why, bool snapshot_tried) {
    std::error_code rm;
    fs::remove(file, rm);
    if (snapshot_tried) {
      auto del = p->delete_snapshot(d.machine, snap);
      if (!del && del.error().code != "unsupported")
        log(d, "ads", "could not remove the unfinished snapshot " + snap + ": " + del.error().message);
    }
    return failed(why);
  };
  if (ec) return failed("cannot create " + dir.string() + ": " + ec.message());
  // on the disk whole or not at all (a temporary name, synced, renamed); a
  // full disk fails here, naming it, and leaves no file
  if (auto w = write_file_durably(file.string(), *data); !w) return discard(w.error().message, false);
  // a backup is recorded only if it can be read back whole (gzip + tar) and
  // the file holds exactly what the agent sent: the checksum is the file's
  if (auto v = verify_tar_gz_file(file.string()); !v)
    return discard("the agent's backup is not a usable archive: " + v.error().message, false);
  auto on_disk = digest_file(file.string());
  if (!on_disk) return discard("cannot read back " + file.string() + ": " + on_disk.error().message, false);
  if (on_disk->sha256 != file_sha256(*data) || on_disk->size != static_cast<int64_t>(data->size()))
    return discard("the archive read back from " + file.string() + " is not what was written (" +
                       std::to_string(on_disk->size) + " of " + std::to_string(data->size()) + " bytes)",
                   false);
  b.path = file.string();
  b.size_bytes = on_disk->size;
  b.sha256 = on_disk->sha256;
  set_step(job, "snapshot");
  auto st = p->snapshot(d.machine, snap);
  if (st) {
    b.snapshot = snap;
    log(d, "ads", "provider snapshot " + snap);
  } else if (st.error().code == "unsupported") {
    log(d, "ads", st.error().message + "; the backup holds the lab's data only");
  } else {
    return discard("snapshot failed: " + st.error().message, true);
  }
  b.created_ms = now_ms();
  st = store_.add_backup(b);
  if (!st) return discard(st.error().message, !b.snapshot.empty());
  job.result_json = json{{"backup", b.id}, {"size_bytes", b.size_bytes}, {"sha256", b.sha256}}.dump();
  log(d, "ads", "backup " + b.id + ": " + std::to_string(b.size_bytes) + " bytes, sha256 " + b.sha256);
  if (opts_.keep_backups > 0) {
    // the new backup is made: pruning the old ones cannot fail this job, only say so
    auto all = store_.backups_of(d.id);  // oldest first
    if (!all) {
      log(d, "ads",
          "cannot list the backups to keep the last " + std::to_string(opts_.keep_backups) + ": " +
              all.error().message);
      return Status::Ok();
    }
    size_t extra = all->size() > static_cast<size_t>(opts_.keep_backups)
                       ? all->size() - static_cast<size_t>(opts_.keep_backups)
                       : 0;
    for (size_t i = 0; i < extra; ++i) {
      const Backup& old = (*all)[i];
      if (old.id == b.id) continue;
      log(d, "ads", "keeping the last " + std::to_string(opts_.keep_backups) + " backups: deleting backup " + old.id);
      if (auto e = remove_backup(d, job, old); !e)
        log(d, "ads", "could not delete backup " + old.id + " (it stays listed): " + e.error().message);
    }
  }
  return Status::Ok();
}

Status Engine::restore_data(Deployment& d, Job& job, const Backup& b) {
  auto spec = stored_spec(d);
  if (!spec) return spec.error();
  set_step(job, "checking the backup");
  std::ifstream in(b.path, std::ios::binary);
  if (!in) return failed("the backup archive " + b.path + " is missing");
  std::string data((std::istreambuf_iterator<char>(in)), {});
  if (file_sha256(data) != b.sha256) return failed("the backup archive " + b.path + " does not match its checksum");
  agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
  if (spec->has_action("restore")) {
    set_step(job, "placing the data");
    auto st = client.upload_backup(data);
    if (!st) return failed("cannot place the backup: " + st.error().message);
    set_step(job, "running the lab's restore");
    if (auto e = run_action(d, client, "restore"); !e) return e;
    log(d, "ads", "restored the lab's data from backup " + b.id);
    return Status::Ok();
  }
  Provider* p = provider_for(d.provider);
  if (b.snapshot.empty() || !p) return failed("the lab has no restore action and backup " + b.id + " has no snapshot");
  set_step(job, "restoring the snapshot");
  auto st = p->restore_snapshot(d.machine, b.snapshot);
  if (!st) return st.error();
  log(d, "ads", "restored the machine to snapshot " + b.snapshot);
  return Status::Ok();
}

Status Engine::admit_restore(const Deployment& d, const Backup& b) {
  if (d.state != State::kDestroyed) return Status::Ok();
  // into a new machine: the data comes back through the lab's restore
  // action, or else from a snapshot that outlived the old machine
  auto spec = stored_spec(d);
  Provider* p = provider_for(d.provider);
  bool by_action = spec && spec->has_action("restore");
  bool by_snapshot = !b.snapshot.empty() && p && p->snapshots_outlive_machine();
  if (by_action || by_snapshot) return Status::Ok();
  return Error::make("conflict",
                     "backup " + b.id + " cannot be restored into a new machine: the lab has no restore action" +
                         (b.snapshot.empty() ? std::string(" and the backup has no snapshot")
                                             : " and its " + d.provider + " snapshot went with the destroyed machine"));
}

Status Engine::do_restore(Deployment& d, Job& job) {
  auto b = store_.get_backup(backup_param(job));
  if (!b) return b.error();
  if (d.state == State::kDestroyed) {
    // into a new machine: the pipeline again, at the backup's commit
    log(d, "ads", "restoring backup " + b->id + " into a new machine");
    d.commit = b->commit;
    d.failed_step.clear();
    d.error.clear();
    auto st = advance(d, State::kAccepted);
    if (!st) return st.error();
    return do_deploy(d, job, b->id);
  }
  if (d.state == State::kStopped) {
    if (auto e = do_start(d, job); !e) return e;
  }
  if (auto e = restore_data(d, job, *b); !e) return e;
  auto spec = stored_spec(d);
  if (!spec) return spec.error();
  if (!b->snapshot.empty() && !spec->has_action("restore")) {
    // the snapshot brought the machine back as it was; start the lab again
    if (auto e = do_start(d, job); !e) return e;
  }
  return http_check(d, *spec, nullptr);
}

}  // namespace ads
