#include "agent/protocol.h"

#include <sodium.h>

namespace ads::agent {

bool crypto_init() { return sodium_init() >= 0; }

std::string hex(const std::string& bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  out.pop_back();
  return out;
}

std::string sha256_hex(const std::string& data) {
  std::string d(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(d.data()), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size());
  return hex(d);
}

std::string random_hex(size_t n) {
  crypto_init();
  std::string b(n, '\0');
  randombytes_buf(b.data(), n);
  return hex(b);
}

std::string canonical(const std::string& method, const std::string& target, const std::string& time,
                      const std::string& nonce, const std::string& body) {
  return canonical_for_hash(method, target, time, nonce, sha256_hex(body));
}

std::string canonical_for_hash(const std::string& method, const std::string& target, const std::string& time,
                               const std::string& nonce, const std::string& body_sha256_hex) {
  return method + "\n" + target + "\n" + time + "\n" + nonce + "\n" + body_sha256_hex;
}

std::string sign(const std::string& secret, const std::string& text) {
  std::string mac(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(mac.data()));
  return hex(mac);
}

bool signature_matches(const std::string& secret, const std::string& text, const std::string& sig) {
  std::string want = sign(secret, text);
  if (sig.size() != want.size()) return false;
  return sodium_memcmp(want.data(), sig.data(), want.size()) == 0;
}

bool NonceCache::insert(const std::string& nonce, int64_t now_s) {
  std::lock_guard<std::mutex> lk(mu_);
  while (!order_.empty() && order_.front().first < now_s - 2 * kMaxSkewSeconds) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
  if (!seen_.insert(nonce).second) return false;
  order_.emplace_back(now_s, nonce);
  return true;
}

std::vector<std::pair<std::string, std::string>> signed_headers(const std::string& secret, const std::string& method,
                                                                const std::string& target, const std::string& body,
                                                                int64_t now_s) {
  std::string t = std::to_string(now_s);
  std::string nonce = random_hex(16);
  std::string hash = sha256_hex(body);
  return {{kHeaderTime, t},
          {kHeaderNonce, nonce},
          {kHeaderBodyHash, hash},
          {kHeaderSignature, sign(secret, canonical_for_hash(method, target, t, nonce, hash))}};
}

}  // namespace ads::agent
