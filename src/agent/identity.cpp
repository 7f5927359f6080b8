#include "agent/identity.h"

#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <sodium.h>

#include <algorithm>
#include <ctime>

namespace ads::agent {
namespace {

// HKDF-SHA256(key = secret, salt = "ads-agent-tls", info) -> len bytes.
Result<std::string> derive(const std::string& secret, const std::string& info, size_t len) {
  static const char kSalt[] = "ads-agent-tls";
  std::string out(len, '\0');
  int rc = mbedtls_hkdf(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), reinterpret_cast<const unsigned char*>(kSalt),
                        sizeof kSalt - 1, reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
                        reinterpret_cast<const unsigned char*>(info.data()), info.size(),
                        reinterpret_cast<unsigned char*>(out.data()), len);
  if (rc != 0) return Error::make("internal", "HKDF failed (" + std::to_string(rc) + ")");
  return out;
}

std::string pin_of(const unsigned char* der, size_t len) {
  unsigned char md[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(md, der, len);
  char b64[sodium_base64_ENCODED_LEN(sizeof md, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(b64, sizeof b64, md, sizeof md, sodium_base64_VARIANT_ORIGINAL);
  return std::string("sha256//") + b64;
}

// mbed TLS's random generator, for the blinding of the scalar
// multiplication and the certificate's signature and serial.
struct Rng {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  int rc = 0;
  Rng() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    static const char kPers[] = "ads agent identity";
    rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, reinterpret_cast<const unsigned char*>(kPers),
                               sizeof kPers - 1);
  }
  ~Rng() {
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
  }
  Rng(const Rng&) = delete;
  Rng& operator=(const Rng&) = delete;
};

struct Key {
  mbedtls_pk_context pk;
  Key() { mbedtls_pk_init(&pk); }
  ~Key() { mbedtls_pk_free(&pk); }
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
};

// The P-256 key of `secret`: d = 1 + (HKDF(secret, "p256 v2", 48 bytes) mod
// (n - 1)), so 1 <= d < n; 48 bytes make the reduction's bias negligible.
Status derive_key(const std::string& secret, Key& key, Rng& rng) {
  if (rng.rc != 0) return Error::make("internal", "cannot seed a random generator");
  auto seed = derive(secret, "p256 v2", 48);
  if (!seed) return seed.error();
  int rc = mbedtls_pk_setup(&key.pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  mbedtls_ecp_keypair* kp = mbedtls_pk_ec(key.pk);
  if (rc == 0) rc = mbedtls_ecp_group_load(&kp->grp, MBEDTLS_ECP_DP_SECP256R1);
  mbedtls_mpi s, n1;
  mbedtls_mpi_init(&s);
  mbedtls_mpi_init(&n1);
  if (rc == 0) rc = mbedtls_mpi_read_binary(&s, reinterpret_cast<const unsigned char*>(seed->data()), seed->size());
  if (rc == 0) rc = mbedtls_mpi_copy(&n1, &kp->grp.N);
  if (rc == 0) rc = mbedtls_mpi_sub_int(&n1, &n1, 1);
  if (rc == 0) rc = mbedtls_mpi_mod_mpi(&kp->d, &s, &n1);
  if (rc == 0) rc = mbedtls_mpi_add_int(&kp->d, &kp->d, 1);
  if (rc == 0) rc = mbedtls_ecp_mul(&kp->grp, &kp->Q, &kp->d, &kp->grp.G, mbedtls_ctr_drbg_random, &rng.drbg);
  mbedtls_mpi_free(&s);  // zeroes it
  mbedtls_mpi_free(&n1);
  sodium_memzero(seed->data(), seed->size());
  if (rc != 0) return Error::make("internal", "cannot derive the agent's key (" + std::to_string(rc) + ")");
  return Status::Ok();
}

Result<std::string> pin_of_key(Key& key) {
  unsigned char der[256];
  int len = mbedtls_pk_write_pubkey_der(&key.pk, der, sizeof der);  // at the buffer's end
  if (len <= 0) return Error::make("internal", "cannot encode the agent's public key");
  return pin_of(der + sizeof der - len, static_cast<size_t>(len));
}

std::string utc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

}  // namespace

Result<http::tls::Identity> agent_identity(const std::string& secret) {
  if (sodium_init() < 0) return Error::make("internal", "libsodium cannot initialise");
  Rng rng;
  Key key;
  if (auto st = derive_key(secret, key, rng); !st) return st.error();
  mbedtls_x509write_cert crt;
  mbedtls_x509write_crt_init(&crt);
  mbedtls_mpi serial;
  mbedtls_mpi_init(&serial);
  unsigned char serial_bytes[16];
  randombytes_buf(serial_bytes, sizeof serial_bytes);
  serial_bytes[0] &= 0x7f;  // positive
  std::time_t now = std::time(nullptr);
  mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(&crt, &key.pk);
  mbedtls_x509write_crt_set_issuer_key(&crt, &key.pk);
  int rc = mbedtls_x509write_crt_set_subject_name(&crt, "CN=ads-agent,O=ADS");
  if (rc == 0) rc = mbedtls_x509write_crt_set_issuer_name(&crt, "CN=ads-agent,O=ADS");
  if (rc == 0) rc = mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof serial_bytes);
  if (rc == 0) rc = mbedtls_x509write_crt_set_serial(&crt, &serial);
  if (rc == 0) rc = mbedtls_x509write_crt_set_validity(&crt, utc(now - 3600).c_str(), utc(now + 3650L * 86400).c_str());
  // a leaf: trusted as itself, never as a CA
  if (rc == 0) rc = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1);
  if (rc == 0) rc = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
  if (rc == 0) rc = mbedtls_x509write_crt_set_subject_key_identifier(&crt);
  unsigned char cert_pem[4096] = {0};
  if (rc == 0) rc = mbedtls_x509write_crt_pem(&crt, cert_pem, sizeof cert_pem, mbedtls_ctr_drbg_random, &rng.drbg);
  mbedtls_mpi_free(&serial);
  mbedtls_x509write_crt_free(&crt);
  if (rc != 0) return Error::make("internal", "cannot make the agent's certificate (" + std::to_string(rc) + ")");
  unsigned char key_pem[1024] = {0};
  if (mbedtls_pk_write_key_pem(&key.pk, key_pem, sizeof key_pem) != 0)
    return Error::make("internal", "cannot write the agent's key");
  http::tls::Identity id{reinterpret_cast<const char*>(cert_pem), reinterpret_cast<const char*>(key_pem)};
  sodium_memzero(key_pem, sizeof key_pem);
  return id;
}

Result<std::string> agent_pin(const std::string& secret) {
  Rng rng;
  Key key;
  if (auto st = derive_key(secret, key, rng); !st) return st.error();
  return pin_of_key(key);
}

Result<std::string> legacy_agent_pin(const std::string& secret) {
  auto seed = derive(secret, "ed25519 v1", 32);
  if (!seed) return seed.error();
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk, sk, reinterpret_cast<const unsigned char*>(seed->data()));
  sodium_memzero(sk, sizeof sk);
  sodium_memzero(seed->data(), seed->size());
  // SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): a fixed prefix, then the key
  unsigned char spki[12 + crypto_sign_PUBLICKEYBYTES] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                                         0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
  std::copy(pk, pk + sizeof pk, spki + 12);
  return pin_of(spki, sizeof spki);
}

Result<std::string> agent_pins(const std::string& secret) {
  auto now = agent_pin(secret);
  if (!now) return now.error();
  auto before = legacy_agent_pin(secret);
  if (!before) return before.error();
  return *now + ";" + *before;
}

}  // namespace ads::agent
