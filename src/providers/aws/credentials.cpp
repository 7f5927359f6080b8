#include "providers/aws/credentials.h"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "http/client.h"

namespace ads::aws {

Result<std::chrono::system_clock::time_point> parse_iso8601_utc(const std::string& s) {
  std::tm tm{};
  int y, mo, d, h, mi, sec;
  char z = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &sec, &z) != 7 || z != 'Z' || mo < 1 ||
      mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return Error::make("failed", "not an ISO 8601 UTC time: \"" + s.substr(0, 40) + "\"");
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

void CredentialSource::invalidate() {
  std::lock_guard<std::mutex> l(mu_);
  cached_ = {};
}

Result<Credentials> CredentialSource::get() {
  std::lock_guard<std::mutex> l(mu_);
  if (s_.kind == CredentialSettings::Kind::kStatic) {
    if (s_.keys.access_key_id.empty() || s_.keys.secret_access_key.empty())
      return Error::make("failed",
                         "no AWS credentials: set access_key_id/secret_access_key in the aws settings, "
                         "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or \"credentials\": \"imds\"");
    return s_.keys;
  }
  auto now = std::chrono::system_clock::now();
  if (!cached_.access_key_id.empty() && now + s_.refresh_before < cached_.expiration) return cached_;
  auto c = fetch_role();
  if (!c) return c.error();
  cached_ = *c;
  return cached_;
}

Result<std::string> CredentialSource::imds_token(bool fresh) {
  if (!fresh && !token_.empty() && std::chrono::steady_clock::now() < token_expiry_) return token_;
  http::ClientRequest r;
  r.method = "PUT";
  r.url = s_.imds_endpoint + "/latest/api/token";
  r.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", std::to_string(s_.imds_token_ttl_s)}};
  r.connect_timeout_ms = r.timeout_ms = s_.timeout_ms;
  auto res = http::request(r);
  ++token_fetches_;
  if (!res) return Error::make("unavailable", "IMDSv2 token: " + res.error().message);
  if (res->status != 200 || res->body.empty())
    return Error::make("unavailable", "IMDSv2 token: " + r.url + " answered HTTP " + std::to_string(res->status));
  token_ = res->body;
  // a margin so that a token is never used in its last seconds
  token_expiry_ = std::chrono::steady_clock::now() + std::chrono::seconds(s_.imds_token_ttl_s * 9 / 10);
  return token_;
}

Result<std::string> CredentialSource::imds_get(const std::string& path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto tok = imds_token(attempt > 0);
    if (!tok) return tok.error();
    http::ClientRequest r;
    r.url = s_.imds_endpoint + path;
    r.headers = {{"X-aws-ec2-metadata-token", *tok}};
    r.connect_timeout_ms = r.timeout_ms = s_.timeout_ms;
    auto res = http::request(r);
    if (!res) return Error::make("unavailable", "IMDS " + path + ": " + res.error().message);
    if (res->status == 401) {  // the token expired or was revoked: a new one, once
      token_.clear();
      continue;
    }
    if (res->status == 404)
      return Error::make("failed", "IMDS " + path + " not found: the instance has no IAM role attached");
    if (res->status != 200)
      return Error::make("unavailable", "IMDS " + path + " answered HTTP " + std::to_string(res->status));
    return res->body;
  }
  return Error::make("unavailable", "IMDS " + path + " refused a fresh session token (HTTP 401)");
}

Result<Credentials> CredentialSource::fetch_role() {
  const std::string base = "/latest/meta-data/iam/security-credentials/";
  auto names = imds_get(base);
  if (!names) return names.error();
  std::string role = names->substr(0, names->find('\n'));
  while (!role.empty() && (role.back() == '\r' || role.back() == ' ')) role.pop_back();
  if (role.empty() || role.find('/') != std::string::npos || role.find("..") != std::string::npos)
    return Error::make("failed", "IMDS gave no usable IAM role name");
  auto body = imds_get(base + role);
  if (!body) return body.error();
  ++role_fetches_;
  auto j = nlohmann::json::parse(*body, nullptr, false);
  if (!j.is_object()) return Error::make("failed", "IMDS credentials of role " + role + " are not JSON");
  if (j.value("Code", "") != "Success")
    return Error::make("failed", "IMDS credentials of role " + role + ": Code " + j.value("Code", "(none)"));
  Credentials c;
  c.access_key_id = j.value("AccessKeyId", "");
  c.secret_access_key = j.value("SecretAccessKey", "");
  c.session_token = j.value("Token", "");
  if (c.access_key_id.empty() || c.secret_access_key.empty() || c.session_token.empty())
    return Error::make("failed", "IMDS credentials of role " + role + " lack AccessKeyId, SecretAccessKey or Token");
  auto exp = parse_iso8601_utc(j.value("Expiration", ""));
  if (!exp) return Error::make("failed", "IMDS credentials of role " + role + ": Expiration " + exp.error().message);
  c.expiration = *exp;
  return c;
}

}  // namespace ads::aws
