// The agent's TLS identity, derived from the deployment's secret:
//   seed = HKDF-SHA256(key = secret, salt = "ads-agent-tls", info = "ed25519 v1")
// The agent makes a self-signed Ed25519 certificate from that seed when it
// starts; ADS computes the same public key from the secret it keeps and pins
// it (libcurl's CURLOPT_PINNEDPUBLICKEY). So nobody without the deployment's
// secret can pose as its agent, no certificate has to be stored or shipped,
// and the secret itself never crosses the wire. Requests stay HMAC-signed
// on top (protocol.h): TLS hides them, the signature authenticates them.
#pragma once

#include <string>

#include "core/result.h"
#include "http/tls.h"

namespace ads::agent {

Result<http::tls::Identity> agent_identity(const std::string& secret);
// "sha256//<base64>": the pin of agent_identity(secret)'s public key.
Result<std::string> agent_pin(const std::string& secret);

}  // namespace ads::agent
