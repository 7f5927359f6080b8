#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/text.h"
#include "http/deadline_socket.h"
#include "http/tls_stream.h"
#include "http/websocket_serve.h"

namespace ads::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string Request::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}
std::string Request::param(const std::string& n) const {
  auto it = params.find(n);
  return it == params.end() ? std::string() : it->second;
}
std::string Request::query_or(const std::string& n, const std::string& f) const {
  auto it = query.find(n);
  return it == query.end() ? f : it->second;
}

Response Response::json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::json(int status, const nlohmann::json& body) {
  return json(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Response Response::error(int status, const std::string& code, const std::string& message, const std::string& field) {
  nlohmann::json e = {{"code", code}, {"message", message}};
  if (!field.empty()) e["field"] = field;
  // the message may quote input (a path, a header): never let its bytes throw
  return json(status, nlohmann::json{{"error", e}});
}

std::string url_decode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

namespace {
// Runs a route's websocket on the connection; false when this program has no
// websockets (websocket_serve.h: the functions are weak) or the stream is TLS
// by a backend other than Boost.Asio's OpenSSL one.
bool run_websocket(DeadlineSocket& s, const WebSocketRequest& req, Response& r, const LogFn& log) {
  void (*serve)(DeadlineSocket&, const WebSocketRequest&, Response&, const LogFn&) = &serve_websocket;
  if (serve == nullptr) return false;
  serve(s, req, r, log);
  return true;
}
bool run_websocket(TlsStream& s, const WebSocketRequest& req, Response& r, const LogFn& log) {
  void (*serve)(asio::ssl::stream<DeadlineSocket&>&, const WebSocketRequest&, Response&, const LogFn&) =
      &serve_websocket;
  auto* tls = s.asio_stream();
  if (serve == nullptr || tls == nullptr) return false;
  serve(*tls, req, r, log);
  return true;
}

std::vector<std::string> split_path(const std::string& p) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : p) {
    if (c == '/') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::map<std::string, std::string> parse_query(const std::string& q) {
  std::map<std::string, std::string> out;
  std::istringstream in(q);
  std::string kv;
  while (std::getline(in, kv, '&')) {
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    if (eq == std::string::npos) out[url_decode(kv)] = "";
    else out[url_decode(kv.substr(0, eq))] = url_decode(kv.substr(eq + 1));
  }
  return out;
}

// Writes chunks straight to the stream (a socket or a TLS stream). The
// response's head goes out with the first chunk (or at the end), so that a
// stream that fails before writing anything can still be answered with a 500.
template <class Stream>
class ChunkWriter : public StreamWriter {
 public:
  ChunkWriter(Stream& s, bhttp::response<bhttp::empty_body>& head) : s_(s), head_(head) {}
  bool write(const std::string& chunk) override {
    if (chunk.empty()) return !failed_;
    if (!send_head()) return false;
    beast::error_code ec;
    asio::write(s_, bhttp::make_chunk(asio::buffer(chunk)), ec);
    if (ec) failed_ = true;
    return !failed_;
  }
  void finish() {
    if (!send_head()) return;
    beast::error_code ec;
    asio::write(s_, bhttp::make_chunk_last(), ec);
    if (ec) failed_ = true;
  }
  bool head_sent() const { return head_sent_; }

 private:
  bool send_head() {
    if (failed_) return false;
    if (head_sent_) return true;
    head_sent_ = true;
    beast::error_code ec;
    bhttp::response_serializer<bhttp::empty_body> sr{head_};
    bhttp::write_header(s_, sr, ec);
    if (ec) failed_ = true;
    return !failed_;
  }

  Stream& s_;
  bhttp::response<bhttp::empty_body>& head_;
  bool head_sent_ = false;
  bool failed_ = false;
};

template <class Stream>
void write_response(Stream& s, Response& r, bool keep_alive, beast::error_code& ec) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), 11};
  res.set(bhttp::field::content_type, r.content_type);
  res.set(bhttp::field::server, "ads");
  for (auto& [k, v] : r.headers) res.set(k, v);
  res.keep_alive(keep_alive);
  res.body() = std::move(r.body);
  res.prepare_payload();
  bhttp::write(s, res, ec);
}

// The request as far as its head goes (the body comes later).
template <class Message>
Request request_head(const Message& msg, const std::string& remote) {
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  auto q = req.target.find('?');
  req.path = req.target.substr(0, q);
  if (q != std::string::npos) req.query = parse_query(req.target.substr(q + 1));
  for (auto& f : msg) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers[name] = std::string(f.value());
  }
  req.remote = remote;
  return req;
}

