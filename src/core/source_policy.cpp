#include "core/source_policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "core/names.h"

namespace ads {
namespace {
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

const char* kWhereCredentialsGo =
    "repository credentials are never part of the source: the server's operator configures them per host "
    "(sources.git_credentials in the server's config)";

Error bad_source(const std::string& why) { return Error::invalid("source", why); }

// A host name (letters, digits, '-', '.') or an address literal.
bool valid_host_name(const std::string& h) {
  if (h.empty() || h.size() > 253 || h.front() == '-' || h.front() == '.') return false;
  for (unsigned char c : h)
    if (!(std::isalnum(c) || c == '-' || c == '.')) return false;
  return h.find("..") == std::string::npos;
}

// host[:port] or [v6][:port] into `out`; false when malformed.
bool split_host_port(const std::string& hp, SourceRef& out) {
  std::string host = hp, port;
  bool has_port = false;
  if (!hp.empty() && hp[0] == '[') {
    auto close = hp.find(']');
    if (close == std::string::npos) return false;
    host = hp.substr(1, close - 1);
    std::string rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
      has_port = true;
    }
    auto a = parse_ip(host);
    if (!a) return false;  // an IPv4-mapped address stays one: the policy sees it as IPv4
  } else {
    auto colon = hp.rfind(':');
    if (colon != std::string::npos) {
      host = hp.substr(0, colon);
      port = hp.substr(colon + 1);
      has_port = true;
    }
    if (!valid_host_name(host)) return false;
  }
  if (has_port) {
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }))
      return false;
    long p = std::stol(port);
    if (p < 1 || p > 65535) return false;
  }
  host = lower(host);
  while (!host.empty() && host.back() == '.') host.pop_back();
  if (host.empty()) return false;
  out.host = host;
  out.port = port;
  return true;
}

// The user part of an ssh source: a login name, never a password.
Status take_ssh_user(const std::string& userinfo, SourceRef& out) {
  if (userinfo.find(':') != std::string::npos)
    return bad_source(std::string("must not contain a password (user:password@host); ") + kWhereCredentialsGo);
  if (userinfo.empty()) return bad_source("has an empty user name before '@'");
  for (unsigned char c : userinfo)
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == '-'))
      return bad_source("the ssh user name may contain only letters, digits, '.', '_' and '-'");
  out.user = userinfo;
  return Status::Ok();
}
}  // namespace

bool IpAddress::is_v4() const {
  static const std::array<uint8_t, 12> prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::equal(prefix.begin(), prefix.end(), bytes.begin());
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (is_v4()) inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  else inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<IpAddress> parse_ip(std::string_view text) {
  std::string t(text);
  if (t.size() > 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
  IpAddress a;
  uint8_t v4[4];
  if (inet_pton(AF_INET, t.c_str(), v4) == 1) {  // strict dotted quad only
    a.bytes[10] = a.bytes[11] = 0xff;
    std::copy(v4, v4 + 4, a.bytes.begin() + 12);
    return a;
  }
  if (t.find('%') == std::string::npos && inet_pton(AF_INET6, t.c_str(), a.bytes.data()) == 1) return a;
  return std::nullopt;
}

bool IpRange::contains(const IpAddress& a) const {
  int bits = prefix;
  for (size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a.bytes[i] & mask) != base.bytes[i]) return false;
  }
  return true;
}

Result<IpRange> parse_ip_range(const std::string& text, const std::string& field) {
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  auto a = parse_ip(addr);
  if (!a) return Error::invalid(field, "\"" + text + "\" is not an address or a range such as 10.0.0.0/8 or fe80::/10");
  int max = a->is_v4() ? 32 : 128;
  int prefix = max;
  if (slash != std::string::npos) {
    std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 ||
        !std::all_of(p.begin(), p.end(), [](unsigned char c) { return std::isdigit(c); }) || std::stoi(p) > max)
      return Error::invalid(field, "\"" + text + "\" has a bad prefix length (0 to " + std::to_string(max) + ")");
    prefix = std::stoi(p);
  }
  IpRange r;
  r.prefix = a->is_v4() ? 96 + prefix : prefix;
  r.text = text;
  r.base = *a;
  int bits = r.prefix;
  for (size_t i = 0; i < 16; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    if ((r.base.bytes[i] & mask) != r.base.bytes[i])
      return Error::invalid(field, "\"" + text + "\" has host bits set after the prefix");
  }
  return r;
}

const std::vector<std::string>& default_denied_ranges() {
  static const std::vector<std::string> v = {
      "0.0.0.0/8",    "10.0.0.0/8",     "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
      "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",    "::/96",
      "::1/128",      "fc00::/7",       "fe80::/10",     "ff00::/8",    "64:ff9b::/96",   "2001:db8::/32"};
  return v;
}

std::vector<IpRange> SourcePolicy::default_ranges() {
  std::vector<IpRange> out;
  for (auto& t : default_denied_ranges()) out.push_back(parse_ip_range(t, "deny_addresses").value());
  return out;
}

