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
  std::string url;          // http://host:port/path (for unix sockets: http://lxd/1.0/...)
  std::string unix_socket;  // set: connect to this socket instead of the URL's host
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  long connect_timeout_ms = 5000;
  long timeout_ms = 60000;  // whole request; 0 = none (streams)
  // Set: the call fails ("timeout", "... silent for N s") when no byte of
  // the response arrives for this long (a stream whose server sends
  // heartbeats, so that a frozen server is told from a quiet one).
  long idle_timeout_ms = 0;
  // Set (a lower-case header name): idle_timeout_ms applies only once the
  // answer carries this header, i.e. a server that announces heartbeats; an
  // older one that sends none is not taken for a silent one.
  std::string idle_needs_header;
  // The most body bytes this call takes, kept or handed to on_data; past it
  // (or at a larger Content-Length) the call fails with "too_large", so a
  // server that sends forever cannot grow the caller without bound.
  // 0: no limit (a stream that lasts as long as it needs, e.g. a log
  // followed to its end; the on_data callback then bounds what it keeps).
  size_t max_body_bytes = 64u << 20;
  // Set: called with each piece of the body as it arrives (the body is then
  // not kept); return false to abort the transfer.
  std::function<bool(const std::string&)> on_data;
  // Set: asked about once a second while the call waits; true ends the call
  // at once with Error "aborted" (a server shutting down, a cancelled job).
  std::function<bool()> should_abort;
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
// "timeout" (the whole request, or idle_timeout_ms without a byte),
// "aborted" (should_abort said so), "tls"
// (the server's certificate or key is not the expected one, or the TLS
// handshake failed) or "too_large" (past max_body_bytes, or more than
// kMaxHeaderBytes of response headers); any HTTP status is a successful Result.
inline constexpr size_t kMaxHeaderBytes = 256 * 1024;
Result<ClientResponse> request(const ClientRequest& req);

}  // namespace ads::http
