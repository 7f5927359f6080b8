// TLS material (tls.h) and the HTTPS server/client pair: real handshakes on
// loopback between http::Server (Boost.Asio SSL) and http::request (libcurl).
#include "http/tls.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/identity.h"
#include "http/client.h"
#include "http/server.h"
#include "http/tls_openssl.h"
#include "support/process.h"

namespace fs = std::filesystem;
namespace tls = ads::http::tls;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

TEST(TlsMaterial, SelfSignedCertificatesCoverTheirNamesAndOnlyThose) {
  auto id = tls::make_self_signed({"localhost", "127.0.0.1", "::1", "ads.example.test"});
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_TRUE(tls::check_pair(*id).ok());
  for (const char* n : {"localhost", "127.0.0.1", "::1", "ads.example.test"})
    EXPECT_TRUE(tls::covers(id->cert_pem, n)) << n;
  for (const char* n : {"127.0.0.2", "other.example.test", "example.test"})
    EXPECT_FALSE(tls::covers(id->cert_pem, n)) << n;

  auto bad = tls::make_self_signed({"localhost", "bad name;rm"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "tls.names");

  // two certificates, two keys: a key from one does not pair with the other
  auto other = tls::make_self_signed({"localhost"});
  ASSERT_TRUE(other.ok());
  auto mixed = tls::check_pair({id->cert_pem, other->key_pem});
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.error().field, "tls.key");
  EXPECT_NE(*tls::public_key_pin(id->cert_pem), *tls::public_key_pin(other->cert_pem));
  EXPECT_FALSE(tls::public_key_pin("not a certificate").ok());
  auto fp = tls::fingerprint_sha256(id->cert_pem);
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ(fp->size(), 32u * 3 - 1);  // AB:CD:...
}

// OpenSSL objects for the certificate checks below (freed by unique_ptr).
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

X509Ptr parse_cert(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509Ptr x(PEM_read_bio_X509(b, nullptr, nullptr, nullptr));
  BIO_free(b);
  return x;
}
KeyPtr parse_key(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  KeyPtr k(PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr));
  BIO_free(b);
  return k;
}
std::string to_pem(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  return out;
}

// A certificate for `subject_key` named `cn`, signed by `issuer_key` as
// `issuer` (nullptr: self-signed), with extensions in OpenSSL's text form.
X509Ptr make_cert(EVP_PKEY* subject_key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                  const std::vector<std::pair<int, std::string>>& exts) {
  X509Ptr x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
  X509_set_pubkey(x.get(), subject_key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x.get(), X509_get_subject_name(issuer ? issuer : x.get()));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
  for (auto& [nid, value] : exts) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    EXPECT_NE(e, nullptr) << value;
    if (!e) continue;
    X509_add_ext(x.get(), e, -1);
    X509_EXTENSION_free(e);
  }
  EXPECT_GT(X509_sign(x.get(), issuer_key, EVP_sha256()), 0);
  return x;
}

// X509_verify_cert of `leaf` with `anchor` as the only trusted certificate
// (what a client given the file as its CA file does), for a TLS server named `host`.
int verify_with_anchor(X509* leaf, X509* anchor, const std::string& host) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, anchor);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host.c_str(), host.size());
  int ok = X509_verify_cert(ctx);
  int err = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return err;
}

