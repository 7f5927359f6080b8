#include "http/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace ads::http::tls {
namespace {

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

std::string openssl_error(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = {0};
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return what + (e ? std::string(": ") + buf : std::string());
}

bool is_ip(const std::string& s) {
  unsigned char b[16];
  return inet_pton(AF_INET, s.c_str(), b) == 1 || inet_pton(AF_INET6, s.c_str(), b) == 1;
}

bool is_host_name(const std::string& s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.front() == '-') return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
  return true;
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

X509Ptr parse_cert(const std::string& pem) {
  Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
}

PKey parse_key(const std::string& pem) {
  Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return PKey(b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr) : nullptr);
}

// A self-signed certificate for `key` with `san` (OpenSSL's "DNS:a,IP:b" form; may be empty).
Result<Identity> self_sign(EVP_PKEY* key, const std::string& common_name, const std::string& san, const EVP_MD* md) {
  X509Ptr x(X509_new());
  if (!x) return Error::make("internal", openssl_error("X509_new"));
  X509_set_version(x.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return Error::make("internal", openssl_error("RAND_bytes"));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 60L * 60 * 24 * 3650);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("ADS"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(x.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
  // A leaf, never a CA: whoever trusts this file (as a CA file, even system-wide)
  // trusts this one certificate for its own names, not anything its key could sign.
  // RSA keys also encipher the TLS 1.2 key exchange; EC and Ed25519 keys only sign.
  std::string usage = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? "critical,digitalSignature,keyEncipherment"
                                                                : "critical,digitalSignature";
  std::vector<std::pair<int, std::string>> exts = {{NID_basic_constraints, "critical,CA:FALSE"},
                                                   {NID_key_usage, usage},
                                                   {NID_ext_key_usage, "serverAuth"},
                                                   {NID_subject_key_identifier, "hash"}};
  if (!san.empty()) exts.push_back({NID_subject_alt_name, san});
  for (auto& [nid, value] : exts) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!e) return Error::make("internal", openssl_error("certificate extension " + value));
    X509_add_ext(x.get(), e, -1);
    X509_EXTENSION_free(e);
  }
  if (X509_sign(x.get(), key, md) <= 0) return Error::make("internal", openssl_error("signing the certificate"));
  Bio cb(BIO_new(BIO_s_mem())), kb(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(cb.get(), x.get()) ||
      !PEM_write_bio_PrivateKey(kb.get(), key, nullptr, nullptr, 0, nullptr, nullptr))
    return Error::make("internal", openssl_error("writing PEM"));
  return Identity{bio_text(cb.get()), bio_text(kb.get())};
}

Result<std::string> read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::invalid(what, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode);
  if (fd < 0) return Error::make("failed", "cannot write " + tmp);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error::make("failed", "cannot write " + path);
  }
  return Status::Ok();
}

}  // namespace

Result<Identity> make_self_signed(const std::vector<std::string>& names) {
  std::string san;
  for (auto& n : names) {
    if (is_ip(n)) san += (san.empty() ? "" : ",") + std::string("IP:") + n;
    else if (is_host_name(n)) san += (san.empty() ? "" : ",") + std::string("DNS:") + n;
    else return Error::invalid("tls.names", "not a host name or IP address: \"" + n + "\"");
  }
  PKey key(EVP_EC_gen("P-256"));
  if (!key) return Error::make("internal", openssl_error("generating a P-256 key"));
  return self_sign(key.get(), names.empty() ? "ads" : names.front(), san, EVP_sha256());
}

Result<std::string> public_key_pin(const std::string& cert_pem) {
  X509Ptr x = parse_cert(cert_pem);
  if (!x) return Error::invalid("certificate", openssl_error("not a PEM certificate"));
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(X509_get0_pubkey(x.get()), &der);
  if (n <= 0) return Error::make("internal", openssl_error("encoding the public key"));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_Digest(der, static_cast<size_t>(n), md, &mdlen, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  std::string b64(4 * ((mdlen + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), md, static_cast<int>(mdlen));
  b64.resize(static_cast<size_t>(len));
  return "sha256//" + b64;
}

Result<std::string> fingerprint_sha256(const std::string& cert_pem) {
  X509Ptr x = parse_cert(cert_pem);
  if (!x) return Error::invalid("certificate", openssl_error("not a PEM certificate"));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(x.get(), EVP_sha256(), md, &n);
  static const char* hexd = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    if (i) out.push_back(':');
    out.push_back(hexd[md[i] >> 4]);
    out.push_back(hexd[md[i] & 15]);
  }
  return out;
}

Status check_pair(const Identity& id) {
  X509Ptr x = parse_cert(id.cert_pem);
  if (!x) return Error::invalid("tls.cert", openssl_error("not a PEM certificate"));
  PKey k = parse_key(id.key_pem);
  if (!k) return Error::invalid("tls.key", openssl_error("not a PEM private key"));
  if (X509_check_private_key(x.get(), k.get()) != 1)
    return Error::invalid("tls.key", openssl_error("does not belong to the certificate"));
  return Status::Ok();
}

bool is_ca(const std::string& cert_pem) {
  X509Ptr x = parse_cert(cert_pem);
  return x && X509_check_ca(x.get()) != 0;
}

bool covers(const std::string& cert_pem, const std::string& name) {
  X509Ptr x = parse_cert(cert_pem);
  if (!x) return false;
  if (is_ip(name)) return X509_check_ip_asc(x.get(), name.c_str(), 0) == 1;
  return X509_check_host(x.get(), name.c_str(), name.size(), 0, nullptr) == 1;
}

Result<Identity> load_pair(const std::string& cert_file, const std::string& key_file) {
  auto c = read_file(cert_file, "tls.cert");
  if (!c) return c.error();
  auto k = read_file(key_file, "tls.key");
  if (!k) return k.error();
  Identity id{*c, *k};
  auto st = check_pair(id);
  if (!st) {
    Error e = st.error();
    e.message = (e.field == "tls.cert" ? cert_file : key_file) + ": " + e.message;
    return e;
  }
  return id;
}

Result<Identity> load_or_create(const std::string& cert_file, const std::string& key_file,
                                const std::vector<std::string>& names, bool* generated) {
  if (generated) *generated = false;
  std::error_code ec;
  if (std::filesystem::exists(cert_file, ec) && std::filesystem::exists(key_file, ec)) {
    auto id = load_pair(cert_file, key_file);
    if (!id) return id.error();
    bool all = true;
    for (auto& n : names) all = all && covers(id->cert_pem, n);
    // a CA certificate (made by ADS before it made leaves) is replaced: whoever
    // trusts that file trusts anything its key signs
    if (all && !is_ca(id->cert_pem)) return id;
    // a name was added to the configuration: a new certificate (the old one
    // would not verify for it anyway)
  }
  auto id = make_self_signed(names);
  if (!id) return id.error();
  std::filesystem::create_directories(std::filesystem::path(cert_file).parent_path(), ec);
  auto st = write_file(key_file, id->key_pem, 0600);
  if (st) st = write_file(cert_file, id->cert_pem, 0644);
  if (!st) return st.error();
  if (generated) *generated = true;
  return id;
}

}  // namespace ads::http::tls
