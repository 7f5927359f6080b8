// The agent's TLS key, derived from the deployment's secret (agent/identity.h),
// checked against values computed outside ADS, and across the two TLS
// libraries: mbed TLS makes the agent's certificate, OpenSSL (what ADS and
// libcurl use) reads it.
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "agent/client.h"
#include "agent/identity.h"
#include "http/server.h"
#include "http/tls_openssl.h"

namespace {

const std::string kSecret(64, 'k');

// Computed for kSecret with the openssl command and Python, not with ADS:
//   seed=$(openssl kdf -keylen 48 -kdfopt digest:SHA256 -kdfopt key:$SECRET
//          -kdfopt salt:ads-agent-tls -kdfopt "info:p256 v2" HKDF)
//   d = 1 + seed mod (n - 1); Q = d*G on P-256 (Python integers);
//   pin = base64(sha256(SubjectPublicKeyInfo of Q, uncompressed))
const char* kP256Pin = "sha256//HpImuqlyU6xEOgtr231fu7kTdp/e7+37Jg5skggsc6M=";
// The key agents had before 2026-12-04, as `openssl pkey` derives it from the
// 32-byte seed of info "ed25519 v1" (a PKCS#8 Ed25519 key made of it).
const char* kEd25519Pin = "sha256//or+OhkED7jKi9I6IdZgdcACVf8adHOUs8KqRdrL64FI=";

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
std::unique_ptr<X509, X509Free> parse(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return std::unique_ptr<X509, X509Free>(x);
}

TEST(AgentIdentity, ThePinsMatchValuesComputedOutsideAds) {
  auto pin = ads::agent::agent_pin(kSecret);
  ASSERT_TRUE(pin.ok()) << pin.error().message;
  EXPECT_EQ(*pin, kP256Pin);
  auto legacy = ads::agent::legacy_agent_pin(kSecret);
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ(*legacy, kEd25519Pin);
  // a client accepts either: agents started before the change keep answering
  auto both = ads::agent::agent_pins(kSecret);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(*both, std::string(kP256Pin) + ";" + kEd25519Pin);
  // another secret, other keys
  EXPECT_NE(*ads::agent::agent_pin(std::string(64, 'x')), *pin);
  EXPECT_NE(*ads::agent::legacy_agent_pin(std::string(64, 'x')), *legacy);
}

TEST(AgentIdentity, TheCertificateCarriesTheDerivedKeyAndOpensslReadsIt) {
  auto a = ads::agent::agent_identity(kSecret);
  auto b = ads::agent::agent_identity(kSecret);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok());
  // the key is the secret's; each certificate is made anew (its own serial)
  EXPECT_EQ(*ads::http::tls::public_key_pin(a->cert_pem), kP256Pin);
  EXPECT_EQ(*ads::http::tls::public_key_pin(b->cert_pem), kP256Pin);
  EXPECT_NE(a->cert_pem, b->cert_pem);
  EXPECT_EQ(a->key_pem, b->key_pem);
  EXPECT_TRUE(ads::http::tls::check_pair(*a).ok());
  EXPECT_EQ(a->cert_pem.find(kSecret), std::string::npos);
  EXPECT_EQ(a->key_pem.find(kSecret), std::string::npos);

  auto x = parse(a->cert_pem);
  ASSERT_TRUE(x);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(x.get())), EVP_PKEY_EC);
  EXPECT_EQ(X509_check_ca(x.get()), 0);  // a leaf
  EXPECT_TRUE(X509_get_key_usage(x.get()) & KU_DIGITAL_SIGNATURE);
  EXPECT_FALSE(X509_get_key_usage(x.get()) & KU_KEY_CERT_SIGN);
  // valid now, for years
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(x.get())), 0);
  EXPECT_GT(X509_cmp_time(X509_get0_notAfter(x.get()), nullptr), 0);
  time_t in_five_years = time(nullptr) + 5L * 365 * 86400;
  EXPECT_GT(X509_cmp_time(X509_get0_notAfter(x.get()), &in_five_years), 0);
  // self-signed with that key
  EXPECT_EQ(X509_verify(x.get(), X509_get0_pubkey(x.get())), 1);
}

TEST(AgentIdentity, AnySecretGivesAValidKey) {
  // short, empty and binary secrets (the server refuses short ones; the
  // derivation itself must not fail on them)
  for (const std::string& s : {std::string(), std::string(1, '\0'), std::string(32, '\xff'), std::string(4096, 'a')}) {
    auto id = ads::agent::agent_identity(s);
    ASSERT_TRUE(id.ok()) << s.size();
    EXPECT_EQ(*ads::http::tls::public_key_pin(id->cert_pem), *ads::agent::agent_pin(s));
  }
}

// An agent from before the change (an Ed25519 key from the seed of info
// "ed25519 v1", made here with OpenSSL as the old agent made it) is still
// reached by today's client; an Ed25519 key of another secret is not.
std::string legacy_seed(const std::string& secret) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  char digest[] = "SHA256", salt[] = "ads-agent-tls", info[] = "ed25519 v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof salt - 1),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info - 1), OSSL_PARAM_construct_end()};
  std::string out(32, '\0');
  EXPECT_EQ(EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), out.size(), params), 1);
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  return out;
}

ads::http::tls::Identity ed25519_identity(const std::string& seed) {
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                               reinterpret_cast<const unsigned char*>(seed.data()), seed.size());
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ads-agent"), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  EXPECT_GT(X509_sign(x, key, nullptr), 0);
  BIO* cb = BIO_new(BIO_s_mem());
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, x);
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  ads::http::tls::Identity id;
  long n = BIO_get_mem_data(cb, &data);
  id.cert_pem.assign(data, static_cast<size_t>(n));
  n = BIO_get_mem_data(kb, &data);
  id.key_pem.assign(data, static_cast<size_t>(n));
  BIO_free(cb);
  BIO_free(kb);
  X509_free(x);
  EVP_PKEY_free(key);
  return id;
}

TEST(AgentIdentity, AnAgentWithTheKeyOfBeforeIsStillReached) {
  for (bool same_secret : {true, false}) {
    auto id = ed25519_identity(legacy_seed(same_secret ? kSecret : std::string(64, 'o')));
    EXPECT_EQ(*ads::http::tls::public_key_pin(id.cert_pem) == kEd25519Pin, same_secret);
    ads::http::ServerOptions o;
    o.tls_cert_pem = id.cert_pem;
    o.tls_key_pem = id.key_pem;
    o.tls_backend = ads::http::openssl_tls;
    ads::http::Server s(o);
    s.route("GET", "/v1/health", [](ads::http::Request&) { return ads::http::Response::json(200, R"({"ok":true})"); });
    ASSERT_TRUE(s.start().ok());
    ads::agent::AgentClient c("https://127.0.0.1:" + std::to_string(s.port()), kSecret);
    auto h = c.health(10000);
    if (same_secret) {
      ASSERT_TRUE(h.ok()) << h.error().message;
    } else {
      ASSERT_FALSE(h.ok());
      EXPECT_EQ(h.error().code, "tls") << h.error().message;
    }
    s.stop();
  }
}

}  // namespace
