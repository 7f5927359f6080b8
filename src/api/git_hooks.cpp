#include "api/git_hooks.h"

#include <spdlog/spdlog.h>

#include "agent/protocol.h"
#include "api/audit.h"
#include "core/id.h"
#include "core/text.h"

namespace ads {
using http::Request;
using http::Response;
using nlohmann::json;

namespace {
constexpr const char* kHookPrefix = "/api/v1/hooks/git/";

int64_t now_ms() { return audit_now_ms(); }

// The first of the headers a git host sends for the same thing (GitHub's
// name first; Gitea and Forgejo send both theirs and GitHub's).
std::string first_header(const Request& req, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    std::string v = req.header(n);
    if (!v.empty()) return v;
  }
  return "";
}

Response too_many(const std::string& message, int64_t retry_after_s) {
  Response r = Response::error(429, "too_many_requests", message);
  r.headers.push_back({"Retry-After", std::to_string(retry_after_s)});
  return r;
}

bool is_json(const Request& req) {
  std::string ct = req.header("content-type");
  std::string media = ct.substr(0, ct.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  for (auto& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return media == "application/json";
}
}  // namespace

std::string hook_path(const std::string& id) { return kHookPrefix + id; }

json track_json(const GitTrack& t) {
  json j = {{"branch", t.branch}, {"poll_s", t.poll_s}, {"hook_path", hook_path(t.deployment_id)}};
  j["pending_commit"] = t.pending_commit.empty() ? json(nullptr) : json(t.pending_commit);
  return j;
}

Result<json> start_tracking(Store& store, const Engine& engine, const std::string& id, const std::string& branch,
                            std::optional<int64_t> poll_s, bool new_secret) {
  if (auto st = validate_branch(branch); !st) return st.error();
  if (poll_s && *poll_s != 0 && (*poll_s < engine.min_poll_s() || *poll_s > kMaxPollSeconds))
    return Error::invalid("poll_s", "must be 0 (webhooks only) or from " + std::to_string(engine.min_poll_s()) +
                                        " to " + std::to_string(kMaxPollSeconds) + " seconds");
  GitTrack t;
  auto old = store.get_track(id);
  if (old) t = *old;
  else if (old.error().code != "not_found") return old.error();
  const bool fresh = !old || new_secret;
  t.deployment_id = id;
  if (t.branch != branch) t.pending_commit.clear();  // a commit of the old branch is not released
  t.branch = branch;
  if (poll_s) t.poll_s = *poll_s;
  if (fresh) t.secret = agent::random_hex(32);
  t.updated_ms = now_ms();
  if (!old) t.created_ms = t.updated_ms;
  if (auto st = store.put_track(t); !st) return st.error();
  json out = track_json(t);
  if (fresh) out["secret"] = t.secret;
  return out;
}

void register_git_hooks(http::Server& server, Store& store, Engine& engine, const ApiLimits& limits) {
  auto refusals = std::make_shared<SharedLimiter>(store, "hookfail:", limits.auth_failures_per_minute / 60.0,
                                                  limits.auth_failure_burst);
  const int max_active = limits.active_jobs_per_user;

  // A declared body over the hook limit is refused (and audited) before it is read.
  server.set_head_check([&store](Request& head, size_t* body_limit) -> std::optional<Response> {
    if (head.path.rfind(kHookPrefix, 0) != 0) return std::nullopt;
    *body_limit = std::min(*body_limit, kMaxHookBodyBytes);
    std::string len = head.header("content-length");
    size_t declared = 0;
    try {
      declared = len.empty() ? 0 : std::stoull(len);
    } catch (...) {
      return std::nullopt;  // the server answers a bad Content-Length itself
    }
    if (declared <= *body_limit) return std::nullopt;
    Response r =
        Response::error(413, "too_large", "a hook delivery may be at most " + std::to_string(*body_limit) + " bytes");
    std::string id = head.path.substr(std::string(kHookPrefix).size(), 64);
    AuditNote note(store, AuditEntry{now_ms(), 0, "git-hook", "POST " + head.path.substr(0, 200), id, head.remote, 0,
                                     "refused: body of " + std::to_string(declared) + " bytes over the limit"});
    (void)note.finish(r.status);
    return r;
  });

  server.route("POST", "/api/v1/hooks/git/{id}", [&store, &engine, refusals, max_active](Request& req) {
    const std::string id = req.param("id");
    AuditNote note(store, AuditEntry{now_ms(), 0, "git-hook", "POST " + req.path.substr(0, 200),
                                     valid_utf8(id.substr(0, 64)), req.remote, 0, ""});
    Response r;
    std::string reason;
    // a refusal of something that may be an attack: it spends the address's budget
    auto refuse = [&](Response resp, const std::string& why) {
      int64_t wait_s = 0;
      reason = "refused: " + why;
      if (!refusals->take(address_key(req.remote), now_ms(), &wait_s))
        resp = too_many("too many refused hook deliveries from " + req.remote, wait_s);
      r = std::move(resp);
    };
    const Response unknown =
        Response::error(404, "not_found", "no git hook for deployment " + valid_utf8(id.substr(0, 64)));
    [&] {
      if (!is_valid_id(id)) return refuse(unknown, "no such deployment");
      auto t = store.get_track(id);
      if (!t && t.error().code != "not_found") {
        r = Response::error(503, "store_unavailable", t.error().message);
        r.headers.push_back({"Retry-After", "5"});
        reason = "store: " + t.error().message;
        return;
      }
      auto d = t ? store.get(id) : Result<Deployment>(Error::make("not_found", ""));
      if (!t || !d || d->state == State::kDestroyed)
        return refuse(unknown, t ? "deployment destroyed" : "tracks no branch");
      // GitHub's header; Gitea and Forgejo send it too, and also the bare hex
      // of the same HMAC in X-Gitea-Signature (older Gitea, Gogs: only that)
      std::string sig = req.header("x-hub-signature-256");
      if (sig.empty()) {
        std::string bare = first_header(req, {"x-gitea-signature", "x-gogs-signature"});
        if (!bare.empty()) sig = "sha256=" + bare;
      }
      if (sig.empty())
        return refuse(Response::error(401, "unauthorized", "no X-Hub-Signature-256 header (set the webhook's secret)"),
                      "no signature");
      if (!verify_hub_signature(t->secret, req.body, sig))
        return refuse(
            Response::error(401, "unauthorized", "X-Hub-Signature-256 does not match the body and this hook's secret"),
            "bad signature");
      // signed by whoever holds the secret from here on
      if (!is_json(req)) {
        r = Response::error(415, "unsupported_media_type", "set the webhook's content type to application/json");
        reason = "refused: content type " + valid_utf8(req.header("content-type").substr(0, 100));
        return;
      }
      const std::string event = first_header(req, {"x-github-event", "x-gitea-event", "x-gogs-event"});
      const std::string delivery = first_header(req, {"x-github-delivery", "x-gitea-delivery", "x-gogs-delivery"});
      if (!valid_delivery_id(delivery)) {
        r = Response::error(400, "invalid",
                            "a delivery needs an X-GitHub-Delivery (or X-Gitea-Delivery) id of 1-100 "
                            "letters, digits, '-', '_' or '.'",
                            "X-GitHub-Delivery");
        reason = "refused: no or bad delivery id";
        return;
      }
      // The delivery id is a header, outside the signature: whoever saw a
      // delivery could send its body again under a new id (and so release an
      // older commit again). The body's hash is remembered too; two real
      // pushes never have the same body (before, after, timestamps differ).
      auto fresh = store.note_delivery(id, delivery, now_ms(), 2 * kDeliveriesKept);
      if (fresh && *fresh) {
        fresh = store.note_delivery(id, "body:" + agent::sha256_hex(req.body), now_ms(), 2 * kDeliveriesKept);
        if (fresh && !*fresh) reason = "refused: replay of an earlier delivery's body under the new id " + delivery;
      }
      if (!fresh) {
        r = Response::error(503, "store_unavailable", fresh.error().message);
        r.headers.push_back({"Retry-After", "5"});
        reason = "store: " + fresh.error().message;
        return;
      }
      if (!*fresh) {
        r = Response::error(409, "conflict", "delivery " + delivery + " was received before (a replay)",
                            "X-GitHub-Delivery");
        if (reason.empty()) reason = "refused: replay of delivery " + delivery;
        return;
      }
      if (event == "ping") {
        r = Response::json(200, json{{"pong", true}});
        reason = "ping " + delivery;
        return;
      }
      if (event != "push") {
        r = Response::json(200,
                           json{{"ignored", "event " + valid_utf8(event.substr(0, 64)) + " (only push is acted on)"}});
        reason = "ignored: event " + valid_utf8(event.substr(0, 64));
        return;
      }
      auto p = parse_push(req.body);
      if (!p) {
        r = Response::error(400, p.error().code, p.error().message, p.error().field);
        reason = "refused: " + p.error().message;
        return;
      }
      // the change is recorded before it is made
      note.describe(id, "push " + delivery + " of " + p->commit + " to " + valid_utf8(p->branch));
      if (auto st = note.begin(); !st) {
        r = audit_failed(st.error());
        return;
      }
      auto out = engine.push(id, *p, "git-push", {d->owner, max_active});
      if (!out) {
        const Error& e = out.error();
        int status = e.code == "conflict"      ? 409
                     : e.code == "too_many"    ? 429
                     : e.code == "not_found"   ? 404
                     : e.code == "unavailable" ? 503
                                               : 500;
        r = Response::error(status, e.code, e.message, e.field);
        reason = "push " + delivery + " of " + p->commit + ": " + e.message;
        return;
      }
      reason = std::string(out->job                               ? "release"
                           : out->action == PushAction::kCoalesce ? "pending"
                                                                  : "ignored") +
               ": push " + delivery + " of " + p->commit + ": " + out->message;
      if (out->job) {
        r = Response::json(202, json{{"release", out->message}, {"job", out->job->id}, {"commit", p->commit}});
        r.headers.push_back({"Location", "/api/v1/jobs/" + out->job->id});
      } else if (out->action == PushAction::kCoalesce) {
        r = Response::json(202, json{{"pending", p->commit}, {"message", out->message}});
      } else {
        r = Response::json(200, json{{"ignored", out->message}});
      }
    }();
    note.describe(valid_utf8(id.substr(0, 64)), reason);
    if (auto st = note.finish(r.status); !st) {
      if (!note.begun()) r = audit_failed(st.error());
      else spdlog::error("audit: the hook delivery for {} has no status: {}", id.substr(0, 64), st.error().message);
    }
    return r;
  });
}

}  // namespace ads
