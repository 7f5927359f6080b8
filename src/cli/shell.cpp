#include "cli/shell.h"

#include <curl/curl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <thread>

#include "core/env.h"
#include "core/terminal.h"
#include "core/text.h"

namespace ads::cli {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

// The parts of the server's URL (libcurl's parser).
struct Target {
  bool tls = false;
  std::string host, port, prefix;  // prefix: the URL's path without its last '/'
};
Result<Target> parse_base(const std::string& base) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK)
    return Error::invalid("server", "is not a URL: " + base);
  auto part = [&](CURLUPart p, unsigned flags = 0) {
    char* v = nullptr;
    std::string out;
    if (curl_url_get(u.get(), p, &v, flags) == CURLUE_OK && v) out = v;
    curl_free(v);
    return out;
  };
  Target t;
  std::string scheme = part(CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https") return Error::invalid("server", "must be an http:// or https:// URL");
  t.tls = scheme == "https";
  t.host = part(CURLUPART_HOST);
  if (t.host.size() > 2 && t.host.front() == '[') t.host = t.host.substr(1, t.host.size() - 2);
  t.port = part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  t.prefix = part(CURLUPART_PATH);
  while (!t.prefix.empty() && t.prefix.back() == '/') t.prefix.pop_back();
  return t;
}

struct Size {
  int cols = 80, rows = 24;
};
// The window's size when `fd` is a terminal.
std::optional<Size> size_of(int fd) {
  winsize w{};
  if (::ioctl(fd, TIOCGWINSZ, &w) != 0 || w.ws_col == 0 || w.ws_row == 0) return std::nullopt;
  return Size{std::min<int>(w.ws_col, kMaxTerminalSide), std::min<int>(w.ws_row, kMaxTerminalSide)};
}

