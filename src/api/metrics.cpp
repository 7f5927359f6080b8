#include "api/metrics.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <tuple>

namespace ads {
namespace {

// A label value as the format wants it: \ " and newline escaped.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

Result<std::string> metrics_text(Store& store, const Engine& engine) {
  auto counts = store.count_by_state();
  if (!counts) return counts.error();
  auto jobs = store.unfinished_jobs();
  if (!jobs) return jobs.error();
  std::ostringstream o;
  o << "# HELP ads_deployments Deployments in the store, by state.\n";
  o << "# TYPE ads_deployments gauge\n";
  for (State s : all_states()) {
    auto it = counts->find(to_string(s));
    o << "ads_deployments{state=\"" << label(to_string(s)) << "\"} " << (it == counts->end() ? 0 : it->second) << "\n";
  }
  int64_t queued = 0, running = 0;
  for (auto& j : *jobs) (j.state == "queued" ? queued : running) += 1;
  o << "# HELP ads_jobs_queued Jobs waiting for a worker (the job queue depth, all servers).\n";
  o << "# TYPE ads_jobs_queued gauge\n";
  o << "ads_jobs_queued " << queued << "\n";
  o << "# HELP ads_jobs_running Jobs being worked on (all servers).\n";
  o << "# TYPE ads_jobs_running gauge\n";
  o << "ads_jobs_running " << running << "\n";
  o << "# HELP ads_step_duration_seconds Time the steps of jobs took on this server.\n";
  o << "# TYPE ads_step_duration_seconds histogram\n";
  const auto& bounds = Engine::step_bounds();
  for (auto& [key, h] : engine.step_durations()) {
    std::string labels = "kind=\"" + label(key.first) + "\",step=\"" + label(key.second) + "\"";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
      cumulative += i < h.buckets.size() ? h.buckets[i] : 0;
      o << "ads_step_duration_seconds_bucket{" << labels << ",le=\"" << number(bounds[i]) << "\"} " << cumulative
        << "\n";
    }
    o << "ads_step_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} " << h.count << "\n";
    o << "ads_step_duration_seconds_sum{" << labels << "} " << number(h.sum) << "\n";
    o << "ads_step_duration_seconds_count{" << labels << "} " << h.count << "\n";
  }
  auto warm = store.warm_machines();
  if (!warm) return warm.error();
  std::map<std::tuple<std::string, std::string, std::string>, int> warm_count;  // (provider, os, state)
  for (const auto& [os, n] : engine.warm_wanted()) {
    warm_count[{engine.default_provider(), os, "ready"}] += 0;
    warm_count[{engine.default_provider(), os, "creating"}] += 0;
  }
  for (const auto& w : *warm) ++warm_count[{w.provider, w.os_key, w.state}];
  o << "# HELP ads_warm_machines Warm machines (made ahead with no lab, for deploys to claim), by provider, OS key "
       "and state (all servers).\n";
  o << "# TYPE ads_warm_machines gauge\n";
  for (const auto& [key, n] : warm_count)
    o << "ads_warm_machines{provider=\"" << label(std::get<0>(key)) << "\",os=\"" << label(std::get<1>(key))
      << "\",state=\"" << label(std::get<2>(key)) << "\"} " << n << "\n";
  o << "# HELP ads_warm_machines_wanted Warm machines this server keeps per OS key (its config's \"warm\").\n";
  o << "# TYPE ads_warm_machines_wanted gauge\n";
  for (const auto& [os, n] : engine.warm_wanted())
    o << "ads_warm_machines_wanted{provider=\"" << label(engine.default_provider()) << "\",os=\"" << label(os) << "\"} "
      << n << "\n";
  o << "# HELP ads_server_info The server that answered.\n";
  o << "# TYPE ads_server_info gauge\n";
  o << "ads_server_info{server_id=\"" << label(engine.server_id()) << "\"} 1\n";
  return o.str();
}

std::string http_metrics_text(const http::ServerStats& s) {
  std::ostringstream o;
  o << "# HELP ads_http_connections Connections of this server's HTTP listener: served in a normal slot, in a "
       "reserved slot, or waiting for one.\n";
  o << "# TYPE ads_http_connections gauge\n";
  o << "ads_http_connections{state=\"served\"} " << s.open - s.reserved_open << "\n";
  o << "ads_http_connections{state=\"reserved\"} " << s.reserved_open << "\n";
  o << "ads_http_connections{state=\"queued\"} " << s.queued << "\n";
  o << "# HELP ads_http_connections_accepted_total Connections this server has accepted.\n";
  o << "# TYPE ads_http_connections_accepted_total counter\n";
  o << "ads_http_connections_accepted_total " << s.accepted << "\n";
  o << "# HELP ads_http_refused_total Connections and requests this server refused or cut, by reason "
       "(docs/operators/limits.md).\n";
  o << "# TYPE ads_http_refused_total counter\n";
  o << "ads_http_refused_total{reason=\"per_address\"} " << s.refused_per_address << "\n";
  o << "ads_http_refused_total{reason=\"busy\"} " << s.refused_busy << "\n";
  o << "ads_http_refused_total{reason=\"queue_timeout\"} " << s.queue_timeouts << "\n";
  o << "ads_http_refused_total{reason=\"reserve\"} " << s.reserve_refusals << "\n";
  o << "ads_http_refused_total{reason=\"deadline\"} " << s.deadline_cuts << "\n";
  o << "# HELP ads_http_handler_errors_total Exceptions from handlers and streams (each answered 500 or cut short).\n";
  o << "# TYPE ads_http_handler_errors_total counter\n";
  o << "ads_http_handler_errors_total " << s.handler_errors << "\n";
  o << "# HELP ads_http_threads Connection threads of this server's HTTP listener: serving a connection, or idle "
       "and waiting for the next one (http.idle_threads).\n";
  o << "# TYPE ads_http_threads gauge\n";
  o << "ads_http_threads{state=\"serving\"} " << s.threads - std::min(s.threads, s.idle_threads) << "\n";
  o << "ads_http_threads{state=\"idle\"} " << s.idle_threads << "\n";
  return o.str();
}

void register_metrics(http::Server& server, Store& store, const Engine& engine,
                      const std::shared_ptr<RequestGuard>& guard, bool need_token) {
  server.route("GET", "/metrics", [&server, &store, &engine, guard, need_token](http::Request& req) {
    if (need_token) {
      // the API's own guard: a bad token here spends the same budget of the
      // client address as on any other route; every role includes viewer
      Caller caller;
      if (auto refused = guard->check(req, caller)) return std::move(*refused);
    }
    auto text = metrics_text(store, engine);
    if (!text) return http::Response::error(503, "unavailable", "cannot read the store: " + text.error().message);
    http::Response r;
    r.status = 200;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = std::move(text.value()) + http_metrics_text(server.stats());
    return r;
  });
}

}  // namespace ads
