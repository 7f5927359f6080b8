// TLS material on OpenSSL: the API's self-signed certificate (EC P-256),
// fingerprints and public-key pins (the agents' keys: agent/identity.h). No sockets here: the server (server.h) and the
// client (client.h) take the PEM text or the pin this module makes.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace ads::http::tls {

struct Identity {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8, unencrypted: keep it 0600
};

// A self-signed EC P-256 certificate (10 years) whose subjectAltName lists
// `names`: IP addresses become IP entries, anything else a DNS entry. Names
// must be host names or IP addresses ("invalid", field "tls.names", otherwise).
// Every certificate made here is a leaf (basicConstraints CA:FALSE, critical;
// keyUsage digitalSignature; extendedKeyUsage serverAuth): given to a client
// as its CA file (curl --cacert, OpenSSL) it is trusted as itself, for its own
// names, and nothing signed by its key is.
Result<Identity> make_self_signed(const std::vector<std::string>& names);

// "sha256//<base64 of SHA-256(SubjectPublicKeyInfo)>" of a certificate: the
// form libcurl's CURLOPT_PINNEDPUBLICKEY takes.
Result<std::string> public_key_pin(const std::string& cert_pem);
// "AB:CD:..." SHA-256 of the certificate's DER (what `openssl x509
// -fingerprint -sha256` prints).
Result<std::string> fingerprint_sha256(const std::string& cert_pem);
// Checks that the certificate and the key parse and belong together.
Status check_pair(const Identity& id);
// True when the certificate may act as a CA (basicConstraints CA:TRUE, or the
// other forms OpenSSL's X509_check_ca accepts); false for a leaf or no certificate.
bool is_ca(const std::string& cert_pem);
// True when the certificate's subjectAltName covers `name` (host or IP).
bool covers(const std::string& cert_pem, const std::string& name);

// The API's certificate: reads `cert_file` and `key_file` if both exist
// (and cover every one of `names`, and the certificate is not a CA, as ADS
// made them before), else writes a new self-signed pair there (key 0600) and
// sets `*generated`.
Result<Identity> load_or_create(const std::string& cert_file, const std::string& key_file,
                                const std::vector<std::string>& names, bool* generated);
// Reads a configured pair; errors name the file.
Result<Identity> load_pair(const std::string& cert_file, const std::string& key_file);

}  // namespace ads::http::tls