// The certificate `tls.mode auto` makes is a leaf: trusting it (as a CA file,
// even system-wide) trusts that certificate for its names, and nothing its key signs.
TEST(TlsMaterial, GeneratedCertificatesAreLeavesNotCertificateAuthorities) {
  auto id = tls::make_self_signed({"localhost", "127.0.0.1"});
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_FALSE(tls::is_ca(id->cert_pem));
  X509Ptr x = parse_cert(id->cert_pem);
  ASSERT_TRUE(x);
  EXPECT_EQ(X509_check_ca(x.get()), 0);
  int bc = X509_get_ext_by_NID(x.get(), NID_basic_constraints, -1);
  ASSERT_GE(bc, 0) << "no basicConstraints";
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(x.get(), bc)), 1);
  auto* constraints =
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(x.get(), NID_basic_constraints, nullptr, nullptr));
  ASSERT_NE(constraints, nullptr);
  EXPECT_EQ(constraints->ca, 0);
  BASIC_CONSTRAINTS_free(constraints);
  uint32_t ku = X509_get_key_usage(x.get());
  EXPECT_TRUE(ku & KU_DIGITAL_SIGNATURE);
  EXPECT_FALSE(ku & KU_KEY_CERT_SIGN);
  EXPECT_FALSE(ku & KU_CRL_SIGN);
  EXPECT_FALSE(ku & KU_KEY_ENCIPHERMENT);  // an EC key does not encipher
  EXPECT_TRUE(X509_get_extended_key_usage(x.get()) & XKU_SSL_SERVER);
  EXPECT_TRUE(tls::covers(id->cert_pem, "localhost"));
  EXPECT_TRUE(tls::covers(id->cert_pem, "127.0.0.1"));

  // as a trust anchor it vouches for itself, for its own names only
  EXPECT_EQ(verify_with_anchor(x.get(), x.get(), "localhost"), X509_V_OK);
  EXPECT_NE(verify_with_anchor(x.get(), x.get(), "other.example.test"), X509_V_OK);
  // a certificate its key signs for another name is not trusted through it
  KeyPtr key = parse_key(id->key_pem);
  KeyPtr other_key(EVP_EC_gen("P-256"));
  X509Ptr forged = make_cert(other_key.get(), "bank.example.test", x.get(), key.get(),
                             {{NID_subject_alt_name, "DNS:bank.example.test"}, {NID_ext_key_usage, "serverAuth"}});
  int err = verify_with_anchor(forged.get(), x.get(), "bank.example.test");
  EXPECT_NE(err, X509_V_OK);
  EXPECT_EQ(err, X509_V_ERR_INVALID_CA) << X509_verify_cert_error_string(err);

  // the agents' certificates (P-256, from the deployment's secret, made by
  // mbed TLS) are leaves too
  auto agent = ads::agent::agent_identity(std::string(64, 's'));
  ASSERT_TRUE(agent.ok());
  EXPECT_FALSE(tls::is_ca(agent->cert_pem));
  X509Ptr ax = parse_cert(agent->cert_pem);
  EXPECT_TRUE(X509_get_key_usage(ax.get()) & KU_DIGITAL_SIGNATURE);
  EXPECT_FALSE(X509_get_key_usage(ax.get()) & KU_KEY_CERT_SIGN);
}

// A data directory holding the CA certificate an older ADS made gets a leaf
// in its place on the next start (the CLI reads the new file; remote clients
// that copied the old one must copy the new one).
TEST(TlsMaterial, LoadOrCreateReplacesACertificateThatIsACa) {
  ads::test::TempDir tmp;
  fs::path crt = tmp.path / "tls" / "server.crt", key = tmp.path / "tls" / "server.key";
  fs::create_directories(crt.parent_path());
  KeyPtr k(EVP_EC_gen("P-256"));
  X509Ptr old = make_cert(k.get(), "localhost", nullptr, k.get(),
                          {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                           {NID_key_usage, "critical,digitalSignature,keyCertSign"},
                           {NID_ext_key_usage, "serverAuth"},
                           {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"}});
  std::string old_pem = to_pem(old.get());
  ASSERT_TRUE(tls::is_ca(old_pem));
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, k.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(kb, &data);
  write(key, std::string(data, static_cast<size_t>(n)));
  BIO_free(kb);
  write(crt, old_pem);

  bool generated = false;
  auto id = tls::load_or_create(crt.string(), key.string(), {"localhost", "127.0.0.1"}, &generated);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_TRUE(generated);
  EXPECT_FALSE(tls::is_ca(id->cert_pem));
  EXPECT_EQ(read(crt), id->cert_pem);
  EXPECT_NE(read(crt), old_pem);
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // and the leaf is kept from then on
  auto again = tls::load_or_create(crt.string(), key.string(), {"localhost"}, &generated);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(generated);
  EXPECT_EQ(again->cert_pem, id->cert_pem);
}

TEST(TlsMaterial, LoadOrCreateWritesAPrivateKeyOnceAndReusesIt) {
  ads::test::TempDir tmp;
  fs::path crt = tmp.path / "tls" / "server.crt", key = tmp.path / "tls" / "server.key";
  bool generated = false;
  auto first = tls::load_or_create(crt.string(), key.string(), {"localhost", "127.0.0.1"}, &generated);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(generated);
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read(key), first->key_pem);

  auto again = tls::load_or_create(crt.string(), key.string(), {"localhost"}, &generated);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(generated);
  EXPECT_EQ(again->cert_pem, first->cert_pem);

  // a name the certificate does not cover: a new one that does
  auto more = tls::load_or_create(crt.string(), key.string(), {"localhost", "ads.internal"}, &generated);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(generated);
  EXPECT_TRUE(tls::covers(more->cert_pem, "ads.internal"));
  EXPECT_EQ(read(crt), more->cert_pem);

  // a damaged key is an error naming the file, not silently replaced
  write(key, "garbage");
  auto broken = tls::load_or_create(crt.string(), key.string(), {"localhost"}, &generated);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().field, "tls.key");
  EXPECT_NE(broken.error().message.find(key.string()), std::string::npos) << broken.error().message;
}

TEST(TlsMaterial, ConfiguredPairsAreCheckedAndErrorsNameTheFile) {
  ads::test::TempDir tmp;
  auto a = tls::make_self_signed({"localhost"}), b = tls::make_self_signed({"localhost"});
  write(tmp.path / "a.crt", a->cert_pem);
  write(tmp.path / "a.key", a->key_pem);
  write(tmp.path / "b.key", b->key_pem);
  write(tmp.path / "junk.crt", "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n");
  EXPECT_TRUE(tls::load_pair((tmp.path / "a.crt").string(), (tmp.path / "a.key").string()).ok());

  auto missing = tls::load_pair((tmp.path / "none.crt").string(), (tmp.path / "a.key").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().field, "tls.cert");
  auto junk = tls::load_pair((tmp.path / "junk.crt").string(), (tmp.path / "a.key").string());
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.error().field, "tls.cert");
  EXPECT_NE(junk.error().message.find("junk.crt"), std::string::npos);
  auto mismatch = tls::load_pair((tmp.path / "a.crt").string(), (tmp.path / "b.key").string());
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().field, "tls.key");
  EXPECT_NE(mismatch.error().message.find("b.key"), std::string::npos);
}

