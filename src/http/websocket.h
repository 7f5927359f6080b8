// A route may take its connection over as a websocket (RFC 6455), for
// `ads shell`: it answers a request that asks for the upgrade
// (is_websocket_request) with a Response of status 101 and a stream
// callback. The server then answers the handshake and calls the callback
// with a StreamWriter that is also a WebSocket (dynamic_cast); the
// connection closes when the callback returns. A 101 to a request that did
// not ask for a websocket becomes a 426 naming it.
//
// The one kind of websocket offered carries the bytes of a stream socket:
// relay() sends what the socket gives as binary messages and writes the
// client's binary messages to it, one message at a time in each direction
// (a slow side holds the other back; nothing is buffered without bound).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "http/server.h"

namespace ads::http {

struct SocketRelay {
  int fd = -1;  // a stream socket (or pipe-like fd); relay() reads and writes a duplicate of it
  // A text message from the client. false: it is refused, and the websocket
  // is closed with "policy error" (1008) and this reason.
  std::function<bool(const std::string& text, std::string* reason)> on_text;
  // Once fd has reached its end: the last text message to send before the
  // websocket's normal close ("" : none).
  std::function<std::string()> closing_text;
  size_t max_message_bytes = 64 * 1024;  // a larger message from the client closes it (1009)
  int idle_timeout_s = 60;               // pinged when silent; closed when a ping goes unanswered this long
};

class WebSocket {
 public:
  virtual ~WebSocket() = default;
  // Relays until either side ends (or the server stops); returns how it
  // ended, in words, for a log line.
  virtual std::string relay(const SocketRelay& r) = 0;
};

// Whether the request asks for a websocket (GET with Upgrade: websocket and
// Connection: upgrade).
bool is_websocket_request(const Request& req);

}  // namespace ads::http
