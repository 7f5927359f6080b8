// A small blocking HTTP/1.1 server on Boost.Beast, shared by `ads serve` and
// the agent. One thread per connection served, bounded; more connections wait
// in a bounded queue; routes match a method and a path pattern whose `{name}`
// segments become parameters. Responses are either a body or a stream written
// by a callback (chunked transfer encoding).
// With a certificate in ServerOptions it speaks HTTPS only (Boost.Asio SSL).
// The connection limits and deadlines are described for operators in
// docs/operators/limits.md; each is a field of ServerOptions.
// No exception from a filter, a handler or a stream callback leaves the
// server: it is logged, and the client gets a 500 whose body does not repeat
// it (or, once a stream has begun, a stream cut short without its last chunk).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "http/admission.h"

namespace ads::http {

struct Request {
  std::string method;
  std::string path;                            // without the query
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // lower-case names
  std::map<std::string, std::string> params;   // from {name} segments
  std::string target;                          // path + query as received
  std::string body;
  std::string remote;                        // peer address
  std::map<std::string, std::string> attrs;  // set by the filter (e.g. the caller)

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
  static Response json(int status, const char* body) { return json(status, std::string(body)); }
  // Serialized with invalid UTF-8 replaced (U+FFFD): building an answer never throws.
  static Response json(int status, const nlohmann::json& body);
  // {"error":{"code":..,"message":..,"field":..}}
  static Response error(int status, const std::string& code, const std::string& message, const std::string& field = "");
};

using Handler = std::function<Response(Request&)>;

class TlsContext;  // tls_stream.h
// Makes a server's TLS context (TLS 1.2 or later) from a certificate (chain)
// and its key; errors: "invalid", field "tls.cert" or "tls.key".
using TlsBackend =
    std::function<Result<std::shared_ptr<TlsContext>>(const std::string& cert_pem, const std::string& key_pem)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (see Server::port())
  size_t max_body_bytes = 1 << 20;
  // Connections served at once (one thread each), reserved ones included.
  // Beyond it they wait in the queue (max_queued).
  size_t max_connections = 256;
  // Longest silence from the client while the server waits for a request's
  // bytes (seconds); the deadlines below bound the whole.
  int read_timeout_s = 30;
  // Both set: the server speaks only HTTPS (TLS 1.2+) with this certificate
  // and key (PEM text, see tls.h); a plain HTTP request gets a 400 naming it.
  std::string tls_cert_pem{};
  std::string tls_key_pem{};
  // The library that speaks it (tls_stream.h): http::openssl_tls
  // (tls_openssl.h) or http::mbedtls_tls (tls_mbedtls.h). Required with a
  // certificate ("internal" from start() otherwise).
  TlsBackend tls_backend{};

  // Deadlines per request, counted from the moment the server starts waiting
  // for it (the connection's start, TLS handshake included, or the end of the
  // previous answer on a kept-alive connection), not per read: a client that
  // sends a byte now and then is still cut. Cut: 408 with a JSON body if part
  // of a request had come (plain HTTP), and the connection is closed.
  int head_timeout_ms = 10000;     // the request line and headers
  int request_timeout_ms = 30000;  // head and body
  int write_timeout_ms = 30000;    // longest wait for the client to take more of an answer

  // Connections from one client address served at once (0: no limit); more
  // from it wait in the queue, at most max_queued_per_address; beyond, 429.
  size_t max_connections_per_address = 64;
  // The last `reserved_connections` of max_connections only serve a request
  // the reserve filter (Server::set_reserve_filter) lets in, judged on its head
  // (others get 503); a connection there must send its head within
  // reserved_head_timeout_ms and is closed after one answer. So clients that
  // hold many connections (slowly or not) do not shut out the requests the
  // filter names (for `ads serve`: those with credentials, and the health check).
  size_t reserved_connections = 0;
  int reserved_head_timeout_ms = 2000;
  // Accepted connections waiting for a slot, in all and per address (0: no
  // per-address limit); each waits at most queue_timeout_ms, then 503. A full
  // queue: 503 (429 when the address is over its share).
  size_t max_queued = 1024;
  size_t max_queued_per_address = 256;
  int queue_timeout_ms = 10000;
  // Threads kept after their connection ends, waiting for the next one
  // (at most idle_threads, each for idle_thread_ms): a new connection then
  // costs no thread start, and the thread's malloc cache stays warm (the
  // API list at 10,000 records: docs/bench.md). 0: a thread per connection.
  size_t idle_threads = 16;
  int idle_thread_ms = 30000;

  // Where the server's own errors go (a handler that threw, ...); unset: stderr.
  std::function<void(const std::string&)> log{};
};

// What the server is doing, for tests, benches and metrics.
struct ServerStats {
  size_t open = 0;                   // connections being served (a thread each)
  size_t reserved_open = 0;          // of which in reserved slots
  size_t queued = 0;                 // waiting for a slot
  uint64_t accepted = 0;             // connections accepted since start
  uint64_t refused_per_address = 0;  // 429: over the per-address share
  uint64_t refused_busy = 0;         // 503: queue full
  uint64_t queue_timeouts = 0;       // 503: waited queue_timeout_ms
  uint64_t reserve_refusals = 0;     // 503: a reserved slot, a request the reserve filter refused
  uint64_t deadline_cuts = 0;        // requests cut at a deadline or a silence
  uint64_t handler_errors = 0;       // exceptions from filters, handlers, streams
  size_t threads = 0;                // connection threads alive, serving or idle
  size_t idle_threads = 0;           // of which waiting for a connection
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
  // Which requests a reserved connection may serve, judged on the head alone
  // (method, path, query, headers, remote; no body yet). Unset: any.
  void set_reserve_filter(std::function<bool(const Request&)> f) { reserve_filter_ = std::move(f); }
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
  // Replaces the certificate and key of a server that speaks HTTPS, before
  // or after start(): handshakes from then on present the new one;
  // connections already open keep theirs. Errors ("invalid", field
  // "tls.cert"/"tls.key") change nothing; a plain-HTTP server: "invalid".
  Status set_tls_identity(const std::string& cert_pem, const std::string& key_pem);
  // "METHOD pattern" of every registered route, sorted.
  std::vector<std::string> routes() const;
  ServerStats stats() const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
    std::string pattern;
  };
  struct Impl;
  struct Conn;

  Response dispatch(Request& req);
  void accept_loop();
  void admit(int fd, std::string remote);
  void start_worker(Ticket t);
  void serve_until_idle(Ticket t);
  std::optional<Ticket> release_slot(const Ticket& t);
  std::optional<Ticket> wait_idle();
  void serve_connection(const Ticket& t);
  template <class Stream>
  void serve_stream(Stream& s, Conn& c);
  bool reserve_allows(const Request& req);
  void log(const std::string& message) const;

  ServerOptions opts_;
  std::vector<Route> routes_;
  std::function<std::optional<Response>(Request&)> filter_;
  std::function<bool(const Request&)> reserve_filter_;
  HeadCheck head_check_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> running_{false};
  std::atomic<size_t> active_{0};  // connections being served (by a thread each)
  uint16_t port_ = 0;
  std::thread accept_thread_;
};

std::string url_decode(const std::string& s);

}  // namespace ads::http
