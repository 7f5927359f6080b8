#include "cli/config.h"

#include <fstream>
#include <optional>

namespace ads::cli {
using nlohmann::json;

namespace {
// {"kind":"sqlite","path":P} or {"kind":"postgres","url":U[,"connections":N]}
// -> a store URL (and the PostgreSQL pool size).
Status store_from_object(const json& v, std::string& out, size_t& connections) {
  auto str = [&](const char* key) -> std::optional<std::string> {
    auto it = v.find(key);
    if (it == v.end() || !it->is_string() || it->get<std::string>().empty()) return std::nullopt;
    return it->get<std::string>();
  };
  auto kind = str("kind");
  for (auto& [key, val] : v.items()) {
    if (key != "kind" && key != "path" && key != "url" && key != "connections")
      return Error::invalid("store." + key, "is not a known store setting (kind, path, url, connections)");
  }
  auto c = v.find("connections");
  if (kind == "sqlite") {
    if (c != v.end())
      return Error::invalid("store.connections", "is a postgres store setting (SQLite has one connection per server)");
    auto path = str("path");
    if (!path) return Error::invalid("store.path", "is required for the sqlite store (a file path)");
    out = "sqlite://" + *path;
    return Status::Ok();
  }
  if (kind == "postgres") {
    auto url = str("url");
    if (!url || (url->rfind("postgresql://", 0) != 0 && url->rfind("postgres://", 0) != 0))
      return Error::invalid("store.url", "is required for the postgres store: postgresql://USER@HOST:PORT/DB");
    if (c != v.end()) {
      if (!c->is_number_integer() || c->get<int64_t>() < 1 || c->get<int64_t>() > 64)
        return Error::invalid("store.connections", "must be an integer from 1 to 64 (connections per server)");
      connections = c->get<size_t>();
    }
    out = *url;
    return Status::Ok();
  }
  return Error::invalid("store.kind", "must be \"sqlite\" or \"postgres\"");
}

Status load_limits(const json& v, ApiLimits& l) {
  if (!v.is_object()) return Error::invalid("limits", "must be an object");
  for (auto& [k, x] : v.items()) {
    std::string field = "limits." + k;
    if (k == "active_jobs_per_user") {
      if (!x.is_number_integer() || x.get<int64_t>() < 1 || x.get<int64_t>() > 100000)
        return Error::invalid(field, "must be an integer from 1 to 100000");
      l.active_jobs_per_user = x.get<int>();
      continue;
    }
    if (k == "max_token_ttl_from_session_s") {
      if (!x.is_number_integer() || x.get<int64_t>() < 60 || x.get<int64_t>() > 100LL * 365 * 86400)
        return Error::invalid(field, "must be a whole number of seconds from 60 to 100 years");
      l.max_token_ttl_from_session_s = x.get<int64_t>();
      continue;
    }
    double* out = k == "requests_per_second"        ? &l.requests_per_second
                  : k == "request_burst"            ? &l.request_burst
                  : k == "auth_failures_per_minute" ? &l.auth_failures_per_minute
                  : k == "auth_failure_burst"       ? &l.auth_failure_burst
                  : k == "user_sign_ins_per_hour"   ? &l.user_sign_ins_per_hour
                  : k == "user_sign_in_burst"       ? &l.user_sign_in_burst
                  : k == "oidc_sign_ins_per_minute" ? &l.oidc_sign_ins_per_minute
                  : k == "oidc_sign_in_burst"       ? &l.oidc_sign_in_burst
                                                    : nullptr;
    if (!out) return Error::invalid(field, "is not a known limit");
    if (!x.is_number() || !(x.get<double>() > 0) || x.get<double>() > 1e9)
      return Error::invalid(field, "must be a number above 0");
    *out = x.get<double>();
  }
  if (l.request_burst < 1 || l.auth_failure_burst < 1 || l.user_sign_in_burst < 1 || l.oidc_sign_in_burst < 1)
    return Error::invalid("limits", "bursts must be at least 1");
  return Status::Ok();
}
}  // namespace

Status load_config_file(const std::string& path, ServeConfig& cfg) {
  std::ifstream in(path);
  if (!in) return Error::invalid("config", "cannot read " + path);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::invalid("config", path + " is not a JSON object");
  for (auto& [k, v] : j.items()) {
    auto want_string = [&](std::string& out) -> Status {
      if (!v.is_string()) return Error::invalid(k, "must be a string");
      out = v.get<std::string>();
      return Status::Ok();
    };
    Status st;
    if (k == "listen") st = want_string(cfg.listen);
    else if (k == "data_dir") st = want_string(cfg.data_dir);
    else if (k == "store" && v.is_object()) st = store_from_object(v, cfg.store, cfg.store_connections);
    else if (k == "store") st = want_string(cfg.store);
    else if (k == "server_id") st = want_string(cfg.server_id);
    else if (k == "lease_ms") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1000 || v.get<int64_t>() > 600000)
        return Error::invalid(k, "must be an integer from 1000 to 600000 (milliseconds)");
      cfg.lease_ms = v.get<int>();
    } else if (k == "metrics_need_token") {
      if (!v.is_boolean()) return Error::invalid(k, "must be true or false");
      cfg.metrics_need_token = v.get<bool>();
    }
    else if (k == "agent_binary") st = want_string(cfg.agent_binary);
    else if (k == "default_provider") st = want_string(cfg.default_provider);
    else if (k == "workers") {
      if (!v.is_number_integer() || v.get<int>() < 1 || v.get<int>() > 64)
        return Error::invalid(k, "must be an integer from 1 to 64");
      cfg.workers = v.get<int>();
    } else if (k == "keep_failed") {
      if (!v.is_boolean()) return Error::invalid(k, "must be true or false");
      cfg.keep_failed = v.get<bool>();
    } else if (k == "deploy_attempts") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 10)
        return Error::invalid(k, "must be an integer from 1 (a deploy cut off by a stopped server fails) to 10");
      cfg.deploy_attempts = v.get<int>();
    } else if (k == "keep_backups") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 10000)
        return Error::invalid(k, "must be an integer from 0 (keep every backup) to 10000");
      cfg.keep_backups = v.get<int>();
    } else if (k == "tls") {
      st = parse_tls_config(v, cfg.tls);
    } else if (k == "oidc") {
      auto o = parse_oidc_settings(v);
      if (!o) return o.error();
      cfg.oidc = std::move(o.value());
    } else if (k == "limits") {
      st = load_limits(v, cfg.limits);
    } else if (k == "providers") {
      if (!v.is_object()) return Error::invalid(k, "must be an object of provider settings");
      cfg.providers = v;
    } else {
      return Error::invalid(k, "is not a known setting");
    }
    if (!st) return st;
  }
  return Status::Ok();
}