// A real HTTPS server on loopback with one echo route.
class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto i = tls::make_self_signed({"localhost", "127.0.0.1"});
    ASSERT_TRUE(i.ok());
    id = *i;
    ca = tmp.path / "server.crt";
    write(ca, id.cert_pem);
    ads::http::ServerOptions o{"127.0.0.1", 0, 4096, 8, 5};
    o.tls_cert_pem = id.cert_pem;
    o.tls_backend = ads::http::openssl_tls;
    o.tls_key_pem = id.key_pem;
    server = std::make_unique<ads::http::Server>(o);
    server->route("POST", "/echo", [](ads::http::Request& r) { return ads::http::Response::json(200, r.body); });
    server->route("GET", "/hello", [](ads::http::Request&) { return ads::http::Response::json(200, R"({"hi":1})"); });
    ASSERT_TRUE(server->start().ok());
    ASSERT_TRUE(server->tls());
  }
  std::string url(const std::string& host, const std::string& path, const std::string& scheme = "https") {
    return scheme + "://" + host + ":" + std::to_string(server->port()) + path;
  }
  ads::test::TempDir tmp;
  tls::Identity id;
  fs::path ca;
  std::unique_ptr<ads::http::Server> server;
};

TEST_F(HttpsTest, AClientTrustingTheCertificateTalksAndOthersAreRefusedClearly) {
  ads::http::ClientRequest r;
  r.url = url("127.0.0.1", "/hello");
  r.ca_file = ca.string();
  auto ok = ads::http::request(r);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, R"({"hi":1})");
  r.url = url("localhost", "/hello");
  EXPECT_TRUE(ads::http::request(r).ok());

  // the system's CA store does not know a self-signed certificate
  ads::http::ClientRequest sys;
  sys.url = url("127.0.0.1", "/hello");
  auto untrusted = ads::http::request(sys);
  ASSERT_FALSE(untrusted.ok());
  EXPECT_EQ(untrusted.error().code, "tls");
  EXPECT_NE(untrusted.error().message.find("not trusted"), std::string::npos) << untrusted.error().message;

  // another certificate as the CA: the server's does not chain to it
  auto other = tls::make_self_signed({"127.0.0.1"});
  write(tmp.path / "other.crt", other->cert_pem);
  ads::http::ClientRequest wrong;
  wrong.url = url("127.0.0.1", "/hello");
  wrong.ca_file = (tmp.path / "other.crt").string();
  auto mismatch = ads::http::request(wrong);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, "tls");
  EXPECT_NE(mismatch.error().message.find("other.crt"), std::string::npos) << mismatch.error().message;

  // the right certificate, a name it does not cover (127.0.0.2 is loopback too)
  ads::http::ClientRequest name;
  name.url = "https://127.0.0.2:" + std::to_string(server->port()) + "/hello";
  name.ca_file = ca.string();
  auto n = ads::http::request(name);
  // the server listens on 127.0.0.1 only: either refused (unavailable) or, if
  // reached, refused for the name; it must never succeed
  EXPECT_FALSE(n.ok());

  // a CA file that does not exist
  ads::http::ClientRequest nofile;
  nofile.url = url("127.0.0.1", "/hello");
  nofile.ca_file = (tmp.path / "missing.crt").string();
  auto nf = ads::http::request(nofile);
  ASSERT_FALSE(nf.ok());
  EXPECT_EQ(nf.error().code, "tls") << nf.error().message;
}

