// The HTTP server's TLS on mbed TLS (tls_stream.h): what the agent speaks.
// OpenSSL's libcrypto alone is 3.3 MB of a 6.6 MB static agent, and an idle
// agent's memory is its binary's pages (docs/bench.md "Agent memory"); mbed
// TLS does the same work in a fraction of that. TLS 1.2 (Debian's mbed TLS
// 2.28 has no 1.3), ECDHE with AEAD ciphers only; no websockets.
#pragma once

#include "http/tls_stream.h"

namespace ads::http {

// A TlsBackend. The key must belong to the certificate; an EC (P-256) or RSA
// key (mbed TLS has no Ed25519).
Result<std::shared_ptr<TlsContext>> mbedtls_tls(const std::string& cert_pem, const std::string& key_pem);

}  // namespace ads::http
