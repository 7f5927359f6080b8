// A small blocking HTTP/1.1 server on Boost.Beast, shared by `ads serve` and
// the agent. One thread per connection, bounded; routes match a method and a
// path pattern whose `{name}` segments become parameters. Responses are either
// a body or a stream written by a callback (chunked transfer encoding).
// With a certificate in ServerOptions it speaks HTTPS only (Boost.Asio SSL).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace ads::http {

struct Request {
  std::string method;
  std::string path;                           // without the query
  std::map<std::string, std::string> query;   // decoded
  std::map<std::string, std::string> headers; // lower-case names
  std::map<std::string, std::string> params;  // from {name} segments
  std::string target;                         // path + query as received
  std::string body;
  std::string remote;                         // peer address
  std::map<std::string, std::string> attrs;   // set by the filter (e.g. the caller)

  std::string header(const std::string& lower_name) const;
  std::string param(const std::string& name) const;
  std::string query_or(const std::string& name, const std::string& fallback) const;
};

// Writes chunks of a streamed response. write() returns false once the
// client has gone away; the callback should then return.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool write(const std::string& chunk) = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::function<void(StreamWriter&)> stream;  // set: body is ignored

  static Response json(int status, std::string body);
  // {"error":{"code":..,"message":..,"field":..}}
  static Response error(int status, const std::string& code, const std::string& message,
                        const std::string& field = "");
};

using Handler = std::function<Response(Request&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;               // 0: any free port (see Server::port())
  size_t max_body_bytes = 1 << 20;
  size_t max_connections = 64;
  int read_timeout_s = 30;
  // Both set: the server speaks only HTTPS (TLS 1.2+) with this certificate
  // and key (PEM text, see tls.h); a plain HTTP request gets a 400 naming it.
  std::string tls_cert_pem{};
  std::string tls_key_pem{};
};

class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void route(const std::string& method, const std::string& pattern, Handler h);
  // Called for every request before routing; a returned response ends it.
  void set_filter(std::function<std::optional<Response>(Request&)> f) { filter_ = std::move(f); }
  // Called once a request's head is read, before any of its body: `head` has
  // all but the body and the route's params. A returned response ends the
  // request unread (the connection closes after it). `*body_limit` starts at
  // max_body_bytes and may be lowered for this request (a larger declared
  // Content-Length gets 413 before the body is read). Attributes set in
  // head.attrs stay on the request the filter and the route see.
  using HeadCheck = std::function<std::optional<Response>(Request& head, size_t* body_limit)>;
  void set_head_check(HeadCheck f) { head_check_ = std::move(f); }

  // Binds and starts accepting in a background thread.
  Status start();
  // Stops accepting, closes open connections, joins the threads.
  void stop();
  uint16_t port() const { return port_; }
  bool tls() const { return !opts_.tls_cert_pem.empty(); }
  // "METHOD pattern" of every registered route, sorted.
  std::vector<std::string> routes() const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
    std::string pattern;
  };
  struct Impl;

  Response dispatch(Request& req);
  void serve_connection(int fd, std::string remote);
  template <class Stream>
  void serve_stream(Stream& s, const std::string& remote);

  ServerOptions opts_;
  std::vector<Route> routes_;
  std::function<std::optional<Response>(Request&)> filter_;
  HeadCheck head_check_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> running_{false};
  std::atomic<size_t> active_{0};
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::mutex mu_;
  std::set<int> open_fds_;
  std::vector<std::thread> workers_;
};

std::string url_decode(const std::string& s);

}  // namespace ads::http
