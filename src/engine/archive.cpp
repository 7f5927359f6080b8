#include "engine/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/lab_tree.h"
#include "core/names.h"

namespace ads {
namespace fs = std::filesystem;

namespace {
la_ssize_t write_cb(struct archive*, void* ud, const void* buf, size_t n) {
  static_cast<std::string*>(ud)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

std::optional<std::string> read_link(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(p, ec))) return std::nullopt;
  auto t = fs::read_symlink(p, ec);
  if (ec) return std::nullopt;
  return t.string();
}

// A regular file's bytes, opened without following a link; at most `budget`
// bytes are read (more: "too_large").
Result<std::string> read_regular(const fs::path& p, const std::string& rel, size_t budget, size_t max_bytes) {
  auto too_large = [&] {
    return Error::make("too_large", "the lab is larger than " + std::to_string(max_bytes >> 20) + " MiB");
  };
  int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Error::make("failed", "cannot read " + printable(rel) + ": " + std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* f) { ::close(*f); });
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return Error::make("failed", "cannot read " + printable(rel) + ": it changed while the lab was packed");
  if (static_cast<uint64_t>(st.st_size) > budget) return too_large();
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::make("failed", "cannot read " + printable(rel) + ": " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);  // a file that shrank since fstat; one that grew is cut at its size then
  return data;
}
}  // namespace

Result<std::string> tar_gz_directory(const std::string& dir, size_t max_bytes) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Error::make("not_found", "not a directory: " + printable(dir));
  const fs::path root(dir);
  std::string out;
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_write_new(), archive_write_free);
  archive_write_add_filter_gzip(a.get());
  archive_write_set_format_pax_restricted(a.get());
  if (archive_write_open(a.get(), &out, nullptr, write_cb, nullptr) != ARCHIVE_OK)
    return Error::make("internal", std::string("archive: ") + archive_error_string(a.get()));
  size_t total = 0;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) return Error::make("failed", "cannot read " + printable(dir) + ": " + ec.message());
  ReadLinkAt in_lab = [&root](const std::string& rel) { return read_link(root / rel); };
  for (; it != end; it.increment(ec)) {
    if (ec) return Error::make("failed", "cannot read " + printable(dir) + ": " + ec.message());
    const fs::path& p = it->path();
    // The entry's own name, relative to the lab (never its target's).
    auto rel = p.lexically_relative(root).generic_string();
    if (rel == ".git" || rel.rfind(".git/", 0) == 0) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), rel.c_str());
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    archive_entry_set_mtime(e.get(), st.st_mtime, 0);
    std::string data;
    if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      auto target = read_link(p);
      if (!target) return Error::make("failed", "cannot read the link " + printable(rel));
      if (!link_stays_inside(rel, *target, in_lab))
        return Error::invalid("source", "the lab holds a symbolic link that leads outside it: " + printable(rel) +
                                            " -> " + printable(*target) +
                                            "; links in a lab must point to a place inside the lab");
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      archive_entry_set_perm(e.get(), 0777);
      archive_entry_set_symlink(e.get(), target->c_str());
    } else if (S_ISREG(st.st_mode)) {
      auto r = read_regular(p, rel, max_bytes - total, max_bytes);
      if (!r) return r.error();
      data = std::move(r.value());
      total += data.size();
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
    } else {
      continue;  // sockets, fifos, devices: not part of a lab
    }
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK)
      return Error::make("internal", std::string("archive: ") + archive_error_string(a.get()));
    if (!data.empty() && archive_write_data(a.get(), data.data(), data.size()) < 0)
      return Error::make("internal", std::string("archive: ") + archive_error_string(a.get()));
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    return Error::make("internal", std::string("archive: ") + archive_error_string(a.get()));
  return out;
}

}  // namespace ads
