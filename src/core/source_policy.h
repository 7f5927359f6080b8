// Which lab sources a server accepts: the shape of a source (URL, scp-like
// address or local path), the schemes, host names and addresses it may
// reach, and where local paths may lie. Pure rules, no I/O: resolving names,
// realpath and connecting are done by the engine (engine/source_access.h,
// engine/git_connect.h), which asks these functions at every step.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ads {

// An IPv4 or IPv6 address; IPv4 is kept as IPv4-mapped IPv6 (::ffff:a.b.c.d),
// so "::ffff:127.0.0.1" and "127.0.0.1" are the same address.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool is_v4() const;
  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};
// "1.2.3.4", "::1", "[::1]"; nullopt for anything else (names, "1.2.3", ...).
std::optional<IpAddress> parse_ip(std::string_view text);

struct IpRange {
  IpAddress base;    // host bits zero
  int prefix = 0;    // over the 128 bits (an IPv4 /8 is 104)
  std::string text;  // as configured, for messages
  bool contains(const IpAddress& a) const;
};
// "10.0.0.0/8", "fe80::/10", or one address ("127.0.0.1" = /32). Errors name `field`.
Result<IpRange> parse_ip_range(const std::string& text, const std::string& field);
// The ranges refused by default: loopback, unspecified, link-local, private
// (RFC 1918, unique-local fc00::/7), shared (100.64/10), benchmarking,
// multicast and reserved.
const std::vector<std::string>& default_denied_ranges();

// A source taken apart. Remote: scheme is https, http, ssh (also for
// scp-like "user@host:path") or git. Local: scheme "file" and `path` (a
// file:// URL's path, or the path as given).
struct SourceRef {
  bool local = false;
  std::string scheme;
  std::string user;  // ssh only (a user name is not a secret; a password is refused)
  std::string host;  // lower case; an IPv6 address without brackets
  std::string port;  // "" : the scheme's default
  std::string path;
};
// Parses like libgit2 does (a known "scheme://" prefix; otherwise any ':'
// makes it scp-like ssh; otherwise a local path), but stricter: refuses
// credentials in the source (a password anywhere, any user name for https,
// http and git), hosts that are not plain names or addresses, unknown schemes.
// Errors: "invalid", field "source".
Result<SourceRef> parse_source(const std::string& source);

// `source` with any credentials in a URL's user part replaced by "***"
// (an ssh login name alone is kept). parse_source refuses such sources;
// this is for showing ones recorded before it did.
std::string redact_source(const std::string& source);

struct SourcePolicy {
  // Local paths (and file:// URLs) a non-admin may deploy from: these folders
  // and everything in them, compared after realpath. Admins may use any path.
  std::vector<std::string> local_roots;
  // Remote schemes accepted (of https, http, ssh, git).
  std::vector<std::string> schemes{"https", "ssh", "git"};
  // Host names ("git.example.org", "*.example.org" for its subdomains).
  // allow_hosts empty: any host not denied.
  std::vector<std::string> allow_hosts, deny_hosts;
  // Addresses a connection may not reach (default_denied_ranges()), unless
  // in allow_addresses. Checked on every address a name resolves to.
  std::vector<IpRange> allow_addresses, deny_addresses = default_ranges();

  static std::vector<IpRange> default_ranges();
};

// The scheme and the host name of a remote source against the policy
// (an address literal is checked as an address too). Errors: "forbidden",
// field "source".
Status check_remote(const SourceRef& src, const SourcePolicy& policy);
// A host name or address literal against allow_hosts/deny_hosts (and an
// address literal against the address ranges). Errors as check_remote.
Status check_host(const std::string& host, const SourcePolicy& policy);
// One address `host` resolved to. Errors: "forbidden", field "source"; the
// message names the host, not the address.
Status check_address(const std::string& host, const IpAddress& addr, const SourcePolicy& policy);
// Whether `host` matches one pattern ("name" or "*.suffix"); case-insensitive.
bool host_matches(const std::string& pattern, const std::string& host);
// Whether the absolute, normalized `path` is `root` or inside it.
bool path_within(const std::string& root, const std::string& path);

}  // namespace ads
