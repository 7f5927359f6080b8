// A TCP socket whose blocking reads and writes end at a deadline: the
// stream the HTTP server reads requests from and writes answers to (directly,
// or under Boost.Asio SSL). The socket is in non-blocking mode; every wait is
// a poll() bounded by
//   reads:  the read deadline (set per request: the head's, then the whole
//           request's) and the longest silence allowed between two reads;
//   writes: the longest wait for the peer to take more bytes.
// A wait that runs out gives asio::error::timed_out. (SO_RCVTIMEO does not
// do this: Asio's blocking read waits again, without a limit, after the
// timeout's EAGAIN.)
// Its asynchronous reads and writes are the socket's own, without these
// limits: they serve a websocket (http/websocket.h), whose own timeout
// bounds them.
#pragma once

#include <poll.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/role.hpp>
#include <cerrno>
#include <chrono>
#include <utility>

namespace ads::http {

class DeadlineSocket {
 public:
  using Clock = std::chrono::steady_clock;
  using socket_type = boost::asio::ip::tcp::socket;
  using executor_type = socket_type::executor_type;
  using lowest_layer_type = socket_type::lowest_layer_type;

  // `sock` must stay open while this lives; it is put in non-blocking mode.
  DeadlineSocket(socket_type& sock, std::chrono::milliseconds silence, std::chrono::milliseconds write_wait)
      : sock_(sock), silence_(silence), write_wait_(write_wait) {
    boost::system::error_code ec;
    sock_.non_blocking(true, ec);
  }

  void read_deadline(Clock::time_point t) { read_deadline_ = t; }
  Clock::time_point read_deadline() const { return read_deadline_; }
  // True once the read deadline has passed (a read that timed out before it
  // ended at a silence).
  bool deadline_passed() const { return Clock::now() >= read_deadline_; }

  // Waits until the socket has bytes to read (or end of stream), within the
  // read limits. false: timed out (ec set).
  bool wait_readable(boost::system::error_code& ec) { return wait(POLLIN, read_limit(), ec); }

  executor_type get_executor() { return sock_.get_executor(); }
  lowest_layer_type& lowest_layer() { return sock_.lowest_layer(); }
  const lowest_layer_type& lowest_layer() const { return sock_.lowest_layer(); }

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& b, boost::system::error_code& ec) {
    for (;;) {
      size_t n = sock_.read_some(b, ec);
      if (ec != boost::asio::error::would_block && ec != boost::asio::error::try_again) return n;
      if (!wait(POLLIN, read_limit(), ec)) return 0;
    }
  }
  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& b) {
    boost::system::error_code ec;
    size_t n = read_some(b, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& b, boost::system::error_code& ec) {
    for (;;) {
      size_t n = sock_.write_some(b, ec);
      if (ec != boost::asio::error::would_block && ec != boost::asio::error::try_again) return n;
      if (!wait(POLLOUT, Clock::now() + write_wait_, ec)) return 0;
    }
  }
  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& b) {
    boost::system::error_code ec;
    size_t n = write_some(b, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& b, Token&& token) {
    return sock_.async_read_some(b, std::forward<Token>(token));
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& b, Token&& token) {
    return sock_.async_write_some(b, std::forward<Token>(token));
  }
  // Ends the connection both ways; the descriptor stays open (the server
  // closes it).
  void shutdown() {
    boost::system::error_code ec;
    sock_.shutdown(socket_type::shutdown_both, ec);
  }

 private:
  Clock::time_point read_limit() const { return std::min(read_deadline_, Clock::now() + silence_); }

  bool wait(short events, Clock::time_point limit, boost::system::error_code& ec) {
    for (;;) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(limit - Clock::now()).count();
      if (left <= 0) {
        ec = boost::asio::error::timed_out;
        return false;
      }
      pollfd p{sock_.native_handle(), events, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60 * 60 * 1000)));
      if (r > 0) return true;  // ready, or an error/hang-up the next call reports
      if (r < 0 && errno != EINTR) {
        ec.assign(errno, boost::system::system_category());
        return false;
      }
    }
  }

  socket_type& sock_;
  std::chrono::milliseconds silence_;
  std::chrono::milliseconds write_wait_;
  Clock::time_point read_deadline_ = Clock::time_point::max();
};

// Beast's customization points for a websocket over a DeadlineSocket (found
// by argument-dependent lookup): a timed-out or closed websocket shuts the
// connection down but never closes the descriptor, which is the server's.
inline void beast_close_socket(DeadlineSocket& s) { s.shutdown(); }
inline void teardown(boost::beast::role_type /*role*/, DeadlineSocket& s, boost::system::error_code& ec) {
  s.shutdown();
  ec = {};
}
template <class Handler>
void async_teardown(boost::beast::role_type /*role*/, DeadlineSocket& s, Handler&& handler) {
  s.shutdown();
  boost::asio::post(s.get_executor(),
                    [h = std::forward<Handler>(handler)]() mutable { std::move(h)(boost::system::error_code{}); });
}

}  // namespace ads::http