Status parse_tls_config(const json& v, TlsConfig& out) {
  if (!v.is_object()) return Error::invalid("tls", "must be an object: {\"mode\", \"cert\", \"key\", \"names\"}");
  for (auto& [k, x] : v.items()) {
    std::string f = "tls." + k;
    if (k == "mode") {
      if (!x.is_string() || (x != "auto" && x != "on" && x != "off"))
        return Error::invalid(f, "must be \"auto\", \"on\" or \"off\"");
      out.mode = x.get<std::string>();
    } else if (k == "cert" || k == "key") {
      if (!x.is_string() || x.get<std::string>().empty()) return Error::invalid(f, "must be a file path");
      (k == "cert" ? out.cert : out.key) = x.get<std::string>();
    } else if (k == "names") {
      if (!x.is_array()) return Error::invalid(f, "must be an array of host names or IP addresses");
      out.names.clear();
      for (auto& n : x) {
        if (!n.is_string() || n.get<std::string>().empty())
          return Error::invalid(f, "must be an array of host names or IP addresses");
        out.names.push_back(n.get<std::string>());
      }
    } else {
      return Error::invalid(f, "is not a known setting");
    }
  }
  if (out.cert.empty() != out.key.empty()) return Error::invalid("tls.key", "tls.cert and tls.key go together");
  return Status::Ok();
}

Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return Error::invalid("listen", "must be HOST:PORT, got \"" + s + "\"");
  std::string host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    size_t used = 0;
    int port = std::stoi(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || port < 0 || port > 65535) throw std::out_of_range("port");
    return std::make_pair(host, static_cast<uint16_t>(port));
  } catch (...) {
    return Error::invalid("listen", "port must be 0-65535, got \"" + s.substr(colon + 1) + "\"");
  }
}

}  // namespace ads::cli
