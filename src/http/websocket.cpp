#include "http/websocket.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <exception>
#include <utility>

#include "core/text.h"
#include "http/websocket_serve.h"

namespace ads::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace bhttp = beast::http;

namespace {
// Whether the comma-separated header value holds `token` (any case; Beast's parser).
bool has_token(const std::string& value, const char* token) { return bhttp::token_list(value).exists(token); }

// One websocket relayed to a socket, in the connection's thread: every read
// and write is asynchronous on the connection's own io_context, so that each
// direction waits for its own side only.
template <class Stream>
class Relay final : public StreamWriter, public WebSocket {
 public:
  explicit Relay(Stream& s) : ws_(s) {}

  bool accept(const WebSocketRequest& req, std::string* why) {
    ws_.set_option(
        websocket::stream_base::decorator([](websocket::response_type& res) { res.set(bhttp::field::server, "ads"); }));
    beast::error_code ec;
    ws_.accept(req, ec);
    if (ec) *why = ec.message();
    return !ec;
  }

  // a websocket has no chunks to write: the callback must relay()
  bool write(const std::string& /*chunk*/) override { return false; }

  std::string relay(const SocketRelay& r) override {
    if (used_) return "relay() may be called once";
    used_ = true;
    // the connection's socket lives on an io_context of its own (Server::serve_connection)
    auto& ioc = static_cast<asio::io_context&>(asio::query(ws_.get_executor(), asio::execution::context));
    int copy = ::dup(r.fd);
    if (copy < 0) return "could not use the session's socket: " + errno_text(errno);
    asio::posix::stream_descriptor fd(ioc, copy);
    ws_.read_message_max(r.max_message_bytes);
    websocket::stream_base::timeout limits{};
    limits.handshake_timeout = std::chrono::seconds(30);  // the closing handshake
    limits.idle_timeout = std::chrono::seconds(std::max(2, r.idle_timeout_s));
    limits.keep_alive_pings = true;
    ws_.set_option(limits);

    State st{r, fd, ioc};
    st_ = &st;
    asio::steady_timer watch(ioc);
    watch_ = &watch;
    read_client();
    read_fd();
    tick();
    ioc.restart();
    ioc.run();
    watch_ = nullptr;
    st_ = nullptr;
    return st.ended.empty() ? "ended" : st.ended;
  }

 private:
  struct Out {
    enum Kind { kBinary, kText, kClose } kind;
    std::string data;
    websocket::close_code code = websocket::close_code::normal;
  };
  struct State {
    const SocketRelay& r;
    asio::posix::stream_descriptor& fd;
    asio::io_context& ioc;
    beast::flat_buffer in{};
    std::array<char, 16384> from_fd{};
    std::deque<Out> out{};
    bool writing = false;
    bool closing = false;  // a close is queued or sent: nothing more is queued
    int pending = 0;       // our own operations under way
    std::string ended{};
    int ended_for_s = 0;      // seconds since it ended
    int fd_write_for_s = -1;  // seconds the socket has held a message without taking it; -1: none
  };

  // Once a second: what no peer's silence may hold up. A socket that takes
  // no input (a program that reads none) holds the client's next message, so
  // nothing reads the client's pongs: after the idle time it is closed. Once
  // it has ended, a client that does not answer the close has 5 s; then the
  // connection is shut down and the loop stops, whatever is under way.
  void tick() {
    watch_->expires_after(std::chrono::seconds(1));
    watch_->async_wait([this](beast::error_code ec) {
      if (ec) return;
      State& s = *st_;
      if (s.fd_write_for_s >= 0 && ++s.fd_write_for_s > std::max(2, s.r.idle_timeout_s)) {
        end("the session took no input for " + std::to_string(s.fd_write_for_s - 1) + " s");
        stop_fd();
        queue({Out::kClose, "the session takes no input", websocket::close_code::try_again_later});
      }
      if (s.ended.empty() && !ws_.is_open()) {
        end("the connection failed");
        stop_fd();
      }
      if (!s.ended.empty() && ++s.ended_for_s > 5) {
        beast::close_socket(beast::get_lowest_layer(ws_));
        stop_fd();
        s.ioc.stop();
        return;
      }
      tick();
    });
  }

  // The first reason given is kept.
  void end(const std::string& why) {
    if (st_->ended.empty()) st_->ended = why;
  }
  // Called at the end of every handler: once it has ended and nothing of ours
  // is under way, the loop stops (Beast's keep-alive timer would hold it).
  void settle() {
    if (!st_->ended.empty() && st_->pending == 0) st_->ioc.stop();
  }
  void stop_fd() {
    beast::error_code ignore;
    st_->fd.cancel(ignore);
  }

