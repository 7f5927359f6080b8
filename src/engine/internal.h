// Small helpers shared by the engine's files (not part of its interface).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/protocol.h"
#include "core/deployment.h"
#include "core/labspec.h"
#include "core/log_cap.h"
#include "core/result.h"

namespace ads::engine_detail {

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::string file_sha256(const std::string& data) { return agent::sha256_hex(data); }

// A step that failed, with what went wrong (the job's error).
inline Error failed(std::string message) { return Error::make("failed", std::move(message)); }

// Failures worth another try: the platform or the network was briefly away.
inline bool transient(const Error& e) { return e.code == "unavailable" || e.code == "timeout"; }

// The log cap of the job the calling worker thread runs (Engine::log sends
// that deployment's lines through it); nullptr outside a job. Set for a
// job's life by JobLogScope (runner.cpp).
struct JobLogCap {
  std::string deployment_id;
  LogCap cap;
};
JobLogCap*& current_job_log_cap();

// A string parameter of a job ("" if it has none): e.g. the backup a
// restore or delete-backup job names, the ref of a release.
inline std::string string_param(const Job& job, const char* key) {
  nlohmann::json params = nlohmann::json::parse(job.params_json, nullptr, false);
  return params.is_object() && params.contains(key) && params[key].is_string() ? params[key].get<std::string>() : "";
}
inline std::string backup_param(const Job& job) { return string_param(job, "backup"); }

// Where a lab on `address` answers its HTTP check (its spec's port and path).
inline std::string lab_url(const std::string& address, const LabSpec& spec) {
  return "http://" + address + (spec.http_port == 80 ? "" : ":" + std::to_string(spec.http_port)) + spec.http_path;
}

// A working directory this process holds while it works in it: an exclusive
// flock on the directory itself, which the kernel releases when the process
// ends, kill -9 included (cleanup.cpp). A directory nobody holds is a
// leftover of a process that ended mid-way.
class DirHold {
 public:
  explicit DirHold(const std::filesystem::path& dir);
  ~DirHold();
  DirHold(const DirHold&) = delete;
  DirHold& operator=(const DirHold&) = delete;
  bool held() const { return fd_ >= 0; }
  int error() const { return error_; }  // errno when not held

 private:
  int fd_ = -1;
  int error_ = 0;
};

}  // namespace ads::engine_detail