// What a client gets when something inside the server failed: nothing of the failure itself.
Response internal_error() {
  return Response::error(500, "internal", "internal error (the server's log has the details)");
}

Response refusal(int status, const std::string& code, const std::string& message) {
  Response r = Response::error(status, code, message);
  r.headers.push_back({"Retry-After", "1"});
  return r;
}

// A refusal as raw HTTP/1.1 text, for a socket no thread serves.
std::string raw_text(const Response& r) {
  const char* reason = r.status == 429 ? "Too Many Requests" : r.status == 400 ? "Bad Request" : "Service Unavailable";
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason + "\r\nContent-Type: " + r.content_type +
                    "\r\nConnection: close\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
  for (auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  return out + "\r\n" + r.body;
}

int64_t steady_ms() { return std::chrono::duration_cast<milliseconds>(Clock::now().time_since_epoch()).count(); }

std::string address_of(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
  else if (ss.ss_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
  return buf;
}

// Reads and drops what the client still sends, until it closes, for at most
// `wait` (bounded in bytes too): closing a socket with unread bytes makes the
// kernel send a reset, which can destroy the answer before the client reads it.
void drain_before_close(int fd, milliseconds wait) {
  auto until = Clock::now() + wait;
  char junk[4096];
  for (size_t total = 0; total < (1u << 20);) {
    auto left = std::chrono::ceil<milliseconds>(until - Clock::now()).count();
    if (left <= 0) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return;
    ssize_t n = ::recv(fd, junk, sizeof junk, MSG_DONTWAIT);
    if (n <= 0) return;
    total += static_cast<size_t>(n);
  }
}
}  // namespace

struct Server::Impl {
  explicit Impl(const ServerOptions& o)
      : admission(AdmissionLimits{o.max_connections, o.reserved_connections, o.max_connections_per_address,
                                  o.max_queued, o.max_queued_per_address}) {}

  asio::io_context io;
  tcp::acceptor acceptor{io};
  // Set: HTTPS only. Replaced whole by Server::set_tls_identity; each
  // connection keeps the context it started with.
  std::shared_ptr<TlsContext> ssl;
  mutable std::mutex ssl_mu;  // guards ssl (the pointer)
  std::shared_ptr<TlsContext> ssl_context() const {
    std::lock_guard<std::mutex> l(ssl_mu);
    return ssl;
  }
  int wake_fd = -1;  // eventfd: wakes the accept loop (stop)

  mutable std::mutex mu;  // guards admission and open_fds
  Admission admission;
  std::set<int> open_fds;  // connections being served (shut down by stop)

  // Refused connections whose answer is out, closed once the client has
  // closed too or after a second (accept thread only).
  struct Closing {
    int fd;
    Clock::time_point until;
  };
  std::vector<Closing> closing;
  std::atomic<int> tls_refusers{0};  // threads answering refusals over TLS

  // Connection threads (Server::start_worker): every one alive is counted in
  // `threads`; those waiting for a connection in `idle`. A connection handed
  // to an idle thread waits in `handoff` until one takes it; there are never
  // more of them than idle threads, so each is taken.
  std::mutex idle_mu;
  std::condition_variable idle_cv;
  std::deque<Ticket> handoff;
  size_t idle = 0;
  std::atomic<size_t> threads{0};

  std::atomic<uint64_t> accepted{0}, refused_per_address{0}, refused_busy{0}, queue_timeouts{0}, reserve_refusals{0},
      deadline_cuts{0}, handler_errors{0};

  // Answers a connection no thread serves and lets it close (plain HTTP).
  void refuse_plain(int fd, const Response& r) {
    char junk[4096];
    for (int i = 0; i < 16 && ::recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0; ++i) {
    }
    std::string text = raw_text(r);
    (void)!::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_WR);
    if (closing.size() >= 1024) {
      ::close(fd);
      return;
    }
    closing.push_back({fd, Clock::now() + std::chrono::seconds(1)});
  }
};

struct Server::Conn {
  const Ticket& ticket;
  DeadlineSocket& socket;
  Clock::time_point wait_from;  // when the server began waiting for the next request
};

Server::Server(ServerOptions opts) : opts_(std::move(opts)), impl_(std::make_unique<Impl>(opts_)) {}

