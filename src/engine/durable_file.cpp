#include "engine/durable_file.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/text.h"

namespace ads {
namespace {

Error io_error(const std::string& what, const std::string& path, int err) {
  return Error::make("failed", "cannot " + what + " " + path + ": " + errno_text(err));
}

// Closes a descriptor once, on every path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  // close(2) can report a write the kernel could not finish: checked
  int close_checked() {
    int rc = ::close(fd);
    fd = -1;
    return rc;
  }
};

}  // namespace

Status write_file_durably(const std::string& path, std::string_view data) {
  const std::string tmp = path + std::string(kPartialSuffix);
  auto fail = [&](const std::string& what, const std::string& file, int err) {
    ::unlink(tmp.c_str());
    return io_error(what, file, err);
  };
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return io_error("remove the stale", tmp, errno);
  Fd f;
  f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (f.fd < 0) return io_error("create", tmp, errno);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(f.fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", tmp, n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  if (::fsync(f.fd) != 0) return fail("sync", tmp, errno);
  if (f.close_checked() != 0) return fail("close", tmp, errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename into place", path, errno);
  // the rename is an entry of the directory: synced too, or a crash can lose it
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd d;
  d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd < 0 || ::fsync(d.fd) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return io_error("sync the directory", dir, err);
  }
  return Status::Ok();
}

Result<FileDigest> digest_file(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (f.fd < 0) {
    int err = errno;
    if (err == ENOENT) return Error::make("not_found", "cannot read " + path + ": " + errno_text(err));
    return io_error("read", path, err);
  }
  // libsodium, not OpenSSL: the agent links this, and OpenSSL is most of a
  // static binary's size (docs/bench.md "Agent memory")
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  FileDigest out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("read", path, errno);
    if (n == 0) break;
    crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(buf), static_cast<size_t>(n));
    out.size += n;
  }
  unsigned char md[crypto_hash_sha256_BYTES];
  const unsigned int len = sizeof md;
  crypto_hash_sha256_final(&st, md);
  static const char* kHex = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    out.sha256.push_back(kHex[md[i] >> 4]);
    out.sha256.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

}  // namespace ads