TEST_F(HttpsTest, HostNameIsCheckedAgainstTheCertificate) {
  // a server whose certificate names only "ads.example.test", reached as 127.0.0.1
  auto narrow = tls::make_self_signed({"ads.example.test"});
  ads::http::ServerOptions o{"127.0.0.1", 0, 4096, 8, 5};
  o.tls_cert_pem = narrow->cert_pem;
  o.tls_backend = ads::http::openssl_tls;
  o.tls_key_pem = narrow->key_pem;
  ads::http::Server s(o);
  s.route("GET", "/hello", [](ads::http::Request&) { return ads::http::Response::json(200, "{}"); });
  ASSERT_TRUE(s.start().ok());
  write(tmp.path / "narrow.crt", narrow->cert_pem);
  ads::http::ClientRequest r;
  r.url = "https://127.0.0.1:" + std::to_string(s.port()) + "/hello";
  r.ca_file = (tmp.path / "narrow.crt").string();
  auto res = ads::http::request(r);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, "tls") << res.error().message;
  s.stop();
}

TEST_F(HttpsTest, PinnedKeysAcceptTheirServerOnlyAndPlainHttpGetsA400) {
  ads::http::ClientRequest r;
  r.url = url("127.0.0.1", "/hello");
  r.pinned_key = *tls::public_key_pin(id.cert_pem);
  auto ok = ads::http::request(r);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->status, 200);

  auto other = tls::make_self_signed({"127.0.0.1"});
  r.pinned_key = *tls::public_key_pin(other->cert_pem);
  auto bad = ads::http::request(r);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "tls");
  EXPECT_NE(bad.error().message.find("pinned"), std::string::npos) << bad.error().message;

  ads::http::ClientRequest plain;
  plain.url = url("127.0.0.1", "/hello", "http");
  auto p = ads::http::request(plain);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->status, 400);
  EXPECT_NE(p->body.find("https://"), std::string::npos) << p->body;
}

TEST_F(HttpsTest, OversizedAndMalformedRequestsOverTlsGetJsonErrors) {
  ads::http::ClientRequest big;
  big.method = "POST";
  big.url = url("127.0.0.1", "/echo");
  big.ca_file = ca.string();
  big.body = std::string(8192, 'x');  // the limit is 4096
  big.headers = {{"Content-Type", "application/json"}};
  auto r = ads::http::request(big);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("too_large"), std::string::npos) << r->body;

  big.body = R"({"a":1})";
  auto small = ads::http::request(big);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->status, 200);
  EXPECT_EQ(small->body, R"({"a":1})");

  // a server that sees a TLS handshake but garbage afterwards keeps serving others
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(server->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const char junk[] = "\x16\x03\x01\x00\x05garbage-not-a-client-hello";
  ASSERT_GT(::send(fd, junk, sizeof junk, MSG_NOSIGNAL), 0);
  ::close(fd);
  ads::http::ClientRequest again;
  again.url = url("127.0.0.1", "/hello");
  again.ca_file = ca.string();
  auto ok = ads::http::request(again);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpsServer, RefusesToStartWithAKeyThatIsNotTheCertificates) {
  auto a = tls::make_self_signed({"localhost"}), b = tls::make_self_signed({"localhost"});
  ads::http::ServerOptions o{"127.0.0.1", 0, 4096, 8, 5};
  o.tls_cert_pem = a->cert_pem;
  o.tls_backend = ads::http::openssl_tls;
  o.tls_key_pem = b->key_pem;
  ads::http::Server s(o);
  auto st = s.start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "tls.key");
  o.tls_key_pem = "not a key";
  ads::http::Server s2(o);
  auto st2 = s2.start();
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(st2.error().field, "tls.key");
}

// Server::set_tls_identity (the agent's secret switch): handshakes from then
// on present the new key; a bad pair is refused and changes nothing.
TEST_F(HttpsTest, ANewIdentityIsPresentedFromTheNextHandshakeAndABadOneChangesNothing) {
  auto next = tls::make_self_signed({"127.0.0.1"});
  ASSERT_TRUE(next.ok());
  auto status_with_pin = [&](const tls::Identity& i) {
    ads::http::ClientRequest r;
    r.url = url("127.0.0.1", "/hello");
    r.pinned_key = *tls::public_key_pin(i.cert_pem);
    auto res = ads::http::request(r);
    return res ? std::to_string(res->status) : res.error().code;
  };
  EXPECT_EQ(status_with_pin(id), "200");
  EXPECT_EQ(status_with_pin(*next), "tls");

  auto bad = server->set_tls_identity(next->cert_pem, id.key_pem);  // not the certificate's key
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "tls.key");
  EXPECT_EQ(status_with_pin(id), "200");

  ASSERT_TRUE(server->set_tls_identity(next->cert_pem, next->key_pem).ok());
  EXPECT_EQ(status_with_pin(*next), "200");
  EXPECT_EQ(status_with_pin(id), "tls");

  ads::http::Server plain(ads::http::ServerOptions{"127.0.0.1", 0, 4096, 8, 5});
  EXPECT_FALSE(plain.set_tls_identity(next->cert_pem, next->key_pem).ok());
  EXPECT_FALSE(plain.tls());
}

}  // namespace