Server::~Server() { stop(); }

void Server::route(const std::string& method, const std::string& pattern, Handler h) {
  routes_.push_back({method, split_path(pattern), std::move(h), pattern});
}

std::vector<std::string> Server::routes() const {
  std::vector<std::string> out;
  for (auto& r : routes_) out.push_back(r.method + " " + r.pattern);
  std::sort(out.begin(), out.end());
  return out;
}

ServerStats Server::stats() const {
  ServerStats st;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    st.open = impl_->admission.open();
    st.reserved_open = impl_->admission.reserved_open();
    st.queued = impl_->admission.queued();
  }
  st.accepted = impl_->accepted;
  st.refused_per_address = impl_->refused_per_address;
  st.refused_busy = impl_->refused_busy;
  st.queue_timeouts = impl_->queue_timeouts;
  st.reserve_refusals = impl_->reserve_refusals;
  st.deadline_cuts = impl_->deadline_cuts;
  st.handler_errors = impl_->handler_errors;
  st.threads = impl_->threads;
  {
    std::lock_guard<std::mutex> lk(impl_->idle_mu);
    st.idle_threads = impl_->idle - impl_->handoff.size();
  }
  return st;
}

void Server::log(const std::string& message) const {
  if (opts_.log) opts_.log(message);
  else std::fprintf(stderr, "ads http server: %s\n", message.c_str());
}

namespace {
// The TLS context of a certificate and key, made by the backend the options name.
Result<std::shared_ptr<TlsContext>> make_tls_context(const ServerOptions& o, const std::string& cert_pem,
                                                     const std::string& key_pem) {
  if (!o.tls_backend)
    return Error::make("internal", "this server has a certificate but no TLS backend (ServerOptions::tls_backend)");
  return o.tls_backend(cert_pem, key_pem);
}
}  // namespace

Status Server::set_tls_identity(const std::string& cert_pem, const std::string& key_pem) {
  if (!tls()) return Error::make("invalid", "this server speaks plain HTTP; it has no TLS identity to replace");
  auto ctx = make_tls_context(opts_, cert_pem, key_pem);
  if (!ctx) return ctx.error();
  std::lock_guard<std::mutex> l(impl_->ssl_mu);
  if (impl_->ssl) {
    impl_->ssl = std::move(*ctx);  // started: new handshakes use it
  } else {
    opts_.tls_cert_pem = cert_pem;  // not started yet: start() makes its context
    opts_.tls_key_pem = key_pem;
  }
  return Status::Ok();
}

Status Server::start() {
  if (opts_.max_connections < 1) return Error::invalid("max_connections", "must be at least 1");
  if (opts_.reserved_connections >= opts_.max_connections)
    return Error::invalid("reserved_connections",
                          "must be below max_connections (" + std::to_string(opts_.max_connections) + ")");
  const std::initializer_list<std::pair<const char*, int>> times = {
      {"head_timeout_ms", opts_.head_timeout_ms},   {"request_timeout_ms", opts_.request_timeout_ms},
      {"write_timeout_ms", opts_.write_timeout_ms}, {"reserved_head_timeout_ms", opts_.reserved_head_timeout_ms},
      {"queue_timeout_ms", opts_.queue_timeout_ms}, {"read_timeout_s", opts_.read_timeout_s}};
  for (auto& [name, v] : times)
    if (v < 1) return Error::invalid(name, "must be at least 1");
  if (opts_.request_timeout_ms < opts_.head_timeout_ms)
    return Error::invalid(
        "request_timeout_ms",
        "must be at least head_timeout_ms (" + std::to_string(opts_.head_timeout_ms) + "): it bounds head and body");
  beast::error_code ec;
  if (tls()) {
    auto ctx = make_tls_context(opts_, opts_.tls_cert_pem, opts_.tls_key_pem);
    if (!ctx) return ctx.error();
    std::lock_guard<std::mutex> l(impl_->ssl_mu);
    impl_->ssl = std::move(*ctx);
  }
  auto addr = asio::ip::make_address(opts_.host, ec);
  if (ec) return Error::invalid("host", "not an IP address: " + opts_.host);
  tcp::endpoint ep(addr, opts_.port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) impl_->acceptor.non_blocking(true, ec);
  if (ec) {
    return Error::make("unavailable",
                       "cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) + ": " + ec.message());
  }
  impl_->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl_->wake_fd < 0) return Error::make("unavailable", "cannot make an eventfd for the server");
  port_ = impl_->acceptor.local_endpoint().port();
  running_ = true;
  accept_thread_ = std::thread([this] { accept_loop(); });
  return Status::Ok();
}

