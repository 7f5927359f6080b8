// Deploy on git push (issue 17.3): the rules of a webhook delivery, pure (no
// I/O, no threads). A deployment that tracks a branch has a GitTrack; a
// push to that branch, delivered by a git host (GitHub, Gitea, Forgejo: the
// same headers and payload) signed with the track's secret, starts a release
// of the pushed commit, or is remembered as the pending commit while a
// release of the deployment is under way (coalescing: one release of the
// newest commit when it ends). The engine's git watch (src/engine/git_watch.cpp)
// starts that release and polls branches of hosts that cannot send webhooks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ads {

struct GitTrack {
  std::string deployment_id;
  std::string branch;          // "main" (no refs/heads/)
  std::string secret;          // the webhook's HMAC key, 64 hex characters (32 random bytes)
  int64_t poll_s = 0;          // 0: webhooks only
  std::string pending_commit;  // a pushed commit waiting for the release under way to end ("" none)
  int64_t polled_ms = 0;       // the last ls-remote of the branch (poll_s > 0)
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

// How many delivery ids a deployment keeps for refusing replays.
inline constexpr size_t kDeliveriesKept = 200;
// The shortest poll interval the API accepts (seconds).
inline constexpr int64_t kMinPollSeconds = 30;
inline constexpr int64_t kMaxPollSeconds = 7 * 86400;

// Whether `header` ("sha256=<64 hex>", the X-Hub-Signature-256 header) is the
// HMAC-SHA256 of `body` under `secret`; compared in constant time. An absent,
// malformed or other-algorithm header is false.
bool verify_hub_signature(std::string_view secret, std::string_view body, std::string_view header);
// "sha256=<hex>" of body under secret (what a git host sends; tests and docs).
std::string hub_signature(std::string_view secret, std::string_view body);

// What a push payload says.
struct GitPush {
  std::string branch;    // "" when ref is not a branch (a tag)
  std::string commit;    // "after": 40 lower-case hex
  bool deleted = false;  // the branch was deleted (after is all zeros)
};
// Parses the push event's JSON body: "ref" (string) and "after" (40 hex) are
// needed; anything else in the payload is ignored. "invalid" errors name the field.
Result<GitPush> parse_push(std::string_view body);

// A branch name a deployment may track: a valid git ref, without
// "refs/heads/" and at most 200 characters. "invalid" error with field "branch".
Status validate_branch(const std::string& branch);
// A delivery id header (X-GitHub-Delivery / X-Gitea-Delivery): 1-100
// characters of [A-Za-z0-9-_.].
bool valid_delivery_id(std::string_view id);

// What to do with a verified push to a tracked deployment.
enum class PushAction {
  kIgnoreBranch,   // another branch or a tag
  kIgnoreDeleted,  // the tracked branch was deleted
  kIgnoreServing,  // the commit is serving already and no release is under way
  kRelease,        // start a release of the commit now
  kCoalesce,       // a release is under way: remember the commit as pending
};
// `busy`: the deployment has a job queued or running. `serving`: its commit.
PushAction decide_push(const GitTrack& t, const GitPush& p, bool busy, const std::string& serving);
// The words of an ignored push for the answer and the audit.
std::string describe(PushAction a, const GitTrack& t, const GitPush& p);

// When the git watch should start a release of a pending commit: the
// deployment is idle (no job under way) and running, and the commit is not
// the serving one.
bool release_pending_now(const GitTrack& t, bool busy, bool running, const std::string& serving);

}  // namespace ads
