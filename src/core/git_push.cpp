#include "core/git_push.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

#include "core/names.h"

namespace ads {
namespace {

std::string hmac(std::string_view secret, std::string_view body) {
  std::string mac(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(mac.data()));
  return mac;
}

bool is_hex40(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::string hub_signature(std::string_view secret, std::string_view body) {
  std::string mac = hmac(secret, body);
  std::string hex(mac.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
  hex.pop_back();
  return "sha256=" + hex;
}

bool verify_hub_signature(std::string_view secret, std::string_view body, std::string_view header) {
  constexpr std::string_view kPrefix = "sha256=";
  if (secret.empty() || header.size() != kPrefix.size() + 2 * crypto_auth_hmacsha256_BYTES) return false;
  if (header.substr(0, kPrefix.size()) != kPrefix) return false;
  std::string_view hex = header.substr(kPrefix.size());
  unsigned char got[crypto_auth_hmacsha256_BYTES];
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(got, sizeof got, hex.data(), hex.size(), nullptr, &len, &end) != 0 || len != sizeof got ||
      end != hex.data() + hex.size())
    return false;
  std::string want = hmac(secret, body);
  bool same = sodium_memcmp(want.data(), got, sizeof got) == 0;
  sodium_memzero(want.data(), want.size());
  return same;
}

Result<GitPush> parse_push(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return Error::invalid("", "the payload is not valid JSON");
  if (!j.is_object()) return Error::invalid("", "the payload must be a JSON object (a push event)");
  auto ref = j.find("ref");
  if (ref == j.end() || !ref->is_string()) return Error::invalid("ref", "a push event needs \"ref\" (a string)");
  auto after = j.find("after");
  if (after == j.end() || !after->is_string())
    return Error::invalid("after", "a push event needs \"after\" (the pushed commit)");
  GitPush p;
  p.commit = after->get<std::string>();
  for (auto& c : p.commit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!is_hex40(p.commit)) return Error::invalid("after", "must be a commit id (40 hexadecimal digits)");
  p.deleted = p.commit == std::string(40, '0');
  const std::string r = ref->get<std::string>();
  constexpr std::string_view kHeads = "refs/heads/";
  if (r.size() > kHeads.size() && r.compare(0, kHeads.size(), kHeads) == 0) p.branch = r.substr(kHeads.size());
  return p;
}

Status validate_branch(const std::string& branch) {
  if (branch.size() > 200) return Error::invalid("branch", "must be at most 200 characters");
  if (branch.rfind("refs/", 0) == 0)
    return Error::invalid("branch", "is a branch name such as main, without refs/heads/");
  return validate_git_ref(branch, "branch");
}

bool valid_delivery_id(std::string_view id) {
  if (id.empty() || id.size() > 100) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

PushAction decide_push(const GitTrack& t, const GitPush& p, bool busy, const std::string& serving) {
  if (p.branch.empty() || p.branch != t.branch) return PushAction::kIgnoreBranch;
  if (p.deleted) return PushAction::kIgnoreDeleted;
  if (busy) return PushAction::kCoalesce;
  if (p.commit == serving) return PushAction::kIgnoreServing;
  return PushAction::kRelease;
}

std::string describe(PushAction a, const GitTrack& t, const GitPush& p) {
  switch (a) {
    case PushAction::kIgnoreBranch:
      return p.branch.empty() ? "not a branch push; the deployment tracks " + t.branch
                              : "a push to " + p.branch + "; the deployment tracks " + t.branch;
    case PushAction::kIgnoreDeleted:
      return "branch " + t.branch + " was deleted; the serving release stays";
    case PushAction::kIgnoreServing:
      return "commit " + p.commit + " is serving already";
    case PushAction::kRelease:
      return "release of " + p.commit;
    case PushAction::kCoalesce:
      return "a release is under way; " + p.commit + " is released when it ends";
  }
  return "";
}

bool release_pending_now(const GitTrack& t, bool busy, bool running, const std::string& serving) {
  return !t.pending_commit.empty() && !busy && running && t.pending_commit != serving;
}

}  // namespace ads
