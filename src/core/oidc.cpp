#include "core/oidc.h"

#include <algorithm>
#include <cctype>

namespace ads {
namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool valid_domain(const std::string& d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.' || d.find("..") != std::string::npos)
    return false;
  if (d.find('.') == std::string::npos && d != "localhost") return false;
  for (unsigned char c : d)
    if (!(std::isalnum(c) || c == '.' || c == '-')) return false;
  return true;
}

Error denied(const std::string& claim, const std::string& why) {
  return {"unauthorized", "the ID token's " + claim + " " + why, claim};
}
}  // namespace

Status validate_email(const std::string& email, const std::string& field) {
  if (email.empty()) return Error::invalid(field, "must not be empty");
  if (email.size() > 254) return Error::invalid(field, "must be at most 254 characters");
  if (email != lower(email)) return Error::invalid(field, "must be lower case");
  auto at = email.find('@');
  if (at == std::string::npos || at == 0 || email.find('@', at + 1) != std::string::npos)
    return Error::invalid(field, "must be one local part, '@' and a domain");
  std::string local = email.substr(0, at);
  if (local.size() > 64 || local.front() == '.' || local.back() == '.' || local.find("..") != std::string::npos)
    return Error::invalid(field, "has a bad local part");
  for (unsigned char c : local)
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'))
      return Error::invalid(field, "may contain only letters, digits and . _ % + - before '@'");
  if (!valid_domain(email.substr(at + 1))) return Error::invalid(field, "has a bad domain");
  return Status::Ok();
}

Status validate_allow_pattern(const std::string& pattern, const std::string& field) {
  if (pattern.rfind("*@", 0) == 0) {
    std::string d = pattern.substr(2);
    if (d != lower(d) || !valid_domain(d)) return Error::invalid(field, "must be \"*@\" and a lower-case domain");
    return Status::Ok();
  }
  return validate_email(pattern, field);
}

bool denied_by_allow_list(const std::vector<AllowEntry>& allow, const std::string& email) {
  std::string e = lower(email);
  auto at = e.find('@');
  if (at == std::string::npos) return true;
  std::string domain = "*" + e.substr(at);
  for (auto& a : allow)
    if (a.deny && (a.pattern == e || a.pattern == domain)) return true;
  return false;
}

std::optional<Role> role_for_email(const std::vector<AllowEntry>& allow, const std::string& email) {
  std::string e = lower(email);
  auto at = e.find('@');
  if (at == std::string::npos || denied_by_allow_list(allow, e)) return std::nullopt;
  for (auto& a : allow)
    if (a.pattern == e) return a.role;
  std::string domain = "*" + e.substr(at);
  for (auto& a : allow)
    if (a.pattern == domain) return a.role;
  return std::nullopt;
}

Result<IdTokenIdentity> check_id_token_claims(const nlohmann::json& c, const ExpectedClaims& want) {
  if (!c.is_object()) return denied("payload", "is not a JSON object");
  auto str = [&](const char* k) { return c.contains(k) && c[k].is_string() ? c[k].get<std::string>() : std::string(); };
  auto num = [&](const char* k) -> std::optional<int64_t> {
    if (!c.contains(k) || !c[k].is_number()) return std::nullopt;
    return static_cast<int64_t>(c[k].get<double>());
  };
  if (str("iss") != want.issuer) return denied("iss", "is not the configured issuer " + want.issuer);
  bool aud_ok = false;
  if (c.contains("aud") && c["aud"].is_string()) aud_ok = c["aud"] == want.client_id;
  if (c.contains("aud") && c["aud"].is_array()) {
    for (auto& a : c["aud"]) aud_ok |= a.is_string() && a == want.client_id;
    // several audiences: azp must be there and be us (Core 3.1.3.7 items 4 and 5)
    if (aud_ok && c["aud"].size() > 1 && !c.contains("azp"))
      return denied("azp", "is missing (the token has several audiences)");
  }
  if (!aud_ok) return denied("aud", "does not name this client");
  // whenever azp is there, it must be us: a token issued to another client
  // that merely lists us as an audience is not a sign-in at ADS
  if (c.contains("azp") && str("azp") != want.client_id) return denied("azp", "is not this client");
  auto exp = num("exp"), iat = num("iat"), nbf = num("nbf");
  if (!exp) return denied("exp", "is missing");
  if (*exp + want.leeway_s <= want.now_s) return denied("exp", "has passed: the token has expired");
  if (!iat) return denied("iat", "is missing");
  if (*iat > want.now_s + want.leeway_s) return denied("iat", "is in the future");
  if (*iat < want.now_s - want.max_age_s) return denied("iat", "is too old");
  if (nbf && *nbf > want.now_s + want.leeway_s) return denied("nbf", "is in the future");
  if (want.nonce.empty() || str("nonce") != want.nonce) return denied("nonce", "does not match this sign-in");
  std::string sub = str("sub");
  if (sub.empty()) return denied("sub", "is missing");
  if (sub.size() > 255) return denied("sub", "is longer than 255 characters");  // OpenID Connect Core 2
  std::string email = lower(str("email"));
  if (email.empty()) return denied("email", "is missing (ask for the \"email\" scope)");
  if (c.contains("email_verified")) {
    bool verified = c["email_verified"].is_boolean() ? c["email_verified"].get<bool>()
                                                     : c["email_verified"] == "true";  // some issuers send a string
    if (!verified) return denied("email_verified", "is false: the provider has not verified this address");
  } else if (want.require_email_verified) {
    return denied("email_verified",
                  "is missing: ADS needs the provider to say the address is verified (oidc.accept_unverified_email "
                  "turns this off for a provider that never sends the claim)");
  }
  auto st = validate_email(email, "email");
  if (!st) return denied("email", st.error().message);
  return IdTokenIdentity{want.issuer, sub, email};
}

}  // namespace ads
