#include "engine/lab_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/names.h"
#include "core/text.h"

namespace ads {
namespace {
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

Result<std::string> read_lab_file(const std::string& dir, const std::string& rel, size_t max_bytes) {
  std::vector<std::string> parts;
  for (size_t i = 0; i <= rel.size();) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    parts.push_back(rel.substr(i, j - i));
    i = j + 1;
  }
  for (auto& p : parts)
    if (p.empty() || p == "." || p == "..") return Error::invalid(rel, "is not a plain relative path");
  Fd at(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (at.fd < 0) return Error::make("not_found", "cannot open the lab's folder: " + errno_text(errno));
  auto refused = [&](const std::string& part, int err) -> Error {
    if (err == ENOENT) return Error{"not_found", rel + " does not exist", rel};
    if (err == ELOOP || err == ENOTDIR)
      return Error::invalid(rel, part == rel
                                     ? rel + " is a symbolic link or not a regular file; it must be a file in the lab"
                                     : part + " (on the way to " + rel +
                                           ") is a symbolic link or not a folder; a lab's files are read "
                                           "only from inside the lab");
    return Error::invalid(rel, "cannot open " + rel + ": " + errno_text(err));
  };
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked += (walked.empty() ? "" : "/") + parts[i];
    int next = ::openat(at.fd, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return refused(walked, errno);
    ::close(at.fd);
    at.fd = next;
  }
  // O_NONBLOCK: a FIFO in the lab must not hang the open.
  Fd f(::openat(at.fd, parts.back().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (f.fd < 0) return refused(rel, errno);
  struct stat st;
  if (::fstat(f.fd, &st) != 0) return Error::invalid(rel, "cannot read " + rel + ": " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return Error::invalid(rel, rel + " is not a regular file");
  auto too_large = [&] {
    return Error{"too_large", rel + " is larger than " + std::to_string(max_bytes) + " bytes", rel};
  };
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return too_large();
  std::string text;
  text.resize(static_cast<size_t>(st.st_size) + 1);  // one more: a file that grew since fstat is noticed
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(f.fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::invalid(rel, "cannot read " + rel + ": " + errno_text(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > max_bytes) return too_large();
  text.resize(got);
  return text;
}

Result<SpecFile> read_spec(const std::string& dir) {
  for (const char* rel : {kSpecV2Path, kSpecV1Path}) {
    auto text = read_lab_file(dir, rel, kMaxSpecBytes);
    if (!text && text.error().code == "not_found") continue;
    if (!text) {
      if (text.error().code == "too_large") return Error::invalid(rel, "the lab spec is larger than 1 MiB");
      return text.error();
    }
    auto r = parse_labspec(rel, *text);
    if (!r) {
      // Field names come from the file (a key it holds): printable, and short.
      Error e = r.error();
      e.field = printable(e.field, 200);
      e.message = std::string(rel) + ": " + (e.field.empty() ? "" : e.field + ": ") + printable(e.message, 300);
      return e;
    }
    return SpecFile{rel, std::move(text.value()), std::move(r.value())};
  }
  return Error::invalid("spec", std::string("the lab has no lab spec: expected ") + kSpecV2Path + " or " + kSpecV1Path);
}

}  // namespace ads
