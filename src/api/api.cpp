#include "api/api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "api/audit.h"
#include "api/auth.h"
#include "api/git_hooks.h"
#include "api/guard.h"
#include "api/limits.h"
#include "core/id.h"
#include "core/json_text.h"
#include "core/names.h"
#include "core/source_policy.h"
#include "core/terminal.h"
#include "core/text.h"
#include "http/websocket.h"

namespace ads {
using http::Request;
using http::Response;
using nlohmann::json;

namespace {
std::string iso8601(int64_t ms) { return iso8601_utc(ms); }

int status_for(const Error& e) {
  if (e.code == "invalid") return 400;
  if (e.code == "forbidden") return 403;
  if (e.code == "not_found") return 404;
  if (e.code == "conflict") return 409;
  if (e.code == "unavailable" || e.code == "audit_unavailable" || e.code == "store_unavailable") return 503;
  if (e.code == "timeout") return 504;
  return 500;
}

Response too_many(const std::string& message, int64_t retry_after_s);

// "too_many" (the store refused a job over the caller's limit of jobs under
// way) is a 429 with a Retry-After, like the request rate limit.
Response from_error(const Error& e) {
  if (e.code == "too_many") return too_many(e.message, 5);
  Response r = Response::error(status_for(e), e.code, e.message, e.field);
  if (r.status == 503) r.headers.push_back({"Retry-After", std::to_string(RequestGuard::kStoreRetryAfterS)});
  return r;
}

// Parses a JSON object body; errors are responses.
std::optional<Response> parse_body(const Request& req, json& out) {
  std::string ct = req.header("content-type");
  std::string media = ct.substr(0, ct.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  for (auto& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (media != "application/json")  // "application/json; charset=utf-8" is fine, "application/jsonx" is not
    return Response::error(415, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)");
  out = json::parse(req.body, nullptr, false);
  if (out.is_discarded()) return Response::error(400, "invalid", "the body is not valid JSON");
  if (!out.is_object()) return Response::error(400, "invalid", "the body must be a JSON object");
  return std::nullopt;
}

std::optional<Response> get_string(const json& j, const char* key, bool required, std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return Response::error(400, "invalid", "is required", key);
    return std::nullopt;
  }
  if (!it->is_string()) return Response::error(400, "invalid", "must be a string", key);
  out = it->get<std::string>();
  return std::nullopt;
}

std::optional<Response> check_id(const std::string& id) {
  if (!is_valid_id(id)) return Response::error(404, "not_found", "no deployment " + id.substr(0, 64));
  return std::nullopt;
}

// 404 for no such deployment, 403 when the caller may not change it.
std::optional<Response> check_manage(Store& store, const Caller& caller, const std::string& id) {
  auto d = store.get(id);
  if (!d) return from_error(d.error());
  if (!Auth::can_manage(caller, *d))
    return Response::error(
        403, "forbidden",
        caller.user.name + " may not change deployment " + id + " (owned by " + d->owner + ", not shared)");
  return std::nullopt;
}

// Who a job on deployment `id` is charged to (the per-user limit of jobs under
// way): the deployment's owner, whose count it joins, whoever asks for it (an
// admin's destroy of someone else's deployment is not the admin's work).
std::string charged_to(Store& store, const Caller& caller, const std::string& id) {
  auto d = store.get(id);
  return d && !d->owner.empty() ? d->owner : caller.user.name;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Response too_many(const std::string& message, int64_t retry_after_s) {
  Response r = Response::error(429, "too_many_requests", message);
  r.headers.push_back({"Retry-After", std::to_string(retry_after_s)});
  return r;
}

Result<long long> int_param(const Request& req, const std::string& name, long long def, long long lo, long long hi) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return def;
  try {
    size_t used = 0;
    long long v = std::stoll(it->second, &used);
    if (used != it->second.size() || v < lo || v > hi) throw std::out_of_range("range");
    return v;
  } catch (...) {
    return Error::invalid(name, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
}
}  // namespace

void append_deployment_json(std::string& out, const Deployment& d) {
  // members in key order: the text is what a nlohmann::json object of them prints
  JsonObjectText o(out);
  o.str("address", d.address).str("commit", d.commit).str("created_at", iso8601(d.created_ms));
  if (d.state == State::kFailed) o.str("error", d.error);
  if (d.expires_ms > 0) o.str("expires_at", iso8601(d.expires_ms));  // destroyed then (ads lab try)
  if (d.state == State::kFailed) o.str("failed_step", d.failed_step);
  o.str("id", d.id);
  o.boolean("keep_failed", d.keep_failed);  // a throwaway lab's machine stays when it fails
  o.str("machine", d.machine).str("name", d.name).str("owner", d.owner).str("provider", d.provider).str("ref", d.ref);
  o.boolean("shared", d.shared);
  o.str("source", redact_source(d.source));  // a source recorded with credentials before they were refused
  o.str("stable_url", d.stable_url);         // through the reverse proxy; "" until published
  o.str("state", to_string(d.state));
  // Step number in the pipeline, for progress displays.
  const auto& p = pipeline();
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] != d.state) continue;
    JsonObjectText step(o.member("step"));
    step.integer("index", static_cast<int64_t>(i)).str("name", to_string(d.state));
    step.integer("of", static_cast<int64_t>(p.size() - 1));
    step.close();
  }
  o.str("updated_at", iso8601(d.updated_ms)).str("url", d.url);
  o.close();
}

json deployment_json(const Deployment& d) {
  std::string text;
  append_deployment_json(text, d);
  return json::parse(text);
}

// While this server's engine cannot work on jobs (its claims keep failing:
// the store is down, locked or full), what a client waiting on a job is told:
// {"message", "since"}.
std::optional<json> server_trouble(const Engine& engine) {
  auto t = engine.store_trouble();
  if (!t) return std::nullopt;
  return json{{"message", "the server cannot take up jobs: " + t->message}, {"since", iso8601(t->since_ms)}};
}

json job_json(const Job& j) {
  json out = {{"id", j.id},
              {"deployment", j.deployment_id},
              {"kind", j.kind},
              {"state", j.state},
              {"step", j.step},
              {"attempts", j.attempts},
              {"created_at", iso8601(j.created_ms)},
              {"updated_at", iso8601(j.updated_ms)}};
  json params = json::parse(j.params_json, nullptr, false);
  json result = json::parse(j.result_json, nullptr, false);
  out["params"] = params.is_discarded() ? json::object() : params;
  out["result"] = result.is_discarded() ? json::object() : result;
  if (!j.error.empty()) out["error"] = j.error;
  if (j.cancel_requested_ms != 0) out["cancel_requested_at"] = iso8601(j.cancel_requested_ms);
  return out;
}

json user_json(const User& u) {
  return {{"id", u.id},
          {"name", u.name},
          {"role", to_string(u.role)},
          {"created_at", iso8601(u.created_ms)},
          {"password", !u.password_hash.empty()},
          {"disabled", u.disabled()},
          {"oidc", u.bound()}};
}

json token_json(const Token& t) {
  json j = {{"id", t.id},
            {"user", t.user_id},
            {"name", t.name},
            {"created_at", iso8601(t.created_ms)},
            {"expires_at", t.expires_ms ? json(iso8601(t.expires_ms)) : json(nullptr)},
            {"revoked_at", t.revoked_ms ? json(iso8601(t.revoked_ms)) : json(nullptr)},
            {"session", t.session}};
  return j;
}

json backup_json(const Backup& b) {
  return {{"id", b.id},
          {"deployment", b.deployment_id},
          {"created_at", iso8601(b.created_ms)},
          {"size_bytes", b.size_bytes},
          {"sha256", b.sha256},
          {"snapshot", b.snapshot},
          {"commit", b.commit}};
}

// A release without its agent secret.
json release_json(const Release& r) {
  json out = {{"id", r.id},
              {"deployment", r.deployment_id},
              {"seq", r.seq},
              {"state", r.state},
              {"ref", r.ref},
              {"commit", r.commit},
              {"machine", r.machine},
              {"address", r.address},
              {"url", r.url},
              {"by", r.by},
              {"job", r.job_id},
              {"created_at", iso8601(r.created_ms)},
              {"updated_at", iso8601(r.updated_ms)}};
  if (!r.error.empty()) out["error"] = r.error;
  return out;
}

json log_json(const LogLine& l) {
  return {{"seq", l.seq}, {"time", iso8601(l.ts_ms)}, {"step", l.step}, {"stream", l.stream}, {"text", l.text}};
}

std::shared_ptr<RequestGuard> register_api(http::Server& server, Store& store, Engine& engine, Auth& auth,
                                           const ApiLimits& limits) {
  // Rates: per token for requests (this server's), per client address for
  // sign-in attempts and failed authentications (shared through the store by
  // every server on it: guessing passwords gets no faster with more
  // servers). They live as long as the routes.
  auto guard = std::make_shared<RequestGuard>(store, auth, limits);
  auto logins = std::make_shared<SharedLimiter>(store, "signin:", limits.auth_failures_per_minute / 60.0,
                                                limits.auth_failure_burst);
  // Password sign-ins per user name, whatever the address: a guess at one
  // account's password from many addresses. (Bad tokens need no such limit:
  // a token is 192 random bits, nobody guesses one; a limit per token would
  // only let anyone lock out its holder.)
  auto user_logins = std::make_shared<SharedLimiter>(store, "signin-user:", limits.user_sign_ins_per_hour / 3600.0,
                                                     limits.user_sign_in_burst);
  const int max_active = limits.active_jobs_per_user;
  const int64_t session_ttl_cap = limits.max_token_ttl_from_session_s;

  // The server's reserved connections (ServerOptions::reserved_connections)
  // serve requests that present credentials, and the health check: clients
  // holding every other connection (slowly, or without a token) do not shut
  // out those who can prove who they are. A bad token gets through to its 401
  // and spends the address's budget of failed authentications.
  server.set_reserve_filter(
      [](const Request& req) { return !req.header("authorization").empty() || req.path == "/api/v1/health"; });

  // Every route: authenticate, check the rate and the role, run, and audit
  // what changes things. The audit entry of a request that may change
  // something is written before its handler runs (kBeforeHandler), or by the
  // handler itself just before the change, once it knows the target and what
  // happens to it (kInHandler: users and tokens, through Caller::audit); when
  // it cannot be written the answer is 503 and nothing is changed. Refusals
  // are written once, after the answer.
  enum class AuditMode { kBeforeHandler, kInHandler };
  using Guarded = std::function<Response(Request&, const Caller&)>;
  auto route = [&server, &store, guard](const std::string& method, const std::string& pattern, Role need,
                                        const Guarded& h, AuditMode mode = AuditMode::kBeforeHandler) {
    server.route(method, pattern, [&store, guard, method, need, h, mode](Request& req) {
      Response r;
      std::string who = "anonymous";
      // a GET changes nothing, except one whose handler audits it (the
      // shell's websocket: a GET by the protocol's rule)
      const bool audited = method != "GET" || mode == AuditMode::kInHandler;
      AuditNote note(store,
                     AuditEntry{now_ms(), 0, "anonymous", method + " " + req.path,
                                req.param("id").empty() ? req.param("name") : req.param("id"), req.remote, 0, ""});
      Caller caller;
      if (auto refused = guard->check(req, caller)) {
        r = std::move(*refused);
        if (!caller.user.name.empty()) who = caller.user.name;  // over its token's rate
      } else if (who = caller.user.name; !role_allows(caller.user.role, need)) {
        r = Response::error(
            403, "forbidden",
            "this needs the " + to_string(need) + " role; " + who + " is " + to_string(caller.user.role));
      } else if (auto bad = std::find_if(req.params.begin(), req.params.end(),
                                         [](auto& p) { return !is_valid_utf8(p.second); });
                 bad != req.params.end()) {
        // a name or id from the path goes into answers and the audit: text only
        r = Response::error(400, "invalid", "is not valid UTF-8", bad->first);
      } else {
        if (audited) {
          note.set_user(who);
          caller.audit = &note;
        }
        Status st = audited && mode == AuditMode::kBeforeHandler ? note.begin() : Status::Ok();
        try {
          r = st ? h(req, caller) : audit_failed(st.error());
        } catch (const std::exception& e) {
          // answered here, so that the audit entry gets its status
          spdlog::error("{} {}: {}", method, req.path, e.what());
          r = Response::error(500, "internal", "internal error (logged by the server)");
        }
      }
      if (audited) {
        note.set_user(who);
        if (auto st = note.finish(r.status); !st) {
          if (!note.begun()) {
            // nothing was changed; a request that cannot be audited fails (a
            // 503 of its own, the store away, keeps its answer and Retry-After)
            if (r.status != 503) r = audit_failed(st.error());
          } else {
            spdlog::error("audit: entry of {} {} by {} has no status: {}", method, req.path, who, st.error().message);
          }
        }
      }
      return r;
    });
  };

  route("GET", "/api/v1/health", Role::kViewer, [](Request&, const Caller& caller) {
    return Response::json(200, json{{"status", "ok"}, {"service", "ads"}});
  });

  route("POST", "/api/v1/deployments", Role::kDeployer,
        [&engine, &store, max_active](Request& req, const Caller& caller) {
          json body;
          if (auto err = parse_body(req, body)) return *err;
          for (auto& [k, v] : body.items()) {
            if (k != "source" && k != "ref" && k != "name" && k != "provider" && k != "shared" && k != "track" &&
                k != "poll_s" && k != "keep_failed" && k != "ttl_s")
              return Response::error(
                  400, "invalid",
                  "is not a known field (source, ref, name, provider, shared, track, poll_s, keep_failed, ttl_s)", k);
          }
          // deploy on git push: the branch to track (git_hooks.h), checked before anything is made
          std::string track;
          std::optional<int64_t> poll_s;
          if (auto e = get_string(body, "track", false, track)) return *e;
          if (body.contains("poll_s")) {
            if (track.empty()) return Response::error(400, "invalid", "needs \"track\" (the branch to poll)", "poll_s");
            if (!body["poll_s"].is_number_integer())
              return Response::error(400, "invalid", "must be a whole number of seconds", "poll_s");
            poll_s = body["poll_s"].get<int64_t>();
          }
          if (body.contains("track")) {
            if (auto st = validate_branch(track); !st) return from_error(st.error());
            if (poll_s && *poll_s != 0 && (*poll_s < engine.min_poll_s() || *poll_s > kMaxPollSeconds))
              return Response::error(400, "invalid",
                                     "must be 0 or from " + std::to_string(engine.min_poll_s()) + " to " +
                                         std::to_string(kMaxPollSeconds) + " seconds",
                                     "poll_s");
          }
          DeployRequest dr;
          dr.idempotency_key = req.header("idempotency-key");
          dr.owner = caller.user.name;
          if (body.contains("shared")) {
            if (!body["shared"].is_boolean()) return Response::error(400, "invalid", "must be true or false", "shared");
            dr.shared = body["shared"].get<bool>();
          }
          // a throwaway lab (ads lab try): kept when it fails, destroyed after ttl_s
          if (body.contains("keep_failed")) {
            if (!body["keep_failed"].is_boolean())
              return Response::error(400, "invalid", "must be true or false", "keep_failed");
            dr.keep_failed = body["keep_failed"].get<bool>();
          }
          if (body.contains("ttl_s")) {
            if (!body["ttl_s"].is_number_integer() || body["ttl_s"].get<int64_t>() < kMinTtlSeconds ||
                body["ttl_s"].get<int64_t>() > kMaxTtlSeconds)
              return Response::error(400, "invalid",
                                     "must be a whole number of seconds from " + std::to_string(kMinTtlSeconds) +
                                         " to " + std::to_string(kMaxTtlSeconds) + " (7 days)",
                                     "ttl_s");
            dr.ttl_s = body["ttl_s"].get<int64_t>();
          }
          if (dr.keep_failed && dr.ttl_s == 0)  // a kept machine always goes in the end
            return Response::error(400, "invalid", "needs \"ttl_s\": a kept machine is removed when it expires",
                                   "keep_failed");
          if (auto e = get_string(body, "source", true, dr.source)) return *e;
          if (auto e = get_string(body, "ref", false, dr.ref)) return *e;
          if (!track.empty() && dr.ref.empty()) dr.ref = track;  // a tracked branch is deployed from that branch
          if (auto e = get_string(body, "name", false, dr.name)) return *e;
          if (auto e = get_string(body, "provider", false, dr.provider)) return *e;
          dr.admin = caller.user.role == Role::kAdmin;  // admins may deploy from any path on the server
          dr.max_active_jobs =
              max_active;  // checked by the store as it records the job (a replayed request is not new work)
          auto d = engine.submit(dr);
          if (!d) return from_error(d.error());
          bool replay = !dr.idempotency_key.empty() && d->state != State::kAccepted;
          json out = deployment_json(*d);
          if (!track.empty() && !replay) {
            auto t = start_tracking(store, engine, d->id, track, poll_s, false);
            if (!t) return from_error(t.error());
            out["track"] = *t;  // with the hook's secret, shown this once
          }
          Response r = Response::json(202, out);
          if (replay) r.headers.push_back({"Idempotent-Replayed", "true"});
          r.headers.push_back({"Location", "/api/v1/deployments/" + d->id});
          return r;
        });

  route("GET", "/api/v1/deployments", Role::kViewer, [&store](Request& req, const Caller& caller) {
    ListQuery q;
    auto limit = int_param(req, "limit", 100, 1, 1000);
    if (!limit) return from_error(limit.error());
    q.limit = static_cast<size_t>(*limit);
    q.after_id = req.query_or("after", "");
    q.name = req.query_or("name", "");
    std::string state = req.query_or("state", "");
    if (!state.empty()) {
      q.state = state_from_string(state);
      if (!q.state) return Response::error(400, "invalid", "unknown state \"" + state + "\"", "state");
    }
    auto list = store.list(q);
    if (!list) return from_error(list.error());
    // written as text, not as a json tree: the hottest answer (core/json_text.h)
    std::string body;
    body.reserve(list->size() * 700 + 64);
    JsonObjectText out(body);
    auto& arr = out.member("deployments");
    arr += '[';
    for (size_t i = 0; i < list->size(); ++i) {
      if (i > 0) arr += ',';
      append_deployment_json(arr, (*list)[i]);
    }
    arr += ']';
    if (list->size() == q.limit) out.str("next", list->back().id);
    else out.null("next");
    out.close();
    return Response::json(200, std::move(body));
  });

  route("GET", "/api/v1/deployments/{id}", Role::kViewer, [&store, &engine](Request& req, const Caller& caller) {
    std::string id = req.param("id");
    if (auto e = check_id(id)) return *e;
    auto d = store.get(id);
    if (!d) return from_error(d.error());
    json out = deployment_json(*d);
    if (auto t = server_trouble(engine)) out["server_trouble"] = *t;
    if (auto t = store.get_track(id)) out["track"] = track_json(*t);
    return Response::json(200, out);
  });

  // Deploy on git push (git_hooks.h): track a branch, or stop.
  route("PUT", "/api/v1/deployments/{id}/track", Role::kDeployer,
        [&engine, &store](Request& req, const Caller& caller) {
          std::string id = req.param("id");
          if (auto e = check_id(id)) return *e;
          if (auto e = check_manage(store, caller, id)) return *e;
          json body;
          if (auto err = parse_body(req, body)) return *err;
          for (auto& [k, v] : body.items())
            if (k != "branch" && k != "poll_s" && k != "new_secret")
              return Response::error(400, "invalid", "is not a known field (branch, poll_s, new_secret)", k);
          std::string branch;
          if (auto e = get_string(body, "branch", true, branch)) return *e;
          std::optional<int64_t> poll_s;
          if (body.contains("poll_s")) {
            if (!body["poll_s"].is_number_integer())
              return Response::error(400, "invalid", "must be a whole number of seconds", "poll_s");
            poll_s = body["poll_s"].get<int64_t>();
          }
          bool new_secret = false;
          if (body.contains("new_secret")) {
            if (!body["new_secret"].is_boolean())
              return Response::error(400, "invalid", "must be true or false", "new_secret");
            new_secret = body["new_secret"].get<bool>();
          }
          auto d = store.get(id);
          if (!d) return from_error(d.error());
          if (d->state == State::kDestroyed)
            return Response::error(409, "conflict", "deployment " + id + " is destroyed; there is nothing to release");
          auto t = start_tracking(store, engine, id, branch, poll_s, new_secret);
          if (!t) return from_error(t.error());
          if (caller.audit)
            caller.audit->describe(id, "track " + branch + (t->contains("secret") ? ", new secret" : ""));
          return Response::json(200, *t);
        });

  route("DELETE", "/api/v1/deployments/{id}/track", Role::kDeployer, [&store](Request& req, const Caller& caller) {
    std::string id = req.param("id");
    if (auto e = check_id(id)) return *e;
    if (auto e = check_manage(store, caller, id)) return *e;
    auto t = store.get_track(id);
    if (!t) return from_error(t.error());
    if (auto st = store.delete_track(id); !st) return from_error(st.error());
    return Response::json(200, json{{"untracked", t->branch}});
  });

  route("GET", "/api/v1/deployments/{id}/logs", Role::kViewer, [&store](Request& req, const Caller& caller) {
    std::string id = req.param("id");
    if (auto e = check_id(id)) return *e;
    auto d = store.get(id);
    if (!d) return from_error(d.error());
    auto after = int_param(req, "after", 0, 0, INT64_MAX);
    if (!after) return from_error(after.error());
    auto limit = int_param(req, "limit", 1000, 1, 10000);
    if (!limit) return from_error(limit.error());
    auto lines = store.logs(id, *after, static_cast<size_t>(*limit));
    if (!lines) return from_error(lines.error());
    json arr = json::array();
    for (auto& l : *lines) arr.push_back(log_json(l));
    int64_t next = lines->empty() ? *after : lines->back().seq;
    return Response::json(200, json{{"lines", arr}, {"next", next}, {"state", to_string(d->state)}});
  });

  route("DELETE", "/api/v1/deployments/{id}", Role::kDeployer,
        [&engine, &store, max_active](Request& req, const Caller& caller) {
          std::string id = req.param("id");
          if (auto e = check_id(id)) return *e;
          if (auto e = check_manage(store, caller, id)) return *e;
          auto j = engine.operate(id, "destroy", {}, {charged_to(store, caller, id), max_active});
          if (!j) return from_error(j.error());
          auto d = store.get(id);
          json out = d ? deployment_json(*d) : json::object();
          out["job"] = job_json(*j);
          return Response::json(202, out);
        });

  // (before the generic POST .../{op} below: the first route that matches wins)
  // A command in a running lab's machine, through its provider (the agent
  // runs none from a request): the lab's owner and admins only, audited with
  // the command. {"command": ["ls", "-l"], "timeout_s": 60}.
  route(
      "POST", "/api/v1/deployments/{id}/exec", Role::kDeployer,
      [&store, &engine](Request& req, const Caller& caller) {
        std::string id = req.param("id");
        if (auto e = check_id(id)) return *e;
        json body;
        if (auto err = parse_body(req, body)) return *err;
        for (auto& [k, v] : body.items())
          if (k != "command" && k != "timeout_s") return Response::error(400, "invalid", "is not a known field", k);
        if (!body.contains("command") || !body["command"].is_array() || body["command"].empty() ||
            body["command"].size() > 256)
          return Response::error(400, "invalid", "must be a list of 1 to 256 strings: the program and its arguments",
                                 "command");
        std::vector<std::string> argv;
        size_t total = 0;
        for (auto& a : body["command"]) {
          if (!a.is_string()) return Response::error(400, "invalid", "every item must be a string", "command");
          std::string s = a.get<std::string>();
          if (s.find('\0') != std::string::npos || !is_valid_utf8(s))
            return Response::error(400, "invalid", "an item holds a NUL byte or is not UTF-8", "command");
          total += s.size();
          argv.push_back(std::move(s));
        }
        if (argv[0].empty()) return Response::error(400, "invalid", "the program (the first item) is empty", "command");
        if (total > 64 * 1024) return Response::error(400, "invalid", "is longer than 64 KiB in all", "command");
        int timeout_s = 60;
        if (body.contains("timeout_s")) {
          const json& t = body["timeout_s"];
          // longer work is an action of the lab: this holds one of the server's request threads
          if (!t.is_number_integer() || t.get<int64_t>() < 1 || t.get<int64_t>() > 600)
            return Response::error(400, "invalid", "must be a whole number of seconds from 1 to 600", "timeout_s");
          timeout_s = static_cast<int>(t.get<int64_t>());
        }
        auto d = store.get(id);
        if (!d) return from_error(d.error());
        if (caller.user.role != Role::kAdmin && d->owner != caller.user.name)
          return Response::error(403, "forbidden",
                                 caller.user.name + " may not run commands in deployment " + id + " (only its owner, " +
                                     d->owner + ", and admins may)");
        // the audit entry, with the command, is written before the command runs;
        // if it cannot be, nothing runs
        std::string shown;
        for (auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
        if (caller.audit) {
          caller.audit->describe(id, "exec " + printable(shown, 1000));
          if (auto st = caller.audit->begin(); !st) return audit_failed(st.error());
        }
        auto r = engine.exec(id, argv, timeout_s, caller.user.name);
        if (!r && r.error().code == "unsupported") return Response::error(409, "unsupported", r.error().message);
        if (!r) return from_error(r.error());
        return Response::json(200, json{{"exit_code", r->exit_code},
                                        {"stdout", r->out},
                                        {"stderr", r->err},
                                        {"timed_out", r->exit_code == 124},
                                        {"truncated", r->truncated}});
      },
      AuditMode::kInHandler);

  // `ads shell`: the login shell of a running lab's machine on a terminal,
  // over a websocket (http/websocket.h; GET by the protocol's rule), through
  // its provider: binary messages are the terminal's bytes both ways; the
  // client may send {"resize": {"cols": C, "rows": R}} as text; the last
  // message is {"exit_code": N} (or {"error": ...}) as text. ?cols=&rows=
  // &term= give the terminal at the start. The lab's owner and admins only,
  // audited; at most limits.shells open at once, limits.shells_per_user of
  // them by one user.
  struct ShellSlots {
    std::mutex mu;
    int total = 0;
    std::map<std::string, int> by_user;
  };
  auto open_shells = std::make_shared<ShellSlots>();
  route(
      "GET", "/api/v1/deployments/{id}/shell", Role::kDeployer,
      [&store, &engine, open_shells, max_shells = limits.shells, per_user = limits.shells_per_user](
          Request& req, const Caller& caller) {
        std::string id = req.param("id");
        if (auto e = check_id(id)) return *e;
        auto d = store.get(id);
        if (!d) return from_error(d.error());
        if (caller.user.role != Role::kAdmin && d->owner != caller.user.name)
          return Response::error(403, "forbidden",
                                 caller.user.name + " may not open a shell in deployment " + id + " (only its owner, " +
                                     d->owner + ", and admins may)");
        if (!http::is_websocket_request(req)) {
          Response r =
              Response::error(426, "upgrade_required", "this address is a websocket (ads shell): ask for the upgrade");
          r.headers.push_back({"Upgrade", "websocket"});
          return r;
        }
        TerminalSize size;
        auto cols = int_param(req, "cols", 80, 1, kMaxTerminalSide),
             rows = int_param(req, "rows", 24, 1, kMaxTerminalSide);
        if (!cols) return from_error(cols.error());
        if (!rows) return from_error(rows.error());
        size.cols = static_cast<int>(*cols);
        size.rows = static_cast<int>(*rows);
        size.term = req.query_or("term", "xterm");
        if (!valid_term_name(size.term))
          return Response::error(400, "invalid", "must be 1 to 64 letters, digits or ._+- (a terminal's name)", "term");
        const std::string user = caller.user.name;
        {
          std::lock_guard<std::mutex> lk(open_shells->mu);
          if (open_shells->total >= max_shells) {
            Response r = Response::error(503, "busy", std::to_string(max_shells) + " shells are open: try again later");
            r.headers.push_back({"Retry-After", "5"});
            return r;
          }
          int& mine = open_shells->by_user[user];
          if (mine >= per_user) {
            if (mine == 0) open_shells->by_user.erase(user);
            return too_many("you have " + std::to_string(mine) + " shells open, the most one user may: close one first",
                            5);
          }
          ++mine;
          ++open_shells->total;
        }
        // counts the shell until the answer (and its session) is gone
        std::shared_ptr<void> slot(nullptr, [open_shells, user](void*) {
          std::lock_guard<std::mutex> lk(open_shells->mu);
          --open_shells->total;
          if (--open_shells->by_user[user] <= 0) open_shells->by_user.erase(user);
        });
        // the audit entry is written before the shell opens; if it cannot be, none does
        if (caller.audit) {
          caller.audit->describe(id, "shell");
          if (auto st = caller.audit->begin(); !st) return audit_failed(st.error());
        }
        auto opened = engine.open_shell(id, size, caller.user.name);
        if (!opened && opened.error().code == "unsupported")
          return Response::error(409, "unsupported", opened.error().message);
        if (!opened) return from_error(opened.error());
        std::shared_ptr<ShellSession> session = std::move(opened.value());
        Response r;
        r.status = 101;
        r.stream = [session, slot](http::StreamWriter& w) {
          auto* ws = dynamic_cast<http::WebSocket*>(&w);
          if (!ws) return;
          http::SocketRelay relay;
          relay.fd = session->fd();
          relay.on_text = [&session](const std::string& text, std::string* why) {
            json m = json::parse(text, nullptr, false);
            const json* rs = m.is_object() && m.size() == 1 && m.contains("resize") ? &m["resize"] : nullptr;
            auto number = [&](const char* k) {
              return rs && rs->is_object() && rs->contains(k) && (*rs)[k].is_number_integer() ? (*rs)[k].get<int64_t>()
                                                                                              : int64_t{0};
            };
            // (a number outside int's range is out of the size's range too)
            auto cols = std::clamp<int64_t>(number("cols"), 0, kMaxTerminalSide + 1),
                 rows = std::clamp<int64_t>(number("rows"), 0, kMaxTerminalSide + 1);
            if (!rs || rs->size() != 2 || !check_terminal_size(static_cast<int>(cols), static_cast<int>(rows))) {
              *why = R"(a text message must be {"resize": {"cols": 1-1000, "rows": 1-1000}})";
              return false;
            }
            TerminalSize to;
            to.cols = static_cast<int>(cols);
            to.rows = static_cast<int>(rows);
            (void)session->resize(to);  // a size the machine missed is no reason to end the shell
            return true;
          };
          relay.closing_text = [&session] {
            auto code = session->exit_code(std::chrono::seconds(10));
            return code ? json{{"exit_code", *code}}.dump() : json{{"error", code.error().message}}.dump();
          };
          ws->relay(relay);
        };
        return r;
      },
      AuditMode::kInHandler);

  route("POST", "/api/v1/deployments/{id}/{op}", Role::kDeployer,
        [&engine, &store, max_active](Request& req, const Caller& caller) {
          std::string id = req.param("id"), op = req.param("op");
          if (auto e = check_id(id)) return *e;
          if (auto e = check_manage(store, caller, id)) return *e;
          // the operation's job kind, and the fields it may be given
          static const std::map<std::string, std::pair<std::string, std::vector<std::string>>> ops = {
              {"start", {"start", {}}},
              {"stop", {"stop", {}}},
              {"restart", {"restart", {}}},
              {"test", {"test", {}}},
              {"backup", {"backup", {}}},
              {"restore", {"restore", {"backup"}}},
              {"releases", {"release", {"ref"}}},
              {"rollback", {"rollback", {"release"}}},
              {"check", {"check", {"ref", "as_deployed", "diff"}}}};
          auto it = ops.find(op);
          if (it == ops.end())
            return Response::error(404, "not_found",
                                   "no operation " + op.substr(0, 32) +
                                       " (start, stop, restart, test, backup, restore, releases, rollback, check)");
          const auto& [kind, fields] = it->second;
          json params = json::object();
          if (!req.body.empty()) {
            if (auto err = parse_body(req, params)) return *err;
            for (auto& [k, v] : params.items())
              if (std::find(fields.begin(), fields.end(), k) == fields.end())
                return Response::error(400, "invalid", "is not a known field", k);
          }
          if (kind == "check" && params.contains("diff") && !params["diff"].is_boolean())
            return Response::error(400, "invalid", "must be true or false", "diff");
          if (kind == "check" && params.contains("as_deployed")) {
            if (!params["as_deployed"].is_boolean())
              return Response::error(400, "invalid", "must be true or false", "as_deployed");
            if (params["as_deployed"].get<bool>() && params.contains("ref"))
              return Response::error(400, "invalid",
                                     "cannot go with as_deployed (the lab as deployed has its own commit)", "ref");
          }
          if ((kind == "release" || kind == "check") && params.contains("ref")) {
            if (!params["ref"].is_string()) return Response::error(400, "invalid", "must be a string", "ref");
            if (auto st = validate_git_ref(params["ref"].get<std::string>()); !st) return from_error(st.error());
          }
          if (kind == "check" && params.contains("ref")) {
            auto d = store.get(id);
            if (!d) return from_error(d.error());
            if (d->commit.empty() && d->state == State::kRunning)
              return Response::error(400, "invalid",
                                     "the lab's source is a plain directory, which has no refs; leave ref out to "
                                     "check the directory as it is now",
                                     "ref");
          }
          if (kind == "rollback" && params.contains("release")) {
            if (!params["release"].is_string() || !is_valid_id(params["release"].get<std::string>()))
              return Response::error(400, "invalid", "must be a release id (see GET .../releases)", "release");
            auto r = store.get_release(params["release"].get<std::string>());
            if (!r || r->deployment_id != id)
              return Response::error(404, "not_found",
                                     "deployment " + id + " has no release " + params["release"].get<std::string>());
            if (r->state != "kept" || r->machine.empty())
              return Response::error(409, "conflict",
                                     "release #" + std::to_string(r->seq) + " is " + r->state +
                                         (r->state == "serving" ? " already" : ": its machine is gone") +
                                         "; only a kept release can be rolled back to",
                                     "release");
          }
          if (kind == "release" || kind == "rollback") params["by"] = caller.user.name;
          auto j = engine.operate(id, kind, params, {charged_to(store, caller, id), max_active});
          if (!j) return from_error(j.error());
          Response r = Response::json(202, job_json(*j));
          r.headers.push_back({"Location", "/api/v1/jobs/" + j->id});
          return r;
        });

  route("GET", "/api/v1/deployments/{id}/jobs", Role::kViewer, [&store](Request& req, const Caller& caller) {
    std::string id = req.param("id");
    if (auto e = check_id(id)) return *e;
    auto d = store.get(id);
    if (!d) return from_error(d.error());
    auto jobs = store.jobs_of(id);
    if (!jobs) return from_error(jobs.error());
    json arr = json::array();
    for (auto& j : *jobs) arr.push_back(job_json(j));
    return Response::json(200, json{{"jobs", arr}});
  });

  route("GET", "/api/v1/deployments/{id}/releases", Role::kViewer, [&store](Request& req, const Caller& caller) {
    std::string id = req.param("id");
    if (auto e = check_id(id)) return *e;
    auto d = store.get(id);
    if (!d) return from_error(d.error());
    auto rs = store.releases_of(id);
    if (!rs) return from_error(rs.error());
    json arr = json::array();
    for (auto& r : *rs) arr.push_back(release_json(r));
    if (rs->empty() && !d->machine.empty()) {
      // before its first release a deployment is release #1 (recorded when the second starts)
      arr.push_back({{"seq", 1},
                     {"state", "serving"},
                     {"ref", d->ref},
                     {"commit", d->commit},
                     {"machine", d->machine},
                     {"address", d->address},
                     {"url", d->url},
                     {"by", d->owner},
                     {"created_at", iso8601(d->created_ms)}});
    }
    return Response::json(200, json{{"releases", arr}});
  });

  route("GET", "/api/v1/deployments/{id}/backups", Role::kViewer, [&store](Request& req, const Caller& caller) {
    std::string id = req.param("id");
    if (auto e = check_id(id)) return *e;
    auto d = store.get(id);
    if (!d) return from_error(d.error());
    auto bs = store.backups_of(id);
    if (!bs) return from_error(bs.error());
    json arr = json::array();
    for (auto& b : *bs) arr.push_back(backup_json(b));
    return Response::json(200, json{{"backups", arr}});
  });

  // Deletes one backup: its provider snapshot, its archive and its record (a job).
  route("DELETE", "/api/v1/deployments/{id}/backups/{backup}", Role::kDeployer,
        [&engine, &store, max_active](Request& req, const Caller& caller) {
          std::string id = req.param("id"), backup = req.param("backup");
          if (auto e = check_id(id)) return *e;
          if (auto e = check_manage(store, caller, id)) return *e;
          if (!is_valid_id(backup)) return Response::error(404, "not_found", "no backup " + backup.substr(0, 64));
          auto b = store.get_backup(backup);
          if (!b || b->deployment_id != id)
            return Response::error(404, "not_found", "deployment " + id + " has no backup " + backup);
          auto j = engine.operate(id, "delete-backup", json{{"backup", backup}},
                                  {charged_to(store, caller, id), max_active});
          if (!j) return from_error(j.error());
          Response r = Response::json(202, job_json(*j));
          r.headers.push_back({"Location", "/api/v1/jobs/" + j->id});
          return r;
        });

  // The agent's figures for a running deployment (uptime, memory, disk, load).
  route("GET", "/api/v1/deployments/{id}/health", Role::kViewer, [&engine](Request& req, const Caller& caller) {
    std::string id = req.param("id");
    if (auto e = check_id(id)) return *e;
    auto h = engine.health(id);
    if (!h) return from_error(h.error());
    json out = *h;
    out["deployment"] = id;
    out["checked_at"] = iso8601(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    return Response::json(200, out);
  });

  route("GET", "/api/v1/jobs/{id}", Role::kViewer, [&store, &engine](Request& req, const Caller& caller) {
    std::string id = req.param("id");
    if (!is_valid_id(id)) return Response::error(404, "not_found", "no job " + id.substr(0, 64));
    auto j = store.get_job(id);
    if (!j) return from_error(j.error());
    json out = job_json(*j);
    if (auto t = server_trouble(engine)) out["server_trouble"] = *t;
    return Response::json(200, out);
  });

  // Cancel of a job (issue 14.4): the deployment's owner (or any deployer
  // of a shared one) and admins. A queued job ends at once; a running one is
  // stopped by the server that runs it (its command killed in the machine):
  // 202 with the job as it is now, then follow GET /api/v1/jobs/{id}.
  route("POST", "/api/v1/jobs/{id}/cancel", Role::kDeployer, [&engine, &store](Request& req, const Caller& caller) {
    std::string id = req.param("id");
    if (!is_valid_id(id)) return Response::error(404, "not_found", "no job " + id.substr(0, 64));
    auto j = store.get_job(id);
    if (!j) return from_error(j.error());
    if (auto e = check_manage(store, caller, j->deployment_id)) return *e;
    auto c = engine.cancel(id, "asked by " + caller.user.name);
    if (!c) return from_error(c.error());
    Response r = Response::json(202, job_json(*c));
    r.headers.push_back({"Location", "/api/v1/jobs/" + c->id});
    return r;
  });

  // What each provider can put a lab on: OS key -> image, and whether the
  // platform has it (`ads images`).
  route("GET", "/api/v1/images", Role::kViewer, [&engine](Request&, const Caller&) {
    json arr = json::array();
    for (auto& p : engine.images()) {
      json j = {{"provider", p.provider}, {"default", p.is_default}};
      if (p.error) {
        j["error"] = {{"code", p.error->code}, {"message", p.error->message}};
      } else {
        json imgs = json::array();
        for (auto& i : p.images) {
          json ij = {{"os", i.os_key}, {"image", i.image}, {"state", i.state}};
          if (!i.note.empty()) ij["note"] = i.note;
          imgs.push_back(ij);
        }
        j["images"] = imgs;
      }
      arr.push_back(j);
    }
    return Response::json(200, json{{"providers", arr}});
  });

  route("GET", "/api/v1/doctor", Role::kAdmin, [&engine](Request&, const Caller& caller) {
    auto drift = engine.reconcile();
    if (!drift) return from_error(drift.error());
    json arr = json::array();
    for (auto& d : *drift) {
      json p = {
          {"provider", d.provider}, {"machine", d.machine}, {"deployment", d.deployment_id}, {"problem", d.problem}};
      if (!d.fix.empty()) p["fix"] = d.fix;  // the operation on the deployment that fixes it
      arr.push_back(p);
    }
    // machines made ahead (EngineOptions::warm): no problem, but no lab's either
    auto warm = engine.warm_machines();
    if (!warm) return from_error(warm.error());
    json wa = json::array();
    const int64_t now = now_ms();
    for (auto& w : *warm)
      wa.push_back({{"provider", w.provider},
                    {"machine", w.name},
                    {"os", w.os_key},
                    {"state", w.state},
                    {"address", w.address},
                    {"age_s", std::max<int64_t>(0, (now - w.created_ms) / 1000)}});
    return Response::json(200, json{{"problems", arr}, {"warm", wa}});
  });

  // Retention now (the server also runs it every hour): {"older_than_days": N}
  // or the configured retention_days.
  route("POST", "/api/v1/prune", Role::kAdmin, [&engine](Request& req, const Caller&) {
    int days = -1;
    if (!req.body.empty()) {
      json body;
      if (auto err = parse_body(req, body)) return *err;
      for (auto& [k, v] : body.items())
        if (k != "older_than_days") return Response::error(400, "invalid", "is not a known field", k);
      if (body.contains("older_than_days")) {
        const json& v = body["older_than_days"];
        if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 36500)
          return Response::error(400, "invalid", "must be a whole number of days from 1 to 36500", "older_than_days");
        days = static_cast<int>(v.get<int64_t>());
      }
    }
    auto r = engine.prune(days);
    if (!r) return from_error(r.error());
    return Response::json(200, json{{"deployments", r->deployments}, {"jobs", r->jobs}, {"log_lines", r->log_lines}});
  });

  route("GET", "/api/v1/whoami", Role::kViewer, [](Request&, const Caller& caller) {
    json j = user_json(caller.user);
    j["token"] = token_json(caller.token);
    return Response::json(200, j);
  });

  route("GET", "/api/v1/users", Role::kAdmin, [&store](Request&, const Caller&) {
    auto us = store.users();
    if (!us) return from_error(us.error());
    json arr = json::array();
    for (auto& u : *us) arr.push_back(user_json(u));
    return Response::json(200, json{{"users", arr}});
  });

  route(
      "POST", "/api/v1/users", Role::kAdmin,
      [&auth](Request& req, const Caller& caller) {
        json body;
        if (auto err = parse_body(req, body)) return *err;
        for (auto& [k, v] : body.items())
          if (k != "name" && k != "role" && k != "password")
            return Response::error(400, "invalid", "is not a known field", k);
        std::string name, role, password;
        if (auto e = get_string(body, "name", true, name)) return *e;
        if (auto e = get_string(body, "role", true, role)) return *e;
        if (auto e = get_string(body, "password", false, password)) return *e;
        auto r = role_from_string(role);
        if (!r) return Response::error(400, "invalid", "must be admin, deployer or viewer", "role");
        auto u = auth.create_user(name, *r, password, caller.audit);
        if (!u) return from_error(u.error());
        return Response::json(201, user_json(*u));
      },
      AuditMode::kInHandler);

  // Role and/or password of a user (admins); anyone may change their own password.
  route(
      "PATCH", "/api/v1/users/{name}", Role::kViewer,
      [&auth](Request& req, const Caller& caller) {
        std::string name = req.param("name");
        json body;
        if (auto err = parse_body(req, body)) return *err;
        for (auto& [k, v] : body.items())
          if (k != "role" && k != "password")
            return Response::error(400, "invalid", "is not a known field (role, password)", k);
        if (body.empty()) return Response::error(400, "invalid", "give a role, a password or both");
        bool self = name == caller.user.name;
        if (caller.user.role != Role::kAdmin && (!self || body.contains("role")))
          return Response::error(403, "forbidden", "only an admin may change other users or roles");
        std::optional<Role> role;
        std::optional<std::string> password;
        std::string s;
        if (auto e = get_string(body, "role", false, s)) return *e;
        if (body.contains("role")) {
          role = role_from_string(s);
          if (!role) return Response::error(400, "invalid", "must be admin, deployer or viewer", "role");
        }
        if (body.contains("password")) {
          if (auto e = get_string(body, "password", true, s)) return *e;
          password = s;
        }
        auto u = auth.update_user(name, role, password, caller.audit);
        if (!u) return from_error(u.error());
        return Response::json(200, user_json(*u));
      },
      AuditMode::kInHandler);

  // Disables a user: no sign-in of any kind, every token revoked, no password. The record stays.
  route(
      "POST", "/api/v1/users/{name}/disable", Role::kAdmin,
      [&auth](Request& req, const Caller& caller) {
        auto n = auth.disable_user(req.param("name"), caller.audit);
        if (!n) return from_error(n.error());
        return Response::json(200, json{{"name", req.param("name")}, {"revoked_tokens", *n}, {"disabled", true}});
      },
      AuditMode::kInHandler);

  // Forgets the OpenID identity a user is bound to (the next verified sign-in with its address binds it again).
  route(
      "POST", "/api/v1/users/{name}/unbind", Role::kAdmin,
      [&auth](Request& req, const Caller& caller) {
        auto u = auth.unbind_user(req.param("name"), caller.audit);
        if (!u) return from_error(u.error());
        return Response::json(200, user_json(*u));
      },
      AuditMode::kInHandler);

  // Enables a disabled user again (it signs in with what it has, or gets a new password or token).
  route(
      "POST", "/api/v1/users/{name}/enable", Role::kAdmin,
      [&auth](Request& req, const Caller& caller) {
        auto u = auth.enable_user(req.param("name"), caller.audit);
        if (!u) return from_error(u.error());
        return Response::json(200, user_json(*u));
      },
      AuditMode::kInHandler);

  // A new token for the caller, or (admins) for {"user": name}. The secret is
  // in this answer only. Made with a session token (a browser sign-in), it
  // lasts at most `max_token_ttl_from_session_s` (also the default then).
  route(
      "POST", "/api/v1/tokens", Role::kViewer,
      [&auth, &store, session_ttl_cap](Request& req, const Caller& caller) {
        json body;
        if (auto err = parse_body(req, body)) return *err;
        for (auto& [k, v] : body.items())
          if (k != "name" && k != "user" && k != "ttl_s")
            return Response::error(400, "invalid", "is not a known field", k);
        std::string name, user_name;
        if (auto e = get_string(body, "name", true, name)) return *e;
        if (auto e = get_string(body, "user", false, user_name)) return *e;
        int64_t ttl = 0;
        if (body.contains("ttl_s")) {
          if (!body["ttl_s"].is_number_integer() || body["ttl_s"].get<int64_t>() < 0)
            return Response::error(400, "invalid", "must be a whole number of seconds (0: never expires)", "ttl_s");
          ttl = body["ttl_s"].get<int64_t>();
        } else if (caller.token.session) {
          ttl = session_ttl_cap;
        }
        if (caller.token.session && (ttl == 0 || ttl > session_ttl_cap))
          return Response::error(
              400, "invalid",
              "a token made from a sign-in session lasts at most " + std::to_string(session_ttl_cap) +
                  " s (limits.max_token_ttl_from_session_s); ask for less, or make it with an API token",
              "ttl_s");
        User owner = caller.user;
        if (!user_name.empty() && user_name != caller.user.name) {
          if (caller.user.role != Role::kAdmin)
            return Response::error(403, "forbidden", "only an admin may make tokens for other users");
          auto u = store.get_user_by_name(user_name);
          if (!u) return Response::error(400, "invalid", "no user named " + user_name, "user");
          owner = *u;
        }
        auto t = auth.issue_token(owner, name, ttl, caller.audit);
        if (!t) return from_error(t.error());
        json j = token_json(t->first);
        j["secret"] = t->second;
        return Response::json(201, j);
      },
      AuditMode::kInHandler);

  route("GET", "/api/v1/tokens", Role::kViewer, [&store](Request& req, const Caller& caller) {
    std::string user_id = caller.user.id;
    std::string who = req.query_or("user", "");
    if (!who.empty() && who != caller.user.name) {
      if (caller.user.role != Role::kAdmin)
        return Response::error(403, "forbidden", "only an admin may list other users' tokens");
      auto u = store.get_user_by_name(who);
      if (!u) return Response::error(400, "invalid", "no user named " + who, "user");
      user_id = u->id;
    }
    auto ts = store.tokens_of(user_id);
    if (!ts) return from_error(ts.error());
    json arr = json::array();
    for (auto& t : *ts) arr.push_back(token_json(t));
    return Response::json(200, json{{"tokens", arr}});
  });

  route(
      "DELETE", "/api/v1/tokens/{id}", Role::kViewer,
      [&store, &auth](Request& req, const Caller& caller) {
        std::string id = req.param("id");
        if (!is_valid_id(id)) return Response::error(404, "not_found", "no token " + id.substr(0, 64));
        auto t = store.get_token(id);
        if (!t) return from_error(t.error());
        if (t->user_id != caller.user.id && caller.user.role != Role::kAdmin)
          return Response::error(403, "forbidden", "only an admin may revoke other users' tokens");
        auto revoked = auth.revoke_token(id, caller.audit);
        if (!revoked) return from_error(revoked.error());
        return Response::json(200, token_json(*revoked));
      },
      AuditMode::kInHandler);

  // Sign-out of a browser session: revokes the caller's token if a sign-in
  // made it (password or OpenID Connect), never an API token.
  route(
      "POST", "/api/v1/logout", Role::kViewer,
      [&auth](Request&, const Caller& caller) {
        auto revoked = auth.end_session(caller, caller.audit);
        if (!revoked) return from_error(revoked.error());
        return Response::json(200, json{{"revoked", *revoked}, {"token", caller.token.id}});
      },
      AuditMode::kInHandler);

  route("GET", "/api/v1/audit", Role::kAdmin, [&store](Request& req, const Caller&) {
    auto after = int_param(req, "after", 0, 0, INT64_MAX);
    if (!after) return from_error(after.error());
    auto limit = int_param(req, "limit", 1000, 1, 10000);
    if (!limit) return from_error(limit.error());
    auto es = store.audit(*after, static_cast<size_t>(*limit));
    if (!es) return from_error(es.error());
    json arr = json::array();
    for (auto& e : *es)
      arr.push_back({{"seq", e.seq},
                     {"time", iso8601(e.ts_ms)},
                     {"user", e.user},
                     {"action", e.action},
                     {"target", e.target},
                     {"remote", e.remote},
                     {"status", e.status ? json(e.status)
                                         : json(nullptr)},  // null: written before the change, no answer recorded
                     {"detail", e.detail}});
    // what was recorded came from requests (paths, names): never let a bad byte fail the answer
    return Response::json(200, json{{"entries", arr}}.dump(-1, ' ', false, json::error_handler_t::replace));
  });

  // Git push deliveries (no token: the signature is the credential).
  register_git_hooks(server, store, engine, limits);

  // Password login (no token needed): a session token that expires in 12 hours.
  server.route("POST", "/api/v1/login", [&auth, &store, logins, user_logins](Request& req) {
    json body;
    Response r;
    std::string name, password;
    int64_t wait_s = 0;
    AuditNote note(store, AuditEntry{now_ms(), 0, "anonymous", "POST /api/v1/login", "", req.remote, 0, ""});
    if (!logins->take(address_key(req.remote), now_ms(), &wait_s))  // every attempt counts, before any check
      r = too_many("too many sign-in attempts from " + req.remote, wait_s);
    else if (auto err = parse_body(req, body)) r = *err;
    else if (auto e = get_string(body, "name", true, name)) r = *e;
    else if (auto e2 = get_string(body, "password", true, password)) r = *e2;
    else if (!user_logins->take(Auth::hash_secret(name), now_ms(), &wait_s))  // and per name, from every address
      r = too_many("too many sign-in attempts for this user name; wait and try again", wait_s);
    else {
      note.set_user(name.substr(0, 100));
      auto t = auth.login(name, password, &note);
      if (!t) {
        r = t.error().code == "unauthorized" ? Response::error(401, "unauthorized", t.error().message)
                                             : from_error(t.error());
      } else {
        json j = token_json(t->first);
        j["secret"] = t->second;
        r = Response::json(201, j);
      }
    }
    note.set_user(name.empty() ? "anonymous" : name.substr(0, 100));
    if (!note.begun()) note.describe(name.substr(0, 100), "");
    if (auto st = note.finish(r.status); !st) {
      if (!note.begun()) r = audit_failed(st.error());
      else spdlog::error("audit: the sign-in of {} has no status: {}", name.substr(0, 100), st.error().message);
    }
    return r;
  });

  // Server-Sent Events: `log` events (id = the line's seq, so Last-Event-ID
  // resumes) and `state` events; the stream ends when the client leaves, or
  // with ?until=settled once the deployment has settled with no job under way.
  route("GET", "/api/v1/deployments/{id}/events", Role::kViewer, [&store](Request& req, const Caller& caller) {
    std::string id = req.param("id");
    if (auto e = check_id(id)) return *e;
    auto d = store.get(id);
    if (!d) return from_error(d.error());
    int64_t after = 0;
    std::string last_id = req.header("last-event-id");
    if (!last_id.empty()) {
      try {
        after = std::stoll(last_id);
      } catch (...) {
        return Response::error(400, "invalid", "Last-Event-ID must be a log sequence number", "Last-Event-ID");
      }
    }
    bool until_settled = req.query_or("until", "") == "settled";
    Response r;
    r.content_type = "text/event-stream";
    r.headers.push_back({"Cache-Control", "no-cache"});
    r.stream = [&store, id, after, until_settled](http::StreamWriter& w) mutable {
      std::string last_state;
      int idle = 0;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
      while (std::chrono::steady_clock::now() < deadline) {
        auto lines = store.logs(id, after, 500);
        if (!lines) return;
        for (auto& l : *lines) {
          if (!w.write("id: " + std::to_string(l.seq) + "\nevent: log\ndata: " +
                       log_json(l).dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"))
            return;
          after = l.seq;
        }
        auto cur = store.get(id);
        if (!cur) return;
        std::string state = to_string(cur->state);
        if (state != last_state) {
          if (!w.write("event: state\ndata: " +
                       deployment_json(*cur).dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"))
            return;
          last_state = state;
        }
        if (lines->empty()) {
          if (until_settled && is_settled(cur->state)) {
            bool busy = false;
            auto jobs = store.jobs_of(id);
            if (jobs)
              for (auto& j : *jobs) busy |= j.state == "queued" || j.state == "running";
            if (!busy) return;
          }
          // a comment now and then keeps proxies from closing the stream and
          // tells us when the client has gone
          if (++idle % 20 == 0 && !w.write(": keep-alive\n\n")) return;
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
      }
    };
    return r;
  });
  return guard;
}

}  // namespace ads
