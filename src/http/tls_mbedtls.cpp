#include "http/tls_mbedtls.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <boost/asio/error.hpp>

namespace ads::http {
namespace {

std::string mbed_error(int rc) {
  char buf[160] = {0};
  mbedtls_strerror(rc, buf, sizeof buf);
  return buf;
}

// ECDHE key exchange and AEAD ciphers only (the same families OpenSSL's
// defaults offer first), for ECDSA and RSA keys.
const int kSuites[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                       MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                       MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                       MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                       MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                       MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                       0};

// Everything one certificate and key need; read-only once made (the random
// generator locks itself: MBEDTLS_THREADING_C), shared by every connection.
class MbedContext final : public TlsContext {
 public:
  MbedContext() {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
    mbedtls_x509_crt_init(&cert_);
    mbedtls_pk_init(&key_);
    mbedtls_ssl_config_init(&conf_);
  }
  ~MbedContext() override {
    mbedtls_ssl_config_free(&conf_);
    mbedtls_pk_free(&key_);
    mbedtls_x509_crt_free(&cert_);
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }
  MbedContext(const MbedContext&) = delete;
  MbedContext& operator=(const MbedContext&) = delete;

  Status init(const std::string& cert_pem, const std::string& key_pem) {
    static const char kPers[] = "ads http tls";
    int rc = mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_,
                                   reinterpret_cast<const unsigned char*>(kPers), sizeof kPers - 1);
    if (rc != 0) return Error::make("internal", "cannot seed the TLS random generator: " + mbed_error(rc));
    // PEM text is parsed with its terminating NUL counted
    rc = mbedtls_x509_crt_parse(&cert_, reinterpret_cast<const unsigned char*>(cert_pem.c_str()), cert_pem.size() + 1);
    if (rc != 0) return Error::invalid("tls.cert", "the certificate cannot be used: " + mbed_error(rc));
    rc = mbedtls_pk_parse_key(&key_, reinterpret_cast<const unsigned char*>(key_pem.c_str()), key_pem.size() + 1,
                              nullptr, 0);
    if (rc != 0) return Error::invalid("tls.key", "the key cannot be used: " + mbed_error(rc));
    if (mbedtls_pk_check_pair(&cert_.pk, &key_) != 0)
      return Error::invalid("tls.key", "the key does not belong to the certificate");
    // One signature now: a key that cannot sign is refused here, not at each
    // handshake. (Also a guard: mbed TLS 2.28 stores a curve's generator
    // table lazily in the group it multiplies on. A PEM key is an ECKEY,
    // whose signatures run on a copy of its group, so handshakes share
    // nothing there today; an ECDSA-typed key would sign on its own group,
    // and this first signature fills the table before connections share it.)
    const unsigned char digest[32] = {0};
    unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t sig_len = 0;
    rc = mbedtls_pk_sign(&key_, MBEDTLS_MD_SHA256, digest, sizeof digest, sig, &sig_len, mbedtls_ctr_drbg_random,
                         &drbg_);
    if (rc != 0) return Error::invalid("tls.key", "the key cannot sign: " + mbed_error(rc));
    rc = mbedtls_ssl_config_defaults(&conf_, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc != 0) return Error::make("internal", "cannot set up TLS: " + mbed_error(rc));
    mbedtls_ssl_conf_rng(&conf_, mbedtls_ctr_drbg_random, &drbg_);
    mbedtls_ssl_conf_min_version(&conf_, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);  // TLS 1.2
    mbedtls_ssl_conf_ciphersuites(&conf_, kSuites);
    rc = mbedtls_ssl_conf_own_cert(&conf_, &cert_, &key_);
    if (rc != 0) return Error::invalid("tls.cert", "the certificate cannot be used: " + mbed_error(rc));
    return Status::Ok();
  }

  std::unique_ptr<TlsStream> stream(DeadlineSocket& s) override;

