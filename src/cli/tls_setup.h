// TLS for `ads serve` and the CLI: which certificate the server uses, and
// which one the CLI trusts.
#pragma once

#include <string>

#include "cli/config.h"
#include "core/result.h"
#include "http/tls.h"

namespace ads::cli {

bool is_loopback(const std::string& host);
// mode "on"; or "auto" and a certificate is configured or `host` is not a
// loopback address (plain HTTP stays the default for 127.0.0.1 / ::1 only).
bool tls_enabled(const TlsConfig& t, const std::string& host);

struct ServeTls {
  bool enabled = false;
  http::tls::Identity id;
  std::string cert_file;
  std::string fingerprint;  // SHA-256, "AB:CD:..."
  bool generated = false;   // made now (first start, or a name was added)
};

// The configured pair, or DATA_DIR/tls/server.{crt,key}: made on first start
// (EC P-256, 0600 key) for localhost, 127.0.0.1, ::1, the listen host (unless
// a wildcard) and tls.names; reused afterwards. Errors name the setting.
Result<ServeTls> resolve_tls(const ServeConfig& cfg, const std::string& host);

// The URL the CLI uses for a server it manages (`ads service`): its scheme
// follows the TLS setting, a wildcard listen address becomes loopback.
std::string local_url(const ServeConfig& cfg);

// The CA file the CLI trusts for `server`: `given` (--cacert, ADS_CACERT)
// if set; else, for an https URL on a loopback host, the local server's
// certificate DATA_DIR/tls/server.crt (DATA_DIR: ADS_DATA_DIR or
// /var/lib/ads) if it exists; else "" (the system's CA store).
std::string cacert_for(const std::string& server, const std::string& given, const std::string& data_dir);

}  // namespace ads::cli
