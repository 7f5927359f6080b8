#include "http/server.h"

#include <sys/socket.h>

#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ads::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string Request::header(const std::string& n) const {
  auto it = headers.find(n);
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

Response Response::error(int status, const std::string& code, const std::string& message,
                         const std::string& field) {
  nlohmann::json e = {{"code", code}, {"message", message}};
  if (!field.empty()) e["field"] = field;
  return json(status, nlohmann::json{{"error", e}}.dump());
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

// Writes chunks straight to the stream (a socket or a TLS stream).
template <class Stream>
class ChunkWriter : public StreamWriter {
 public:
  explicit ChunkWriter(Stream& s) : s_(s) {}
  bool write(const std::string& chunk) override {
    if (failed_) return false;
    if (chunk.empty()) return true;
    beast::error_code ec;
    asio::write(s_, bhttp::make_chunk(asio::buffer(chunk)), ec);
    if (ec) failed_ = true;
    return !failed_;
  }
  void finish() {
    if (failed_) return;
    beast::error_code ec;
    asio::write(s_, bhttp::make_chunk_last(), ec);
  }
  bool failed() const { return failed_; }

 private:
  Stream& s_;
  bool failed_ = false;
};
}  // namespace

struct Server::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::unique_ptr<asio::ssl::context> ssl;  // set: HTTPS only
};

Server::Server(ServerOptions opts) : opts_(std::move(opts)), impl_(std::make_unique<Impl>()) {}

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

Status Server::start() {
  beast::error_code ec;
  if (tls()) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ::SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                     asio::ssl::context::single_dh_use);
    ctx->use_certificate_chain(asio::buffer(opts_.tls_cert_pem), ec);
    if (ec) return Error::invalid("tls.cert", "the certificate cannot be used: " + ec.message());
    ctx->use_private_key(asio::buffer(opts_.tls_key_pem), asio::ssl::context::pem, ec);
    if (ec) return Error::invalid("tls.key", "the key cannot be used: " + ec.message());
    if (::SSL_CTX_check_private_key(ctx->native_handle()) != 1)
      return Error::invalid("tls.key", "the key does not belong to the certificate");
    impl_->ssl = std::move(ctx);
  }
  auto addr = asio::ip::make_address(opts_.host, ec);
  if (ec) return Error::invalid("host", "not an IP address: " + opts_.host);
  tcp::endpoint ep(addr, opts_.port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error::make("unavailable", "cannot listen on " + opts_.host + ":" +
                                          std::to_string(opts_.port) + ": " + ec.message());
  }
  port_ = impl_->acceptor.local_endpoint().port();
  running_ = true;
  accept_thread_ = std::thread([this] {
    while (running_) {
      beast::error_code aec;
      tcp::socket sock(impl_->io);
      impl_->acceptor.accept(sock, aec);
      if (aec) {
        if (!running_) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      std::string remote;
      beast::error_code rec;
      auto rep = sock.remote_endpoint(rec);
      if (!rec) remote = rep.address().to_string();
      int fd = sock.release(rec);
      if (rec) continue;
      if (active_.load() >= opts_.max_connections) {
        const std::string body = R"({"error":{"code":"unavailable","message":"too many connections"}})";
        const std::string busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                 "Connection: close\r\nContent-Length: " + std::to_string(body.size()) +
                                 "\r\n\r\n" + body;
        (void)!::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
        ::close(fd);
        continue;
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        open_fds_.insert(fd);
      }
      ++active_;
      std::thread([this, fd, remote] {
        serve_connection(fd, remote);
        {
          std::lock_guard<std::mutex> lk(mu_);
          open_fds_.erase(fd);
        }
        ::close(fd);
        --active_;
      }).detach();
    }
  });
  return Status::Ok();
}

