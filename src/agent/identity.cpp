#include "agent/identity.h"

namespace ads::agent {

Result<http::tls::Identity> agent_identity(const std::string& secret) {
  auto seed = http::tls::hkdf_sha256(secret, "ads-agent-tls", "ed25519 v1", 32);
  if (!seed) return seed.error();
  return http::tls::make_from_seed(*seed, "ads-agent");
}

Result<std::string> agent_pin(const std::string& secret) {
  auto id = agent_identity(secret);
  if (!id) return id.error();
  return http::tls::public_key_pin(id->cert_pem);
}

}  // namespace ads::agent
