// `ads shell` on LXD: an interactive exec (LXD gives the program a pty in
// the container) whose two websockets on LXD's unix socket, "0" (the
// terminal's bytes both ways) and "control" (its size, signals), a thread of
// the session relays to a socket pair. The session's end of the pair is
// fd(); its destruction hangs the terminal up (SIGHUP through the control
// websocket, then both websockets are dropped).
#include "providers/lxd/lxd_shell.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <utility>

#include "core/terminal.h"
#include "core/text.h"

namespace ads {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using local = asio::local::stream_protocol;
using Ws = websocket::stream<local::socket>;

class LxdShell final : public ShellSession {
 public:
  explicit LxdShell(LxdExitFn exit_fn) : exit_fn_(std::move(exit_fn)) {}
  LxdShell(const LxdShell&) = delete;
  LxdShell& operator=(const LxdShell&) = delete;

  ~LxdShell() override {
    if (thread_.joinable()) {
      try {
        asio::post(ioc_, [this] { hang_up(); });
      } catch (...) {  // no memory for it: the relay stops without the hang-up
        ioc_.stop();
      }
      try {
        thread_.join();
      } catch (...) {  // cannot happen for a joinable thread of ours; a destructor does not throw
      }
    }
    if (mine_ >= 0) ::close(mine_);
  }

  // Connects both websockets (within `limit`) and starts the relay.
  Status start(const std::string& socket, const std::string& base_path, const std::string& query,
               const std::string& data_secret, const std::string& control_secret, std::chrono::seconds limit) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return Error::make("failed", "a shell's socket pair: " + errno_text(errno));
    mine_ = sv[0];
    beast::error_code ec;
    theirs_.assign(local(), sv[1], ec);
    if (ec) {
      ::close(sv[1]);
      return Error::make("failed", "a shell's socket pair: " + ec.message());
    }
    std::string failure;
    int connected = 0;
    auto open = [&](Ws& ws, const std::string& secret) {
      ws.next_layer().async_connect(local::endpoint(socket), [&, secret](beast::error_code e) {
        if (e) {
          failure = "connecting to LXD's socket " + socket + ": " + e.message();
          return;
        }
        ws.async_handshake("lxd", base_path + "/websocket?secret=" + secret + query, [&](beast::error_code e2) {
          if (e2) failure = "LXD refused the exec's websocket: " + e2.message();
          else ++connected;
        });
      });
    };
    open(control_, control_secret);
    open(data_, data_secret);
    ioc_.run_for(limit);
    if (connected != 2) {
      return Error::make(failure.empty() ? "timeout" : "failed",
                         failure.empty()
                             ? "LXD did not open the exec's websockets within " + std::to_string(limit.count()) + " s"
                             : failure);
    }
    ioc_.restart();
    data_.binary(true);
    read_data();
    read_pair();
    read_control();
    thread_ = std::thread([this] {
      try {
        ioc_.run();
      } catch (...) {  // (bad_alloc) the session ends: its sockets go, its reader sees the end
        drop();
      }
    });
    return Status::Ok();
  }

  int fd() const override { return mine_; }

  Status resize(const TerminalSize& size) override {
    if (auto st = check_terminal_size(size.cols, size.rows); !st) return st;
    nlohmann::json msg = {{"command", "window-resize"},
                          {"args", {{"width", std::to_string(size.cols)}, {"height", std::to_string(size.rows)}}}};
    asio::post(ioc_, [this, text = msg.dump()] { send_resize(text); });
    return Status::Ok();
  }

  Result<int> exit_code(std::chrono::milliseconds wait) override { return exit_fn_(wait); }

