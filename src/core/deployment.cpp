#include "core/deployment.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <utility>

namespace ads {
namespace {
constexpr std::array<std::pair<State, const char*>, 14> kNames{{
    {State::kAccepted, "accepted"},
    {State::kFetching, "fetching"},
    {State::kValidating, "validating"},
    {State::kProvisioning, "provisioning"},
    {State::kStartingAgent, "starting_agent"},
    {State::kUploading, "uploading"},
    {State::kInstalling, "installing"},
    {State::kStarting, "starting"},
    {State::kVerifying, "verifying"},
    {State::kRunning, "running"},
    {State::kFailed, "failed"},
    {State::kDestroying, "destroying"},
    {State::kDestroyed, "destroyed"},
    {State::kStopped, "stopped"},
}};
}  // namespace

std::string to_string(State s) {
  for (auto& [st, name] : kNames)
    if (st == s) return name;
  return "unknown";
}

std::optional<State> state_from_string(const std::string& s) {
  for (auto& [st, name] : kNames)
    if (s == name) return st;
  return std::nullopt;
}

std::vector<State> all_states() {
  std::vector<State> out;
  out.reserve(kNames.size());
  for (auto& [st, name] : kNames) out.push_back(st);
  return out;
}

const std::vector<State>& pipeline() {
  static const std::vector<State> p = {
      State::kAccepted,  State::kFetching,   State::kValidating, State::kProvisioning, State::kStartingAgent,
      State::kUploading, State::kInstalling, State::kStarting,   State::kVerifying,    State::kRunning};
  return p;
}

bool is_settled(State s) {
  return s == State::kRunning || s == State::kFailed || s == State::kDestroyed || s == State::kStopped;
}

const std::vector<std::string>& job_kinds() {
  static const std::vector<std::string> k = {"deploy",  "start",   "stop",          "restart", "test",     "backup",
                                             "restore", "destroy", "delete-backup", "release", "rollback", "check"};
  return k;
}

bool is_job_kind(const std::string& k) {
  const auto& all = job_kinds();
  return std::find(all.begin(), all.end(), k) != all.end();
}

bool can_transition(State from, State to) {
  const auto& p = pipeline();
  auto fi = std::find(p.begin(), p.end(), from);
  auto ti = std::find(p.begin(), p.end(), to);
  bool working = fi != p.end() && from != State::kRunning;
  if (working && ti != p.end() && ti == fi + 1) return true;
  if (working && to == State::kFailed) return true;
  if (working && from != State::kAccepted && to == State::kAccepted) return true;  // a cut-off deploy starts again
  if ((from == State::kRunning || from == State::kFailed || from == State::kStopped) && to == State::kDestroying)
    return true;
  if (from == State::kRunning && to == State::kStopped) return true;
  if (from == State::kStopped && to == State::kRunning) return true;
  if (from == State::kDestroyed && to == State::kAccepted) return true;  // restore into a new machine
  if (from == State::kDestroying && (to == State::kDestroyed || to == State::kFailed)) return true;
  return false;
}

std::string iso8601_utc(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

}  // namespace ads