  void queue(Out o) {
    if (st_->closing) return;
    if (o.kind == Out::kClose) st_->closing = true;
    st_->out.push_back(std::move(o));
    pump();
  }
  void pump() {
    State& st = *st_;
    if (st.writing || st.out.empty()) return;
    st.writing = true;
    ++st.pending;
    Out& o = st.out.front();
    if (o.kind == Out::kClose) {
      // the reason is at most 123 bytes (RFC 6455 5.5)
      std::string reason = printable(o.data, 100);
      ws_.async_close(websocket::close_reason(o.code, reason), [this](beast::error_code) {
        State& s = *st_;
        --s.pending;
        s.writing = false;
        s.out.clear();
        end("closed by ADS");
        stop_fd();
        settle();
      });
      return;
    }
    ws_.text(o.kind == Out::kText);
    ws_.async_write(asio::buffer(o.data), [this](beast::error_code ec, size_t) {
      State& s = *st_;
      --s.pending;
      s.writing = false;
      const bool binary = !s.out.empty() && s.out.front().kind == Out::kBinary;
      if (!s.out.empty()) s.out.pop_front();
      if (ec) {
        end("the client's side failed: " + ec.message());
        s.out.clear();
        stop_fd();
        settle();
        return;
      }
      if (binary) read_fd();  // one message from the socket at a time
      pump();
      settle();
    });
  }

  void read_client() {
    ++st_->pending;
    ws_.async_read(st_->in, [this](beast::error_code ec, size_t) {
      State& s = *st_;
      --s.pending;
      if (ec) {
        if (ec == websocket::error::closed) end("the client closed it");
        else if (ec == websocket::error::message_too_big) end("the client sent a message over the limit");
        else end("the client's side: " + ec.message());
        stop_fd();
        settle();
        return;
      }
      if (ws_.got_text()) {
        std::string text = beast::buffers_to_string(s.in.data());
        s.in.consume(s.in.size());
        std::string reason;
        bool taken = true;
        try {
          taken = !s.r.on_text || s.r.on_text(text, &reason);
        } catch (const std::exception& e) {
          taken = false;
          reason = "the message could not be read";
          end(std::string("reading a text message failed: ") + e.what());
        }
        if (!taken) {
          end("refused a message from the client: " + reason);
          stop_fd();
          queue({Out::kClose, reason, websocket::close_code::policy_error});
        } else {
          read_client();
        }
        settle();
        return;
      }
      ++s.pending;
      s.fd_write_for_s = 0;
      asio::async_write(s.fd, s.in.data(), [this](beast::error_code ec2, size_t) {
        State& s2 = *st_;
        --s2.pending;
        s2.fd_write_for_s = -1;
        s2.in.consume(s2.in.size());
        if (ec2) {
          if (ec2 != asio::error::operation_aborted) {
            end("the session's side: " + ec2.message());
            queue({Out::kClose, "the session ended", websocket::close_code::going_away});
          }
        } else {
          read_client();
        }
        settle();
      });
    });
  }

  void read_fd() {
    if (st_->closing) return;
    ++st_->pending;
    st_->fd.async_read_some(asio::buffer(st_->from_fd), [this](beast::error_code ec, size_t n) {
      State& s = *st_;
      --s.pending;
      if (ec == asio::error::operation_aborted) {
        settle();
        return;
      }
      if (ec) {
        // the session ended (its end of stream), or its socket failed
        end(ec == asio::error::eof ? "the session ended" : "the session's side: " + ec.message());
        std::string last;
        try {
          if (s.r.closing_text) last = s.r.closing_text();
        } catch (const std::exception& e) {
          end(std::string("the closing text failed: ") + e.what());
        }
        if (!last.empty()) queue({Out::kText, std::move(last)});
        queue({Out::kClose, "", websocket::close_code::normal});
        settle();
        return;
      }
      queue({Out::kBinary, std::string(s.from_fd.data(), n)});
      settle();
    });
  }

  websocket::stream<Stream&> ws_;
  State* st_ = nullptr;
  asio::steady_timer* watch_ = nullptr;
  bool used_ = false;
};

template <class Stream>
void serve(Stream& s, const WebSocketRequest& req, Response& r, const LogFn& log) {
  if (!websocket::is_upgrade(req)) {
    bhttp::response<bhttp::string_body> res{bhttp::status::upgrade_required, 11};
    res.set(bhttp::field::content_type, "application/json");
    res.set(bhttp::field::server, "ads");
    res.set(bhttp::field::upgrade, "websocket");
    res.keep_alive(false);
    res.body() = Response::error(426, "upgrade_required", "this address is a websocket: ask for the upgrade").body;
    res.prepare_payload();
    beast::error_code ec;
    bhttp::write(s, res, ec);
    return;
  }
  Relay<Stream> relay(s);
  std::string why;
  if (!relay.accept(req, &why)) {
    log(std::string(req.target()) + ": the websocket handshake failed: " + why);
    return;
  }
  try {
    r.stream(relay);
  } catch (const std::exception& e) {
    log(std::string(req.target()) + ": the websocket's callback threw: " + e.what());
  } catch (...) {
    log(std::string(req.target()) + ": the websocket's callback threw");
  }
}
}  // namespace

bool is_websocket_request(const Request& req) {
  // what Beast's accept checks too (but the HTTP version, 1.1 or later)
  return req.method == "GET" && has_token(req.header("upgrade"), "websocket") &&
         has_token(req.header("connection"), "upgrade") && !req.header("sec-websocket-key").empty() &&
         req.header("sec-websocket-version") == "13";
}

void serve_websocket(DeadlineSocket& s, const WebSocketRequest& req, Response& r, const LogFn& log) {
  serve(s, req, r, log);
}
void serve_websocket(boost::asio::ssl::stream<DeadlineSocket&>& s, const WebSocketRequest& req, Response& r,
                     const LogFn& log) {
  serve(s, req, r, log);
}

}  // namespace ads::http
