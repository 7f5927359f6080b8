// Deploy on git push, the API side (issue 17.3; rules in core/git_push.h,
// the release and the coalescing in engine/git_watch.cpp):
//   POST   /api/v1/hooks/git/{id}             a git host's push delivery (no bearer
//          token: the X-Hub-Signature-256 HMAC of the body with the track's secret
//          is the credential). 202 {"job"} a release started, 202 {"pending"} kept
//          for after the job under way, 200 {"ignored"} another branch, a deleted
//          branch, the serving commit or another event ("ping": {"pong"}),
//          401 no or bad signature, 404 no such deployment or one that tracks
//          nothing (the same answer), 409 a delivery id seen before (replay),
//          400 a bad payload or delivery id, 415 a body that is not JSON, 413
//          over the hook body limit, 429 over the address's budget of refused
//          deliveries. Every delivery is audited with the reason.
//   PUT    /api/v1/deployments/{id}/track     {"branch","poll_s"?,"new_secret"?} (owner or admin)
//          -> 200 {"branch","poll_s","hook_path","secret"?}: the secret is in the
//          answer when tracking starts and when new_secret is true, never else.
//   DELETE /api/v1/deployments/{id}/track     -> 200 {"untracked"} (404 when it tracks nothing)
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "api/limits.h"
#include "engine/engine.h"
#include "http/server.h"
#include "store/store.h"

namespace ads {

// The largest hook delivery taken (GitHub caps payloads at 25 MB; a push
// payload of a few hundred commits is well under this). Smaller than the
// server's max_body_bytes wins.
inline constexpr size_t kMaxHookBodyBytes = 1 << 20;

// The hook route (and a head check on the server for its body limit).
// Refused deliveries spend the client address's budget of failed
// authentications (limits.auth_failures_per_minute, shared through the store).
void register_git_hooks(http::Server& server, Store& store, Engine& engine, const ApiLimits& limits);

// Starts or changes tracking of `id` (already checked: exists, may be
// managed). `branch` and `poll_s` are validated here ("invalid", field
// "branch"/"poll_s"); a new secret is made when tracking starts or
// `new_secret`. Returns the answer's JSON.
Result<nlohmann::json> start_tracking(Store& store, const Engine& engine, const std::string& id,
                                      const std::string& branch, std::optional<int64_t> poll_s, bool new_secret);
// The public view of a track (never the secret).
nlohmann::json track_json(const GitTrack& t);
std::string hook_path(const std::string& id);

}  // namespace ads