// Raw input on a terminal for the session's life (every key goes to the
// machine, Ctrl-C included), restored at the end.
class RawMode {
 public:
  explicit RawMode(int fd) : fd_(fd) {
    if (::tcgetattr(fd, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    on_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
  }
  ~RawMode() {
    if (on_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool on_ = false;
};

// Writes all of `data` to `fd` (which may be non-blocking); false when it cannot.
bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      (void)::poll(&p, 1, 1000);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// How a session ended.
struct Outcome {
  std::optional<int> exit_code;  // the server's last message
  std::string error;             // the server's {"error"} or the connection's failure
};

// The session once the websocket is open: what is typed (read by a thread of
// its own: the terminal stays in blocking mode, as the shell that started ads
// shares it) and window changes go to the websocket; what comes back goes to
// out_fd.
template <class Ws>
class Session {
 public:
  // The signals are taken from here on (before the terminal is made raw):
  // killed politely, ads gives the terminal back as it was (a raw terminal
  // left behind is unusable).
  Session(Ws& ws, asio::io_context& ioc, int in_fd, int out_fd)
      : ws_(ws), ioc_(ioc), in_fd_(in_fd), out_fd_(out_fd), winch_(ioc, SIGWINCH), ends_(ioc) {
    for (int sig : {SIGTERM, SIGHUP, SIGINT, SIGQUIT}) ends_.add(sig);
  }

  Outcome run() {
    wait_winch();
    ends_.async_wait([this](beast::error_code ec, int sig) {
      if (ec) return;
      out_.error = std::string("stopped by SIG") + ::sigabbrev_np(sig);
      finish();
    });
    read_ws();
    input_ = std::thread([this] { read_input(); });
    ioc_.restart();  // after the handshake's run
    ioc_.run();
    stop_ = true;
    input_.join();
    return out_;
  }

 private:
  void read_input() {
    char buf[4096];
    while (!stop_) {
      // at most 1 MiB typed and not yet sent (a paste into a slow link)
      if (unsent_ > (1u << 20)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      pollfd p{in_fd_, POLLIN, 0};
      int r = ::poll(&p, 1, 200);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;
      ssize_t n = ::read(in_fd_, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return;  // the terminal is gone: its output's failure ends the session
      unsent_ += static_cast<size_t>(n);
      asio::post(ioc_, [this, data = std::string(buf, static_cast<size_t>(n))] { send(false, data); });
    }
  }
  void wait_winch() {
    winch_.async_wait([this](beast::error_code ec, int) {
      if (ec) return;
      if (auto sz = size_of(in_fd_)) send(true, json{{"resize", {{"cols", sz->cols}, {"rows", sz->rows}}}}.dump());
      wait_winch();
    });
  }
  void send(bool text, std::string data) {
    if (done_) {
      if (!text) unsent_ -= data.size();
      return;
    }
    queue_.emplace_back(text, std::move(data));
    if (queue_.size() == 1) write_next();
  }
  void write_next() {
    ws_.text(queue_.front().first);
    ws_.async_write(asio::buffer(queue_.front().second), [this](beast::error_code ec, size_t) {
      if (!queue_.front().first) unsent_ -= queue_.front().second.size();
      queue_.pop_front();
      if (ec) {
        for (auto& [text, data] : queue_)
          if (!text) unsent_ -= data.size();
        queue_.clear();
        return;  // the read side says why
      }
      if (!queue_.empty()) write_next();
    });
  }
  void read_ws() {
    ws_.async_read(in_, [this](beast::error_code ec, size_t) {
      if (ec) {
        if (ec != websocket::error::closed && out_.error.empty() && !out_.exit_code)
          out_.error = "the connection to the shell was lost: " + ec.message();
        finish();
        return;
      }
      std::string data = beast::buffers_to_string(in_.data());
      in_.consume(in_.size());
      if (ws_.got_text()) {
        json m = json::parse(data, nullptr, false);
        if (m.is_object() && m.contains("exit_code") && m["exit_code"].is_number_integer())
          out_.exit_code = m["exit_code"].get<int>();
        else if (m.is_object() && m.contains("error") && m["error"].is_string())
          out_.error = "the shell's end is not known: " + m["error"].get<std::string>();
      } else if (!write_all(out_fd_, data.data(), data.size())) {
        out_.error = "could not write the shell's output: " + errno_text(errno);
        finish();
        return;
      }
      read_ws();
    });
  }
  void finish() {
    done_ = true;
    beast::error_code ignore;
    winch_.cancel(ignore);
    ends_.cancel(ignore);
    ioc_.stop();
  }

  Ws& ws_;
  asio::io_context& ioc_;
  int in_fd_, out_fd_;
  asio::signal_set winch_, ends_;
  beast::flat_buffer in_;
  std::deque<std::pair<bool, std::string>> queue_;
  std::thread input_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> unsent_{0};  // bytes read from the terminal, not yet written to the websocket
  bool done_ = false;
  Outcome out_;
};

// Runs one asynchronous operation (started by `start` with its completion
// handler) to its end; the stream's deadline (expires_after) bounds it.
template <class Start>
beast::error_code bounded(asio::io_context& ioc, Start start) {
  beast::error_code out = asio::error::timed_out;
  start([&out](beast::error_code ec, auto&&...) { out = ec; });
  ioc.restart();
  ioc.run();
  return out;
}

// The API's error answer to a refused handshake, as the other verbs print it.
int refused(const bhttp::response<bhttp::string_body>& res) {
  ApiReply r;
  r.status = static_cast<long>(res.result_int());
  r.body = json::parse(res.body(), nullptr, false);
  if (r.body.is_discarded()) r.body = json{{"error", {{"message", "HTTP " + std::to_string(r.status)}}}};
  return reply_error(r);
}

template <class Ws>
int converse(Ws& ws, asio::io_context& ioc, const Target& t, const std::string& target, const ApiClient& api, int in_fd,
             int out_fd, std::ostream& err) {
  ws.set_option(websocket::stream_base::decorator([&api](websocket::request_type& req) {
    for (auto& [k, v] : api.auth_headers()) req.set(k, v);
    req.set(bhttp::field::user_agent, "ads-cli");
  }));
  ws.read_message_max(1 << 20);
  websocket::response_type res;
  std::string host = t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
  beast::error_code ec = bounded(ioc, [&](auto done) { ws.async_handshake(res, host + ":" + t.port, target, done); });
  if (ec == websocket::error::upgrade_declined) return refused(res);
  if (ec)
    return fail_with(Error::make("unavailable", "the ADS server at " + api.base() + ": " + ec.message()),
                     kExitUnreachable);
  beast::get_lowest_layer(ws).expires_never();
  websocket::stream_base::timeout limits{};
  limits.handshake_timeout = std::chrono::seconds(30);
  limits.idle_timeout = std::chrono::seconds(60);
  limits.keep_alive_pings = true;
  ws.set_option(limits);
  Outcome o;
  {
    Session<Ws> s(ws, ioc, in_fd, out_fd);
    RawMode raw(in_fd);
    o = s.run();
  }
  if (o.exit_code) return *o.exit_code < 0 || *o.exit_code > 255 ? kExitFailed : *o.exit_code;
  err << "ads: " << (o.error.empty() ? "the shell ended without its exit code" : o.error) << "\n";
  return kExitFailed;
}
}  // namespace

int run_shell(const ApiClient& api, const std::string& id, int in_fd, int out_fd, std::ostream& err) {
  // a shell reads a terminal: typed-ahead input from a file would race its
  // start, and the file's end would not end it (as docker exec -t refuses)
  if (::isatty(in_fd) != 1)
    return fail_with(Error::invalid("input",
                                    "ads shell needs a terminal as its input; for a command from a script, "
                                    "use: ads exec ID -- CMD..."),
                     kExitUsage);
  auto t = parse_base(api.base());
  if (!t) return fail_with(t.error(), kExitUsage);
  Size size = size_of(in_fd).value_or(Size{});
  std::string term = env_var("TERM").value_or("xterm");
  if (!valid_term_name(term)) term = "xterm";
  const std::string target = t->prefix + "/api/v1/deployments/" + id + "/shell?cols=" + std::to_string(size.cols) +
                             "&rows=" + std::to_string(size.rows) + "&term=" + term;
  if (id.empty() || id.find_first_of("/?#% ") != std::string::npos)
    return fail_with(Error::invalid("id", "is not a deployment id: " + printable(id, 80)), kExitUsage);

  std::signal(SIGPIPE, SIG_IGN);  // an output that goes away is an error to report, with the terminal given back
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto addresses = resolver.resolve(t->host, t->port, ec);
  auto unreachable = [&](const std::string& why) {
    return fail_with(Error::make("unavailable", "cannot reach the ADS server at " + api.base() + ": " + why),
                     kExitUnreachable);
  };
  if (ec) return unreachable(ec.message());
  beast::tcp_stream stream(ioc);
  // the connection, TLS and the websocket's handshake: 30 s each at most
  stream.expires_after(std::chrono::seconds(30));
  ec = bounded(ioc, [&](auto done) { stream.async_connect(addresses, done); });
  if (ec) return unreachable(ec.message());
  stream.expires_after(std::chrono::seconds(30));
  if (!t->tls) {
    websocket::stream<beast::tcp_stream> ws(std::move(stream));
    return converse(ws, ioc, *t, target, api, in_fd, out_fd, err);
  }
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  if (!api.ca_file().empty()) ctx.load_verify_file(api.ca_file(), ec);
  else ctx.set_default_verify_paths(ec);
  if (ec)
    return fail_with(Error::make("tls", "the certificates to trust (" + api.ca_file() + "): " + ec.message()),
                     kExitUsage);
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(std::move(stream), ctx);
  beast::error_code not_ip;
  (void)asio::ip::make_address(t->host, not_ip);
  if (not_ip) SSL_set_tlsext_host_name(ws.next_layer().native_handle(), t->host.c_str());  // a name, not an address
  ws.next_layer().set_verify_callback(asio::ssl::host_name_verification(t->host));
  ec = bounded(ioc, [&](auto done) { ws.next_layer().async_handshake(asio::ssl::stream_base::client, done); });
  beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(30));
  if (ec)
    return fail_with(Error::make("tls", "the ADS server at " + api.base() + " failed the TLS check (" + ec.message() +
                                            "); give the certificate to trust with --cacert or ADS_CACERT"),
                     kExitUnreachable);
  return converse(ws, ioc, *t, target, api, in_fd, out_fd, err);
}

}  // namespace ads::cli
