// The agent's TLS identity, derived from the deployment's secret:
//   seed = HKDF-SHA256(key = secret, salt = "ads-agent-tls", info = "p256 v2"), 48 bytes
//   the P-256 private key d = 1 + (seed mod (n - 1))
// The agent makes a self-signed certificate for that key when it starts (on
// mbed TLS: http/tls_mbedtls.h); ADS computes the same public key from the
// secret it keeps and pins it (libcurl's CURLOPT_PINNEDPUBLICKEY). So nobody
// without the deployment's secret can pose as its agent, no certificate has
// to be stored or shipped, and the secret itself never crosses the wire.
// Requests stay HMAC-signed on top (protocol.h): TLS hides them, the
// signature authenticates them.
// Agents from before 2026-12-04 used an Ed25519 key (info "ed25519 v1"),
// which mbed TLS cannot serve; ADS still accepts that key (agent_pins), so
// labs deployed before keep working until their agent is replaced.
#pragma once

#include <string>

#include "core/result.h"
#include "http/tls.h"

namespace ads::agent {

Result<http::tls::Identity> agent_identity(const std::string& secret);
// "sha256//<base64>": the pin of agent_identity(secret)'s public key.
Result<std::string> agent_pin(const std::string& secret);
// The pin of the Ed25519 key agents had before (info "ed25519 v1").
Result<std::string> legacy_agent_pin(const std::string& secret);
// "<agent_pin>;<legacy_agent_pin>": what a client pins (libcurl takes either).
Result<std::string> agent_pins(const std::string& secret);

}  // namespace ads::agent
