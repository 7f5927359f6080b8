// How the HTTP server (server.h) speaks TLS, whatever library does it: a
// TlsContext is made from a certificate and key (PEM text) and gives each
// connection a TlsStream over the connection's DeadlineSocket. Two backends:
//   tls_openssl.h  OpenSSL through Boost.Asio (`ads serve`: its websockets
//                  run on the Asio stream underneath);
//   tls_mbedtls.h  mbed TLS (the agent: a static binary whose memory follows
//                  its size, docs/bench.md "Agent memory").
// The server links neither: whoever starts one names the backend in
// ServerOptions::tls_backend (server.h: a TlsBackend makes a TlsContext).
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>
#include <iterator>
#include <memory>
#include <string>

#include "core/result.h"
#include "http/deadline_socket.h"

namespace boost::asio::ssl {
template <class Stream>
class stream;
}

namespace ads::http {

// Errors of the TLS layer itself (a failed handshake, a bad record, a peer
// gone without close_notify); a stream passes its socket's own errors
// (timed_out, eof, connection_reset) through unchanged.
const boost::system::error_category& tls_category();
inline boost::system::error_code tls_error() { return {1, tls_category()}; }

// One connection's TLS, synchronous, with the deadlines of the socket under
// it. read_some/write_some make it a Beast SyncReadStream/SyncWriteStream.
class TlsStream {
 public:
  static constexpr size_t kRecordBytes = 16384;  // a TLS record's most plaintext
  virtual ~TlsStream() = default;
  // A failed handshake or write leaves the stream failed: every later call
  // gets that first error. (A write that timed out left part of a record
  // in the library's buffer; OpenSSL and mbed TLS both sent it with the next
  // write and reported that write as sent, tls_backends_test.)
  // A failed read does not (a server answers 408 after a silent client).
  void handshake(boost::system::error_code& ec) {
    if (failed(ec)) return;
    do_handshake(ec);
    if (ec) failed_ = ec;
  }
  // At most n bytes; 0 with ec set at the end (asio::error::eof) or an error.
  size_t read(void* p, size_t n, boost::system::error_code& ec) { return failed(ec) ? 0 : do_read(p, n, ec); }
  size_t write(const void* p, size_t n, boost::system::error_code& ec) {
    if (failed(ec)) return 0;
    size_t put = do_write(p, n, ec);
    if (ec) failed_ = ec;
    return put;
  }
  // The Boost.Asio OpenSSL stream this one is, or null: the server's
  // websockets run on it (websocket_serve.h).
  virtual boost::asio::ssl::stream<DeadlineSocket&>* asio_stream() { return nullptr; }

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& b, boost::system::error_code& ec) {
    for (auto it = boost::asio::buffer_sequence_begin(b); it != boost::asio::buffer_sequence_end(b); ++it) {
      boost::asio::mutable_buffer m(*it);
      if (m.size() > 0) return read(m.data(), m.size(), ec);
    }
    ec = {};
    return 0;
  }
  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& b) {
    boost::system::error_code ec;
    size_t n = read_some(b, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  // Several small buffers (an answer's head and body) go out as one record:
  // one write per buffer would make a record, and a send, of each.
  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& b, boost::system::error_code& ec) {
    auto it = boost::asio::buffer_sequence_begin(b);
    const auto end = boost::asio::buffer_sequence_end(b);
    while (it != end && boost::asio::const_buffer(*it).size() == 0) ++it;
    if (it == end) {
      ec = {};
      return 0;
    }
    boost::asio::const_buffer first(*it);
    if (first.size() >= kRecordBytes || std::next(it) == end) return write(first.data(), first.size(), ec);
    char joined[kRecordBytes];
    size_t n = boost::asio::buffer_copy(boost::asio::buffer(joined), b);
    return write(joined, n, ec);
  }
  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& b) {
    boost::system::error_code ec;
    size_t n = write_some(b, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 protected:
  virtual void do_handshake(boost::system::error_code& ec) = 0;
  virtual size_t do_read(void* p, size_t n, boost::system::error_code& ec) = 0;
  virtual size_t do_write(const void* p, size_t n, boost::system::error_code& ec) = 0;

 private:
  bool failed(boost::system::error_code& ec) const {
    ec = failed_;
    return static_cast<bool>(ec);
  }
  boost::system::error_code failed_;
};

class TlsContext {
 public:
  virtual ~TlsContext() = default;
  // A stream over `s` (which must outlive it); its handshake is not done yet.
  virtual std::unique_ptr<TlsStream> stream(DeadlineSocket& s) = 0;
};

}  // namespace ads::http
