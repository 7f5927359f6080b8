// Test support for engine tests: options keeping the engine's files in a
// test's folder, a deployment record to store, waiting for the jobs of a
// deployment to finish, and reading the deployment's log, straight from the
// store.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "engine/engine.h"
#include "store/store.h"
#include "support/build_paths.h"

namespace ads::test {

// Engine options with the work and backup folders under `dir` and the agent
// this build made.
inline EngineOptions engine_options(const std::filesystem::path& dir) {
  EngineOptions o;
  o.work_dir = (dir / "work").string();
  o.backup_dir = (dir / "backups").string();
  o.agent_binary = ADS_AGENT_BIN;
  return o;
}

// A deployment record as the engine tests store it: lab "lab" from /srv/lab
// on `provider`, its machine "ads-<id>", owned by admin, in `state`.
inline Deployment lab_record(const std::string& id, State state, const std::string& provider = "switch") {
  Deployment d;
  d.id = id;
  d.name = "lab";
  d.source = "/srv/lab";
  d.provider = provider;
  d.machine = "ads-" + d.id;
  d.state = state;
  d.owner = "admin";
  d.created_ms = d.updated_ms = 1;
  return d;
}

// Waits until every job of `id` has finished (a wait, not a timing assertion:
// at most `polls` x 100 ms), then returns the deployment as stored.
inline Deployment settle(Store& store, const std::string& id, int polls = 3000) {
  for (int i = 0; i < polls; ++i) {
    auto jobs = store.jobs_of(id);
    bool done = jobs.ok() && !jobs->empty();
    if (jobs.ok())
      for (auto& j : *jobs) done = done && j.state != "queued" && j.state != "running";
    if (done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return *store.get(id);
}

// The deployment's log as text, a line per entry (or the store's error).
inline std::string log_of(Store& store, const std::string& id, int limit = 10000) {
  std::string out;
  auto lines = store.logs(id, 0, limit);
  if (!lines) return lines.error().message;
  for (auto& l : *lines) out += l.text + "\n";
  return out;
}

}  // namespace ads::test
