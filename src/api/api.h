// The REST API of `ads serve` (/api/v1/...), on the shared HTTP server.
//   GET    /api/v1/health
//   POST   /api/v1/deployments              {"source","ref"?,"name"?,"provider"?} -> 202
//   GET    /api/v1/deployments              ?state=&name=&after=&limit=
//   GET    /api/v1/deployments/{id}         (+ "server_trouble" while the engine cannot reach its store)
//   GET    /api/v1/deployments/{id}/logs    ?after=SEQ&limit=N
//   DELETE /api/v1/deployments/{id}         -> 202 and the destroy job
//   POST   /api/v1/deployments/{id}/{op}    op: start, stop, restart, test, backup,
//                                           restore ({"backup": id}) -> 202 and the job
//   GET    /api/v1/deployments/{id}/jobs    the deployment's jobs
//   GET    /api/v1/deployments/{id}/backups time, size, checksum of each backup
//   GET    /api/v1/deployments/{id}/events  Server-Sent Events: log lines and state changes
//   GET    /api/v1/deployments/{id}/health  the agent's uptime, memory, disk, load (running only)
//   GET    /api/v1/jobs/{id}                (+ "server_trouble", the same)
//   GET    /api/v1/doctor                   machines and records that disagree (admin)
//   POST   /api/v1/prune                    retention of destroyed deployments now (admin)
//   GET    /api/v1/whoami | users | tokens | audit;  POST users | tokens | login;
//   PATCH  /api/v1/users/{name}             {"role"?,"password"?};  POST /api/v1/users/{name}/disable
//   DELETE /api/v1/tokens/{id}
// Limits (ApiLimits): requests per token, sign-ins and bad tokens per address,
// jobs under way per user; over one: 429 with Retry-After.
// Roles: GET needs viewer; deploying and operations need deployer (and the
// deployment must be the caller's or shared, unless admin); users, doctor and
// audit need admin. Every non-GET request is audited.
// Errors: 4xx/5xx with {"error":{"code","message","field"?}}.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "api/limits.h"
#include "core/deployment.h"
#include "engine/engine.h"
#include "http/server.h"
#include "store/store.h"

namespace ads {

// The public view of a deployment (never the secret): as JSON text appended
// to `out` (what lists use), or parsed from that text.
void append_deployment_json(std::string& out, const Deployment& d);
nlohmann::json deployment_json(const Deployment& d);
nlohmann::json log_json(const LogLine& l);
nlohmann::json job_json(const Job& j);
nlohmann::json backup_json(const Backup& b);

class Auth;
class RequestGuard;
// Registers the API's routes on `server`; every route but POST /api/v1/login
// needs a bearer token whose user has the route's role.
// Over a limit of `limits` a route answers 429 with Retry-After.
// Returns the routes' guard (authentication and limits, guard.h), for other
// routes on the same server that need a token (GET /metrics).
std::shared_ptr<RequestGuard> register_api(http::Server& server, Store& store, Engine& engine, Auth& auth,
                                           const ApiLimits& limits = {});

}  // namespace ads