void Server::accept_loop() {
  const int lfd = impl_->acceptor.native_handle();
  auto& closing = impl_->closing;
  while (running_) {
    // sleep until a connection comes, the oldest queued one has waited long
    // enough, or a refused one is due to be closed
    int timeout_ms = 1000;
    {
      std::lock_guard<std::mutex> lk(impl_->mu);
      if (auto oldest = impl_->admission.oldest_waiting())
        timeout_ms = static_cast<int>(std::clamp<int64_t>(*oldest + opts_.queue_timeout_ms - steady_ms() + 1, 0, 1000));
    }
    auto now = Clock::now();
    for (auto& c : closing)
      timeout_ms = std::min<int>(
          timeout_ms, static_cast<int>(std::max<int64_t>(0, std::chrono::ceil<milliseconds>(c.until - now).count())));
    std::vector<pollfd> fds = {{lfd, POLLIN, 0}, {impl_->wake_fd, POLLIN, 0}};
    for (auto& c : closing) fds.push_back({c.fd, POLLIN, 0});
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (!running_) break;
    if (n < 0 && errno != EINTR) std::this_thread::sleep_for(milliseconds(10));
    if (n < 0) continue;

    // refused connections: read what the client still sends; close at its end or when due
    now = Clock::now();
    std::vector<Impl::Closing> still;
    for (size_t i = 0; i < closing.size(); ++i) {
      bool done = now >= closing[i].until;
      if (!done && fds[2 + i].revents) {
        char junk[4096];
        ssize_t got = ::recv(closing[i].fd, junk, sizeof junk, MSG_DONTWAIT);
        done = got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
      }
      if (done) ::close(closing[i].fd);
      else still.push_back(closing[i]);
    }
    closing.swap(still);

    if (fds[0].revents) {
      for (int k = 0; k < 64 && running_; ++k) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
            log("cannot accept a connection: " + errno_text(errno));
            std::this_thread::sleep_for(milliseconds(10));
          }
          break;
        }
        admit(fd, address_of(ss));
      }
    }

    // queued connections that waited too long
    std::vector<Ticket> expired;
    {
      std::lock_guard<std::mutex> lk(impl_->mu);
      expired = impl_->admission.expire(steady_ms() - opts_.queue_timeout_ms);
    }
    for (auto& t : expired) {
      ++impl_->queue_timeouts;
      impl_->refuse_plain(t.fd, refusal(503, "unavailable",
                                        "the server is busy: no connection was free within " +
                                            std::to_string(opts_.queue_timeout_ms) + " ms"));
    }
  }
  std::vector<Ticket> queued;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    queued = impl_->admission.drain();
  }
  for (auto& t : queued) ::close(t.fd);
  for (auto& c : closing) ::close(c.fd);
  closing.clear();
}

void Server::admit(int fd, std::string remote) {
  Ticket t{fd, std::move(remote), false, steady_ms()};
  Admission::Verdict v;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    v = impl_->admission.arrive(t);
    if (v == Admission::Verdict::kServe) impl_->open_fds.insert(fd);
  }
  ++impl_->accepted;
  if (v == Admission::Verdict::kServe) return start_worker(std::move(t));
  if (v == Admission::Verdict::kQueued) return;
  Response r;
  if (v == Admission::Verdict::kTooManyFromAddress) {
    ++impl_->refused_per_address;
    r = refusal(429, "too_many_connections",
                "too many connections from " + t.address + " at once (at most " +
                    std::to_string(opts_.max_connections_per_address) + " served, the others wait)");
  } else {
    ++impl_->refused_busy;
    r = refusal(503, "unavailable", "the server is busy: too many connections");
  }
  auto ssl = impl_->ssl_context();
  if (!ssl) return impl_->refuse_plain(fd, r);
  // over TLS the answer needs a handshake: a few threads at most do that
  // (with short deadlines); beyond them the connection is just closed
  if (impl_->tls_refusers.fetch_add(1) >= 4) {
    --impl_->tls_refusers;
    ::close(fd);
    return;
  }
  try {
    std::thread([this, fd, r, ssl]() mutable {
      try {
        asio::io_context io;
        beast::error_code ec;
        tcp::socket sock(io);
        sock.assign(opts_.host.find(':') == std::string::npos ? tcp::v4() : tcp::v6(), fd, ec);
        if (!ec) {
          DeadlineSocket ds(sock, milliseconds(1000), milliseconds(1000));
          ds.read_deadline(Clock::now() + milliseconds(2000));
          unsigned char first = 0;
          if (ds.wait_readable(ec) && ::recv(fd, &first, 1, MSG_PEEK) == 1 && first == 0x16) {
            auto tls = ssl->stream(ds);
            tls->handshake(ec);
            if (!ec) write_response(*tls, r, false, ec);
          }
          sock.shutdown(tcp::socket::shutdown_send, ec);
          drain_before_close(fd, milliseconds(500));
          sock.release(ec);
        }
      } catch (...) {
      }
      ::close(fd);
      --impl_->tls_refusers;
    }).detach();
  } catch (const std::system_error&) {
    --impl_->tls_refusers;
    ::close(fd);
  }
}

