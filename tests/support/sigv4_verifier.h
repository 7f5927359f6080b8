// An independent AWS Signature Version 4 checker for tests: it rebuilds the
// canonical request, the string to sign and the HMAC-SHA256 key chain from
// the received request (libsodium primitives) and compares signatures. It
// shares no code with the client, which signs through libcurl. Test code only.
#pragma once

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace ads::testing::sigv4 {

inline std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(d[p[i] >> 4]);
    out.push_back(d[p[i] & 15]);
  }
  return out;
}

inline std::string sha256_hex(const std::string& data) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return hex(h, sizeof h);
}

inline std::string hmac(const std::string& key, const std::string& data) {
  unsigned char out[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  crypto_auth_hmacsha256_final(&st, out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

inline std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      if (std::sscanf(s.substr(i + 1, 2).c_str(), "%2x", &v) == 1) {
        out.push_back(static_cast<char>(v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, the rest %XX.
inline std::string aws_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

// Sorted by encoded name, then value.
inline std::string canonical_query(const std::string& raw) {
  std::vector<std::pair<std::string, std::string>> kv;
  std::stringstream ss(raw);
  std::string part;
  while (std::getline(ss, part, '&')) {
    if (part.empty()) continue;
    auto eq = part.find('=');
    std::string k = eq == std::string::npos ? part : part.substr(0, eq);
    std::string v = eq == std::string::npos ? "" : part.substr(eq + 1);
    kv.push_back({aws_encode(percent_decode(k)), aws_encode(percent_decode(v))});
  }
  std::sort(kv.begin(), kv.end());
  std::string out;
  for (auto& [k, v] : kv) out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

// Trimmed, inner runs of spaces collapsed to one.
inline std::string canonical_value(const std::string& v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

struct Authorization {
  std::string access_key, date, region, service;
  std::vector<std::string> signed_headers;
  std::string signature;
};

inline std::optional<Authorization> parse_authorization(const std::string& h) {
  const std::string algo = "AWS4-HMAC-SHA256 ";
  if (h.rfind(algo, 0) != 0) return std::nullopt;
  Authorization a;
  std::string rest = h.substr(algo.size());
  std::stringstream ss(rest);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = canonical_value(item);
    auto eq = item.find('=');
    if (eq == std::string::npos) return std::nullopt;
    std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    if (k == "Credential") {
      std::vector<std::string> parts;
      std::stringstream cs(v);
      std::string p;
      while (std::getline(cs, p, '/')) parts.push_back(p);
      if (parts.size() != 5 || parts[4] != "aws4_request") return std::nullopt;
      a.access_key = parts[0];
      a.date = parts[1];
      a.region = parts[2];
      a.service = parts[3];
    } else if (k == "SignedHeaders") {
      std::stringstream hs(v);
      std::string p;
      while (std::getline(hs, p, ';')) a.signed_headers.push_back(p);
    } else if (k == "Signature") {
      a.signature = v;
    }
  }
  if (a.access_key.empty() || a.signed_headers.empty() || a.signature.size() != 64) return std::nullopt;
  return a;
}

inline std::string canonical_request(const std::string& method, const std::string& path, const std::string& raw_query,
                                     const std::map<std::string, std::string>& headers,
                                     const std::vector<std::string>& signed_headers, const std::string& payload) {
  std::string out = method + "\n" + (path.empty() ? "/" : path) + "\n" + canonical_query(raw_query) + "\n";
  std::string names;
  for (const auto& n : signed_headers) {
    auto it = headers.find(n);
    out += n + ":" + (it == headers.end() ? "" : canonical_value(it->second)) + "\n";
    names += (names.empty() ? "" : ";") + n;
  }
  return out + "\n" + names + "\n" + sha256_hex(payload);
}

inline std::string signature(const std::string& secret, const std::string& date, const std::string& region,
                             const std::string& service, const std::string& amz_date, const std::string& creq) {
  std::string scope = date + "/" + region + "/" + service + "/aws4_request";
  std::string sts = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + sha256_hex(creq);
  std::string k = hmac("AWS4" + secret, date);
  k = hmac(k, region);
  k = hmac(k, service);
  k = hmac(k, "aws4_request");
  std::string sig = hmac(k, sts);
  return hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

struct Verdict {
  bool ok = false;
  std::string access_key;
  std::string why;  // when !ok: AWS-like reason
};

// Checks a received request. `secret_for(access_key)` gives the secret or "".
// Requires host and x-amz-date to be signed, the scope to match region and
// service and the scope date to be the X-Amz-Date's day.
template <typename SecretFn>
Verdict verify(const std::string& method, const std::string& target, const std::map<std::string, std::string>& headers,
               const std::string& body, const std::string& region, const std::string& service, SecretFn secret_for) {
  Verdict v;
  auto ah = headers.find("authorization");
  if (ah == headers.end()) return {false, "", "no Authorization header"};
  auto a = parse_authorization(ah->second);
  if (!a) return {false, "", "malformed Authorization header"};
  v.access_key = a->access_key;
  auto has = [&](const std::string& n) {
    return std::find(a->signed_headers.begin(), a->signed_headers.end(), n) != a->signed_headers.end();
  };
  if (!has("host") || !has("x-amz-date")) return {false, a->access_key, "host and x-amz-date must be signed"};
  if (!std::is_sorted(a->signed_headers.begin(), a->signed_headers.end()))
    return {false, a->access_key, "SignedHeaders not sorted"};
  auto dh = headers.find("x-amz-date");
  if (dh == headers.end() || dh->second.size() != 16 || dh->second.substr(0, 8) != a->date)
    return {false, a->access_key, "X-Amz-Date missing or not the credential scope's day"};
  if (a->region != region || a->service != service)
    return {false, a->access_key,
            "credential scope " + a->region + "/" + a->service + " is not " + region + "/" + service};
  if (headers.count("x-amz-security-token") && !has("x-amz-security-token"))
    return {false, a->access_key, "x-amz-security-token sent but not signed"};
  std::string secret = secret_for(a->access_key);
  if (secret.empty()) return {false, a->access_key, "unknown access key"};
  auto q = target.find('?');
  std::string path = target.substr(0, q);
  std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  std::string creq = canonical_request(method, path, query, headers, a->signed_headers, body);
  std::string want = signature(secret, a->date, a->region, a->service, dh->second, creq);
  if (want != a->signature) return {false, a->access_key, "signature does not match"};
  v.ok = true;
  return v;
}

}  // namespace ads::testing::sigv4
