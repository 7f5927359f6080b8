#include "cli/tls_setup.h"

#include <algorithm>
#include <filesystem>

namespace ads::cli {

bool is_loopback(const std::string& host) { return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0; }

bool tls_enabled(const TlsConfig& t, const std::string& host) {
  if (t.mode == "on") return true;
  if (t.mode == "off") return false;
  return !t.cert.empty() || !is_loopback(host);
}

Result<ServeTls> resolve_tls(const ServeConfig& cfg, const std::string& host) {
  ServeTls out;
  out.enabled = tls_enabled(cfg.tls, host);
  if (!out.enabled) return out;
  if (!cfg.tls.cert.empty()) {
    auto id = http::tls::load_pair(cfg.tls.cert, cfg.tls.key);
    if (!id) return id.error();
    out.id = std::move(id.value());
    out.cert_file = cfg.tls.cert;
  } else {
    std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
    auto add = [&](const std::string& n) {
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    };
    if (host != "0.0.0.0" && host != "::" && !host.empty()) add(host);
    for (auto& n : cfg.tls.names) add(n);
    out.cert_file = cfg.data_dir + "/tls/server.crt";
    auto id = http::tls::load_or_create(out.cert_file, cfg.data_dir + "/tls/server.key", names, &out.generated);
    if (!id) return id.error();
    out.id = std::move(id.value());
  }
  auto fp = http::tls::fingerprint_sha256(out.id.cert_pem);
  if (!fp) return fp.error();
  out.fingerprint = *fp;
  return out;
}

std::string local_url(const ServeConfig& cfg) {
  auto listen = parse_listen(cfg.listen);
  std::string host = listen ? listen->first : "127.0.0.1";
  std::string port = listen ? std::to_string(listen->second) : "8089";
  bool tls = tls_enabled(cfg.tls, host);
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return (tls ? "https://" : "http://") + host + ":" + port;
}

std::string cacert_for(const std::string& server, const std::string& given, const std::string& data_dir) {
  if (!given.empty()) return given;
  if (server.rfind("https://", 0) != 0) return "";
  std::string rest = server.substr(8);
  std::string host = rest.substr(0, rest.find('/'));
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.find(']') - 1);
  else host = host.substr(0, host.rfind(':') == std::string::npos ? host.size() : host.rfind(':'));
  if (!is_loopback(host)) return "";
  std::string f = data_dir + "/tls/server.crt";
  std::error_code ec;
  return std::filesystem::exists(f, ec) ? f : "";
}

}  // namespace ads::cli