void Server::start_worker(Ticket t) {
  ++active_;
  {
    std::lock_guard<std::mutex> lk(impl_->idle_mu);
    if (impl_->idle > impl_->handoff.size()) {
      impl_->handoff.push_back(std::move(t));
      impl_->idle_cv.notify_one();
      return;
    }
  }
  ++impl_->threads;
  auto work = [this](Ticket t) {
    for (;;) {
      serve_until_idle(std::move(t));
      --active_;
      auto next = wait_idle();
      if (!next) break;
      t = std::move(*next);  // counted in active_ by start_worker
    }
    --impl_->threads;  // the last access to the server: stop() waits for it
  };
  try {
    std::thread(work, t).detach();
  } catch (const std::system_error& e) {
    --impl_->threads;
    log(std::string("cannot start a thread for a connection: ") + e.what());
    auto next = release_slot(t);
    --active_;
    if (next) start_worker(std::move(*next));
  }
}

// Closes `t`'s connection and frees its slot; returns the queued connection
// that takes the slot, if one waits (now counted as served).
std::optional<Ticket> Server::release_slot(const Ticket& t) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  impl_->open_fds.erase(t.fd);
  ::close(t.fd);
  auto next = impl_->admission.release(t);
  if (next) impl_->open_fds.insert(next->fd);
  return next;
}

// Serves `t`, then each queued connection its slot passes to, until none waits.
void Server::serve_until_idle(Ticket t) {
  for (;;) {
    try {
      serve_connection(t);
    } catch (const std::exception& e) {
      ++impl_->handler_errors;
      log("a connection from " + t.address + " failed: " + e.what());
    } catch (...) {
      ++impl_->handler_errors;
      log("a connection from " + t.address + " failed (an exception that is not a std::exception)");
    }
    auto next = release_slot(t);
    if (!next) return;
    t = std::move(*next);  // a waiting connection takes the slot, on this thread
  }
}

// Waits, as one of at most opts_.idle_threads idle threads, for a connection
// start_worker hands over; none within opts_.idle_thread_ms, too many idle
// already, or the server stopping: nullopt, and the thread ends.
std::optional<Ticket> Server::wait_idle() {
  std::unique_lock<std::mutex> lk(impl_->idle_mu);
  if (!running_ || impl_->idle >= opts_.idle_threads) return std::nullopt;
  ++impl_->idle;
  impl_->idle_cv.wait_for(lk, milliseconds(opts_.idle_thread_ms),
                          [this] { return !impl_->handoff.empty() || !running_; });
  --impl_->idle;
  // a connection handed over is taken even while stopping: its slot and
  // active_ count are released by serving it (stop() has shut its socket)
  if (impl_->handoff.empty()) return std::nullopt;
  Ticket t = std::move(impl_->handoff.front());
  impl_->handoff.pop_front();
  return t;
}

void Server::stop() {
  if (!running_.exchange(false)) return;
  uint64_t one = 1;
  (void)!::write(impl_->wake_fd, &one, sizeof one);
  if (accept_thread_.joinable()) accept_thread_.join();
  beast::error_code ec;
  impl_->acceptor.close(ec);
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
  }
  {
    std::lock_guard<std::mutex> lk(impl_->idle_mu);  // no idle thread misses the news (wait_idle)
  }
  impl_->idle_cv.notify_all();
  for (int i = 0; i < 3000 && (active_.load() > 0 || impl_->threads.load() > 0 || impl_->tls_refusers.load() > 0); ++i)
    std::this_thread::sleep_for(milliseconds(10));
  ::close(impl_->wake_fd);
  impl_->wake_fd = -1;
}

