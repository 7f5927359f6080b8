#include "engine/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>

namespace ads {
namespace fs = std::filesystem;

namespace {
la_ssize_t write_cb(struct archive*, void* ud, const void* buf, size_t n) {
  static_cast<std::string*>(ud)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}
}  // namespace

Result<std::string> tar_gz_directory(const std::string& dir, size_t max_bytes) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Error::make("not_found", "not a directory: " + dir);
  std::string out;
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_write_new(), archive_write_free);
  archive_write_add_filter_gzip(a.get());
  archive_write_set_format_pax_restricted(a.get());
  if (archive_write_open(a.get(), &out, nullptr, write_cb, nullptr) != ARCHIVE_OK)
    return Error::make("internal", std::string("archive: ") + archive_error_string(a.get()));
  size_t total = 0;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) return Error::make("failed", "cannot read " + dir + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return Error::make("failed", "cannot read " + dir + ": " + ec.message());
    const fs::path& p = it->path();
    auto rel = fs::relative(p, dir, ec).generic_string();
    if (rel == ".git" || rel.rfind(".git/", 0) == 0) {
      if (it->is_directory()) it.disable_recursion_pending();
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
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      auto target = fs::read_symlink(p, ec);
      archive_entry_set_symlink(e.get(), target.c_str());
    } else if (S_ISREG(st.st_mode)) {
      total += static_cast<size_t>(st.st_size);
      if (total > max_bytes)
        return Error::make("too_large", "the lab is larger than " + std::to_string(max_bytes >> 20) + " MiB");
      std::ifstream in(p, std::ios::binary);
      data.assign(std::istreambuf_iterator<char>(in), {});
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
