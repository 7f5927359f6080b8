#include "engine/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <vector>

#include "core/lab_tree.h"
#include "core/names.h"
#include "core/text.h"

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
  if (fd < 0) return Error::make("failed", "cannot read " + printable(rel) + ": " + errno_text(errno));
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
    if (n < 0) return Error::make("failed", "cannot read " + printable(rel) + ": " + errno_text(errno));
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

namespace {
// The gzip layer, on zlib: libarchive's own gzip reader checks neither the
// CRC-32 nor the length in gzip's trailer. Pulls compressed bytes from
// `raw`, hands out what they inflate to; every member's trailer is checked,
// and anything after the last member is an error.
class Gunzip {
 public:
  explicit Gunzip(std::function<size_t(unsigned char*, size_t)> raw) : raw_(std::move(raw)) {
    ok_ = inflateInit2(&zs_, 16 + MAX_WBITS) == Z_OK;  // 16: gzip wrapper, trailer checked
    if (!ok_) error_ = "zlib cannot start";
  }
  ~Gunzip() {
    if (ok_) inflateEnd(&zs_);
  }
  // Some bytes of the inflated stream: > 0, 0 at its end, -1 on an error (error()).
  la_ssize_t read(const void** buf) {
    if (!error_.empty()) return -1;
    while (true) {
      if (zs_.avail_in == 0 && !raw_eof_) {
        size_t n = raw_(in_.data(), in_.size());
        if (n == 0) raw_eof_ = true;
        zs_.next_in = in_.data();
        zs_.avail_in = static_cast<uInt>(n);
        total_in_ += n;
      }
      if (zs_.avail_in == 0 && raw_eof_) {
        if (member_open_ || total_in_ == 0) return fail(total_in_ == 0 ? "it is empty" : "it is cut off");
        return 0;
      }
      if (!member_open_) {  // after a member's trailer: another member, or garbage
        if (zs_.avail_in >= 1 && zs_.next_in[0] != 0x1f)
          return fail(total_in_ == zs_.avail_in ? "it is not gzip-compressed" : "there is data after the gzip stream");
        inflateReset(&zs_);
        member_open_ = true;
      }
      zs_.next_out = out_.data();
      zs_.avail_out = static_cast<uInt>(out_.size());
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) member_open_ = false;
      else if (rc != Z_OK && rc != Z_BUF_ERROR)
        return fail(std::string(produced_ == 0 ? "it is not gzip-compressed (" : "its gzip data is damaged (") +
                    (zs_.msg ? zs_.msg : "inflate failed") + ")");
      size_t produced = out_.size() - zs_.avail_out;
      produced_ += produced;
      if (produced > 0) {
        *buf = out_.data();
        return static_cast<la_ssize_t>(produced);
      }
    }
  }
  // Reads what is left (after the tar's end), so the trailers get checked.
  bool drain() {
    const void* b;
    la_ssize_t n;
    while ((n = read(&b)) > 0) {
    }
    return n == 0;
  }
  const std::string& error() const { return error_; }

 private:
  la_ssize_t fail(const std::string& why) {
    if (error_.empty()) error_ = why;
    return -1;
  }
  std::function<size_t(unsigned char*, size_t)> raw_;
  z_stream zs_{};
  bool ok_ = false, raw_eof_ = false, member_open_ = false;
  size_t total_in_ = 0, produced_ = 0;
  std::vector<unsigned char> in_ = std::vector<unsigned char>(64 * 1024);
  std::vector<unsigned char> out_ = std::vector<unsigned char>(64 * 1024);
  std::string error_;
};

la_ssize_t gunzip_read(struct archive* a, void* ud, const void** buf) {
  auto* g = static_cast<Gunzip*>(ud);
  la_ssize_t n = g->read(buf);
  if (n < 0) archive_set_error(a, EIO, "%s", g->error().c_str());
  return n;
}

// Reads every header and every byte of data of the tar inside `g`.
Status verify(Gunzip& g, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return Error::invalid("archive", what + " is not a valid .tar.gz: " + why);
  };
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());  // ustar, pax and GNU tar; no other format, no other filter
  if (archive_read_open(a.get(), &g, nullptr, gunzip_read, nullptr) != ARCHIVE_OK)
    return bad(!g.error().empty()              ? g.error()
               : archive_error_string(a.get()) ? archive_error_string(a.get())
                                               : "unreadable");
  archive_entry* e = nullptr;
  size_t entries = 0;
  std::vector<char> buf(64 * 1024);
  while (true) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      if (!g.error().empty()) return bad(g.error());
      const char* why = archive_error_string(a.get());
      return bad(
          (entries == 0 ? std::string("no tar inside") : "damaged after " + std::to_string(entries) + " members") +
          (why ? std::string(": ") + why : ""));
    }
    ++entries;
    la_ssize_t n;
    while ((n = archive_read_data(a.get(), buf.data(), buf.size())) > 0) {
    }
    if (n < 0) {
      if (!g.error().empty()) return bad(g.error());
      const char* name = archive_entry_pathname(e);
      return bad(std::string("the data of ") + (name ? name : "a member") + " cannot be read");
    }
  }
  if (entries == 0) return bad("it holds no member (not even the top directory)");
  if (!g.drain()) return bad(g.error());
  return Status::Ok();
}
}  // namespace

Status verify_tar_gz(const std::string& data) {
  size_t pos = 0;
  Gunzip g([&](unsigned char* out, size_t cap) {
    size_t n = std::min(cap, data.size() - pos);
    std::memcpy(out, data.data() + pos, n);  // NOLINT(bugprone-not-null-terminated-result): bytes, not a C string
    pos += n;
    return n;
  });
  return verify(g, "the archive");
}

Status verify_tar_gz_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::make("not_found", "cannot open the archive " + path);
  Gunzip g([&](unsigned char* out, size_t cap) {
    in.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(cap));
    return static_cast<size_t>(in.gcount());
  });
  return verify(g, path);
}

}  // namespace ads