 private:
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
  mbedtls_x509_crt cert_;
  mbedtls_pk_context key_;
  mbedtls_ssl_config conf_;
};

// One connection: mbed TLS reads and writes through the DeadlineSocket, so
// its deadlines bound the handshake and every record; a socket error
// (timed_out, a reset) is kept and reported as it is.
class MbedStream final : public TlsStream {
 public:
  MbedStream(DeadlineSocket& s, const mbedtls_ssl_config* conf) : sock_(s) {
    // mbed TLS sends each handshake message on its own (ServerHello,
    // Certificate, ServerKeyExchange, ServerHelloDone): with Nagle's
    // algorithm the later ones waited for the client's delayed ACK, 40 ms a
    // handshake (measured: 52 ms with it, see docs/bench.md "Agent memory")
    boost::system::error_code ignore;
    s.lowest_layer().set_option(boost::asio::ip::tcp::no_delay(true), ignore);
    mbedtls_ssl_init(&ssl_);
    setup_rc_ = mbedtls_ssl_setup(&ssl_, conf);
    mbedtls_ssl_set_bio(&ssl_, this, &MbedStream::send, &MbedStream::recv, nullptr);
  }
  ~MbedStream() override { mbedtls_ssl_free(&ssl_); }
  MbedStream(const MbedStream&) = delete;
  MbedStream& operator=(const MbedStream&) = delete;

  void do_handshake(boost::system::error_code& ec) override {
    ec = {};
    if (setup_rc_ != 0) {
      ec = tls_error();
      return;
    }
    for (;;) {
      int rc = mbedtls_ssl_handshake(&ssl_);
      if (rc == 0) return;
      if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
        ec = failure();
        return;
      }
    }
  }

  size_t do_read(void* p, size_t n, boost::system::error_code& ec) override {
    ec = {};
    for (;;) {
      int rc = mbedtls_ssl_read(&ssl_, static_cast<unsigned char*>(p), n);
      if (rc > 0) return static_cast<size_t>(rc);
      if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
      // a close_notify, or the peer gone (mbed TLS 2.28 says 0 even in the
      // middle of a record: a cut request then reads as a short one, which
      // the HTTP parser refuses; OpenSSL calls that stream_truncated)
      if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || (rc == MBEDTLS_ERR_SSL_CONN_EOF && !sock_error_))
        ec = boost::asio::error::eof;
      else ec = failure();
      return 0;
    }
  }

  size_t do_write(const void* p, size_t n, boost::system::error_code& ec) override {
    ec = {};
    for (;;) {
      int rc = mbedtls_ssl_write(&ssl_, static_cast<const unsigned char*>(p), n);
      if (rc >= 0) return static_cast<size_t>(rc);
      if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
      ec = failure();
      return 0;
    }
  }

 private:
  static int send(void* self, const unsigned char* buf, size_t len) {
    auto* me = static_cast<MbedStream*>(self);
    boost::system::error_code ec;
    size_t n = me->sock_.write_some(boost::asio::buffer(buf, len), ec);
    if (ec) {
      me->sock_error_ = ec;
      return MBEDTLS_ERR_NET_SEND_FAILED;
    }
    return static_cast<int>(n);
  }
  static int recv(void* self, unsigned char* buf, size_t len) {
    auto* me = static_cast<MbedStream*>(self);
    boost::system::error_code ec;
    size_t n = me->sock_.read_some(boost::asio::buffer(buf, len), ec);
    if (ec == boost::asio::error::eof) return 0;  // mbed TLS's end of stream
    if (ec) {
      me->sock_error_ = ec;
      return MBEDTLS_ERR_NET_RECV_FAILED;
    }
    return static_cast<int>(n);
  }
  // The socket's error if one ended the call, else a TLS error.
  boost::system::error_code failure() {
    if (sock_error_) return std::exchange(sock_error_, {});
    return tls_error();
  }

  DeadlineSocket& sock_;
  mbedtls_ssl_context ssl_;
  int setup_rc_ = 0;
  boost::system::error_code sock_error_;
};

std::unique_ptr<TlsStream> MbedContext::stream(DeadlineSocket& s) { return std::make_unique<MbedStream>(s, &conf_); }

}  // namespace

Result<std::shared_ptr<TlsContext>> mbedtls_tls(const std::string& cert_pem, const std::string& key_pem) {
  auto ctx = std::make_shared<MbedContext>();
  if (auto st = ctx->init(cert_pem, key_pem); !st) return st.error();
  return std::shared_ptr<TlsContext>(std::move(ctx));
}

}  // namespace ads::http
