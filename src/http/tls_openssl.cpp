#include "http/tls_openssl.h"

#include <openssl/ssl.h>

#include <boost/asio/ssl.hpp>

namespace ads::http {
namespace asio = boost::asio;
namespace {

class OpensslStream final : public TlsStream {
 public:
  OpensslStream(DeadlineSocket& s, asio::ssl::context& ctx) : tls_(s, ctx) {}
  void do_handshake(boost::system::error_code& ec) override {
    tls_.handshake(asio::ssl::stream_base::server, ec);
    ec = ours(ec);
  }
  size_t do_read(void* p, size_t n, boost::system::error_code& ec) override {
    size_t got = tls_.read_some(asio::buffer(p, n), ec);
    ec = ours(ec);
    return got;
  }
  size_t do_write(const void* p, size_t n, boost::system::error_code& ec) override {
    size_t put = tls_.write_some(asio::buffer(p, n), ec);
    ec = ours(ec);
    return put;
  }
  asio::ssl::stream<DeadlineSocket&>* asio_stream() override { return &tls_; }

 private:
  // OpenSSL's own errors become tls_error(); the socket's stay as they are
  static boost::system::error_code ours(const boost::system::error_code& ec) {
    if (ec == asio::ssl::error::stream_truncated || ec.category() == asio::error::get_ssl_category())
      return tls_error();
    return ec;
  }
  asio::ssl::stream<DeadlineSocket&> tls_;
};

class OpensslContext final : public TlsContext {
 public:
  explicit OpensslContext(asio::ssl::context ctx) : ctx_(std::move(ctx)) {}
  std::unique_ptr<TlsStream> stream(DeadlineSocket& s) override { return std::make_unique<OpensslStream>(s, ctx_); }

 private:
  asio::ssl::context ctx_;
};

}  // namespace

Result<std::shared_ptr<TlsContext>> openssl_tls(const std::string& cert_pem, const std::string& key_pem) {
  boost::system::error_code ec;
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  ::SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                  asio::ssl::context::single_dh_use);
  ctx.use_certificate_chain(asio::buffer(cert_pem), ec);
  if (ec) return Error::invalid("tls.cert", "the certificate cannot be used: " + ec.message());
  ctx.use_private_key(asio::buffer(key_pem), asio::ssl::context::pem, ec);
  if (ec) return Error::invalid("tls.key", "the key cannot be used: " + ec.message());
  if (::SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    return Error::invalid("tls.key", "the key does not belong to the certificate");
  return std::shared_ptr<TlsContext>(std::make_shared<OpensslContext>(std::move(ctx)));
}

}  // namespace ads::http