Result<SourceRef> parse_source(const std::string& source) {
  SourceRef out;
  auto sep = source.find("://");
  if (sep != std::string::npos) {
    std::string scheme = source.substr(0, sep);
    std::string rest = source.substr(sep + 3);
    if (scheme == "file") {
      if (rest.rfind("localhost/", 0) == 0) rest = rest.substr(9);
      if (rest.empty() || rest[0] != '/')
        return bad_source("a file:// URL must name an absolute path (file:///srv/labs/lab)");
      if (rest.find('%') != std::string::npos) return bad_source("a file:// URL must not contain '%'");
      out.local = true;
      out.scheme = "file";
      out.path = rest;
      return out;
    }
    if (scheme == "ssh+git" || scheme == "git+ssh") scheme = "ssh";
    if (scheme != "https" && scheme != "http" && scheme != "ssh" && scheme != "git")
      return bad_source("\"" + scheme + "://\" is not a scheme lab sources use (https, http, ssh, git, file)");
    out.scheme = scheme;
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    out.path = slash == std::string::npos ? "" : rest.substr(slash);
    if (out.path.size() < 2) return bad_source("the URL names no repository (nothing after the host)");
    if (authority.find('%') != std::string::npos) return bad_source("the host part of the URL must not contain '%'");
    auto at = authority.rfind('@');
    if (at != std::string::npos) {
      if (scheme != "ssh")
        return bad_source(std::string("must not contain credentials (user or user:password before '@' in the URL); ") +
                          kWhereCredentialsGo);
      if (auto st = take_ssh_user(authority.substr(0, at), out); !st) return st.error();
      authority = authority.substr(at + 1);
    }
    if (!split_host_port(authority, out)) return bad_source("the URL's host is not a host name or an address");
    return out;
  }
  auto colon = source.find(':');
  if (colon == std::string::npos) {
    out.local = true;
    out.scheme = "file";
    out.path = source;
    return out;
  }
  // scp-like: [user@]host:path (libgit2 reads any other string with ':' as ssh too).
  std::string left = source.substr(0, colon);
  if (left.find('/') != std::string::npos)
    return bad_source("is neither a URL, nor an scp-like address (user@host:path), nor a local path without ':'");
  out.scheme = "ssh";
  out.path = source.substr(colon + 1);
  if (out.path.empty()) return bad_source("the scp-like address names no repository (nothing after ':')");
  if (out.path.find(':') != std::string::npos) {  // "user:password@host:path" reads as host "user"
    if (out.path.find('@') != std::string::npos)
      return bad_source(std::string("must not contain credentials (user:password@host:path); ") + kWhereCredentialsGo);
    return bad_source("an scp-like address has one ':' (user@host:path); use an ssh:// URL for anything else");
  }
  auto at = left.rfind('@');
  if (at != std::string::npos) {
    if (auto st = take_ssh_user(left.substr(0, at), out); !st) return st.error();
    left = left.substr(at + 1);
  }
  if (!valid_host_name(left)) return bad_source("the scp-like address's host is not a host name or an address");
  out.host = lower(left);
  return out;
}

std::string redact_source(const std::string& source) {
  auto sep = source.find("://");
  if (sep == std::string::npos) return source;
  size_t start = sep + 3;
  size_t end = source.find('/', start);
  if (end == std::string::npos) end = source.size();
  auto at = source.rfind('@', end == 0 ? 0 : end - 1);
  if (at == std::string::npos || at < start) return source;
  std::string scheme = source.substr(0, sep);
  std::string user = source.substr(start, at - start);
  bool ssh = scheme == "ssh" || scheme == "ssh+git" || scheme == "git+ssh";
  if (ssh && user.find(':') == std::string::npos) return source;
  return source.substr(0, start) + "***" + source.substr(at);
}

bool host_matches(const std::string& pattern, const std::string& host) {
  std::string p = lower(pattern), h = lower(host);
  while (!p.empty() && p.back() == '.') p.pop_back();
  while (!h.empty() && h.back() == '.') h.pop_back();
  if (p.rfind("*.", 0) == 0) {
    std::string suffix = p.substr(1);  // ".example.org"
    return h.size() > suffix.size() && h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  return !p.empty() && p == h;
}

Status check_address(const std::string& host, const IpAddress& addr, const SourcePolicy& policy) {
  for (auto& r : policy.allow_addresses)
    if (r.contains(addr)) return Status::Ok();
  for (auto& r : policy.deny_addresses)
    if (r.contains(addr))
      return Error{"forbidden",
                   "the host " + printable(host) +
                       " has an address in a range lab sources may not reach on this server (sources.deny_addresses)",
                   "source"};
  return Status::Ok();
}

Status check_remote(const SourceRef& src, const SourcePolicy& policy) {
  if (src.local) return Error{"internal", "check_remote called with a local source", "source"};
  if (!contains(policy.schemes, src.scheme)) {
    std::string allowed;
    for (auto& s : policy.schemes) allowed += (allowed.empty() ? "" : ", ") + s;
    return Error{"forbidden",
                 "this server does not fetch lab sources over " + src.scheme +
                     " (sources.schemes: " + (allowed.empty() ? "none" : allowed) + ")",
                 "source"};
  }
  return check_host(src.host, policy);
}

Status check_host(const std::string& host, const SourcePolicy& policy) {
  for (auto& p : policy.deny_hosts)
    if (host_matches(p, host))
      return Error{"forbidden", "the host " + printable(host) + " is not allowed as a lab source on this server",
                   "source"};
  if (!policy.allow_hosts.empty()) {
    bool listed = false;
    for (auto& p : policy.allow_hosts) listed = listed || host_matches(p, host);
    if (!listed)
      return Error{
          "forbidden",
          "the host " + printable(host) + " is not one this server fetches lab sources from (sources.allow_hosts)",
          "source"};
  }
  if (auto a = parse_ip(host)) return check_address(host, *a, policy);
  return Status::Ok();
}

bool path_within(const std::string& root, const std::string& path) {
  if (root.empty() || path.empty() || root[0] != '/' || path[0] != '/') return false;
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  if (r == "/") return true;
  return path == r || (path.size() > r.size() && path.compare(0, r.size(), r) == 0 && path[r.size()] == '/');
}

}  // namespace ads
