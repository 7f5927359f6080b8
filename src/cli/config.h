// `ads serve` settings: defaults, then a JSON config file, then flags.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/limits.h"
#include "api/oidc.h"
#include "cli/proxy_config.h"
#include "core/result.h"
#include "engine/source_access.h"
#include "http/server.h"

namespace ads::cli {

// "tls": {"mode": "auto"|"on"|"off", "cert": PATH, "key": PATH, "names": [..]}
// auto (the default): HTTPS when cert/key are set or the listen address is
// not loopback; plain HTTP on loopback otherwise. on: always. off: never. Without
// cert and key, a self-signed certificate in DATA_DIR/tls/ (see tls_setup.h).
struct TlsConfig {
  std::string mode = "auto";
  std::string cert;
  std::string key;
  std::vector<std::string> names;  // extra names for the generated certificate
};

// The HTTP server's settings for `ads serve` before any config file: the
// server's defaults, 64 KB request bodies, 32 reserved connections.
http::ServerOptions serve_http_defaults();

struct ServeConfig {
  std::string listen = "127.0.0.1:8089";
  std::string data_dir = "/var/lib/ads";
  // "" : sqlite://<data_dir>/ads.db. In the file either a URL string or
  // {"kind":"sqlite","path":"/var/lib/ads/ads.db"} /
  // {"kind":"postgres","url":"postgresql://ads@127.0.0.1:5432/ads","connections":4}.
  std::string store;
  size_t store_connections = 0;    // PostgreSQL only: connections per server (0: the store's default)
  std::string server_id;           // "" : host name, pid and a random suffix (names job leases)
  int lease_ms = 30000;            // how long a job's lease lasts unless renewed
  bool metrics_need_token = true;  // GET /metrics needs a viewer token
  std::string agent_binary;        // "" : ads-agent beside the ads binary
  std::string default_provider = "lxd";
  int workers = 2;
  bool keep_failed = false;
  // "ansible": the controller of labs whose playbooks run from this host
  // (EngineOptions::ansible_playbook, sandbox, ssh_keygen, netcat)
  std::string ansible_playbook = "/usr/bin/ansible-playbook";
  std::string ansible_sandbox = "/usr/bin/bwrap";
  std::string ssh_keygen = "/usr/bin/ssh-keygen";
  std::string netcat = "/usr/bin/nc.openbsd";
  int keep_backups = 0;                // per deployment; 0: keep all
  int keep_releases = 1;               // earlier releases that keep their machine for a rollback
  bool keep_releases_running = false;  // kept machines stay running (a rollback in about a second)
  std::map<std::string, int> warm;     // warm machines per OS key on the default provider (none by default)
  int drain_ms = 2000;                 // an old release answers this long after a switch, then stops
  int git_min_poll_s = 30;             // the shortest poll interval of a tracked branch (docs/operators/git-push.md)
  int max_backup_mb = 512;             // the largest backup archive taken from an agent
  int deploy_attempts = 2;             // runs of a deploy cut off by a stopped server (EngineOptions::deploy_attempts)
  int log_head_kb = 1024;              // per job: the first KiB of output kept (core/log_cap.h)
  int log_tail_kb = 256;               // per job: the last KiB of output kept after the head
  int retention_days = 30;             // destroyed deployments' logs and records (Engine::prune); 0: kept for ever
  int cleanup_interval_s = 30;         // first retry of a machine removal that failed (then doubling, at most 1 h)
  // The longest one command of a lab may run (a spec's "timeouts" may ask
  // less, never more): EngineOptions::action_timeout_ms, the agents' command_timeout_s.
  int max_command_timeout_s = 1800;
  int jobs_per_owner = 0;  // workers one owner's jobs may hold at once (EngineOptions::jobs_per_owner; 0: workers - 1)
  nlohmann::json providers = {{"lxd", nlohmann::json::object()}};
  ApiLimits limits;  // "limits": {"requests_per_second", ...}
  // "http": {"max_connections", "head_timeout_ms", ...}: the HTTP server's
  // connection limits and deadlines (docs/operators/limits.md); host, port and
  // TLS come from listen and tls.
  http::ServerOptions http = serve_http_defaults();
  std::optional<OidcSettings> oidc;  // "oidc": {...}: OpenID Connect sign-in
  TlsConfig tls;
  // "sources": {"local_roots", "schemes", "allow_hosts", "deny_hosts",
  // "allow_addresses", "deny_addresses", "max_fetch_bytes",
  // "max_checkout_bytes", "max_checkout_files", "git_credentials",
  // "ssh_host_keys"} (docs/operators/lab-sources.md)
  SourceSettings sources;
  // "proxy": the reverse proxy of stable URLs (cli/proxy_config.h)
  ProxyConfig proxy;
};

// Reads a JSON config file over `cfg`; errors name the bad key.
Status load_config_file(const std::string& path, ServeConfig& cfg);
// The "tls" object of a config file; errors name "tls.<key>".
Status parse_tls_config(const nlohmann::json& v, TlsConfig& out);
// The "sources" object of a config file; errors name "sources.<key>".
Status parse_sources_config(const nlohmann::json& v, SourceSettings& out);
// The "http" object of a config file over `out`; errors name "http.<key>".
Status parse_http_config(const nlohmann::json& v, http::ServerOptions& out);
// "host:port" -> parts; errors name the field "listen".
Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& s);

}  // namespace ads::cli
