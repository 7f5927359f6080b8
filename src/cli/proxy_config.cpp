#include "cli/proxy_config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "core/names.h"

namespace ads::cli {
using nlohmann::json;

namespace {

Result<int> port_number(const std::string& s, const std::string& field) {
  if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    return Error::invalid(field, "must be a port number 1-65535");
  int p = std::stoi(s);
  if (p < 1 || p > 65535) return Error::invalid(field, "must be a port number 1-65535");
  return p;
}

Status check_domain(const std::string& d) {
  if (d.empty()) return Status::Ok();
  if (d.size() > 190) return Error::invalid("proxy.domain", "must be at most 190 characters");
  size_t start = 0;
  while (true) {
    auto dot = d.find('.', start);
    std::string label = d.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    auto st = validate_dns_label(label, "proxy.domain");
    if (!st) return Error::invalid("proxy.domain", "\"" + label + "\": " + st.error().message);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return Status::Ok();
}

Status check_host(const std::string& h, const std::string& field) {
  for (unsigned char c : h)
    if (!(std::isalnum(c) || c == '.' || c == '-' || c == ':'))
      return Error::invalid(field, "must be a host name or an IP address");
  return Status::Ok();
}

}  // namespace

Status parse_proxy_flag(const std::string& v, ProxyConfig& out) {
  if (v == "on") out.enabled = true;
  else if (v == "off") out.enabled = false;
  else return Error::invalid("proxy", "must be on or off");
  return Status::Ok();
}

Status parse_proxy_config(const json& v, ProxyConfig& out) {
  if (v.is_boolean()) {
    out.enabled = v.get<bool>();
    return Status::Ok();
  }
  if (!v.is_object())
    return Error::invalid("proxy",
                          "must be false or an object: {\"kind\", \"domain\", \"listen\", \"ports\", "
                          "\"public_host\", \"admin\", \"binary\", \"enabled\"}");
  out.enabled = true;
  for (auto& [k, x] : v.items()) {
    std::string f = "proxy." + k;
    if (k == "enabled") {
      if (!x.is_boolean()) return Error::invalid(f, "must be true or false");
      out.enabled = x.get<bool>();
      continue;
    }
    if (!x.is_string()) return Error::invalid(f, "must be a string");
    std::string s = x.get<std::string>();
    if (k == "kind") {
      if (s != "haproxy" && s != "caddy") return Error::invalid(f, "must be \"haproxy\" (the default) or \"caddy\"");
      out.kind = s;
    } else if (k == "domain") {
      for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (auto st = check_domain(s); !st) return st;
      out.domain = s;
    } else if (k == "listen") {
      auto colon = s.rfind(':');
      if (colon == std::string::npos) return Error::invalid(f, "must be HOST:PORT or :PORT");
      std::string host = s.substr(0, colon);
      if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      if (auto st = check_host(host, f); !st) return st;
      auto p = port_number(s.substr(colon + 1), f);
      if (!p) return p.error();
      out.listen_host = host;
      out.listen_port = *p;
    } else if (k == "ports") {
      auto dash = s.find('-');
      if (dash == std::string::npos) return Error::invalid(f, "must be FIRST-LAST, e.g. \"8100-8999\"");
      auto lo = port_number(s.substr(0, dash), f);
      if (!lo) return lo.error();
      auto hi = port_number(s.substr(dash + 1), f);
      if (!hi) return hi.error();
      if (*lo > *hi) return Error::invalid(f, "the first port must not be above the last");
      out.ports = {*lo, *hi};
    } else if (k == "public_host") {
      if (s.empty()) return Error::invalid(f, "must not be empty");
      if (auto st = check_host(s, f); !st) return st;
      out.public_host = s;
    } else if (k == "admin") {
      if (s.rfind("unix:/", 0) != 0) {
        auto colon = s.rfind(':');
        if (colon == std::string::npos || colon == 0 || !port_number(s.substr(colon + 1), f))
          return Error::invalid(f, "must be unix:/absolute/path or HOST:PORT");
        if (auto st = check_host(s.substr(0, colon), f); !st) return st;
      }
      out.admin = s;
    } else if (k == "binary") {
      if (s.empty()) return Error::invalid(f, "must not be empty");
      out.binary = s;
    } else {
      return Error::invalid(
          f, "is not a known setting (enabled, kind, domain, listen, ports, public_host, admin, binary)");
    }
  }
  if (out.kind == "haproxy" && !out.admin.empty())
    return Error::invalid("proxy.admin",
                          "is a setting of \"kind\": \"caddy\"; HAProxy's runtime API is always "
                          "DATA_DIR/proxy/haproxy.sock");
  return Status::Ok();
}

std::string proxy_dir(const std::string& data_dir) { return data_dir + "/proxy"; }

router::CaddyOptions caddy_options(const ProxyConfig& p, const std::string& data_dir) {
  router::CaddyOptions o;
  o.admin = p.admin.empty() ? "unix:" + proxy_dir(data_dir) + "/admin.sock" : p.admin;
  o.domain = p.domain;
  o.listen_host = p.listen_host;
  o.listen_port = p.listen_port;
  o.public_host = p.public_host;
  if (o.public_host.empty()) {
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    o.public_host = host[0] ? host : "localhost";
  }
  return o;
}

router::ProxyProcessOptions proxy_process_options(const ProxyConfig& p, const std::string& data_dir) {
  router::ProxyProcessOptions o;
  o.dir = proxy_dir(data_dir);
  o.admin = caddy_options(p, data_dir).admin;
  o.binary = p.binary.empty() ? "caddy" : p.binary;
  return o;
}

router::HaproxyOptions haproxy_options(const ProxyConfig& p, const std::string& data_dir) {
  auto c = caddy_options(p, data_dir);  // the same URL settings
  router::HaproxyOptions o;
  o.dir = proxy_dir(data_dir);
  o.domain = c.domain;
  o.listen_port = c.listen_port;
  o.public_host = c.public_host;
  return o;
}

router::HaproxyProcessOptions haproxy_process_options(const ProxyConfig& p, const std::string& data_dir) {
  router::HaproxyProcessOptions o;
  o.dir = proxy_dir(data_dir);
  o.binary = p.binary.empty() ? "haproxy" : p.binary;
  o.domain = p.domain;
  o.listen_host = p.listen_host;
  o.listen_port = p.listen_port;
  o.ports = p.ports;
  return o;
}

}  // namespace ads::cli
