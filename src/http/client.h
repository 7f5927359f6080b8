// A blocking HTTP client on libcurl: TCP or a unix socket (LXD), optional
// streaming of the response body, timeouts. Thread-safe (one easy handle per call).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace ads::http {

struct ClientRequest {
  std::string method = "GET";
  std::string url;                   // http://host:port/path (for unix sockets: http://lxd/1.0/...)
  std::string unix_socket;           // set: connect to this socket instead of the URL's host
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  long connect_timeout_ms = 5000;
  long timeout_ms = 60000;           // whole request; 0 = none (streams)
  // Set: called with each piece of the body as it arrives (the body is then
  // not kept); return false to abort the transfer.
  std::function<bool(const std::string&)> on_data;
  // https only. ca_file set: trust the certificates in this file (instead of
  // the system's store) and check the host name. pinned_key set
  // ("sha256//<base64>", see tls.h): the server's public key must be this one;
  // chain and name are then not checked (self-signed agents at changing addresses).
  std::string ca_file;
  std::string pinned_key;
};

struct ClientResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// One header line as libcurl hands it to a CURLOPT_HEADERFUNCTION ("Name:
// value\r\n") into `headers`, the name lower-cased and the value trimmed;
// the status line and the blank line are ignored.
void add_header_line(const std::string& line, std::map<std::string, std::string>& headers);

// Transport failures give Error code "unavailable" (could not connect),
// "timeout", or "tls" (the server's certificate or key is not the expected
// one, or the TLS handshake failed); any HTTP status is a successful Result.
Result<ClientResponse> request(const ClientRequest& req);

}  // namespace ads::http
