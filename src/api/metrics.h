// GET /metrics: Prometheus text exposition format 0.0.4.
//   ads_deployments{state="..."}          gauge, one sample per state (0 included)
//   ads_jobs_queued                       gauge, jobs waiting for a worker (all servers)
//   ads_jobs_running                      gauge, jobs being worked on (all servers)
//   ads_step_duration_seconds{kind,step}  histogram of the steps this server ran
//   ads_server_info{server_id}            gauge 1, which server answered
//   ads_http_connections{state}           gauge: served, reserved, queued (this server's HTTP listener)
//   ads_http_connections_accepted_total   counter
//   ads_http_refused_total{reason}        counter: per_address, busy, queue_timeout, reserve, deadline
//   ads_http_handler_errors_total         counter: exceptions answered 500 or streams cut short
// Store counts cover every server sharing the store; step durations are this
// process's own. With need_token (the default) the route needs a bearer token
// of any role (viewer or above), like every other GET, checked by the API's
// guard (guard.h: a bad token counts against the client address's budget, the
// token's request rate applies); without it, anyone who reaches the port may
// read the figures (no secrets or names are in them).
#pragma once

#include <memory>
#include <string>

#include "api/auth.h"
#include "api/guard.h"
#include "engine/engine.h"
#include "http/server.h"
#include "store/store.h"

namespace ads {

// The exposition text, from the store's counts and the engine's histograms.
Result<std::string> metrics_text(Store& store, const Engine& engine);
// The HTTP server's part of it (ServerStats).
std::string http_metrics_text(const http::ServerStats& stats);

// `guard`: the one register_api returned (required when need_token).
void register_metrics(http::Server& server, Store& store, const Engine& engine,
                      const std::shared_ptr<RequestGuard>& guard, bool need_token);

}  // namespace ads
