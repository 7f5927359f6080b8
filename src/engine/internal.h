// Small helpers shared by the engine's files (not part of its interface).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/protocol.h"
#include "core/deployment.h"
#include "core/log_cap.h"
#include "core/result.h"

namespace ads::engine_detail {

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
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

// The backup a restore or delete-backup job names ("" if none).
inline std::string backup_param(const Job& job) {
  nlohmann::json params = nlohmann::json::parse(job.params_json, nullptr, false);
  return params.is_object() ? params.value("backup", "") : "";
}

}  // namespace ads::engine_detail