Response Server::dispatch(Request& req) {
  // nothing a filter or a handler throws leaves here: it is logged, and the
  // client learns only that something failed
  auto failed = [&](const std::string& what) {
    ++impl_->handler_errors;
    log(req.method + " " + req.path + ": " + what);
    return internal_error();
  };
  try {
    if (filter_) {
      if (auto r = filter_(req)) return *r;
    }
    auto segs = split_path(req.path);
    bool path_matched = false;
    for (auto& route : routes_) {
      if (route.segments.size() != segs.size()) continue;
      std::map<std::string, std::string> params;
      bool ok = true;
      for (size_t i = 0; i < segs.size() && ok; ++i) {
        const auto& p = route.segments[i];
        if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
          params[p.substr(1, p.size() - 2)] = url_decode(segs[i]);
        } else if (p != segs[i]) {
          ok = false;
        }
      }
      if (!ok) continue;
      path_matched = true;
      if (route.method != req.method) continue;
      req.params = std::move(params);
      return route.handler(req);
    }
    if (path_matched) return Response::error(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
    return Response::error(404, "not_found", "no such resource: " + req.path);
  } catch (const std::exception& e) {
    return failed(std::string("the handler threw: ") + e.what());
  } catch (...) {
    return failed("the handler threw an exception that is not a std::exception");
  }
}

