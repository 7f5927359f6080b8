#include "agent/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/text.h"

namespace ads::agent {
namespace fs = std::filesystem;

namespace {
std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + errno_text(errno);
}

// Closes a descriptor at scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

bool is_valid_new_secret(const std::string& s) {
  return s.size() >= 64 && s.size() <= 256 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

Result<std::optional<std::string>> read_secret_file(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
  if (f.fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Error::make("failed", sys_error("cannot read the agent's secret file", path));
  }
  std::string text;
  char buf[512];
  while (text.size() <= 1024) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::make("failed", sys_error("cannot read the agent's secret file", path));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!is_valid_new_secret(text))
    return Error::make("failed", "the agent's secret file " + path +
                                     " does not hold a valid secret (64-256 hex characters); the agent will not "
                                     "fall back to its bootstrap secret");
  return std::optional<std::string>(text);
}

Status write_secret_file(const std::string& path, const std::string& secret) {
  if (!is_valid_new_secret(secret)) return Error::invalid("secret", "must be 64-256 lower-case hex characters");
  fs::path p(path);
  std::error_code ec;
  if (!p.parent_path().empty() && !fs::exists(p.parent_path(), ec)) {
    fs::create_directories(p.parent_path(), ec);
    if (ec) return Error::make("failed", "cannot create " + p.parent_path().string() + ": " + ec.message());
    fs::permissions(p.parent_path(), fs::perms::owner_all, ec);
  }
  std::string tmp = path + ".tmp";
  (void)::unlink(tmp.c_str());  // a leftover of a write cut off earlier
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)};
    if (f.fd < 0) return Error::make("failed", sys_error("cannot create", tmp));
    if (::fchmod(f.fd, 0600) != 0) return Error::make("failed", sys_error("cannot set the mode of", tmp));
    std::string text = secret + "\n";
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::write(f.fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        (void)::unlink(tmp.c_str());
        return Error::make("failed", sys_error("cannot write", tmp));
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(f.fd) != 0) {
      (void)::unlink(tmp.c_str());
      return Error::make("failed", sys_error("cannot sync", tmp));
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    (void)::unlink(tmp.c_str());
    return Error::make("failed", sys_error("cannot put the secret file in place at", path));
  }
  std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0 || ::fsync(d.fd) != 0) return Error::make("failed", sys_error("cannot sync the directory", dir));
  return Status::Ok();
}

}  // namespace ads::agent