void Server::stop() {
  if (!running_.exchange(false)) return;
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  beast::error_code ec;
  impl_->acceptor.close(ec);
  if (accept_thread_.joinable()) accept_thread_.join();
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (int i = 0; i < 3000 && active_.load() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

Response Server::dispatch(Request& req) {
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
    try {
      return route.handler(req);
    } catch (const std::exception& e) {
      return Response::error(500, "internal", std::string("internal error: ") + e.what());
    }
  }
  if (path_matched) return Response::error(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
  return Response::error(404, "not_found", "no such resource: " + req.path);
}

void Server::serve_connection(int fd, std::string remote) {
  asio::io_context io;
  beast::error_code ec;
  tcp::socket sock(io);
  sock.assign(opts_.host.find(':') == std::string::npos ? tcp::v4() : tcp::v6(), fd, ec);
  if (ec) return;
  struct timeval tv {opts_.read_timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!impl_->ssl) {
    serve_stream(sock, remote);
  } else {
    // A TLS connection starts with a handshake record (0x16); anything else
    // is a plain-HTTP client at an HTTPS port: tell it so, in plain HTTP.
    unsigned char first = 0;
    ssize_t n = ::recv(fd, &first, 1, MSG_PEEK);
    if (n == 1 && first != 0x16) {
      const std::string body =
          R"({"error":{"code":"tls_required","message":"this server speaks HTTPS only: use an https:// URL"}})";
      const std::string reply = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      // read what the client sent first (a request's head), so closing does not reset the answer
      char junk[4096];
      (void)!::recv(fd, junk, sizeof junk, MSG_DONTWAIT);
      (void)!::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    } else if (n == 1) {
      asio::ssl::stream<tcp::socket&> tls(sock, *impl_->ssl);
      tls.handshake(asio::ssl::stream_base::server, ec);
      if (!ec) serve_stream(tls, remote);
      // no close_notify exchange: every answer is framed (length or chunks), and
      // waiting for the peer's close_notify could block this thread
    }
  }
  beast::error_code ignore;
  sock.shutdown(tcp::socket::shutdown_send, ignore);
  sock.release(ignore);  // the caller closes fd
}

namespace {
// The method, target, query, headers and peer of a request whose head is read.
void fill_head(Request& req, const bhttp::request<bhttp::string_body>& msg, const std::string& remote) {
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
}

// An answer after which the connection closes.
template <class Stream>
void write_final(Stream& sock, const Response& r) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), 11};
  res.set(bhttp::field::content_type, r.content_type);
  res.set(bhttp::field::connection, "close");
  for (auto& [k, v] : r.headers) res.set(k, v);
  res.body() = r.body;
  res.prepare_payload();
  beast::error_code ec;
  bhttp::write(sock, res, ec);
}
}  // namespace

template <class Stream>
void Server::serve_stream(Stream& sock, const std::string& remote) {
  beast::error_code ec;
  beast::flat_buffer buf;
  while (running_) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(opts_.max_body_bytes);
    parser.header_limit(64 * 1024);
    Request req;
    size_t body_limit = opts_.max_body_bytes;
    bhttp::read_header(sock, buf, parser, ec);
    if (!ec && head_check_) {
      fill_head(req, parser.get(), remote);
      if (auto refused = head_check_(req, &body_limit)) {
        write_final(sock, *refused);  // the body stays unread
        break;
      }
      auto declared = parser.content_length();
      if (declared && *declared > body_limit) ec = bhttp::error::body_limit;
      else parser.body_limit(body_limit);  // what is left of it, for a chunked body
    }
    if (!ec) bhttp::read(sock, buf, parser, ec);
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) break;
    if (ec) {
      Response r;
      if (ec == bhttp::error::body_limit) {
        r = Response::error(413, "too_large", "request body exceeds " + std::to_string(body_limit) + " bytes");
      } else if (ec == asio::error::would_block || ec == asio::error::try_again ||
                 ec == asio::error::timed_out || ec == asio::error::connection_reset ||
                 ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor ||
                 ec == asio::ssl::error::stream_truncated || ec.category() == asio::error::get_ssl_category()) {
        break;
      } else {
        r = Response::error(400, "bad_request", "malformed HTTP request: " + ec.message());
      }
      write_final(sock, r);
      break;
    }
    auto& msg = parser.get();
    if (!head_check_) fill_head(req, msg, remote);
    req.body = std::move(msg.body());
    bool keep = msg.keep_alive();

    Response r = dispatch(req);
    if (r.stream) {
      bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(r.status), 11};
      res.set(bhttp::field::content_type, r.content_type);
      for (auto& [k, v] : r.headers) res.set(k, v);
      res.chunked(true);
      res.keep_alive(false);
      bhttp::response_serializer<bhttp::empty_body> sr{res};
      bhttp::write_header(sock, sr, ec);
      if (ec) break;
      ChunkWriter<Stream> w(sock);
      r.stream(w);
      w.finish();
      break;  // streamed responses close the connection
    }
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), 11};
    res.set(bhttp::field::content_type, r.content_type);
    res.set(bhttp::field::server, "ads");
    for (auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep);
    res.body() = std::move(r.body);
    res.prepare_payload();
    bhttp::write(sock, res, ec);
    if (ec || !keep) break;
  }
}

}  // namespace ads::http