void Server::serve_connection(const Ticket& t) {
  asio::io_context io;
  beast::error_code ec;
  tcp::socket sock(io);
  sock.assign(opts_.host.find(':') == std::string::npos ? tcp::v4() : tcp::v6(), t.fd, ec);
  if (ec) return;
  DeadlineSocket ds(sock, std::chrono::seconds(opts_.read_timeout_s), milliseconds(opts_.write_timeout_ms));
  Conn c{t, ds, Clock::now()};
  // the first head's deadline covers the TLS handshake too
  ds.read_deadline(c.wait_from + milliseconds(t.reserved ? opts_.reserved_head_timeout_ms : opts_.head_timeout_ms));
  auto ssl = impl_->ssl_context();  // kept for the connection's life
  if (!ssl) {
    serve_stream(ds, c);
  } else {
    // A TLS connection starts with a handshake record (0x16); anything else
    // is a plain-HTTP client at an HTTPS port: tell it so, in plain HTTP.
    unsigned char first = 0;
    ssize_t n = ds.wait_readable(ec) ? ::recv(t.fd, &first, 1, MSG_PEEK) : -1;
    if (n == 1 && first != 0x16) {
      const std::string body =
          R"({"error":{"code":"tls_required","message":"this server speaks HTTPS only: use an https:// URL"}})";
      const std::string reply =
          "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
          "Content-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body;
      // read what the client sent first (a request's head), so closing does not reset the answer
      char junk[4096];
      (void)!::recv(t.fd, junk, sizeof junk, MSG_DONTWAIT);
      (void)!::send(t.fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    } else if (n == 1) {
      auto tls = ssl->stream(ds);
      tls->handshake(ec);
      if (!ec) serve_stream(*tls, c);
      // no close_notify exchange: every answer is framed (length or chunks), and
      // waiting for the peer's close_notify could block this thread
    }
  }
  beast::error_code ignore;
  sock.shutdown(tcp::socket::shutdown_send, ignore);
  if (running_) drain_before_close(t.fd, milliseconds(500));
  sock.release(ignore);  // the caller closes fd
}

template <class Stream>
void Server::serve_stream(Stream& sock, Conn& c) {
  beast::flat_buffer buf;
  const milliseconds head_limit(c.ticket.reserved ? opts_.reserved_head_timeout_ms : opts_.head_timeout_ms);
  const milliseconds whole_limit(std::max(opts_.request_timeout_ms, static_cast<int>(head_limit.count())));
  while (running_) {
    beast::error_code ec;
    bhttp::request_parser<bhttp::string_body> parser;
    // the body limit is set once the head is read (below): a head check sees
    // a request whose declared body is too large (and may answer it itself)
    parser.body_limit(boost::none);
    parser.header_limit(64 * 1024);

    // the head, then the body, each by its deadline from the start of the wait
    Request req;
    size_t body_limit = opts_.max_body_bytes;
    c.socket.read_deadline(c.wait_from + head_limit);
    bhttp::read_header(sock, buf, parser, ec);
    if (!ec) {
      req = request_head(parser.get(), c.ticket.address);
      if (c.ticket.reserved && !reserve_allows(req)) {
        ++impl_->reserve_refusals;
        Response r = refusal(503, "unavailable",
                             "the server is busy: only requests with credentials get through now; try again later");
        write_response(sock, r, false, ec);
        break;
      }
      if (head_check_) {
        if (auto refused = head_check_(req, &body_limit)) {
          write_response(sock, *refused, false, ec);  // the body stays unread
          break;
        }
      }
      auto declared = parser.content_length();
      if (declared && *declared > body_limit) ec = bhttp::error::body_limit;
      else parser.body_limit(body_limit);  // what is left of it, for a chunked body
      c.socket.read_deadline(c.wait_from + whole_limit);
      if (!ec && !parser.is_done()) bhttp::read(sock, buf, parser, ec);
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) break;
    if (ec) {
      Response r;
      if (ec == bhttp::error::body_limit) {
        r = Response::error(413, "too_large", "request body exceeds " + std::to_string(body_limit) + " bytes");
      } else if (ec == asio::error::timed_out) {
        ++impl_->deadline_cuts;
        if (!parser.got_some() && buf.size() == 0) break;  // nothing of a request came: just close
        if (!c.socket.deadline_passed())
          r = Response::error(408, "request_timeout",
                              "the client sent nothing for " + std::to_string(opts_.read_timeout_s) + " s");
        else if (!parser.is_header_done())
          r = Response::error(408, "request_timeout",
                              "the request's head did not arrive within " + std::to_string(head_limit.count()) + " ms");
        else
          r = Response::error(408, "request_timeout",
                              "the request did not arrive within " + std::to_string(whole_limit.count()) + " ms");
      } else if (ec == asio::error::would_block || ec == asio::error::try_again ||
                 ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
                 ec == asio::error::bad_descriptor || ec.category() == tls_category()) {
        break;
      } else {
        r = Response::error(400, "bad_request", "malformed HTTP request: " + ec.message());
      }
      write_response(sock, r, false, ec);
      break;
    }
    req.body = std::move(parser.get().body());
    const bool keep = parser.get().keep_alive() && !c.ticket.reserved;

    Response r = dispatch(req);
    if (r.status == 101 && r.stream) {  // the route takes the connection over (http/websocket.h)
      c.socket.read_deadline(Clock::time_point::max());
      if (!run_websocket(sock, parser.get(), r, [this](const std::string& m) { log(m); })) {
        ++impl_->handler_errors;
        log(req.method + " " + req.path + ": a websocket answer, and this program has none (ads_http_websocket)");
        Response e = internal_error();
        write_response(sock, e, false, ec);
        break;
      }
      break;
    }
    if (r.stream) {
      bhttp::response<bhttp::empty_body> head{static_cast<bhttp::status>(r.status), 11};
      head.set(bhttp::field::content_type, r.content_type);
      for (auto& [k, v] : r.headers) head.set(k, v);
      head.chunked(true);
      head.keep_alive(false);
      ChunkWriter<Stream> w(sock, head);
      auto failed = [&](const std::string& what) {
        ++impl_->handler_errors;
        log(req.method + " " + req.path + ": " + what);
        // nothing sent yet: a 500; else the stream ends without its last chunk,
        // so that the client knows it was cut short
        if (!w.head_sent()) {
          Response e = internal_error();
          write_response(sock, e, false, ec);
        }
      };
      try {
        r.stream(w);
        w.finish();
      } catch (const std::exception& e) {
        failed(std::string("the stream threw: ") + e.what());
      } catch (...) {
        failed("the stream threw an exception that is not a std::exception");
      }
      break;  // streamed responses close the connection
    }
    write_response(sock, r, keep, ec);
    if (ec || !keep) break;
    c.wait_from = Clock::now();
  }
}

bool Server::reserve_allows(const Request& req) {
  if (!reserve_filter_) return true;
  try {
    return reserve_filter_(req);
  } catch (const std::exception& e) {
    ++impl_->handler_errors;
    log(req.method + " " + req.path + ": the reserve filter threw: " + e.what());
  } catch (...) {
    ++impl_->handler_errors;
    log(req.method + " " + req.path + ": the reserve filter threw");
  }
  return false;
}

}  // namespace ads::http