 private:
  // LXD's output to the pair. Its end (the program ended) is a text message
  // (LXD's "message barrier") or the websocket's close: the pair's reader
  // then gets its end of stream, and the websocket is closed from here too,
  // which LXD waits for to end the operation.
  void read_data() {
    data_.async_read(data_in_, [this](beast::error_code ec, size_t) {
      if (ec || data_.got_text()) {
        data_in_.consume(data_in_.size());
        beast::error_code ignore;
        theirs_.shutdown(local::socket::shutdown_send, ignore);
        if (!ec) close_data();
        return;
      }
      asio::async_write(theirs_, data_in_.data(), [this](beast::error_code ec2, size_t) {
        data_in_.consume(data_in_.size());
        if (!ec2) read_data();
      });
    });
  }
  // What is typed, from the pair to LXD; at the pair's end, a hang-up.
  void read_pair() {
    theirs_.async_read_some(asio::buffer(pair_in_), [this](beast::error_code ec, size_t n) {
      if (ec) {
        if (ec != asio::error::operation_aborted) hang_up();
        return;
      }
      if (data_closing_) return;
      data_writing_ = true;
      data_.async_write(asio::buffer(pair_in_.data(), n), [this](beast::error_code ec2, size_t) {
        data_writing_ = false;
        if (data_closing_) close_data();
        else if (!ec2) read_pair();
      });
    });
  }
  // The websocket's normal close, once no write of ours is under way on it.
  void close_data() {
    data_closing_ = true;
    if (data_writing_ || data_closed_) return;
    data_closed_ = true;
    data_.async_close(websocket::close_code::normal, [](beast::error_code) {});
  }
  // LXD sends nothing we use there; reading answers its pings and sees its close.
  void read_control() {
    control_.async_read(control_in_, [this](beast::error_code ec, size_t) {
      control_in_.consume(control_in_.size());
      if (!ec) read_control();
    });
  }
  // A new size: written now, or after the one on its way, replacing any
  // size still waiting (a client that sends many holds one at most).
  void send_resize(std::string text) {
    if (hung_up_) return;
    if (control_out_.size() > 1) {
      control_out_.back() = std::move(text);  // before the hang-up, only sizes wait
      return;
    }
    control_out_.push_back(std::move(text));
    if (control_out_.size() == 1) write_control();
  }
  void write_control() {
    control_.text(true);
    control_.async_write(asio::buffer(control_out_.front()), [this](beast::error_code ec, size_t) {
      control_out_.pop_front();
      if (!ec && !control_out_.empty()) write_control();
      if (ec) control_out_.clear();
    });
  }
  // SIGHUP to the program (when it is still there), then every socket is
  // dropped: LXD closes the pty, and the relay's operations end.
  void hang_up() {
    if (hung_up_) return;
    if (data_closing_) {  // the program has ended already
      hung_up_ = true;
      drop();
      return;
    }
    nlohmann::json msg = {{"command", "signal"}, {"signal", 1}};
    control_out_.push_back(msg.dump());
    if (control_out_.size() == 1) write_control();
    hung_up_ = true;
    timer_.expires_after(std::chrono::milliseconds(500));
    timer_.async_wait([this](beast::error_code) { drop(); });
  }
  void drop() {
    beast::error_code ignore;
    beast::get_lowest_layer(data_).close(ignore);
    beast::get_lowest_layer(control_).close(ignore);
    theirs_.close(ignore);
  }

  LxdExitFn exit_fn_;
  asio::io_context ioc_;
  Ws data_{ioc_}, control_{ioc_};
  local::socket theirs_{ioc_};  // the relay's end of the pair
  int mine_ = -1;               // the session's end (fd())
  beast::flat_buffer data_in_, control_in_;
  std::array<char, 16384> pair_in_{};
  std::deque<std::string> control_out_;
  asio::steady_timer timer_{ioc_};
  bool hung_up_ = false;
  bool data_writing_ = false, data_closing_ = false, data_closed_ = false;
  std::thread thread_;
};
}  // namespace

Result<std::unique_ptr<ShellSession>> connect_lxd_shell(const LxdExecSockets& at, LxdExitFn exit_fn,
                                                        std::chrono::seconds limit) {
  auto session = std::make_unique<LxdShell>(std::move(exit_fn));
  auto st = session->start(at.socket, at.operation, at.query, at.data_secret, at.control_secret, limit);
  if (!st) return st.error();
  return std::unique_ptr<ShellSession>(std::move(session));
}

}  // namespace ads
