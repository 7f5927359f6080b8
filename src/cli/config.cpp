#include "cli/config.h"

#include <algorithm>
#include <cctype>
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
    if (k == "shells" || k == "shells_per_user") {
      if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > 10000)
        return Error::invalid(field, "must be an integer from 0 to 10000 (0: no shells)");
      (k == "shells" ? l.shells : l.shells_per_user) = x.get<int>();
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
  for (const auto& item : j.items()) {
    // named, not a structured binding: the lambdas below capture them (clang-tidy
    // parses with clang 14, which refuses a captured binding)
    const std::string& k = item.key();
    const json& v = item.value();
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
    } else if (k == "agent_binary") st = want_string(cfg.agent_binary);
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
    } else if (k == "max_command_timeout_s") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 7 * 86400)
        return Error::invalid(k, "must be an integer from 1 to 604800 (seconds, 7 days)");
      cfg.max_command_timeout_s = v.get<int>();
    } else if (k == "jobs_per_owner") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 64)
        return Error::invalid(k, "must be an integer from 0 (workers - 1) to 64");
      cfg.jobs_per_owner = v.get<int>();
    } else if (k == "keep_backups") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 10000)
        return Error::invalid(k, "must be an integer from 0 (keep every backup) to 10000");
      cfg.keep_backups = v.get<int>();
    } else if (k == "log_head_kb" || k == "log_tail_kb") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1048576)
        return Error::invalid(k, "must be an integer from 1 to 1048576 (KiB per job)");
      (k == "log_head_kb" ? cfg.log_head_kb : cfg.log_tail_kb) = v.get<int>();
    } else if (k == "retention_days") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 36500)
        return Error::invalid(k, "must be an integer from 0 (keep for ever) to 36500 (days)");
      cfg.retention_days = v.get<int>();
    } else if (k == "cleanup_interval_s") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 3600)
        return Error::invalid(k, "must be an integer from 1 to 3600 (seconds)");
      cfg.cleanup_interval_s = v.get<int>();
    } else if (k == "keep_releases") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 100)
        return Error::invalid(k,
                              "must be an integer from 0 (no rollback: an old release's machine goes at once) to 100");
      cfg.keep_releases = v.get<int>();
    } else if (k == "keep_releases_running") {
      if (!v.is_boolean()) return Error::invalid(k, "must be true or false");
      cfg.keep_releases_running = v.get<bool>();
    } else if (k == "git_min_poll_s") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 3600)
        return Error::invalid(
            k, "must be an integer from 1 to 3600 (the shortest poll interval a tracked branch may ask for, s)");
      cfg.git_min_poll_s = v.get<int>();
    } else if (k == "warm") {
      // {"debian-12": 2}: warm machines kept per OS key (docs/operators/warm-machines.md)
      if (!v.is_object()) return Error::invalid(k, "must be an object of OS key -> number of warm machines");
      std::map<std::string, int> warm;
      for (auto& [os, n] : v.items()) {
        const bool key_ok = !os.empty() && os.size() <= 64 && std::all_of(os.begin(), os.end(), [](unsigned char c) {
          return std::islower(c) || std::isdigit(c) || c == '-' || c == '.' || c == '_';
        });
        if (!key_ok) return Error::invalid("warm", "\"" + os + "\" is not an OS key (a-z 0-9 - . _, like debian-12)");
        if (!n.is_number_integer() || n.get<int64_t>() < 0 || n.get<int64_t>() > 64)
          return Error::invalid("warm." + os, "must be an integer from 0 to 64 (warm machines kept)");
        if (n.get<int>() > 0) warm[os] = n.get<int>();
      }
      cfg.warm = std::move(warm);
    } else if (k == "drain_ms") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 600000)
        return Error::invalid(k, "must be an integer from 0 to 600000 (ms an old release answers after a switch)");
      cfg.drain_ms = v.get<int>();
    } else if (k == "max_backup_mb") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1048576)
        return Error::invalid(k, "must be an integer from 1 to 1048576 (MiB)");
      cfg.max_backup_mb = v.get<int>();
    } else if (k == "tls") {
      st = parse_tls_config(v, cfg.tls);
    } else if (k == "oidc") {
      auto o = parse_oidc_settings(v);
      if (!o) return o.error();
      cfg.oidc = std::move(o.value());
    } else if (k == "ansible") {
      // {"playbook": "/usr/bin/ansible-playbook", "sandbox": "/usr/bin/bwrap", "ssh_keygen": "/usr/bin/ssh-keygen",
      //  "netcat": "/usr/bin/nc.openbsd"}
      if (!v.is_object()) return Error::invalid(k, "must be an object of program paths");
      for (auto& [ak, av] : v.items()) {
        std::string field = "ansible." + ak;
        std::string* out = ak == "playbook"     ? &cfg.ansible_playbook
                           : ak == "sandbox"    ? &cfg.ansible_sandbox
                           : ak == "ssh_keygen" ? &cfg.ssh_keygen
                           : ak == "netcat"     ? &cfg.netcat
                                                : nullptr;
        if (!out) return Error::invalid(field, "is not a known setting (playbook, sandbox, ssh_keygen, netcat)");
        // the netcat path goes into ssh's ProxyCommand: plain path characters only
        bool plain = av.is_string() && av.get<std::string>().size() > 1 && av.get<std::string>()[0] == '/';
        if (plain)
          for (unsigned char ch : av.get<std::string>())
            plain = plain && (std::isalnum(ch) || ch == '/' || ch == '.' || ch == '_' || ch == '-' || ch == '+');
        if (!plain) return Error::invalid(field, "must be an absolute path of letters, digits and / . _ - +");
        *out = av.get<std::string>();
      }
    } else if (k == "limits") {
      st = load_limits(v, cfg.limits);
    } else if (k == "sources") {
      st = parse_sources_config(v, cfg.sources);
    } else if (k == "http") {
      st = parse_http_config(v, cfg.http);
    } else if (k == "proxy") {
      st = parse_proxy_config(v, cfg.proxy);
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

http::ServerOptions serve_http_defaults() {
  http::ServerOptions o;
  o.max_body_bytes = 64 * 1024;  // JSON requests; the largest is a deploy request
  o.reserved_connections = 32;
  return o;
}

Status parse_http_config(const json& v, http::ServerOptions& out) {
  if (!v.is_object())
    return Error::invalid("http", "must be an object of connection limits (docs/operators/limits.md)");
  struct Count {
    const char* key;
    size_t* field;
    int64_t lo, hi;
  };
  struct Millis {
    const char* key;
    int* field;
    int64_t lo, hi;
  };
  const Count counts[] = {
      {"max_connections", &out.max_connections, 1, 100000},
      {"max_connections_per_address", &out.max_connections_per_address, 0, 100000},
      {"reserved_connections", &out.reserved_connections, 0, 100000},
      {"max_queued", &out.max_queued, 0, 1000000},
      {"max_queued_per_address", &out.max_queued_per_address, 0, 1000000},
      {"idle_threads", &out.idle_threads, 0, 100000},
  };
  const Millis times[] = {
      {"head_timeout_ms", &out.head_timeout_ms, 100, 3600000},
      {"request_timeout_ms", &out.request_timeout_ms, 100, 3600000},
      {"write_timeout_ms", &out.write_timeout_ms, 100, 3600000},
      {"reserved_head_timeout_ms", &out.reserved_head_timeout_ms, 100, 3600000},
      {"queue_timeout_ms", &out.queue_timeout_ms, 100, 3600000},
      {"idle_thread_ms", &out.idle_thread_ms, 100, 3600000},
      {"read_timeout_s", &out.read_timeout_s, 1, 3600},
  };
  for (auto& [k, x] : v.items()) {
    std::string f = "http." + k;
    bool known = false;
    for (auto& c : counts) {
      if (k != c.key) continue;
      known = true;
      if (!x.is_number_integer() || x.get<int64_t>() < c.lo || x.get<int64_t>() > c.hi)
        return Error::invalid(f, "must be an integer from " + std::to_string(c.lo) + " to " + std::to_string(c.hi));
      *c.field = x.get<size_t>();
    }
    for (auto& t : times) {
      if (k != t.key) continue;
      known = true;
      if (!x.is_number_integer() || x.get<int64_t>() < t.lo || x.get<int64_t>() > t.hi)
        return Error::invalid(f, "must be an integer from " + std::to_string(t.lo) + " to " + std::to_string(t.hi));
      *t.field = x.get<int>();
    }
    if (!known)
      return Error::invalid(f,
                            "is not a known setting (max_connections, max_connections_per_address, "
                            "reserved_connections, max_queued, max_queued_per_address, head_timeout_ms, "
                            "request_timeout_ms, write_timeout_ms, reserved_head_timeout_ms, queue_timeout_ms, "
                            "idle_threads, idle_thread_ms, read_timeout_s)");
  }
  if (out.request_timeout_ms < out.head_timeout_ms)
    return Error::invalid("http.request_timeout_ms", "must be at least head_timeout_ms (" +
                                                         std::to_string(out.head_timeout_ms) +
                                                         "): it bounds the head and the body");
  if (out.reserved_connections >= out.max_connections)
    return Error::invalid("http.reserved_connections",
                          "must be below max_connections (" + std::to_string(out.max_connections) + ")");
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

namespace {
Result<std::vector<std::string>> string_list(const json& x, const std::string& field, const std::string& what) {
  if (!x.is_array()) return Error::invalid(field, "must be an array of " + what);
  std::vector<std::string> out;
  for (auto& e : x) {
    if (!e.is_string() || e.get<std::string>().empty()) return Error::invalid(field, "must be an array of " + what);
    out.push_back(e.get<std::string>());
  }
  return out;
}

bool host_pattern(const std::string& h) {
  std::string rest = h.rfind("*.", 0) == 0 ? h.substr(2) : h;
  if (rest.empty() || rest.size() > 253) return false;
  for (unsigned char c : rest)
    if (!(std::isalnum(c) || c == '-' || c == '.' || c == ':')) return false;
  return true;
}
}  // namespace

Status parse_sources_config(const json& v, SourceSettings& out) {
  if (!v.is_object()) return Error::invalid("sources", "must be an object (see docs/operators/lab-sources.md)");
  for (auto& [k, x] : v.items()) {
    std::string f = "sources." + k;
    if (k == "local_roots") {
      auto l = string_list(x, f, "absolute folder paths");
      if (!l) return l.error();
      for (auto& p : *l)
        if (p[0] != '/') return Error::invalid(f, "\"" + p + "\" is not an absolute path");
      out.policy.local_roots = *l;
    } else if (k == "schemes") {
      auto l = string_list(x, f, "schemes (https, http, ssh, git)");
      if (!l) return l.error();
      for (auto& sch : *l)
        if (sch != "https" && sch != "http" && sch != "ssh" && sch != "git")
          return Error::invalid(f, "\"" + sch +
                                       "\" is not one of https, http, ssh, git (local paths and file:// "
                                       "are governed by local_roots)");
      out.policy.schemes = *l;
    } else if (k == "allow_hosts" || k == "deny_hosts") {
      auto l = string_list(x, f, "host names (\"git.example.org\" or \"*.example.org\")");
      if (!l) return l.error();
      for (auto& h : *l)
        if (!host_pattern(h)) return Error::invalid(f, "\"" + h + "\" is not a host name or \"*.domain\"");
      (k == "allow_hosts" ? out.policy.allow_hosts : out.policy.deny_hosts) = *l;
    } else if (k == "allow_addresses" || k == "deny_addresses") {
      auto l = string_list(x, f, "addresses or ranges (\"10.0.0.0/8\", \"fe80::/10\")");
      if (!l) return l.error();
      std::vector<IpRange> ranges;
      for (auto& r : *l) {
        auto range = parse_ip_range(r, f);
        if (!range) return range.error();
        ranges.push_back(*range);
      }
      (k == "allow_addresses" ? out.policy.allow_addresses : out.policy.deny_addresses) = ranges;
    } else if (k == "max_fetch_bytes" || k == "max_checkout_bytes") {
      if (!x.is_number_integer() || x.get<int64_t>() < 1024 || x.get<int64_t>() > (int64_t{64} << 30))
        return Error::invalid(f, "must be an integer number of bytes from 1024 to 68719476736 (64 GiB)");
      (k == "max_fetch_bytes" ? out.max_fetch_bytes : out.max_checkout_bytes) = x.get<uint64_t>();
    } else if (k == "max_checkout_files") {
      if (!x.is_number_integer() || x.get<int64_t>() < 1 || x.get<int64_t>() > 10000000)
        return Error::invalid(f, "must be an integer from 1 to 10000000");
      out.max_checkout_files = x.get<uint64_t>();
    } else if (k == "git_credentials") {
      if (!x.is_object())
        return Error::invalid(f,
                              "must be an object: {\"host\": {\"username\", \"password_file\"} or {\"ssh_key\", ...}}");
      out.credentials.clear();
      for (auto& [host, c] : x.items()) {
        std::string hf = f + "." + host;
        if (!host_pattern(host) || host[0] == '*') return Error::invalid(hf, "is not a host name");
        if (!c.is_object())
          return Error::invalid(
              hf, "must be an object (username, password_file, ssh_key, ssh_public_key, passphrase_file)");
        GitCredential g;
        for (auto& [ck, cv] : c.items()) {
          std::string* dst = ck == "username"          ? &g.username
                             : ck == "password_file"   ? &g.password_file
                             : ck == "ssh_key"         ? &g.ssh_key
                             : ck == "ssh_public_key"  ? &g.ssh_public_key
                             : ck == "passphrase_file" ? &g.passphrase_file
                                                       : nullptr;
          if (!dst)
            return Error::invalid(
                hf + "." + ck,
                "is not a known setting (username, password_file, ssh_key, ssh_public_key, passphrase_file)");
          if (!cv.is_string() || cv.get<std::string>().empty())
            return Error::invalid(hf + "." + ck, "must be a non-empty string");
          *dst = cv.get<std::string>();
          if (ck != "username" && (*dst)[0] != '/')
            return Error::invalid(hf + "." + ck, "must be an absolute file path");
        }
        if (g.password_file.empty() == g.ssh_key.empty())
          return Error::invalid(hf, "needs either password_file (https, http) or ssh_key (ssh)");
        if (!g.password_file.empty() && g.username.empty())
          return Error::invalid(hf + ".username", "is required with password_file");
        std::string lower = host;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        out.credentials[lower] = g;
      }
    } else if (k == "ssh_host_keys") {
      if (!x.is_object()) return Error::invalid(f, "must be an object: {\"host\": \"SHA256:...\"}");
      out.ssh_host_keys.clear();
      for (auto& [host, fp] : x.items()) {
        if (!host_pattern(host) || host[0] == '*') return Error::invalid(f + "." + host, "is not a host name");
        if (!fp.is_string() || fp.get<std::string>().rfind("SHA256:", 0) != 0 || fp.get<std::string>().size() != 50)
          return Error::invalid(f + "." + host,
                                "must be a key's SHA-256 fingerprint as ssh-keygen -l prints it (SHA256:...)");
        std::string lower = host;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        out.ssh_host_keys[lower] = fp.get<std::string>();
      }
    } else {
      return Error::invalid(f, "is not a known setting (see docs/operators/lab-sources.md)");
    }
  }
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
