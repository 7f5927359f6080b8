// The server's side of http/websocket.h: answering the handshake of a
// request a route took over (status 101) and running its callback. Used by
// server.cpp only, and defined in websocket.cpp, a library of its own
// (ads_http_websocket): declared weak here, so that a program whose routes
// take no websocket (the agent) does not carry Beast's websocket code (about
// 450 KiB, which its memory follows, docs/bench.md). A route that uses one
// calls is_websocket_request(), which links it in; without it, the server
// answers a 101 with a 500.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <string>

#include "http/deadline_socket.h"
#include "http/server.h"
#include "http/tls_stream.h"  // declares boost::asio::ssl::stream (no OpenSSL here)

namespace ads::http {

using WebSocketRequest = boost::beast::http::request<boost::beast::http::string_body>;
using LogFn = std::function<void(const std::string&)>;

// Answers the handshake of `req` (or a 426 when it asked for no websocket),
// then runs r.stream with a StreamWriter that is also a WebSocket. Nothing
// the callback throws leaves: it is logged. The caller closes the connection
// afterwards.
__attribute__((weak)) void serve_websocket(DeadlineSocket& s, const WebSocketRequest& req, Response& r,
                                           const LogFn& log);
__attribute__((weak)) void serve_websocket(boost::asio::ssl::stream<DeadlineSocket&>& s, const WebSocketRequest& req,
                                           Response& r, const LogFn& log);

}  // namespace ads::http
