// The HTTP server's TLS on OpenSSL, through Boost.Asio's SSL stream
// (tls_stream.h): what `ads serve` speaks; its websockets run on the Asio
// stream (TlsStream::asio_stream).
#pragma once

#include "http/tls_stream.h"

namespace ads::http {

// A TlsBackend: TLS 1.2 or later, no compression; the key must belong to the
// certificate.
Result<std::shared_ptr<TlsContext>> openssl_tls(const std::string& cert_pem, const std::string& key_pem);

}  // namespace ads::http
